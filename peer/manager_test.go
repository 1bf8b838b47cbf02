package peer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quietHandler serves nothing: these tests are about connections, not sync.
type quietHandler struct{}

func (quietHandler) HandleRequest(context.Context, wire.Message) (wire.Message, error) {
	return nil, wire.Errorf(wire.CodeNotFound, "nothing here")
}
func (quietHandler) HandleMessage(context.Context, wire.Message) error { return nil }

// node is one device: identity, TLS transport, and (while running) a
// manager listening on addr.
type node struct {
	t    *testing.T
	name string
	id   *identity.Identity
	tr   *conn.TLS
	addr string // listening address, fixed after the first start

	m      *Manager
	stop   context.CancelFunc
	done   chan error
	events *events
}

// events counts OnConnect and OnDisconnect, checking they alternate per device.
type events struct {
	mu          sync.Mutex
	connects    int
	disconnects int
	open        map[identity.DeviceID]bool
	overlapped  bool
	last        *conn.Conn
}

func newNode(t *testing.T, name string) *node {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &node{t: t, name: name, id: id, tr: conn.NewTLS(id, testLogger(t, name)), addr: "127.0.0.1:0"}
}

func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start runs a fresh manager on the node's address, paired with peers
// (each with the given static addresses).
func (n *node) start(peers map[identity.DeviceID][]string) {
	n.t.Helper()
	ev := &events{open: map[identity.DeviceID]bool{}}
	m, err := New(Options{
		Identity:   n.id,
		Transport:  n.tr,
		DeviceName: n.name,
		Handler:    func(identity.DeviceID) conn.Handler { return quietHandler{} },
		OnConnect: func(c *conn.Conn) {
			ev.mu.Lock()
			defer ev.mu.Unlock()
			ev.connects++
			ev.overlapped = ev.overlapped || ev.open[c.Remote()]
			ev.open[c.Remote()] = true
			ev.last = c
		},
		OnDisconnect: func(id identity.DeviceID, err error) {
			ev.mu.Lock()
			defer ev.mu.Unlock()
			ev.disconnects++
			ev.overlapped = ev.overlapped || !ev.open[id]
			ev.open[id] = false
		},
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		Logger:     testLogger(n.t, n.name),
	})
	if err != nil {
		n.t.Fatal(err)
	}
	for id, addrs := range peers {
		m.AddPeer(id, addrs...)
	}
	ln, err := n.tr.Listen(n.addr, m.Allow)
	if err != nil {
		n.t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	n.m, n.stop, n.done, n.events = m, cancel, make(chan error, 1), ev
	go func() { n.done <- m.Run(ctx, ln) }()
	n.t.Cleanup(n.shutdown)
}

// shutdown stops the manager and waits for Run; it checks the events
// balanced out. Safe to call twice.
func (n *node) shutdown() {
	if n.stop == nil {
		return
	}
	n.stop()
	if err := <-n.done; err != nil {
		n.t.Errorf("%s: run: %v", n.name, err)
	}
	n.stop = nil
	ev := n.events
	ev.mu.Lock()
	defer ev.mu.Unlock()
	if ev.connects != ev.disconnects || ev.overlapped {
		n.t.Errorf("%s: %d connects, %d disconnects, overlapped=%v: events out of order", n.name, ev.connects, ev.disconnects, ev.overlapped)
	}
}

func (n *node) ID() identity.DeviceID { return n.id.ID() }

// waitFor polls cond; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func connectedTo(n *node, peer *node) func() bool {
	return func() bool {
		c := n.m.Connected()
		return len(c) == 1 && c[0].Device == peer.ID()
	}
}

// keepsPreferred reports whether n keeps exactly one connection with peer,
// the one dialled by the smaller device ID.
func keepsPreferred(n, peer *node) bool {
	c := n.m.Connected()
	a, b := n.ID(), peer.ID()
	return len(c) == 1 && c[0].Device == b && c[0].Outbound == (bytes.Compare(a[:], b[:]) < 0)
}

// live is OnConnects minus OnDisconnects.
func (ev *events) live() int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.connects - ev.disconnects
}

