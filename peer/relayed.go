package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/relay"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Relaying by members (peer/relay), the last resort.
//
// A paired device that no address reaches and no punch gets through to is
// reached through a connected peer that offers wire.CapRelay (a member
// both share a share with): Options.Relay dials a circuit through it, and
// TLS inside the circuit is pinned to the device, so the relay forwards
// only ciphertext. The other end gets the relay's RelayInvite on its
// session with the relay, dials the relay back, and its relayed stream
// comes in through Options.Relay as a listener. A relayed connection is of
// network transport.Relay, its reach "relayed" via the relay; the engine
// does not know. While a device is reached through a relay, its dialer
// tries a direct dial and a punch again every relayUpgradeEvery, and at
// once on Kick (AddPeer with new addresses, discovery); a connection
// without a relay replaces a relayed one (the one-connection rule prefers
// it on both sides).

const (
	relayTimeout      = 30 * time.Second // a circuit's dial, invitation and inner handshake
	relayUpgradeEvery = time.Minute      // a relayed device is dialled and punched again this often
	maxRelays         = 3                // relays asked per round
)

// relayed reports whether the link runs through a relay.
func (l *link) relayed() bool { return l.c.Network() == transport.Relay }

// connectedDirect reports whether id is connected without a relay.
func (m *Manager) connectedDirect(id identity.DeviceID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l := m.mu.links[id]
	return l != nil && !l.relayed()
}

// askRelay asks connected relays, in turn, for a circuit to id; true if a
// connection came of it. The dialer asks only after a round in which
// neither a dial nor a punch reached id, and never while a punch towards
// id is under way (one the peer's offer started, say): a punch that may
// still succeed is not pre-empted.
func (m *Manager) askRelay(dctx, runCtx context.Context, id identity.DeviceID) bool {
	if m.opts.Relay == nil || m.connected(id) || m.punching(id) {
		return false
	}
	for _, r := range m.relays(id) {
		via := r.c.Remote()
		ctx, cancel := context.WithTimeout(dctx, relayTimeout)
		s, err := m.opts.Relay.Dial(ctx, via, m.relayAddrs(via, r), id)
		cancel()
		if err != nil {
			m.log.Info("relay failed", "peer", id.Abbrev(), "via", via.Abbrev(), "err", err)
			continue
		}
		if err := m.offer(runCtx, s); err != nil {
			m.log.Debug("relayed connection not kept", "peer", id.Abbrev(), "via", via.Abbrev(), "err", err)
			continue
		}
		return true
	}
	return false
}

// punching reports whether a punch towards id is under way.
func (m *Manager) punching(id identity.DeviceID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.mu.punches[id]
	return ok && m.opts.Now().Before(p.until)
}

// relays are up to maxRelays connected peers, other than id, that offer
// CapRelay and are not reached through a relay themselves.
func (m *Manager) relays(id identity.DeviceID) []*link {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*link
	for d, l := range m.mu.links {
		if d != id && !l.relayed() && l.c.Version() >= wire.RelayVersion && slices.Contains(l.c.PeerHello().Capabilities, wire.CapRelay) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b *link) int {
		ra, rb := a.c.Remote(), b.c.Remote()
		return bytes.Compare(ra[:], rb[:])
	})
	return out[:min(len(out), maxRelays)]
}

// relayAddrs are where to dial the relay via for a circuit: the address of
// our link to it when that is its listening address (we dialled it, or it
// is its QUIC socket), then its other known addresses.
func (m *Manager) relayAddrs(via identity.DeviceID, l *link) []transport.Addr {
	var out []transport.Addr
	if l != nil && l.remote.IsValid() && (l.outbound || l.c.Network() == transport.QUIC) {
		out = append(out, l.remote.With(l.c.Network()))
	}
	m.mu.Lock()
	ps := m.mu.peers[via]
	m.mu.Unlock()
	if ps != nil {
		for _, a := range m.addresses(via, ps) {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// relayInvited answers a RelayInvite from the relay from: a paired device
// asks for a circuit to us; we dial the relay back.
func (m *Manager) relayInvited(from identity.DeviceID, r *wire.RelayInvite) (wire.Message, error) {
	switch {
	case m.opts.Relay == nil:
		return nil, wire.Errorf(wire.CodeUnsupported, "device %s takes no relayed connections", m.self.Abbrev())
	case r.Device == m.self || r.Device == from:
		return nil, wire.Errorf(wire.CodeBadRequest, "a relay invitation from device %s for itself", r.Device.Abbrev())
	case !m.paired(r.Device):
		m.log.Info("ignored a relay invitation for a device that is not paired", "peer", r.Device.Abbrev(), "via", from.Abbrev())
		return nil, wire.Errorf(wire.CodeRefused, "device %s is not paired with %s", r.Device.Abbrev(), m.self.Abbrev())
	case m.connectedDirect(r.Device):
		return nil, wire.Errorf(wire.CodeBusy, "device %s is connected to %s already", r.Device.Abbrev(), m.self.Abbrev())
	}
	m.mu.Lock()
	l := m.mu.links[from]
	m.mu.Unlock()
	if err := m.opts.Relay.Invited(from, m.relayAddrs(from, l), r); errors.Is(err, relay.ErrBusy) {
		return nil, wire.Errorf(wire.CodeBusy, "%v", err)
	} else if err != nil {
		return nil, wire.Errorf(wire.CodeRefused, "%v", err)
	}
	m.log.Info("dialling a relay back", "peer", r.Device.Abbrev(), "via", from.Abbrev())
	return &wire.RelayInviteAck{}, nil
}

// RelayInvite asks target, over our connection to it, to dial us back for
// a circuit from from (the relay.Server's Invite).
func (m *Manager) RelayInvite(ctx context.Context, target, from identity.DeviceID, token [wire.RelayTokenSize]byte) error {
	m.mu.Lock()
	l := m.mu.links[target]
	m.mu.Unlock()
	switch {
	case l == nil:
		return fmt.Errorf("device %s is not connected", target.Abbrev())
	case l.relayed():
		return fmt.Errorf("device %s is reached through a relay itself", target.Abbrev())
	case l.c.Version() < wire.RelayVersion:
		return fmt.Errorf("device %s runs an older version without relaying", target.Abbrev())
	}
	_, err := conn.Call[*wire.RelayInviteAck](ctx, l.c, &wire.RelayInvite{Device: from, Token: token})
	return err
}

// upgradeTimer fires after relayUpgradeEvery while id is reached through a
// relay (never otherwise); stop releases it.
func (m *Manager) upgradeTimer(id identity.DeviceID) (<-chan time.Time, func()) {
	m.mu.Lock()
	l := m.mu.links[id]
	m.mu.Unlock()
	if l == nil || !l.relayed() {
		return nil, func() {}
	}
	t := time.NewTimer(relayUpgradeEvery)
	return t.C, func() { t.Stop() }
}

// upgrade tries to reach a relayed device without the relay: a dial of
// its addresses, then a punch. A connection that comes of it replaces the
// relayed one.
func (m *Manager) upgrade(dctx, runCtx context.Context, id identity.DeviceID, ps *peerState) {
	if m.dialRound(dctx, runCtx, id, ps) || m.askPunch(dctx, runCtx, id) {
		m.log.Info("reached a relayed device directly", "peer", id.Abbrev())
	}
}
