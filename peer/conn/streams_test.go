package conn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// quicPair opens Conns over real QUIC from b to a with handlers ha (at a)
// and hb (at b); maxStreams is what each transport lets its peer open.
// wrap, if given, changes b's stream before Open.
func quicPair(tb testing.TB, ha, hb Handler, oa, ob Options, maxStreamsA, maxStreamsB int, wrap ...func(*Stream)) (*running, *running) {
	a, b := newID(tb), newID(tb)
	q := func(id *identity.Identity, max int, ok ...identity.DeviceID) (*QUIC, *QUICListener) {
		q, err := ListenQUIC(id, "127.0.0.1:0", testLogger(tb, nil))
		if err != nil {
			tb.Fatal(err)
		}
		q.MaxRequests = max
		l, err := q.Listen(func(remote identity.DeviceID) error {
			if slices.Contains(ok, remote) {
				return nil
			}
			return errors.New("not paired")
		})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { l.Close(); q.Close() })
		return q, l
	}
	_, la := q(a, maxStreamsA, b.ID())
	qb, _ := q(b, maxStreamsB)
	ctx := context.Background()
	sb, err := qb.Dial(ctx, la.Addr().String(), a.ID())
	if err != nil {
		tb.Fatal(err)
	}
	for _, w := range wrap {
		w(&sb)
	}
	if oa.Logger == nil {
		oa.Logger = testLogger(tb, nil)
	}
	if ob.Logger == nil {
		ob.Logger = testLogger(tb, nil)
	}
	ch := make(chan *Conn, 1)
	go func() {
		c, err := Open(ctx, sb, wire.Hello{DeviceName: "b"}, hb, ob)
		if err != nil {
			tb.Error(err)
		}
		ch <- c
	}()
	sa, err := la.Accept(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	ca, err := Open(ctx, sa, wire.Hello{DeviceName: "a"}, ha, oa)
	if err != nil {
		tb.Fatal(err)
	}
	cb := <-ch
	if cb == nil {
		tb.FailNow()
	}
	return start(tb, ca), start(tb, cb)
}

// signalHandler serves blocks like testHandler from a buffer that its
// OnWritten function clears (as a sender reusing it would), and reports
// each block's OnWritten on written.
type signalHandler struct {
	*testHandler
	written chan int // the block's size
}

func (h *signalHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	r, ok := req.(*wire.BlockRequest)
	if !ok {
		return h.testHandler.HandleRequest(ctx, req)
	}
	buf := blockData(r.Hash, int(r.Size))
	resp := &wire.BlockResponse{Encoding: wire.BlockRaw, Data: buf}
	resp.OnWritten(func() {
		clear(buf)
		h.written <- len(buf)
	})
	return resp, nil
}