// smallerDials checks whether the connection a node keeps with peer is the
// one the rule says: dialled by the smaller device ID.
func smallerDials(t *testing.T, n, peer *node) {
	t.Helper()
	c := n.m.Connected()
	if len(c) != 1 {
		t.Fatalf("%s keeps %d connections, want 1", n.name, len(c))
	}
	a, b := n.ID(), peer.ID()
	weAreSmaller := bytes.Compare(a[:], b[:]) < 0
	if c[0].Outbound != weAreSmaller {
		t.Fatalf("%s keeps the connection with outbound=%v; the smaller ID is %s's", n.name, c[0].Outbound,
			map[bool]string{true: n.name, false: peer.name}[weAreSmaller])
	}
}

func TestConnectByStaticAddress(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	b.start(map[identity.DeviceID][]string{a.ID(): nil}) // b knows no address of a
	a.start(map[identity.DeviceID][]string{b.ID(): {b.addr}})
	waitFor(t, "a and b are connected", func() bool { return connectedTo(a, b)() && connectedTo(b, a)() })

	ca, cb := a.m.Connected()[0], b.m.Connected()[0]
	if !ca.Outbound || cb.Outbound {
		t.Fatalf("a outbound=%v, b outbound=%v; only a could dial", ca.Outbound, cb.Outbound)
	}
	if ca.Addr != b.addr {
		t.Fatalf("a's connection goes to %s, want %s", ca.Addr, b.addr)
	}
	// The connection the engine gets works.
	a.events.mu.Lock()
	c := a.events.last
	a.events.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := conn.Call[*wire.Pong](ctx, c, &wire.Ping{}); err != nil {
		t.Fatalf("ping over the kept connection: %v", err)
	}
}

// TestSimultaneousDial dials both ways at the same moment, by hand, and
// offers both streams on both sides: both must keep the same one, the
// connection dialled by the smaller device ID, and close the other.
func TestSimultaneousDial(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	// Paired, but neither has an address: only the test dials.
	a.start(map[identity.DeviceID][]string{b.ID(): nil})
	b.start(map[identity.DeviceID][]string{a.ID(): nil})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for round := range 5 {
		var wg sync.WaitGroup
		var sa, sb conn.Stream
		var ea, eb error
		wg.Go(func() { sa, ea = a.tr.Dial(ctx, b.addr, b.ID()) })
		wg.Go(func() { sb, eb = b.tr.Dial(ctx, a.addr, a.ID()) })
		wg.Wait()
		if ea != nil || eb != nil {
			t.Fatalf("dial: %v, %v", ea, eb)
		}
		wg.Go(func() { a.m.offer(ctx, sa) })
		wg.Go(func() { b.m.offer(ctx, sb) })
		wg.Wait()
		// Either side may keep the other stream for a moment (it came
		// first); both end on the preferred one, and the loser is closed.
		waitFor(t, "both keep the connection dialled by the smaller ID", func() bool { return keepsPreferred(a, b) && keepsPreferred(b, a) })
		waitFor(t, "the losing connection is gone", func() bool { return a.events.live() == 1 && b.events.live() == 1 })
		smallerDials(t, a, b)
		smallerDials(t, b, a)
		t.Logf("round %d: a %+v, b %+v", round, a.m.Connected(), b.m.Connected())
		// Drop it for the next round.
		a.m.mu.Lock()
		l := a.m.mu.links[b.ID()]
		a.m.mu.Unlock()
		l.c.Close()
		waitFor(t, "disconnected", func() bool { return len(a.m.Connected()) == 0 && len(b.m.Connected()) == 0 })
	}
}

