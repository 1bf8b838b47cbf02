package peer

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Hole punching, DCUtR-style, over connections we already have.
//
// A device that cannot dial a paired device B asks a connected peer P that
// offers CapPunch to introduce it (PunchRequest). P, if connected to B over
// QUIC, sends B a PunchOffer with the asker's address as P sees it, and
// answers with B's address as P sees it. Both ends then act at once, with
// roles fixed by the one-connection rule: the device with the smaller ID
// dials QUIC (its Initial packets open its own NAT, and are retransmitted
// until the other NAT lets them in); the other sends small non-QUIC packets
// from its QUIC socket towards the dialler, which open its NAT for the
// dialler's packets. Both NATs must map endpoint-independently (most home
// routers do); a symmetric NAT needs a relay.
//
// Bounds: only paired devices, over authenticated connections, ask or
// offer; an offer about a device that is not paired with us is ignored; at
// most wire.MaxPunchAddrs addresses are dialled or punched per
// introduction, for punchWindow; one punch per device per punchEvery, one
// introduction per pair per punchEvery.

// Reach says how a peer is reached.
type Reach string

const (
	ReachLAN     Reach = "lan"     // an address on this machine or a local network
	ReachDirect  Reach = "direct"  // a public address, dialled or accepted
	ReachPunched Reach = "punched" // through NATs, after an introduction by Via
	ReachRelayed Reach = "relayed" // through Via, a member that relays (relayed.go)
)

const (
	punchWindow    = 6 * time.Second  // how long both ends try
	punchEvery     = 10 * time.Second // at most one punch per device, one introduction per pair, this often
	punchInterval  = 100 * time.Millisecond
	introTimeout   = 5 * time.Second
	maxIntroducers = 3 // peers asked per punch
)

// punch is a punch in progress towards a device.
type punch struct {
	until time.Time
	via   identity.DeviceID
}

// reachHandler takes the reach messages off a connection and hands the
// rest to the engine's handler: the engine never sees how a peer is reached.
type reachHandler struct {
	conn.Handler
	m    *Manager
	from identity.DeviceID
}

func (h *reachHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	if r, ok := req.(*wire.PunchRequest); ok {
		return h.m.introduce(ctx, h.from, r)
	}
	if r, ok := req.(*wire.RelayInvite); ok {
		return h.m.relayInvited(h.from, r)
	}
	return h.Handler.HandleRequest(ctx, req)
}

func (h *reachHandler) HandleMessage(ctx context.Context, msg wire.Message) error {
	if o, ok := msg.(*wire.PunchOffer); ok {
		h.m.offered(h.from, o)
		return nil
	}
	return h.Handler.HandleMessage(ctx, msg)
}

// Reflexive lists this device's addresses as connected peers see them over
// QUIC (its NAT's mappings of the QUIC socket), the most reported first:
// what to publish for devices that are not connected.
func (m *Manager) Reflexive() []transport.Addr {
	m.mu.Lock()
	count := map[transport.Addr]int{}
	for _, l := range m.mu.links {
		if o := l.c.PeerHello().Observed; l.c.Network() == transport.QUIC && o.AddrPort.IsValid() {
			count[o.With(transport.QUIC)]++
		}
	}
	m.mu.Unlock()
	out := make([]transport.Addr, 0, len(count))
	for a := range count {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b transport.Addr) int {
		return cmp.Or(count[b]-count[a], cmp.Compare(a.String(), b.String()))
	})
	return out
}

// kickForIntroducer makes the dialers of the devices not connected try
// again now when l is a new peer that can introduce us to them or relay
// for us: a device unreachable a moment ago may be punched through to, or
// relayed to, now.
func (m *Manager) kickForIntroducer(l *link) {
	canPunch := m.opts.Punch != nil && l.c.Network() == transport.QUIC && slices.Contains(l.c.PeerHello().Capabilities, wire.CapPunch)
	canRelay := m.opts.Relay != nil && slices.Contains(l.c.PeerHello().Capabilities, wire.CapRelay)
	if !canPunch && !canRelay {
		return
	}
	m.mu.Lock()
	var kick []chan struct{}
	for id, ps := range m.mu.peers {
		if m.mu.links[id] == nil {
			kick = append(kick, ps.kick)
		}
	}
	m.mu.Unlock()
	for _, ch := range kick {
		m.signal(ch)
	}
}

