package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// Limits of the membership messages.
const (
	MaxMemberEntries   = 4096     // entries or pending changes in one MembersResponse
	MaxMemberEntrySize = 64 << 10 // bytes of one entry (index/members.MaxEntrySize)
	MaxEpochKeys       = 256      // sealed epoch keys in one MembersResponse
	MaxEpochKeyBox     = 128      // bytes of one
)

// MembersCapability in a Hello says the device speaks the membership
// messages; no other device is sent one.
const MembersCapability = "members/1"

// MembersRequest asks a member of Share for the membership log after the
// asker's Have entries, whose last hashes to Head (version 4).
type MembersRequest struct {
	Share     share.ID
	Have      uint64
	Head      [32]byte
	PublicKey [32]byte // the asker's Ed25519 device key
}

// MembersResponse answers MembersRequest.
type MembersResponse struct {
	Entries [][]byte // encoded entries (index/members), in log order
	Pending [][]byte // encoded changes waiting for owner approvals
	Keys    []SealedEpochKey
}

// SealedEpochKey is an epoch key sealed to the asker's device key.
type SealedEpochKey struct {
	Epoch uint64
	Box   []byte
}

// MembersChanged says Share's log or its pending changes changed at the
// sender (one way).
type MembersChanged struct {
	Share share.ID
}

func (*MembersRequest) validate() error { return nil }
func (*MembersChanged) validate() error { return nil }

func (m *MembersResponse) validate() error {
	if len(m.Entries) > MaxMemberEntries || len(m.Pending) > MaxMemberEntries || len(m.Keys) > MaxEpochKeys {
		return fmt.Errorf("members response with %d entries, %d pending, %d keys: over the limit", len(m.Entries), len(m.Pending), len(m.Keys))
	}
	for _, l := range [][][]byte{m.Entries, m.Pending} {
		for _, e := range l {
			if len(e) == 0 || len(e) > MaxMemberEntrySize {
				return fmt.Errorf("membership entry of %d bytes, limit %d", len(e), MaxMemberEntrySize)
			}
		}
	}
	for _, k := range m.Keys {
		if len(k.Box) == 0 || len(k.Box) > MaxEpochKeyBox {
			return fmt.Errorf("sealed epoch key of %d bytes, limit %d", len(k.Box), MaxEpochKeyBox)
		}
	}
	return nil
}

func (m *MembersRequest) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_MembersRequest{MembersRequest: &wirepb.MembersRequest{
		Share: m.Share[:], Have: m.Have, Head: m.Head[:], PublicKey: m.PublicKey[:],
	}}
}

func (m *MembersResponse) toPB(e *wirepb.Envelope) {
	p := &wirepb.MembersResponse{Entries: m.Entries, Pending: m.Pending}
	for _, k := range m.Keys {
		p.Keys = append(p.Keys, &wirepb.SealedEpochKey{Epoch: k.Epoch, Box: k.Box})
	}
	e.Body = &wirepb.Envelope_MembersResponse{MembersResponse: p}
}

func (m *MembersChanged) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_MembersChanged{MembersChanged: &wirepb.MembersChanged{Share: m.Share[:]}}
}

func membersRequestFromPB(p *wirepb.MembersRequest) (*MembersRequest, error) {
	m := &MembersRequest{Have: p.GetHave()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("members request: %w", err)
	}
	if err := fixed("head", m.Head[:], p.GetHead()); err != nil {
		return nil, fmt.Errorf("members request: %w", err)
	}
	if err := fixed("public key", m.PublicKey[:], p.GetPublicKey()); err != nil {
		return nil, fmt.Errorf("members request: %w", err)
	}
	return m, nil
}

func membersResponseFromPB(p *wirepb.MembersResponse) (*MembersResponse, error) {
	if len(p.GetEntries()) > MaxMemberEntries || len(p.GetPending()) > MaxMemberEntries || len(p.GetKeys()) > MaxEpochKeys {
		return nil, fmt.Errorf("members response over the limit")
	}
	m := &MembersResponse{Entries: p.GetEntries(), Pending: p.GetPending()}
	for _, k := range p.GetKeys() {
		m.Keys = append(m.Keys, SealedEpochKey{Epoch: k.GetEpoch(), Box: k.GetBox()})
	}
	return m, nil
}

func membersChangedFromPB(p *wirepb.MembersChanged) (*MembersChanged, error) {
	m := &MembersChanged{}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("members changed: %w", err)
	}
	return m, nil
}
