package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// The mesh: members of a share learn of each other, so they sync with each
// other and not only through whoever invited them. On each connection, a
// device that may write a share sends the peer, for each share they share,
// an Introduction listing the share's other members it knows (device ID,
// public key, addresses), signed by its device key and the share's key;
// again whenever the members it knows change. The receiver, if the
// introducer may add members (mayIntroduce), adds the new members as peers
// of that share (config.toml: [[peer]] and the share's peers) and the
// manager dials them: at the addresses given, and at those the DHT gives
// for their public keys. A family whose inviter is away still syncs: the
// others were introduced to each other while it was there.

const (
	// introCap in a Hello says the device reads Introductions.
	introCap     = "intro1"
	introTimeout = 20 * time.Second // one Introduction's answer
	introRecheck = 30 * time.Second // members are compared again at least this often
)

// errIntroduction is the class of introductions refused.
var errIntroduction = errors.New("introduction refused")

// meshSignal wakes every connection's introducer when members change.
type meshSignal struct {
	mu gosync.Mutex
	ch chan struct{} // guarded by mu: closed and replaced on each poke
}

func (m *meshSignal) changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ch == nil {
		m.ch = make(chan struct{})
	}
	return m.ch
}

func (m *meshSignal) poke() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ch != nil {
		close(m.ch)
	}
	m.ch = make(chan struct{})
}

// meshCapabilities are the capabilities of our Hello to every device.
func (d *Daemon) meshCapabilities() []string {
	return []string{d.keyCapability(), introCap}
}

// introduce sends c's device the introductions it has not had yet, until
// ctx ends (the connection's session).
func (d *Daemon) introduce(ctx context.Context, c *conn.Conn) {
	if !slices.Contains(c.PeerHello().Capabilities, introCap) {
		return // an older device: it gets none
	}
	d.mesh.poke() // the others may now have an address of this device to pass on
	sent := map[share.ID][32]byte{}
	for {
		changed := d.mesh.changed()
		for id, in := range d.introductionsFor(c.Remote()) {
			digest := sha256.Sum256(in.digest)
			if sent[id] == digest {
				continue
			}
			rctx, cancel := context.WithTimeout(ctx, introTimeout)
			_, err := conn.Call[*wire.IntroductionAck](rctx, c, in.msg)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				d.log.Debug("introduce members", "peer", c.Remote().Abbrev(), "share", id.Short(), "err", err)
				continue
			}
			sent[id] = digest
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(introRecheck):
		}
	}
}

// introduction is one Introduction ready to send, and what it says in a
// form that changes only when the members do (not with the time signed).
type introduction struct {
	msg    *wire.Introduction
	digest []byte
}

// introductionsFor builds, for each share remote is a member of and we may
// write, the Introduction of its other members.
func (d *Daemon) introductionsFor(remote identity.DeviceID) map[share.ID]introduction {
	cfg := d.config()
	out := map[share.ID]introduction{}
	for _, s := range cfg.Shares {
		if !slices.Contains(s.Peers, remote.String()) {
			continue
		}
		key, err := share.ParseKey(s.Key)
		if err != nil {
			continue
		}
		signer, ok := key.Signer()
		if !ok {
			continue // only a writer introduces, until the membership log
		}
		body := wire.IntroductionBody{Share: key.ID(), Introducer: d.self, Issued: time.Now()}
		for _, pid := range s.Peers {
			id, err := identity.ParseDeviceID(pid)
			if err != nil || id == remote || len(body.Members) == wire.MaxIntroduced {
				continue
			}
			m := wire.IntroducedMember{Device: id}
			if p, err := cfg.FindPeer(pid); err == nil {
				m.Name = p.Name
				m.PublicKey = peerKey(id, p.PublicKey)
				m.Addresses = d.dialable(id, p.Addresses)
			}
			m.Addresses = d.introduceVault(key.ID(), id, m.Addresses) // vault.go
			body.Members = append(body.Members, m)
		}
		if len(body.Members) == 0 {
			continue
		}
		b, err := wire.EncodeIntroductionBody(body)
		if err != nil {
			d.log.Warn("introduce members", "share", key.ID().Short(), "err", err)
			continue
		}
		msg := &wire.Introduction{Body: b, DeviceKey: [32]byte(d.id.PublicKey())}
		signed := msg.SignedBytes()
		copy(msg.DeviceSig[:], d.id.Sign(signed))
		copy(msg.WriterSig[:], ed25519.Sign(signer, signed))
		body.Issued = time.Time{}
		digest, _ := wire.EncodeIntroductionBody(body)
		out[key.ID()] = introduction{msg: msg, digest: digest}
	}
	return out
}