// reachLocked classifies a new connection with id from remote.
func (m *Manager) reachLocked(id identity.DeviceID, remote transport.Addr) (Reach, identity.DeviceID) {
	if p, ok := m.mu.punches[id]; ok && m.opts.Now().Before(p.until) {
		return ReachPunched, p.via
	}
	if remote.IsLocal() {
		return ReachLAN, identity.DeviceID{}
	}
	return ReachDirect, identity.DeviceID{}
}

// askPunch asks connected peers that offer it to introduce us to id, and
// punches with the first that does; true if a connection came of it.
func (m *Manager) askPunch(dctx, runCtx context.Context, id identity.DeviceID) bool {
	if m.opts.Punch == nil {
		return false
	}
	intro := m.introducers(id)
	if len(intro) == 0 || m.punchedLately(id) {
		return false
	}
	for _, l := range intro {
		ctx, cancel := context.WithTimeout(dctx, introTimeout)
		resp, err := conn.Call[*wire.PunchResponse](ctx, l.c, &wire.PunchRequest{Device: id})
		cancel()
		if err != nil {
			// Not connected to id (yet): no punch was started, so the
			// next round may ask again.
			m.log.Debug("no introduction", "peer", id.Abbrev(), "via", l.c.Remote().Abbrev(), "err", err)
			continue
		}
		if !m.mayPunch(id) {
			return false // the peer's offer started one meanwhile
		}
		m.log.Info("punching through NATs", "peer", id.Abbrev(), "via", l.c.Remote().Abbrev(), "addrs", resp.Addrs)
		return m.punchTo(dctx, runCtx, id, resp.Addrs, l.c.Remote())
	}
	return false
}

// introducers are up to maxIntroducers connected peers, other than id, that
// offer CapPunch over QUIC (over TCP they cannot see our UDP address).
func (m *Manager) introducers(id identity.DeviceID) []*link {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*link
	for d, l := range m.mu.links {
		if d != id && l.c.Network() == transport.QUIC && slices.Contains(l.c.PeerHello().Capabilities, wire.CapPunch) {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b *link) int {
		ra, rb := a.c.Remote(), b.c.Remote()
		return bytes.Compare(ra[:], rb[:])
	})
	return out[:min(len(out), maxIntroducers)]
}

// mayPunch reports whether a punch towards id may start now (none in the
// last punchEvery), and notes that one does.
func (m *Manager) mayPunch(id identity.DeviceID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.opts.Now()
	if t, ok := m.mu.asked[id]; ok && now.Sub(t) < punchEvery {
		return false
	}
	m.mu.asked[id] = now
	return true
}

// punchedLately reports whether a punch towards id started in the last
// punchEvery.
func (m *Manager) punchedLately(id identity.DeviceID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.mu.asked[id]
	return ok && m.opts.Now().Sub(t) < punchEvery
}