// TestBothDialAtStart starts two managers that know each other's address:
// however their dials cross, one connection survives on both sides, the
// same one (the preferred one if both dials got through, else the only one).
func TestBothDialAtStart(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	// Listen first so each knows the other's address.
	la, err := a.tr.Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.tr.Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	a.addr, b.addr = la.Addr().String(), lb.Addr().String()
	la.Close()
	lb.Close()
	a.start(map[identity.DeviceID][]string{b.ID(): {b.addr}})
	b.start(map[identity.DeviceID][]string{a.ID(): {a.addr}})
	waitFor(t, "one connection each, and no other left", func() bool {
		return connectedTo(a, b)() && connectedTo(b, a)() && a.events.live() == 1 && b.events.live() == 1
	})
	ca, cb := a.m.Connected()[0], b.m.Connected()[0]
	if ca.Outbound == cb.Outbound {
		t.Fatalf("a outbound=%v, b outbound=%v: not the same connection", ca.Outbound, cb.Outbound)
	}
}

func TestUnpairedIsRefused(t *testing.T) {
	a, c := newNode(t, "a"), newNode(t, "c")
	a.start(nil) // pairs with nobody
	before := time.Now()
	c.start(map[identity.DeviceID][]string{a.ID(): {a.addr}})
	waitFor(t, "a lists c's refused attempt", func() bool { return len(a.m.Refused()) > 0 })
	got := a.m.Refused()[0]
	if got.Device != c.ID() || got.Addr.Addr() != netip.MustParseAddr("127.0.0.1") || got.Time.Before(before) {
		t.Fatalf("refused %+v, want device %s from 127.0.0.1", got, c.ID())
	}
	if len(a.m.Connected()) != 0 || len(c.m.Connected()) != 0 {
		t.Fatalf("connected: a %v, c %v", a.m.Connected(), c.m.Connected())
	}
	// Pairing while running lets it in; unpairing cuts it off.
	a.m.AddPeer(c.ID())
	c.m.Kick(a.ID())
	waitFor(t, "c connects once paired", func() bool { return connectedTo(a, c)() && connectedTo(c, a)() })
	a.m.RemovePeer(c.ID())
	waitFor(t, "c is cut off once unpaired", func() bool { return len(a.m.Connected()) == 0 })
	if err := a.m.Allow(c.ID()); !errors.Is(err, ErrNotPaired) {
		t.Fatalf("allow unpaired: %v, want ErrNotPaired", err)
	}
}

// TestReconnectAfterRestart: a dials b; b goes away and comes back on the
// same port; a reconnects after backoff (b knows no address of a).
func TestReconnectAfterRestart(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	b.start(map[identity.DeviceID][]string{a.ID(): nil})
	a.start(map[identity.DeviceID][]string{b.ID(): {b.addr}})
	waitFor(t, "connected", func() bool { return connectedTo(a, b)() && connectedTo(b, a)() })

	b.shutdown()
	waitFor(t, "a sees b gone", func() bool { return len(a.m.Connected()) == 0 })
	b.start(map[identity.DeviceID][]string{a.ID(): nil}) // same identity, same address
	waitFor(t, "a reconnects", func() bool { return connectedTo(a, b)() && connectedTo(b, a)() })
	a.events.mu.Lock()
	defer a.events.mu.Unlock()
	if a.events.connects != 2 {
		t.Fatalf("a connected %d times, want 2", a.events.connects)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: time.Second, max: 8 * time.Second}
	for i, hi := range []time.Duration{1, 2, 4, 8, 8, 8} {
		hi *= time.Second
		if d := b.next(); d < hi/2 || d > hi {
			t.Fatalf("wait %d is %v, want within [%v, %v]", i, d, hi/2, hi)
		}
	}
	b.reset()
	if d := b.next(); d > time.Second {
		t.Fatalf("after reset: %v, want at most 1s", d)
	}
}

func TestRefusedLogKeepsTheLast(t *testing.T) {
	r := refusedLog{n: 3}
	for i := range 5 {
		if !r.add(Attempt{Device: identity.DeviceID{byte(i)}}) {
			t.Fatalf("device %d reported as known", i)
		}
	}
	// Device 2 knocks again: it moves to the end, listed once.
	if r.add(Attempt{Device: identity.DeviceID{2}}) {
		t.Fatal("device 2 reported as new")
	}
	var got []byte
	for _, a := range r.list() {
		got = append(got, a.Device[0])
	}
	if !bytes.Equal(got, []byte{3, 4, 2}) {
		t.Fatalf("kept devices %v, want [3 4 2]", got)
	}
}
