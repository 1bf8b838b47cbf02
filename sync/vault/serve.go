package vault

import (
	"errors"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Access is what the encrypted member's membership log says of a peer, for
// one share this device keeps: MayRead (a current member of the share) and
// MayPush (a current member that may write).
type Access interface {
	MayRead(id share.ID, dev identity.DeviceID) bool
	MayPush(id share.ID, dev identity.DeviceID) bool
}

// IsRequest reports whether m is a vault request: one Answer takes, or a
// VaultAddrs (the daemon's: where an encrypted member listens).
func IsRequest(m wire.Message) bool {
	switch m.(type) {
	case *wire.VaultPut, *wire.VaultList, *wire.VaultGet, *wire.VaultBlocks, *wire.VaultAddrs:
		return true
	}
	return false
}

// Answer answers a vault request from peer from. Nothing of a share is
// served to, or taken from, a peer acc does not name a member of it.
func (s *Store) Answer(from identity.DeviceID, m wire.Message, acc Access) wire.Message {
	var id share.ID
	switch m := m.(type) {
	case *wire.VaultPut:
		id = m.Share
	case *wire.VaultList:
		id = m.Share
	case *wire.VaultGet:
		id = m.Share
	case *wire.VaultBlocks:
		id = m.Share
	default:
		return wire.Errorf(wire.CodeBadRequest, "%s is not a vault request", wire.Name(m))
	}
	if !acc.MayRead(id, from) {
		return wire.Errorf(wire.CodeRefused, "not a member of share %s", id.Short())
	}
	switch m := m.(type) {
	case *wire.VaultPut:
		res, err := s.Put(id, from, m.Items, m.Blocks, func(d identity.DeviceID) bool { return acc.MayPush(id, d) })
		if err != nil {
			s.log.Warn("refused sealed data from a peer", "share", id.Short(), "peer", from.Abbrev(), "err", err)
			if errors.Is(err, ErrRefused) || errors.Is(err, ErrBadSignature) || errors.Is(err, ErrCorrupt) {
				return wire.Errorf(wire.CodeRefused, "%v", err)
			}
			return wire.Errorf(wire.CodeInternal, "store sealed data: %v", err)
		}
		if res.Missing > 0 {
			s.log.Info("sealed items name blocks not held here (collected or not sent): left out, for the pusher to send again", "share", id.Short(), "peer", from.Abbrev(), "items", res.Missing)
		}
		return &wire.VaultPutAck{Items: uint32(res.Items), Blocks: uint32(res.Blocks), Missing: uint32(res.Missing)}
	case *wire.VaultList:
		resp, err := s.List(id, m.After, m.Since, wire.MaxVaultEntries)
		if err != nil {
			return wire.Errorf(wire.CodeInternal, "list sealed items: %v", err)
		}
		return resp
	case *wire.VaultGet:
		items, err := s.Get(id, m.Keys)
		if err != nil {
			return wire.Errorf(wire.CodeInternal, "read sealed items: %v", err)
		}
		return &wire.VaultGetResponse{Items: items}
	case *wire.VaultBlocks:
		held, data, err := s.Blocks(id, m.Names, m.Data)
		if err != nil {
			return wire.Errorf(wire.CodeInternal, "read sealed blocks: %v", err)
		}
		return &wire.VaultBlocksResponse{Held: held, Data: data}
	}
	return nil
}