// introduce answers a PunchRequest from a connected peer.
func (m *Manager) introduce(ctx context.Context, from identity.DeviceID, r *wire.PunchRequest) (wire.Message, error) {
	if m.opts.Punch == nil {
		return nil, wire.Errorf(wire.CodeUnsupported, "hole punching is off on device %s", m.self.Abbrev())
	}
	if r.Device == from || r.Device == m.self {
		return nil, wire.Errorf(wire.CodeBadRequest, "cannot introduce a device to itself")
	}
	m.mu.Lock()
	asker, target := m.mu.links[from], m.mu.links[r.Device]
	pair := [2]identity.DeviceID{from, r.Device}
	last, seen := m.mu.introduced[pair]
	now := m.opts.Now()
	recent := seen && now.Sub(last) < punchEvery
	if !recent && target != nil {
		m.mu.introduced[pair] = now
	}
	m.mu.Unlock()
	switch {
	case target == nil:
		return nil, wire.Errorf(wire.CodeNotFound, "device %s is not connected to %s", r.Device.Abbrev(), m.self.Abbrev())
	case recent:
		return nil, wire.Errorf(wire.CodeBusy, "introduced to %s less than %s ago", r.Device.Abbrev(), punchEvery)
	case asker == nil || asker.c.Network() != transport.QUIC || !asker.remote.AddrPort.IsValid():
		return nil, wire.Errorf(wire.CodeUnsupported, "punching needs QUIC: your connection to %s is not QUIC", m.self.Abbrev())
	case target.c.Network() != transport.QUIC || !slices.Contains(target.c.PeerHello().Capabilities, wire.CapPunch):
		return nil, wire.Errorf(wire.CodeUnsupported, "device %s cannot punch (no QUIC connection, or an older version)", r.Device.Abbrev())
	}
	offer := &wire.PunchOffer{Device: from, Addrs: []transport.Addr{asker.remote.With(transport.QUIC)}}
	ctx, cancel := context.WithTimeout(ctx, introTimeout)
	defer cancel()
	if err := target.c.Send(ctx, offer); err != nil {
		return nil, wire.Errorf(wire.CodeNotFound, "device %s is not reachable now", r.Device.Abbrev())
	}
	m.log.Info("introduced two peers for a punch", "peer", from.Abbrev(), "to", r.Device.Abbrev())
	return &wire.PunchResponse{Addrs: []transport.Addr{target.remote.With(transport.QUIC)}}, nil
}

// offered acts on a PunchOffer from a connected peer via: it punches
// towards a device paired with us and not connected, at most once per
// punchEvery. It never blocks the connection that carried the offer.
func (m *Manager) offered(via identity.DeviceID, o *wire.PunchOffer) {
	switch {
	case m.opts.Punch == nil, o.Device == m.self:
		return
	case !m.paired(o.Device):
		m.log.Info("ignored a punch offer for a device that is not paired", "peer", o.Device.Abbrev(), "via", via.Abbrev())
		return
	case m.connectedDirect(o.Device) || !m.mayPunch(o.Device):
		return
	}
	m.log.Info("punching through NATs", "peer", o.Device.Abbrev(), "via", via.Abbrev(), "addrs", o.Addrs)
	m.mu.Lock()
	life := m.life
	m.mu.Unlock()
	m.wg.Go(func() { m.punchTo(life, life, o.Device, o.Addrs, via) })
}

// punchTo tries, for punchWindow, to get a connection with id through the
// addresses an introducer gave: dialling them if we have the smaller ID,
// else sending punch packets to them while id dials us.
func (m *Manager) punchTo(ctx, runCtx context.Context, id identity.DeviceID, addrs []transport.Addr, via identity.DeviceID) bool {
	var targets []transport.Addr
	for _, a := range addrs {
		if a.AddrPort.IsValid() && a.Has(transport.QUIC) && len(targets) < wire.MaxPunchAddrs {
			targets = append(targets, a.With(transport.QUIC))
		}
	}
	if len(targets) == 0 {
		return false
	}
	until := m.opts.Now().Add(punchWindow)
	m.mu.Lock()
	m.mu.punches[id] = punch{until: until, via: via}
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.mu.punches[id].until == until {
			delete(m.mu.punches, id)
		}
		m.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, punchWindow)
	defer cancel()
	if bytes.Compare(m.self[:], id[:]) < 0 {
		for _, a := range targets {
			s, err := m.opts.Transport.Dial(ctx, a, id)
			if err != nil {
				m.log.Info("punch failed", "peer", id.Abbrev(), "addr", a, "err", err)
				continue
			}
			if err := m.offer(runCtx, s); err != nil {
				m.log.Debug("punched connection not kept", "peer", id.Abbrev(), "err", err)
				continue
			}
			return true
		}
		return m.connectedDirect(id)
	}
	t := time.NewTicker(punchInterval)
	defer t.Stop()
	for !m.connectedDirect(id) {
		for _, a := range targets {
			if err := m.opts.Punch(a.AddrPort); err != nil {
				m.log.Debug("punch packet not sent", "peer", id.Abbrev(), "addr", a, "err", err)
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			m.log.Info("punch failed: no connection came", "peer", id.Abbrev(), "via", via.Abbrev())
			return m.connectedDirect(id)
		}
	}
	return true
}
