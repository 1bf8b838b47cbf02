package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
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

const marker = "PLAINTEXT-MARKER-the relay must never see this"

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newID(t testing.TB) *identity.Identity {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// recording is a listener whose streams record every byte read from them:
// what the relay process sees.
type recording struct {
	conn.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func (r *recording) Accept(ctx context.Context) (conn.Stream, error) {
	s, err := r.Listener.Accept(ctx)
	if err == nil {
		s.Conn = &recordingConn{Conn: s.Conn, r: r}
	}
	return s, err
}

func (r *recording) seen() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.got.Bytes())
}

type recordingConn struct {
	net.Conn
	r *recording
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.got.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

// world is a relay p on 127.0.0.1 and two devices a and b that use it.
type world struct {
	p, a, b      *identity.Identity
	srv          *Server
	ln           conn.Listener // p's listener, diverted
	rec          *recording
	ca, cb       *Client
	pAddr        []transport.Addr
	passedThough chan conn.Stream
	invites      chan identity.DeviceID // targets p invited
	wg           sync.WaitGroup
}

func newWorld(t testing.TB, opts Options) *world {
	w := &world{p: newID(t), a: newID(t), b: newID(t), passedThough: make(chan conn.Stream, 4), invites: make(chan identity.DeviceID, 8)}
	log := testLogger(t)
	if _, bench := t.(*testing.B); bench {
		log = slog.New(slog.DiscardHandler)
	}
	allowed := map[identity.DeviceID]bool{w.a.ID(): true, w.b.ID(): true}
	if opts.Allowed == nil {
		opts.Allowed = func(id identity.DeviceID) error {
			if !allowed[id] {
				return errors.New("shares no share with this relay")
			}
			return nil
		}
	}
	clients := map[identity.DeviceID]*Client{}
	opts.Invite = func(ctx context.Context, target, from identity.DeviceID, token [wire.RelayTokenSize]byte) error {
		w.invites <- target
		c := clients[target]
		if c == nil {
			return errors.New("not connected")
		}
		// What the peer manager does with a RelayInvite on its session.
		return c.Invited(w.p.ID(), w.pAddr, &wire.RelayInvite{Device: from, Token: token})
	}
	opts.Logger = log.With("part", "relay")
	w.srv = NewServer(opts)
	ptls := conn.NewTLS(w.p, log)
	tln, err := ptls.Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	w.rec = &recording{Listener: tln}
	w.ln = w.srv.Divert(w.rec)
	w.pAddr = []transport.Addr{transport.From(transport.TCP, tln.Addr().(*net.TCPAddr).AddrPort())}
	paired := func(ids ...identity.DeviceID) conn.AcceptFunc {
		return func(id identity.DeviceID) error {
			for _, p := range ids {
				if p == id {
					return nil
				}
			}
			return errors.New("not paired")
		}
	}
	mk := func(id *identity.Identity, accept conn.AcceptFunc) *Client {
		tls := conn.NewTLS(id, log)
		return NewClient(ClientOptions{TLS: tls, Transport: &conn.Dialer{TCP: tls}, Accept: accept, Logger: log.With("part", "client "+id.ID().Abbrev())})
	}
	w.ca, w.cb = mk(w.a, paired(w.b.ID())), mk(w.b, paired(w.a.ID()))
	clients[w.a.ID()], clients[w.b.ID()] = w.ca, w.cb
	// p's other streams (not relay frames) come out of Accept.
	w.wg.Go(func() {
		for {
			s, err := w.ln.Accept(context.Background())
			if err != nil {
				return
			}
			w.passedThough <- s
		}
	})
	t.Cleanup(func() {
		w.ln.Close()
		w.wg.Wait()
		w.srv.Close()
		w.ca.Close()
		w.cb.Close()
		close(w.passedThough)
		for s := range w.passedThough {
			s.Close()
		}
	})
	return w
}

func acceptOne(t *testing.T, c *Client) conn.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := c.Accept(ctx)
	if err != nil {
		t.Fatalf("no relayed stream arrived: %v", err)
	}
	return s
}

