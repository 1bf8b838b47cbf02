package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/members"
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
// introducer may add members (mayIntroduce: a current read-write member by
// the share's signed membership log), keeps the new members as introduced
// devices of that share in Pebble (known.go; never in config.toml, which
// holds what the user wrote), leaving out any the log removed, and the
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
// configured addresses, the address we dialled it at, where it said it
// listens (at the IP it came from: listening.go), what the DHT found;
// IP literals only, at most wire.MaxIntroAddrs.
func (d *Daemon) dialable(id identity.DeviceID, static []string) []string {
	cands := slices.Clone(static)
	for _, c := range d.peers.Connected() {
		if c.Device == id && c.Outbound {
			cands = append(cands, c.Addr)
		}
	}
	cands = append(cands, d.listening.of(id)...) // where it said it listens (listening.go)
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
// introduction: it proves it holds the share's write key (the writer
// signature), and the share's signed membership log names it a current
// read-write member; until this device holds the log, being one of the
// share's peers (config.toml's or introduced) stands in for it.
func mayIntroduce(s config.Share, st *members.State, key share.Key, remote identity.DeviceID, m *wire.Introduction) bool {
	if !ed25519.Verify(key.PublicKey(), m.SignedBytes(), m.WriterSig[:]) {
		return false
	}
	if st == nil {
		return slices.Contains(s.Peers, remote.String())
	}
	in, ok := st.Member(members.Device(remote))
	return ok && !in.Removed && in.Level == members.ReadWrite
}

// handleIntroduction reads an Introduction from remote: it checks who
// signed it and whether they may add members, then keeps the members it
// did not know (known.go), which the manager then dials.
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
	key, s, err := d.shareByID(body.Share)
	if err != nil || s.ID != body.Share.String() {
		return 0, fmt.Errorf("%w: this device is not a member of share %s", errIntroduction, body.Share.Short())
	}
	st := d.shareLog(s)
	if st != nil && !currentIn(st, d.self) {
		return 0, fmt.Errorf("%w: the membership log of share %s does not name this device a member", errIntroduction, s.Name)
	}
	if !mayIntroduce(s, st, key, remote, m) {
		return 0, fmt.Errorf("%w: %s may not add members to share %s", errIntroduction, remote.Abbrev(), s.Name)
	}
	return d.keepIntroduced(body.Share, s, st, remote, body), nil
}

// errNothingNew keeps EditConfig from saving an unchanged configuration.
var errNothingNew = errors.New("nothing new")
