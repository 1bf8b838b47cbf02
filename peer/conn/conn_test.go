package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// logBuffer collects log lines safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func testLogger(t testing.TB, also *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		if also != nil {
			also.Write(p)
		}
		t.Log(strings.TrimSpace(string(p)))
		return len(p), nil
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func newID(t testing.TB) *identity.Identity {
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// blockData is what testHandler serves for a block hash.
func blockData(h block.Hash, size int) []byte {
	return bytes.Repeat(h[:1], size)
}

// testHandler answers BlockRequests with blockData, NodesRequests with
// NotFound, and records one-way messages.
type testHandler struct {
	mu   sync.Mutex
	msgs []wire.Message
	got  chan struct{} // a token per message
	resp *wire.BlockResponse
}

func newHandler() *testHandler { return &testHandler{got: make(chan struct{}, 1<<16)} }

func (h *testHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	switch r := req.(type) {
	case *wire.BlockRequest:
		if h.resp != nil {
			return h.resp, nil
		}
		return &wire.BlockResponse{Encoding: wire.BlockRaw, Data: blockData(r.Hash, int(r.Size))}, nil
	case *wire.NodesRequest:
		return nil, wire.Errorf(wire.CodeNotFound, "no share %x", r.Share[:4])
	}
	return nil, errors.New("unsupported")
}

func (h *testHandler) HandleMessage(ctx context.Context, m wire.Message) error {
	h.mu.Lock()
	h.msgs = append(h.msgs, m)
	h.mu.Unlock()
	h.got <- struct{}{}
	return nil
}

// listen starts a TLS listener for id that accepts only the devices in ok.
func listen(t testing.TB, id *identity.Identity, log *slog.Logger, ok ...identity.DeviceID) *TLSListener {
	tr := NewTLS(id, log)
	l, err := tr.Listen("127.0.0.1:0", func(remote identity.DeviceID) error {
		for _, d := range ok {
			if d == remote {
				return nil
			}
		}
		return errors.New("not paired")
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// streams returns both ends of a real TLS connection from b to a.
func streams(t testing.TB, a, b *identity.Identity) (atA, atB Stream) {
	log := testLogger(t, nil)
	l := listen(t, a, log, b.ID())
	ctx := context.Background()
	type res struct {
		s   Stream
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := l.Accept(ctx)
		ch <- res{s, err}
	}()
	atB, err := NewTLS(b, log).Dial(ctx, l.Addr().String(), a.ID())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.s.Remote != b.ID() || atB.Remote != a.ID() || !atB.Outbound || r.s.Outbound {
		t.Fatalf("streams name the wrong devices")
	}
	return r.s, atB
}

// running is a Conn whose Run the test waits for.
type running struct {
	c   *Conn
	err chan error
}

func start(t testing.TB, c *Conn) *running {
	r := &running{c: c, err: make(chan error, 1)}
	go func() { r.err <- c.Run(context.Background()) }()
	t.Cleanup(func() { c.Close(); r.wait(t) })
	return r
}

func (r *running) wait(t testing.TB) error {
	select {
	case err := <-r.err:
		r.err <- err // later waits see it too
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// pair opens Conns at both ends, with handlers ha (at a) and hb (at b).
func pair(t testing.TB, ha, hb Handler, opts Options) (*running, *running) {
	a, b := newID(t), newID(t)
	sa, sb := streams(t, a, b)
	opts.Logger = testLogger(t, nil)
	type res struct {
		c   *Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := Open(context.Background(), sa, wire.Hello{DeviceName: "a"}, ha, opts)
		ch <- res{c, err}
	}()
	cb, err := Open(context.Background(), sb, wire.Hello{DeviceName: "b"}, hb, opts)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if cb.PeerHello().DeviceName != "a" || r.c.PeerHello().DeviceName != "b" || cb.Version() != wire.Version {
		t.Fatalf("hello: got %+v", cb.PeerHello())
	}
	return start(t, r.c), start(t, cb)
}

func TestExchange(t *testing.T) {
	ha, hb := newHandler(), newHandler()
	a, b := pair(t, ha, hb, Options{})
	ctx := context.Background()
	sh := share.ID{1}

	// One-way messages arrive in order.
	const n = 200
	for i := range n {
		if err := b.c.Send(ctx, &wire.ShareState{Share: sh, Count: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		<-ha.got
	}
	ha.mu.Lock()
	for i, m := range ha.msgs {
		if m.(*wire.ShareState).Count != uint64(i) {
			t.Fatalf("message %d arrived as %d", m.(*wire.ShareState).Count, i)
		}
	}
	ha.mu.Unlock()

	// Many requests in flight at once, both ways.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		from := a.c
		if i%2 == 0 {
			from = b.c
		}
		wg.Go(func() {
			h := block.Sum([]byte{byte(i), byte(i >> 8)})
			size := 1 + (i*997)%(64<<10)
			resp, err := Call[*wire.BlockResponse](ctx, from, &wire.BlockRequest{Share: sh, Hash: h, Size: uint32(size)})
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(resp.Data, blockData(h, size)) {
				errs <- fmt.Errorf("request %d: wrong data", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// An ErrorResponse comes back as a matching error.
	_, err := a.c.Request(ctx, &wire.NodesRequest{Share: sh, Prefixes: []merkle.Prefix{{}}})
	if !errors.Is(err, wire.CodeNotFound) {
		t.Fatalf("NodesRequest: %v, want CodeNotFound", err)
	}
	// A round trip Ping.
	if _, err := Call[*wire.Pong](ctx, a.c, &wire.Ping{}); err != nil {
		t.Fatal(err)
	}

	// Close on one side ends both: ours with nil, theirs with the reason.
	a.c.Close()
	if err := a.wait(t); err != nil {
		t.Fatalf("closed side: Run = %v, want nil", err)
	}
	err = b.wait(t)
	var ce *CloseError
	if !errors.As(err, &ce) || !errors.Is(err, ErrPeerClosed) || ce.Reason != "closing" {
		t.Fatalf("other side: Run = %v, want CloseError", err)
	}
	if _, err := b.c.Request(ctx, &wire.Ping{}); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("Request after close: %v", err)
	}
}

func TestRequestContextCancel(t *testing.T) {
	block := make(chan struct{})
	ha := &blockingHandler{testHandler: newHandler(), release: block}
	_, b := pair(t, ha, newHandler(), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	_, err := b.c.Request(ctx, &wire.BlockRequest{Size: 10})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Request: %v, want context.Canceled", err)
	}
	close(block)
	// The connection still works; the late answer was dropped.
	if _, err := b.c.Request(context.Background(), &wire.BlockRequest{Size: 10}); err != nil {
		t.Fatal(err)
	}
}

type blockingHandler struct {
	*testHandler
	release chan struct{}
}

func (h *blockingHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.testHandler.HandleRequest(ctx, req)
}

func TestBusy(t *testing.T) {
	release := make(chan struct{})
	ha := &blockingHandler{testHandler: newHandler(), release: release}
	// b may have 8 requests in flight, a serves 2: the rest are Busy.
	a, b := newID(t), newID(t)
	sa, sb := streams(t, a, b)
	ch := make(chan *Conn, 1)
	go func() {
		c, err := Open(context.Background(), sa, wire.Hello{}, ha, Options{MaxRequests: 2, Logger: testLogger(t, nil)})
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	cb, err := Open(context.Background(), sb, wire.Hello{}, newHandler(), Options{MaxRequests: 8, Logger: testLogger(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	start(t, <-ch)
	rb := start(t, cb)
	var wg sync.WaitGroup
	var mu sync.Mutex
	busy := 0
	for range 6 {
		wg.Go(func() {
			_, err := rb.c.Request(context.Background(), &wire.BlockRequest{Size: 1})
			if errors.Is(err, wire.CodeBusy) {
				mu.Lock()
				busy++
				if busy == 4 {
					close(release)
				}
				mu.Unlock()
			} else if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if busy != 4 {
		t.Fatalf("%d requests answered busy, want 4", busy)
	}
}

func TestUnpairedRefused(t *testing.T) {
	a, b, stranger := newID(t), newID(t), newID(t)
	var logs logBuffer
	l := listen(t, a, testLogger(t, &logs), b.ID())
	ctx := context.Background()
	acc := make(chan error, 1)
	go func() {
		_, err := l.Accept(ctx)
		acc <- err
	}()
	s, err := NewTLS(stranger, testLogger(t, nil)).Dial(ctx, l.Addr().String(), a.ID())
	if err != nil {
		t.Fatalf("TLS itself succeeds (the listener must learn who it is): %v", err)
	}
	_, err = Open(ctx, s, wire.Hello{}, newHandler(), Options{})
	if !errors.Is(err, ErrPeerClosed) || !strings.Contains(err.Error(), "not paired") {
		t.Fatalf("stranger's Open: %v, want a Close saying it is not paired", err)
	}
	err = <-acc
	var re *RefusedError
	if !errors.As(err, &re) || !errors.Is(err, ErrRefused) || re.Remote != stranger.ID() || re.Addr == nil {
		t.Fatalf("Accept: %v, want RefusedError for %s", err, stranger.ID())
	}
	if !strings.Contains(logs.String(), stranger.ID().String()) {
		t.Fatalf("refusal not logged with the device ID:\n%s", logs.String())
	}
}

func TestWrongPinnedID(t *testing.T) {
	a, b, c := newID(t), newID(t), newID(t)
	l := listen(t, a, testLogger(t, nil), b.ID())
	_, err := NewTLS(b, testLogger(t, nil)).Dial(context.Background(), l.Addr().String(), c.ID())
	if !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("Dial pinned to the wrong device: %v, want ErrWrongPeer", err)
	}
}

func TestVersionMismatch(t *testing.T) {
	a, b := newID(t), newID(t)
	sa, sb := streams(t, a, b)
	ch := make(chan error, 1)
	go func() {
		_, err := Open(context.Background(), sa, wire.Hello{Version: wire.Version + 3, MinVersion: wire.Version + 1}, newHandler(), Options{})
		ch <- err
	}()
	_, errB := Open(context.Background(), sb, wire.Hello{}, newHandler(), Options{})
	errA := <-ch
	for _, err := range []error{errA, errB} {
		if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "upgrade Blueshift") {
			t.Fatalf("Open: %v, want ErrVersion with advice", err)
		}
	}
	t.Logf("newer side: %v", errA)
	t.Logf("older side: %v", errB)
}

func TestNotTLS(t *testing.T) {
	a := newID(t)
	var logs logBuffer
	l := listen(t, a, testLogger(t, &logs))
	conn, err := (&netDialer{}).dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	buf := make([]byte, 100)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := conn.Read(buf); err != nil {
			break // the listener closed it
		}
	}
	conn.Close()
	l.Close()
	if !strings.Contains(logs.String(), "handshake failed") {
		t.Fatalf("no log line:\n%s", logs.String())
	}
}

// A connection that never starts TLS is dropped after HandshakeTimeout.
func TestHandshakeTimeout(t *testing.T) {
	tr := NewTLS(newID(t), testLogger(t, nil))
	tr.HandshakeTimeout = 100 * time.Millisecond
	l, err := tr.Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	raw, err := (netDialer{}).dial(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent client: read %v, want the listener to close the connection", err)
	}
}

// Run ends with nil when its ctx ends, and a Conn closed before Run stays
// closed.
func TestRunContextAndEarlyClose(t *testing.T) {
	a, b := pair(t, newHandler(), newHandler(), Options{})
	a.c.Close()
	if err := a.wait(t); err != nil {
		t.Fatalf("Run after Close: %v", err)
	}
	if err := b.wait(t); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("peer: %v", err)
	}

	x, y := newID(t), newID(t)
	sx, sy := streams(t, x, y)
	ch := make(chan *Conn, 1)
	go func() {
		c, _ := Open(context.Background(), sx, wire.Hello{}, newHandler(), Options{})
		ch <- c
	}()
	cy, err := Open(context.Background(), sy, wire.Hello{}, newHandler(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cx := <-ch
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cy.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after its ctx ended: %v", err)
	}
	cx.Close() // never run
	if err := cx.Run(context.Background()); err != nil {
		t.Fatalf("Run of a closed Conn: %v", err)
	}
}