// TestStreamsSmallPassesStalledLarge: between two builds that announce
// CapStreams over QUIC, a small request is answered while large block
// responses to earlier requests are stalled because their requester does
// not read them yet. On one stream the small answer would wait behind them
// (head-of-line); before streams, the peer could not even open a second
// stream (QUIC's limit was 1), and the test fails opening it.
func TestStreamsSmallPassesStalledLarge(t *testing.T) {
	ha := &signalHandler{testHandler: newHandler(), written: make(chan int, 64)}
	a, b := quicPair(t, ha, newHandler(), Options{}, Options{}, 0, 0)
	if !slices.Contains(a.c.PeerHello().Capabilities, wire.CapStreams) || a.c.qc == nil || b.c.qc == nil {
		t.Fatalf("both ends should speak %s: hello %v", wire.CapStreams, a.c.PeerHello().Capabilities)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// b's side asks for four of the largest blocks (4 MiB) on streams it
	// opens by hand and does not read yet.
	const large = wire.MaxBlockSize
	var stalled []*streamOf
	for i := range 4 {
		st, err := b.c.s.qc.OpenStreamSync(ctx)
		if err != nil {
			t.Fatalf("open a second stream: %v", err)
		}
		h := block.Hash{byte(i + 1)}
		if err := wire.WriteFrame(st, wire.Frame{ID: 1 << 40, Msg: &wire.BlockRequest{Hash: h, Size: large}}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		stalled = append(stalled, &streamOf{st: st, hash: h})
	}
	// A small request on the same connection is answered all the same.
	h := block.Hash{9}
	resp, err := Call[*wire.BlockResponse](ctx, b.c, &wire.BlockRequest{Hash: h, Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.Data, blockData(h, 100)) {
		t.Fatal("small block arrived damaged")
	}
	if got := <-ha.written; got != 100 {
		t.Fatalf("first block written: %d bytes, want the small one", got)
	}
	select {
	case got := <-ha.written:
		t.Fatalf("a large block (%d bytes) was written although nobody reads it", got)
	default:
	}
	// Now read the large ones: whole, and written only then.
	for _, s := range stalled {
		f, err := wire.NewReader(bufio.NewReader(s.st)).ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		r, ok := f.Msg.(*wire.BlockResponse)
		if !ok || f.ID != 1<<40 || !bytes.Equal(r.Data, blockData(s.hash, large)) {
			t.Fatalf("large block: %s id %d, damaged or wrong", wire.Name(f.Msg), f.ID)
		}
		if _, err := s.st.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Fatalf("after the answer: %v, want the end of the stream", err)
		}
	}
	for range stalled {
		if got := <-ha.written; got != large {
			t.Fatalf("written %d bytes, want %d", got, large)
		}
	}
}

type streamOf struct {
	st   interface{ io.ReadWriteCloser }
	hash block.Hash
}

// TestStreamsOldPeer: a peer without CapStreams (an older build, played by
// hand here) is served on the one stream over QUIC, and our requests to it
// go there too; a stream it opens anyway is refused.
func TestStreamsOldPeer(t *testing.T) {
	a, b := newID(t), newID(t)
	_, la := quicNode(t, a, b.ID())
	qb, _ := quicNode(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	old, err := qb.Dial(ctx, la.Addr().String(), a.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := wire.WriteFrame(old, wire.Frame{Msg: &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, DeviceName: "old"}}); err != nil {
		t.Fatal(err)
	}
	sa, err := la.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := Open(ctx, sa, wire.Hello{DeviceName: "a"}, newHandler(), Options{Logger: testLogger(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ra := start(t, ca)
	if ca.qc != nil {
		t.Fatal("streams in use with a peer that did not announce them")
	}
	r := wire.NewReader(bufio.NewReader(old))
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := f.Msg.(*wire.Hello); !ok || !slices.Contains(h.Capabilities, wire.CapStreams) {
		t.Fatalf("first frame %s, want a Hello offering %s", wire.Name(f.Msg), wire.CapStreams)
	}

	// Our request to it arrives on the one stream.
	answered := make(chan error, 1)
	go func() {
		_, err := Call[*wire.BlockResponse](ctx, ra.c, &wire.BlockRequest{Hash: block.Hash{3}, Size: 10})
		answered <- err
	}()
	// Its request to us is answered on the one stream.
	if err := wire.WriteFrame(old, wire.Frame{ID: 7, Msg: &wire.BlockRequest{Hash: block.Hash{5}, Size: 50 << 10}}); err != nil {
		t.Fatal(err)
	}
	gotAnswer, gotRequest := false, false
	for !gotAnswer || !gotRequest {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		switch m := f.Msg.(type) {
		case *wire.BlockResponse:
			if f.ID != 7 || !bytes.Equal(m.Data, blockData(block.Hash{5}, 50<<10)) {
				t.Fatalf("answer to request 7: id %d, wrong data", f.ID)
			}
			gotAnswer = true
		case *wire.BlockRequest:
			if err := wire.WriteFrame(old, wire.Frame{ID: f.ID, Msg: &wire.BlockResponse{Encoding: wire.BlockRaw, Data: blockData(m.Hash, int(m.Size))}}); err != nil {
				t.Fatal(err)
			}
			gotRequest = true
		case *wire.Ping:
			wire.WriteFrame(old, wire.Frame{ID: f.ID, Msg: &wire.Pong{}})
		}
	}
	if err := <-answered; err != nil {
		t.Fatalf("our request to the old peer: %v", err)
	}

	// A stream it opens all the same is refused; the connection goes on.
	st, err := old.qc.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wire.WriteFrame(st, wire.Frame{ID: 8, Msg: &wire.BlockRequest{Hash: block.Hash{5}, Size: 10}})
	if _, err := st.Read(make([]byte, 1)); err == nil {
		t.Fatal("a stream of a peer without streams was answered")
	}
	select {
	case <-ra.c.Done():
		t.Fatalf("connection ended: %v", ra.c.Err())
	default:
	}
}

// TestStreamsLimitAndBusy: the peer may open only as many request streams
// as its transport's MaxRequests (more requests wait for a stream instead
// of being refused), streams are given back as requests end (many more
// requests than the limit complete), and a Conn serving its MaxRequests
// answers CodeBusy beyond them on streams as on one stream.
func TestStreamsLimitAndBusy(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxStreams int // a's transport: streams b may open
		wantBusy   int
	}{
		{"stream limit matches MaxRequests", 2, 0},
		{"stream limit above MaxRequests", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var in, most atomic.Int64
			ha := &countingHandler{blockingHandler: blockingHandler{testHandler: newHandler(), release: release}, in: &in, most: &most}
			_, b := quicPair(t, ha, newHandler(), Options{MaxRequests: 2}, Options{MaxRequests: 8}, tc.maxStreams, 0)
			var wg sync.WaitGroup
			var busy atomic.Int64
			for range 6 {
				wg.Go(func() {
					_, err := b.c.Request(context.Background(), &wire.BlockRequest{Size: 1})
					if errors.Is(err, wire.CodeBusy) {
						busy.Add(1)
					} else if err != nil {
						t.Error(err)
					}
				})
			}
			waitUntil(t, "two requests being served and the rest waiting or refused", func() bool {
				return in.Load() == 2 && (tc.wantBusy == 0 || busy.Load() == int64(tc.wantBusy))
			})
			close(release)
			wg.Wait()
			if busy.Load() != int64(tc.wantBusy) || most.Load() != 2 {
				t.Fatalf("%d answered busy (want %d), %d served at once (want 2)", busy.Load(), tc.wantBusy, most.Load())
			}
			// Streams are given back: many more requests than the limit.
			var errs atomic.Int64
			for i := range 100 {
				wg.Go(func() {
					h := block.Hash{byte(i)}
					resp, err := Call[*wire.BlockResponse](context.Background(), b.c, &wire.BlockRequest{Hash: h, Size: 1000})
					if err == nil && !bytes.Equal(resp.Data, blockData(h, 1000)) {
						err = errors.New("wrong data")
					}
					if err != nil && !errors.Is(err, wire.CodeBusy) {
						t.Error(err)
						errs.Add(1)
					}
				})
			}
			wg.Wait()
		})
	}
}

type countingHandler struct {
	blockingHandler
	in, most *atomic.Int64
}

func (h *countingHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	n := h.in.Add(1)
	defer h.in.Add(-1)
	for {
		m := h.most.Load()
		if n <= m || h.most.CompareAndSwap(m, n) {
			break
		}
	}
	return h.blockingHandler.HandleRequest(ctx, req)
}

// TestStreamsClose: closing one side while requests are in flight on
// streams both ways (some blocked in a handler) ends both Runs, the other
// with the peer's Close; requests in flight fail with the connection's end,
// and nothing is left running (goleak, TestMain).
func TestStreamsClose(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var in, most atomic.Int64
	ha := &countingHandler{blockingHandler: blockingHandler{testHandler: newHandler(), release: release}, in: &in, most: &most}
	hb := &countingHandler{blockingHandler: blockingHandler{testHandler: newHandler(), release: release}, in: &in, most: &most}
	a, b := quicPair(t, ha, hb, Options{}, Options{}, 0, 0)
	if a.c.qc == nil {
		t.Fatal("no streams")
	}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		from := a.c
		if i%2 == 0 {
			from = b.c
		}
		wg.Go(func() {
			_, err := from.Request(context.Background(), &wire.BlockRequest{Size: 100})
			errs <- err
		})
	}
	waitUntil(t, "requests reach the handlers", func() bool { return in.Load() == 20 })
	b.c.Close()
	if err := b.wait(t); err != nil {
		t.Fatalf("closing side: %v", err)
	}
	if err := a.wait(t); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("other side: %v, want the peer's Close", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err == nil || !(errors.Is(err, ErrClosed) || errors.Is(err, ErrPeerClosed)) {
			t.Fatalf("request in flight at close: %v, want ErrClosed or ErrPeerClosed", err)
		}
	}
	if a.c.Network() != transport.QUIC {
		t.Fatal("not QUIC")
	}
}

// TestStreamsLiveness: while requests keep streams busy and the first
// stream is quiet (no pings after the first), the connection lives on past
// its Timeout; a requester that does not read its answer for Timeout is cut
// off with ErrTimeout, as a peer that does not read is on one stream.
func TestStreamsLiveness(t *testing.T) {
	opts := Options{PingInterval: time.Hour, Timeout: 3 * time.Second}
	a, b := quicPair(t, newHandler(), newHandler(), opts, opts, 0, 0)
	began := time.Now()
	for i := 0; time.Since(began) < 2*opts.Timeout; i++ {
		h := block.Hash{byte(i)}
		if _, err := Call[*wire.BlockResponse](context.Background(), b.c, &wire.BlockRequest{Hash: h, Size: 64 << 10}); err != nil {
			t.Fatalf("request %d, %s after the start: %v", i, time.Since(began), err)
		}
	}
	select {
	case <-a.c.Done():
		t.Fatalf("connection ended: %v", a.c.Err())
	default:
	}

	// b pings, and gives up on nothing; a must cut it for the stalled answer.
	a, b = quicPair(t, newHandler(), newHandler(), opts, Options{PingInterval: 300 * time.Millisecond, Timeout: time.Hour}, 0, 0)
	st, err := b.c.s.qc.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wire.WriteFrame(st, wire.Frame{ID: 1 << 40, Msg: &wire.BlockRequest{Hash: block.Hash{1}, Size: wire.MaxBlockSize}})
	st.Close()
	if err := a.wait(t); !errors.Is(err, ErrTimeout) {
		t.Fatalf("answering side: %v, want ErrTimeout for the answer nobody reads", err)
	}
}

// countingConn counts a stream's bytes as the peer manager does for status.
type countingConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

func (c *countingConn) CountBytes(in, out int64) {
	c.in.Add(in)
	c.out.Add(out)
}

// TestStreamsCountBytes: the bytes of request streams count in a Stream's
// ByteCounter (status shows them) although they do not pass through it.
func TestStreamsCountBytes(t *testing.T) {
	counted := &countingConn{}
	_, b := quicPair(t, newHandler(), newHandler(), Options{}, Options{}, 0, 0, func(s *Stream) {
		counted.Conn = s.Conn
		s.Conn = counted
	})
	if b.c.qc == nil {
		t.Fatal("no streams")
	}
	const size = 512 << 10
	for i := range 4 {
		if _, err := Call[*wire.BlockResponse](context.Background(), b.c, &wire.BlockRequest{Hash: block.Hash{byte(i)}, Size: size}); err != nil {
			t.Fatal(err)
		}
	}
	if in, out := counted.in.Load(), counted.out.Load(); in < 4*size || out < 4*40 {
		t.Fatalf("counted %d bytes in, %d out; want at least the %d bytes of blocks in and the requests out", in, out, 4*size)
	}
}

// TestStreamsBadPeer: a peer that breaks the rules of request streams is
// cut off: a one-way message or garbage on a request stream, two frames on
// one, or a request that stops arriving mid-frame (ErrTimeout).
func TestStreamsBadPeer(t *testing.T) {
	frame := func(f wire.Frame) []byte {
		b, err := wire.AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	req := frame(wire.Frame{ID: 5, Msg: &wire.BlockRequest{Size: 10}})
	for _, tc := range []struct {
		name   string
		send   []byte
		finish bool // close our side after send
		want   error
	}{
		{"one-way message", frame(wire.Frame{Msg: &wire.Have{}}), true, ErrPeerMisbehaved},
		{"answer instead of request", frame(wire.Frame{ID: 5, Msg: &wire.Pong{}}), true, ErrPeerMisbehaved},
		{"garbage", []byte{0, 0, 0, 3, 0xff, 0xff, 0xff}, true, ErrPeerMisbehaved},
		{"two requests", append(slices.Clip(req), req...), true, ErrPeerMisbehaved},
		{"request cut short", req[:len(req)-2], false, ErrTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := quicPair(t, newHandler(), newHandler(), Options{Timeout: 2 * time.Second, PingInterval: 300 * time.Millisecond},
				Options{PingInterval: 300 * time.Millisecond, Timeout: time.Hour}, 0, 0)
			st, err := b.c.s.qc.OpenStreamSync(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.finish {
				st.Close()
			}
			if err := a.wait(t); !errors.Is(err, tc.want) {
				t.Fatalf("serving side ended with %v, want %v", err, tc.want)
			}
		})
	}
}

// TestStreamsWire plays a peer offering CapStreams by hand: our request
// comes on a stream of its own, as the frame it would be on the first
// stream, and the stream ends after it; the answer written there is ours.
// An answer of the wrong kind, or a second frame after it, cuts the peer.
func TestStreamsWire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(id uint64) []wire.Frame
		want   error // nil: answered
	}{
		{"answer", func(id uint64) []wire.Frame {
			return []wire.Frame{{ID: id, Msg: &wire.BlockResponse{Encoding: wire.BlockRaw, Data: []byte("hi")}}}
		}, nil},
		{"wrong kind", func(id uint64) []wire.Frame {
			return []wire.Frame{{ID: id, Msg: &wire.Pong{}}}
		}, ErrPeerMisbehaved},
		{"wrong id", func(id uint64) []wire.Frame {
			return []wire.Frame{{ID: id + 1, Msg: &wire.BlockResponse{Encoding: wire.BlockRaw, Data: []byte("hi")}}}
		}, ErrPeerMisbehaved},
		{"two frames", func(id uint64) []wire.Frame {
			r := wire.Frame{ID: id, Msg: &wire.BlockResponse{Encoding: wire.BlockRaw, Data: []byte("hi")}}
			return []wire.Frame{r, r}
		}, ErrPeerMisbehaved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newID(t), newID(t)
			_, la := quicNode(t, a, b.ID())
			qb, _ := quicNode(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hand, err := qb.Dial(ctx, la.Addr().String(), a.ID())
			if err != nil {
				t.Fatal(err)
			}
			defer hand.Close()
			hello := &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion, Capabilities: []string{wire.CapStreams}}
			if err := wire.WriteFrame(hand, wire.Frame{Msg: hello}); err != nil {
				t.Fatal(err)
			}
			sa, err := la.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ca, err := Open(ctx, sa, wire.Hello{}, newHandler(), Options{Logger: testLogger(t, nil)})
			if err != nil {
				t.Fatal(err)
			}
			ra := start(t, ca)
			go io.Copy(io.Discard, hand) // the first stream: Hello, pings

			answered := make(chan error, 1)
			go func() {
				resp, err := Call[*wire.BlockResponse](ctx, ca, &wire.BlockRequest{Hash: block.Hash{1}, Size: 2})
				if err == nil && string(resp.Data) != "hi" {
					err = errors.New("wrong data")
				}
				answered <- err
			}()
			st, err := hand.qc.AcceptStream(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all, err := io.ReadAll(st) // the request, then the end of the stream
			if err != nil {
				t.Fatal(err)
			}
			f, err := wire.NewReader(bytes.NewReader(all)).ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := f.Msg.(*wire.BlockRequest); !ok || r.Hash != (block.Hash{1}) || f.ID == 0 {
				t.Fatalf("stream carried %s id %d", wire.Name(f.Msg), f.ID)
			}
			if again, _ := wire.AppendFrame(nil, f); !bytes.Equal(again, all) {
				t.Fatal("stream carried more than the request's frame")
			}
			for _, g := range tc.answer(f.ID) {
				wire.WriteFrame(st, g)
			}
			st.Close()
			err = <-answered
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("request: %v, want %v", err, tc.want)
			}
			if err := ra.wait(t); !errors.Is(err, tc.want) {
				t.Fatalf("connection ended with %v, want %v", err, tc.want)
			}
		})
	}
}

// TestStreamsRequestCancel: a request given up (ctx) resets its stream; the
// handler's late answer is dropped and the connection goes on.
func TestStreamsRequestCancel(t *testing.T) {
	release := make(chan struct{})
	ha := &blockingHandler{testHandler: newHandler(), release: release}
	a, b := quicPair(t, ha, newHandler(), Options{}, Options{}, 0, 0)
	if b.c.qc == nil {
		t.Fatal("no streams")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if _, err := b.c.Request(ctx, &wire.BlockRequest{Size: 10}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Request: %v, want context.Canceled", err)
	}
	close(release)
	for i := range 3 {
		if _, err := b.c.Request(context.Background(), &wire.BlockRequest{Hash: block.Hash{byte(i)}, Size: 10}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*running{a, b} {
		select {
		case <-r.c.Done():
			t.Fatalf("connection ended: %v", r.c.Err())
		default:
		}
	}
}