// dialable is where a member can be dialled, as far as we know: its
// configured addresses, the address we dialled it at, what the DHT found;
// IP literals only, at most wire.MaxIntroAddrs.
func (d *Daemon) dialable(id identity.DeviceID, static []string) []string {
	cands := slices.Clone(static)
	for _, c := range d.peers.Connected() {
		if c.Device == id && c.Outbound {
			cands = append(cands, c.Addr)
		}
	}
	cands = append(cands, d.dht.found(id)...)
	var out []string
	for _, a := range cands {
		if ap, ok := introAddr(a); ok && !slices.Contains(out, ap) && len(out) < wire.MaxIntroAddrs {
			out = append(out, ap)
		}
	}
	return out
}

// introAddr accepts an address worth passing on or dialling: IP:port, a
// port, an IP one can reach.
func introAddr(a string) (string, bool) {
	ap, err := netip.ParseAddrPort(a)
	if err != nil || ap.Port() == 0 {
		return "", false
	}
	ip := ap.Addr().Unmap()
	if ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
		return "", false
	}
	return netip.AddrPortFrom(ip, ap.Port()).String(), true
}

// mayIntroduce decides whether remote may add members to share s by an
// introduction. Until the signed membership log lands, a member of the
// share (one of its peers here) that holds its write key, which it proves
// by the introduction's writer signature, may: the inviter of a family
// share is one. This is the one place to switch to the log.
func mayIntroduce(s *config.Share, key share.Key, remote identity.DeviceID, m *wire.Introduction) bool {
	return slices.Contains(s.Peers, remote.String()) &&
		ed25519.Verify(key.PublicKey(), m.SignedBytes(), m.WriterSig[:])
}

// handleIntroduction reads an Introduction from remote: it checks who
// signed it and whether they may add members, then adds the members it
// did not know as peers of the share, which the manager then dials.
func (d *Daemon) handleIntroduction(remote identity.DeviceID, m *wire.Introduction) (wire.Message, error) {
	added, err := d.readIntroduction(remote, m)
	if err != nil {
		d.log.Warn("introduction refused", "peer", remote.Abbrev(), "err", err)
		return nil, wire.Errorf(wire.CodeRefused, "%v", err)
	}
	if added > 0 {
		if err := d.Reload(); err != nil {
			d.log.Warn("apply introduced members", "peer", remote.Abbrev(), "err", err)
		}
	}
	return &wire.IntroductionAck{}, nil
}

func (d *Daemon) readIntroduction(remote identity.DeviceID, m *wire.Introduction) (int, error) {
	body, err := wire.DecodeIntroductionBody(m.Body)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errIntroduction, err)
	}
	if identity.FromPublicKey(m.DeviceKey[:]) != remote || identity.DeviceID(body.Introducer) != remote {
		return 0, fmt.Errorf("%w: it is not signed by the device that sent it", errIntroduction)
	}
	if !ed25519.Verify(m.DeviceKey[:], m.SignedBytes(), m.DeviceSig[:]) {
		return 0, fmt.Errorf("%w: its device signature does not verify", errIntroduction)
	}
	added := 0
	err = EditConfig(d.opts.Home, func(c *config.Config) error {
		s, err := c.FindShare(body.Share.String())
		if err != nil || s.ID != body.Share.String() {
			return fmt.Errorf("%w: this device is not a member of share %s", errIntroduction, body.Share.Short())
		}
		key, err := share.ParseKey(s.Key)
		if err != nil {
			return fmt.Errorf("%w: share %s: %v", errIntroduction, s.Name, err)
		}
		if !mayIntroduce(s, key, remote, m) {
			return fmt.Errorf("%w: %s may not add members to share %s", errIntroduction, remote.Abbrev(), s.Name)
		}
		for _, im := range body.Members {
			id := identity.DeviceID(im.Device)
			if id == d.self || id.IsZero() {
				continue
			}
			p := config.Peer{ID: id.String(), Name: validName(im.Name)}
			if len(im.PublicKey) == ed25519.PublicKeySize && identity.FromPublicKey(im.PublicKey) == id {
				p.PublicKey = base64.StdEncoding.EncodeToString(im.PublicKey)
			}
			old, err := c.FindPeer(p.ID)
			known := err == nil
			if !known {
				for _, a := range im.Addresses {
					if ap, ok := introAddr(a); ok {
						p.Addresses = append(p.Addresses, ap)
					}
				}
			}
			switch {
			case !known:
				if err := c.AddPeer(p); err != nil {
					continue
				}
			case old.PublicKey == "" && p.PublicKey != "":
				old.PublicKey = p.PublicKey
				added++
			}
			if !slices.Contains(s.Peers, p.ID) {
				s.Peers = append(s.Peers, p.ID)
				added++
				d.log.Info("member introduced", "share", s.Name, "peer", id.Abbrev(), "by", remote.Abbrev())
			}
		}
		if added == 0 {
			return errNothingNew
		}
		return nil
	})
	if errors.Is(err, errNothingNew) {
		return 0, nil
	}
	return added, err
}

// errNothingNew keeps EditConfig from saving an unchanged configuration.
var errNothingNew = errors.New("nothing new")
