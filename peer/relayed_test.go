package peer

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/relay"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// relayNode makes p a relay for the devices in allowed.
func relayNode(t *testing.T, p *node, allowed ...*node) {
	ok := map[identity.DeviceID]bool{}
	for _, n := range allowed {
		ok[n.ID()] = true
	}
	p.listeners = func(lns []conn.Listener) []conn.Listener {
		srv := relay.NewServer(relay.Options{
			Allowed: func(id identity.DeviceID) error {
				if !ok[id] {
					return errors.New("shares nothing with p")
				}
				return nil
			},
			Invite: p.m.RelayInvite,
			Logger: testLogger(t, p.name+" relay"),
		})
		t.Cleanup(func() { srv.Close() }) // after the manager stopped (cleanups run last first)
		for i, ln := range lns {
			lns[i] = srv.Divert(ln)
		}
		return lns
	}
}

// startRelayed starts n with a relay client, and Relaying as given; tweaks
// change the options further.
func startRelayed(n *node, peers map[identity.DeviceID][]string, relaying bool, tweaks ...func(*Options)) {
	var c *relay.Client
	divert := n.listeners
	n.listeners = func(lns []conn.Listener) []conn.Listener {
		if divert != nil {
			lns = divert(lns)
		}
		return append(lns, c)
	}
	n.startWith(peers, func(o *Options) {
		c = relay.NewClient(relay.ClientOptions{
			TLS:       n.tr,
			Transport: o.Transport,
			Accept:    func(id identity.DeviceID) error { return n.m.Allow(id) },
			Logger:    testLogger(n.t, n.name+" relay client"),
		})
		o.Relay, o.Relaying = c, relaying
		for _, tw := range tweaks {
			tw(o)
		}
	}, nil)
}

// TestRelayWhenNothingElseReaches: a and b are paired but have no address
// for each other and no QUIC to punch with; both reach p, which relays. They
// connect through p (relayed via p, on both sides, pinned to each other),
// and once a learns b's address the direct connection replaces the relayed
// one on both sides.
func TestRelayWhenNothingElseReaches(t *testing.T) {
	p, a, b := newNode(t, "p"), newNode(t, "a"), newNode(t, "b")
	relayNode(t, p, a, b)
	startRelayed(p, nil, true)
	p.m.AddPeer(a.ID())
	p.m.AddPeer(b.ID())
	startRelayed(b, map[identity.DeviceID][]string{p.ID(): {p.addr}, a.ID(): nil}, false)
	startRelayed(a, map[identity.DeviceID][]string{p.ID(): {p.addr}, b.ID(): nil}, false)
	waitFor(t, "a and b connected through p", func() bool {
		ca, okA := connection(a, b)
		cb, okB := connection(b, a)
		return okA && okB && ca.RTT > 0 && cb.RTT > 0
	})
	for _, pair := range [][2]*node{{a, b}, {b, a}} {
		c, _ := connection(pair[0], pair[1])
		if c.Reach != ReachRelayed || c.Via != p.ID() || c.Network != transport.Relay || c.Device != pair[1].ID() {
			t.Errorf("%s's connection to %s: %+v, want relayed via p", pair[0].name, pair[1].name, c)
		}
	}
	// p relays; a and b, which do not, are never asked.
	if c, _ := connection(a, p); c.Network == transport.Relay {
		t.Errorf("a reaches p through a relay: %+v", c)
	}
	a.m.mu.Lock()
	caps := a.m.mu.links[p.ID()].c.PeerHello().Capabilities
	bcaps := a.m.mu.links[b.ID()].c.PeerHello().Capabilities
	a.m.mu.Unlock()
	if !slices.Contains(caps, wire.CapRelay) || slices.Contains(bcaps, wire.CapRelay) {
		t.Errorf("p's Hello %v, b's %v: want relay1 in p's only", caps, bcaps)
	}

	// a learns b's address: the direct connection replaces the relayed one.
	baddr, err := transport.Parse("tcp://" + b.addr)
	if err != nil {
		t.Fatal(err)
	}
	a.m.AddPeer(b.ID(), baddr)
	waitFor(t, "a and b connected directly", func() bool {
		ca, okA := connection(a, b)
		cb, okB := connection(b, a)
		return okA && okB && ca.Reach == ReachLAN && cb.Reach == ReachLAN
	})
}

// TestRelayInviteRefusals: a relay's invitation for a device that is not
// paired, or for the device itself, is refused; no stream comes of it.
func TestRelayInviteRefusals(t *testing.T) {
	p, a := newNode(t, "p"), newNode(t, "a")
	startRelayed(p, nil, true)
	p.m.AddPeer(a.ID())
	startRelayed(a, map[identity.DeviceID][]string{p.ID(): {p.addr}}, false)
	waitFor(t, "a connected to p", func() bool { _, ok := connection(p, a); return ok })
	stranger, _ := identity.Generate()
	ctx := context.Background()
	p.m.mu.Lock()
	pc := p.m.mu.links[a.ID()].c
	p.m.mu.Unlock()
	for _, inv := range []*wire.RelayInvite{{Device: stranger.ID()}, {Device: a.ID()}, {Device: p.ID()}} {
		if _, err := conn.Call[*wire.RelayInviteAck](ctx, pc, inv); err == nil {
			t.Errorf("a accepted a relay invitation for %s", inv.Device.Abbrev())
		}
	}
	if err := p.m.RelayInvite(ctx, stranger.ID(), a.ID(), [wire.RelayTokenSize]byte{}); err == nil {
		t.Error("p invited a device it is not connected to")
	}
}

// TestRelayUpgradeToFoundAddress: a device reached through a relay is
// dialled at the addresses Options.Addresses finds later (the DHT's, in
// the daemon) when its dialer is kicked, and the direct connection
// replaces the relayed one on both sides.
func TestRelayUpgradeToFoundAddress(t *testing.T) {
	p, a, b := newNode(t, "p"), newNode(t, "a"), newNode(t, "b")
	relayNode(t, p, a, b)
	startRelayed(p, nil, true)
	p.m.AddPeer(a.ID())
	p.m.AddPeer(b.ID())
	var found atomic.Pointer[transport.Addr] // b's address, once "looked up"
	startRelayed(b, map[identity.DeviceID][]string{p.ID(): {p.addr}, a.ID(): nil}, false)
	startRelayed(a, map[identity.DeviceID][]string{p.ID(): {p.addr}, b.ID(): nil}, false, func(o *Options) {
		o.Addresses = func(id identity.DeviceID) []transport.Addr {
			if f := found.Load(); f != nil && id == b.ID() {
				return []transport.Addr{*f}
			}
			return nil
		}
	})
	waitFor(t, "a and b connected through p", func() bool {
		ca, okA := connection(a, b)
		cb, okB := connection(b, a)
		return okA && okB && ca.Reach == ReachRelayed && cb.Reach == ReachRelayed
	})
	baddr, err := transport.Parse("tcp://" + b.addr)
	if err != nil {
		t.Fatal(err)
	}
	found.Store(&baddr)
	a.m.Kick(b.ID())
	waitFor(t, "a and b connected directly", func() bool {
		ca, okA := connection(a, b)
		cb, okB := connection(b, a)
		return okA && okB && ca.Reach == ReachLAN && cb.Reach == ReachLAN
	})
}
