package peer

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
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
	// quic, when set before start, adds a QUIC transport on its own port
	// (qaddr: "quic://127.0.0.1:PORT" once started).
	quic  bool
	qaddr string
	q     *conn.QUIC

	// listeners, if set, changes the listeners Run is given (relayed_test.go).
	listeners func([]conn.Listener) []conn.Listener

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
	lastErr     error // of the last OnDisconnect
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
	n.startWith(peers, nil, nil)
}

// startWith is start with options changed by tweak (if not nil) and the
// listener asking accept (nil: the manager's Allow).
func (n *node) startWith(peers map[identity.DeviceID][]string, tweak func(*Options), accept conn.AcceptFunc) {
	n.t.Helper()
	ev := &events{open: map[identity.DeviceID]bool{}}
	opts := Options{
		Identity:   n.id,
		Transport:  &conn.Dialer{TCP: n.tr},
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
			ev.lastErr = err
		},
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond,
		Logger:     testLogger(n.t, n.name),
	}
	var q *conn.QUIC
	if n.quic {
		var err error
		bind := "127.0.0.1:0"
		if n.qaddr != "" {
			bind = strings.TrimPrefix(n.qaddr, "quic://")
		}
		if q, err = conn.ListenQUIC(n.id, bind, testLogger(n.t, n.name)); err != nil {
			n.t.Fatal(err)
		}
		n.qaddr = "quic://" + q.LocalAddr().String()
		opts.Transport = &conn.Dialer{TCP: n.tr, QUIC: q}
		opts.Punch = q.Punch
	}
	n.q = q
	if tweak != nil {
		tweak(&opts)
	}
	m, err := New(opts)
	if err != nil {
		n.t.Fatal(err)
	}
	for id, addrs := range peers {
		parsed, err := transport.ParseList(addrs)
		if err != nil {
			n.t.Fatal(err)
		}
		m.AddPeer(id, parsed...)
	}
	if accept == nil {
		accept = m.Allow
	}
	ln, err := n.tr.Listen(n.addr, accept)
	if err != nil {
		n.t.Fatal(err)
	}
	n.addr = ln.Addr().String()
	lns := []conn.Listener{ln}
	if q != nil {
		ql, err := q.Listen(accept)
		if err != nil {
			n.t.Fatal(err)
		}
		lns = append(lns, ql)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.m, n.stop, n.done, n.events = m, cancel, make(chan error, 1), ev
	if n.listeners != nil {
		lns = n.listeners(lns)
	}
	go func() {
		err := m.Run(ctx, lns...)
		if q != nil {
			q.Close()
		}
		n.done <- err
	}()
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
	// The connection the engine gets works (OnConnect may follow the
	// connection showing in Connected by a moment).
	var c *conn.Conn
	waitFor(t, "OnConnect ran", func() bool {
		a.events.mu.Lock()
		defer a.events.mu.Unlock()
		c = a.events.last
		return c != nil
	})
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
	// For a moment each side may hold the connection the other dialled
	// (both got through before either heard of the other); the rule then
	// closes one, and both must end on the same connection.
	waitFor(t, "one connection each, the same one, and no other left", func() bool {
		if !connectedTo(a, b)() || !connectedTo(b, a)() || a.events.live() != 1 || b.events.live() != 1 {
			return false
		}
		ca, cb := a.m.Connected(), b.m.Connected()
		return len(ca) == 1 && len(cb) == 1 && ca[0].Outbound != cb[0].Outbound
	})
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
	// OnConnect follows the connection showing in Connected: wait for both.
	waitFor(t, "a reconnects, once", func() bool {
		a.events.mu.Lock()
		n := a.events.connects
		a.events.mu.Unlock()
		return connectedTo(a, b)() && connectedTo(b, a)() && n == 2
	})
	time.Sleep(100 * time.Millisecond) // a second reconnect would show by now
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

// TestAdmitPairsOnHello: an inviter lets unknown devices through the
// listener (an invitation is open); Admit pairs the one whose Hello carries
// the right token and turns the other away, which is told why and listed as
// refused.
func TestAdmitPairsOnHello(t *testing.T) {
	a, good, bad := newNode(t, "a"), newNode(t, "good"), newNode(t, "bad")
	var admitted []identity.DeviceID // by a, under mu
	var mu sync.Mutex
	a.startWith(nil, func(o *Options) {
		o.Admit = func(id identity.DeviceID, h *wire.Hello) error {
			if a.m.Allow(id) == nil {
				return nil // paired already
			}
			if !slices.Contains(h.Capabilities, "invite=secret") {
				return errors.New("invitation not valid: ask for a new link")
			}
			mu.Lock()
			admitted = append(admitted, id)
			mu.Unlock()
			a.m.AddPeer(id)
			return nil
		}
	}, func(identity.DeviceID) error { return nil })
	withToken := func(tok string) func(*Options) {
		return func(o *Options) {
			o.Capabilities = func(id identity.DeviceID) []string {
				if id != a.ID() {
					t.Errorf("capabilities asked for %s, want a", id)
				}
				return []string{"invite=" + tok}
			}
		}
	}
	good.startWith(map[identity.DeviceID][]string{a.ID(): {a.addr}}, withToken("secret"), nil)
	bad.startWith(map[identity.DeviceID][]string{a.ID(): {a.addr}}, withToken("guess"), nil)

	waitFor(t, "good is paired and connected", func() bool { return connectedTo(good, a)() && a.m.Allow(good.ID()) == nil })
	waitFor(t, "bad is listed as refused", func() bool {
		return slices.ContainsFunc(a.m.Refused(), func(at Attempt) bool { return at.Device == bad.ID() })
	})
	waitFor(t, "bad heard why", func() bool {
		bad.events.mu.Lock()
		defer bad.events.mu.Unlock()
		var ce *conn.CloseError
		return errors.As(bad.events.lastErr, &ce) && strings.Contains(ce.Reason, "ask for a new link")
	})
	for _, c := range a.m.Connected() {
		if c.Device == bad.ID() {
			t.Fatalf("a keeps a connection to the device it refused: %+v", c)
		}
		if c.Name != "good" || c.BytesIn == 0 || c.BytesOut == 0 {
			t.Fatalf("a's connection to good: %+v, want its name and byte counts", c)
		}
	}
	at := a.m.Refused()[slices.IndexFunc(a.m.Refused(), func(at Attempt) bool { return at.Device == bad.ID() })]
	if !strings.Contains(at.Reason, "invitation not valid") {
		t.Fatalf("refused attempt %+v, want the reason", at)
	}
	if err := a.m.Allow(bad.ID()); !errors.Is(err, ErrNotPaired) {
		t.Fatalf("bad is paired: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(admitted) != 1 || admitted[0] != good.ID() {
		t.Fatalf("admitted %v, want good only", admitted)
	}
}

// TestAdmitWithoutPairingRefuses: an Admit that lets an unpaired device
// through without pairing it does not get it kept.
func TestAdmitWithoutPairingRefuses(t *testing.T) {
	a, c := newNode(t, "a"), newNode(t, "c")
	a.startWith(nil, func(o *Options) {
		o.Admit = func(identity.DeviceID, *wire.Hello) error { return nil }
	}, func(identity.DeviceID) error { return nil })
	c.start(map[identity.DeviceID][]string{a.ID(): {a.addr}})
	waitFor(t, "c is refused", func() bool { return len(a.m.Refused()) > 0 })
	if got := a.m.Refused()[0]; got.Device != c.ID() || !strings.Contains(got.Reason, "not paired") {
		t.Fatalf("refused %+v", got)
	}
	if len(a.m.Connected()) != 0 {
		t.Fatalf("a keeps %v", a.m.Connected())
	}
}

// TestServeRunsWithTheConnection: Serve gets the connection and the handler
// made for it, ends when the connection does, and a Serve that returns
// closes its connection.
func TestServeRunsWithTheConnection(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	type served struct {
		c *conn.Conn
		h conn.Handler
	}
	running := make(chan served, 4)
	ended := make(chan struct{}, 4)
	quit := make(chan struct{})
	b.start(map[identity.DeviceID][]string{a.ID(): nil})
	a.startWith(map[identity.DeviceID][]string{b.ID(): {b.addr}}, func(o *Options) {
		o.Handler = func(identity.DeviceID) conn.Handler { return &quietPtr{} }
		o.Serve = func(ctx context.Context, c *conn.Conn, h conn.Handler) error {
			select {
			case running <- served{c, h}:
			case <-ctx.Done():
				return nil
			}
			select {
			case <-ctx.Done():
			case <-quit:
			}
			select {
			case ended <- struct{}{}:
			default: // the test reads only the first two
			}
			return nil
		}
	}, nil)
	first := <-running
	if _, ok := first.h.(*quietPtr); !ok || first.c.Remote() != b.ID() {
		t.Fatalf("serve got %T for %s", first.h, first.c.Remote())
	}
	first.c.Close() // the connection ends: Serve's ctx is cancelled
	<-ended
	second := <-running // a redials
	if second.c == first.c {
		t.Fatal("serve got the old connection again")
	}
	close(quit) // Serve returns on its own: the manager closes its connection
	<-ended
	<-second.c.Done()
	if err := second.c.Err(); !errors.Is(err, conn.ErrClosed) {
		t.Fatalf("connection after Serve returned: %v, want closed by us", err)
	}
	<-running // and a redials again
}

type quietPtr struct{ quietHandler }

// TestRefusedAfterHelloBacksOff: a peer that accepts the connection and
// refuses us after the Hello (a bad invitation) is redialled with growing
// waits, not at the minimum each time.
func TestRefusedAfterHelloBacksOff(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	var mu sync.Mutex
	refusals := 0
	b.startWith(nil, func(o *Options) {
		o.Admit = func(identity.DeviceID, *wire.Hello) error {
			mu.Lock()
			defer mu.Unlock()
			refusals++
			return errors.New("no")
		}
	}, func(identity.DeviceID) error { return nil })
	a.startWith(map[identity.DeviceID][]string{b.ID(): {b.addr}}, func(o *Options) {
		o.MinBackoff, o.MaxBackoff = 50*time.Millisecond, 800*time.Millisecond
	}, nil)
	time.Sleep(2500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	// Doubling from 50 ms (waits drawn from [d/2, d]) allows about 8 tries
	// in 2.5 s; resetting after each refusal would allow about 50.
	if refusals < 2 || refusals > 15 {
		t.Fatalf("%d dials refused in 2.5 s; want a handful, growing apart", refusals)
	}
	t.Logf("%d dials refused in 2.5 s", refusals)
}

// TestOnRefusedBy: a device that turns us away tells us so with a Close
// marked refused, before its Hello (its listener does not let us in) or
// after (its Admit refused our Hello); OnRefusedBy hears both, with the
// reason, and nothing of an ordinary close.
func TestOnRefusedBy(t *testing.T) {
	type refusal struct {
		reason      string
		beforeHello bool
	}
	heard := make(chan refusal, 64)
	onRefused := func(o *Options) {
		o.OnRefusedBy = func(_ identity.DeviceID, reason string, beforeHello bool) {
			select {
			case heard <- refusal{reason, beforeHello}:
			default: // full: the first ones are what we check
			}
		}
	}

	// Before the Hello: b's listener refuses a.
	a, b := newNode(t, "a"), newNode(t, "b")
	b.startWith(nil, nil, func(identity.DeviceID) error { return errors.New("no open invitation") })
	a.startWith(map[identity.DeviceID][]string{b.ID(): {b.addr}}, onRefused, nil)
	if got := <-heard; !strings.HasSuffix(got.reason, "no open invitation") || !got.beforeHello {
		t.Fatalf("refused by the listener: heard %+v", got)
	}
	a.shutdown()
	b.shutdown()
	for len(heard) > 0 {
		<-heard
	}

	// After the Hello: c's Admit refuses what d's Hello carries.
	c, d := newNode(t, "c"), newNode(t, "d")
	c.startWith(nil, func(o *Options) {
		o.Admit = func(identity.DeviceID, *wire.Hello) error { return errors.New("the invitation expired") }
	}, func(identity.DeviceID) error { return nil })
	d.startWith(map[identity.DeviceID][]string{c.ID(): {c.addr}}, onRefused, nil)
	if got := <-heard; got.reason != "the invitation expired" || got.beforeHello {
		t.Fatalf("refused by Admit: heard %+v", got)
	}
	c.shutdown()
	d.shutdown()
	for len(heard) > 0 {
		<-heard
	}

	// An ordinary close (the peer unpairs us... by stopping) is no refusal.
	e, f := newNode(t, "e"), newNode(t, "f")
	f.start(map[identity.DeviceID][]string{e.ID(): nil})
	e.startWith(map[identity.DeviceID][]string{f.ID(): {f.addr}}, onRefused, nil)
	waitFor(t, "connected", func() bool { return connectedTo(e, f)() && connectedTo(f, e)() })
	f.shutdown()
	waitFor(t, "e saw the connection end", func() bool { return len(e.m.Connected()) == 0 })
	e.shutdown()
	if len(heard) != 0 {
		t.Fatalf("an ordinary close was heard as a refusal: %+v", <-heard)
	}
}