// TestRelayCarriesPinnedTLS: a reaches b through p; both ends see each
// other's pinned device, the stream is of kind relay via p, bytes flow
// both ways, and p's process never reads the plaintext.
func TestRelayCarriesPinnedTLS(t *testing.T) {
	w := newWorld(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, err := w.ca.Dial(ctx, w.p.ID(), w.pAddr, w.b.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb := acceptOne(t, w.cb)
	defer sb.Close()
	if sa.Remote != w.b.ID() || sb.Remote != w.a.ID() || sa.Net != transport.Relay || sb.Net != transport.Relay || sa.Via != w.p.ID() || sb.Via != w.p.ID() {
		t.Fatalf("streams a:%+v b:%+v, want each pinned to the other, relayed via p", sa, sb)
	}
	if !sa.Outbound || sb.Outbound {
		t.Errorf("a's stream outbound %v, b's %v: want a's only", sa.Outbound, sb.Outbound)
	}
	if !strings.HasPrefix(sa.RemoteAddr().String(), "relay:"+w.p.ID().Abbrev()+"@") {
		t.Errorf("a's remote address %q does not name the relay", sa.RemoteAddr())
	}
	msg := strings.Repeat(marker, 100)
	go sa.Write([]byte(msg))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(sb, got); err != nil || string(got) != msg {
		t.Fatalf("b read %q, %v", got[:min(len(got), 40)], err)
	}
	go sb.Write([]byte("pong " + marker))
	back := make([]byte, len("pong "+marker))
	if _, err := io.ReadFull(sa, back); err != nil || string(back) != "pong "+marker {
		t.Fatalf("a read %q, %v", back, err)
	}
	if n, relayed := w.srv.Stats(); n != 1 || relayed < int64(len(msg)) {
		t.Errorf("relay stats: %d circuits, %d bytes; want 1 circuit and at least %d bytes", n, relayed, len(msg))
	}
	seen := w.rec.seen()
	if len(seen) < len(msg) {
		t.Fatalf("the relay read %d bytes, less than the %d sent through it", len(seen), len(msg))
	}
	if bytes.Contains(seen, []byte("PLAINTEXT-MARKER")) {
		t.Fatal("the relay read the plaintext marker")
	}
}

// TestRelayRefusesWhoItMustNot: a device not allowed (no shared share) at
// either end, a circuit beyond the per-device bound, and a dial-back with
// a token nobody issued are all refused, and p invites nobody for them.
func TestRelayRefusesWhoItMustNot(t *testing.T) {
	w := newWorld(t, Options{MaxCircuits: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stranger := newID(t)
	stls := conn.NewTLS(stranger, testLogger(t))
	cs := NewClient(ClientOptions{TLS: stls, Transport: &conn.Dialer{TCP: stls}, Accept: func(identity.DeviceID) error { return nil }})
	defer cs.Close()
	if _, err := cs.Dial(ctx, w.p.ID(), w.pAddr, w.b.ID()); !errors.Is(err, ErrRefused) {
		t.Fatalf("a stranger's circuit: %v, want ErrRefused", err)
	}
	if _, err := w.ca.Dial(ctx, w.p.ID(), w.pAddr, stranger.ID()); !errors.Is(err, ErrRefused) {
		t.Fatalf("a circuit to a stranger: %v, want ErrRefused", err)
	}
	if _, err := w.ca.Dial(ctx, w.p.ID(), w.pAddr, w.a.ID()); !errors.Is(err, ErrRefused) {
		t.Fatalf("a circuit to itself: %v, want ErrRefused", err)
	}
	select {
	case id := <-w.invites:
		t.Fatalf("p invited %s for a refused circuit", id.Abbrev())
	default:
	}
	// A token nobody issued.
	st, err := (&conn.Dialer{TCP: conn.NewTLS(w.b, testLogger(t))}).Dial(ctx, w.pAddr[0], w.p.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(ctx, st, &wire.RelayAccept{Token: [16]byte{1, 2, 3}}); !errors.Is(err, ErrRefused) {
		t.Fatalf("a dial-back with a made-up token: %v, want ErrRefused", err)
	}
	st.Close()
	// One circuit per device: the second is refused while the first lasts.
	sa, err := w.ca.Dial(ctx, w.p.ID(), w.pAddr, w.b.ID())
	if err != nil {
		t.Fatal(err)
	}
	sb := acceptOne(t, w.cb)
	if _, err := w.ca.Dial(ctx, w.p.ID(), w.pAddr, w.b.ID()); !errors.Is(err, ErrRefused) {
		t.Fatalf("a second circuit beyond the bound of 1: %v, want ErrRefused", err)
	}
	sa.Close()
	sb.Close()
}

// TestRelayEndsACircuitAtItsByteCap: a circuit that carried its cap ends.
func TestRelayEndsACircuitAtItsByteCap(t *testing.T) {
	w := newWorld(t, Options{MaxCircuitBytes: 64 << 10, Rate: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sa, err := w.ca.Dial(ctx, w.p.ID(), w.pAddr, w.b.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	sb := acceptOne(t, w.cb)
	defer sb.Close()
	go func() {
		buf := make([]byte, 16<<10)
		for {
			if _, err := sa.Write(buf); err != nil {
				return
			}
		}
	}()
	n, err := io.Copy(io.Discard, sb)
	if err == nil && n == 0 {
		t.Fatal("nothing arrived")
	}
	if n > 64<<10 {
		t.Fatalf("b received %d bytes through a circuit capped at %d", n, 64<<10)
	}
}

// TestDivertPassesOtherStreamsIntact: a stream that opens with a Hello (a
// session) comes out of the diverted listener with its first frame
// unread.
func TestDivertPassesOtherStreamsIntact(t *testing.T) {
	w := newWorld(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := (&conn.Dialer{TCP: conn.NewTLS(w.a, testLogger(t))}).Dial(ctx, w.pAddr[0], w.p.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A Hello larger than any relay frame (the peek passes it on without
	// decoding it), then a small one.
	big := make([]string, wire.MaxCapabilities)
	for i := range big {
		big[i] = strings.Repeat("x", wire.MaxCapabilityLen)
	}
	hello := &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, DeviceName: "a", Capabilities: big}
	if err := wire.WriteFrame(st, wire.Frame{Msg: hello}); err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteFrame(st, wire.Frame{Msg: &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, DeviceName: "small"}}); err != nil {
		t.Fatal(err)
	}
	var got conn.Stream
	select {
	case got = <-w.passedThough:
	case <-ctx.Done():
		t.Fatal("the session stream did not come out of Accept")
	}
	r := wire.NewReader(got)
	for _, want := range []string{"a", "small"} {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if h, ok := f.Msg.(*wire.Hello); !ok || h.DeviceName != want || got.Remote != w.a.ID() {
			t.Fatalf("passed-through stream read %s from %s, want Hello %q from a", wire.Name(f.Msg), got.Remote.Abbrev(), want)
		}
	}
}

// TestClientBoundsDialBacks: a relay that floods a device with
// invitations gets at most maxDialBacks dial-backs under way, the rest
// ErrBusy; an invitation for a device Accept refuses is refused.
func TestClientBoundsDialBacks(t *testing.T) {
	// A relay that never answers: the dial-backs hang in its handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	})
	b, a, p := newID(t), newID(t), newID(t)
	tls := conn.NewTLS(b, testLogger(t))
	c := NewClient(ClientOptions{TLS: tls, Transport: &conn.Dialer{TCP: tls}, Accept: func(id identity.DeviceID) error {
		if id != a.ID() {
			return errors.New("not paired")
		}
		return nil
	}})
	addrs := []transport.Addr{transport.From(transport.TCP, ln.Addr().(*net.TCPAddr).AddrPort())}
	if err := c.Invited(p.ID(), addrs, &wire.RelayInvite{Device: p.ID()}); err == nil {
		t.Error("an invitation for a device that is not paired was taken")
	}
	busy := 0
	for range maxDialBacks + 5 {
		if err := c.Invited(p.ID(), addrs, &wire.RelayInvite{Device: a.ID()}); errors.Is(err, ErrBusy) {
			busy++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if busy != 5 {
		t.Errorf("%d of %d invitations refused busy, want 5", busy, maxDialBacks+5)
	}
	c.Close()
	ln.Close()
	mu.Lock()
	for _, h := range held {
		h.Close()
	}
	mu.Unlock()
	wg.Wait()
}
