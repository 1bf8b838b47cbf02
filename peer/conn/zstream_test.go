package conn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// tallyConn counts the bytes written to a stream: what the link carries.
type tallyConn struct {
	net.Conn
	out *atomic.Int64
}

func (c tallyConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

// textBlock is compressible, different for each hash, and shares its words
// with every other: the kind of content a stream compresses across frames.
func textBlock(h block.Hash, size int) []byte {
	r := rand.New(rand.NewPCG(uint64(h[0]), uint64(h[1])))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima"}
	var b bytes.Buffer
	for b.Len() < size {
		b.WriteString(words[r.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.Bytes()[:size]
}

func randomBlock(h block.Hash, size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8(h)
	r.Read(b)
	return b
}

// mixedHandler serves text blocks into the stream and random ones around
// it, as the sync engine does.
type mixedHandler struct{ testHandler }

func (h *mixedHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	r, ok := req.(*wire.BlockRequest)
	if !ok {
		return h.testHandler.HandleRequest(ctx, req)
	}
	if r.Hash[0]%2 == 1 {
		return &wire.BlockResponse{Encoding: wire.BlockRaw, Data: randomBlock(r.Hash, int(r.Size)), Incompressible: true}, nil
	}
	return &wire.BlockResponse{Encoding: wire.BlockRaw, Data: textBlock(r.Hash, int(r.Size))}, nil
}

// zpair is pair with both streams counting the bytes they write.
func zpair(t *testing.T, ha, hb Handler, oa, ob Options) (a, b *running, aOut, bOut *atomic.Int64) {
	ia, ib := newID(t), newID(t)
	sa, sb := streams(t, ia, ib)
	aOut, bOut = new(atomic.Int64), new(atomic.Int64)
	sa.Conn = tallyConn{sa.Conn, aOut}
	sb.Conn = tallyConn{sb.Conn, bOut}
	oa.Logger, ob.Logger = testLogger(t, nil), testLogger(t, nil)
	ch := make(chan *Conn, 1)
	go func() {
		c, err := Open(context.Background(), sa, wire.Hello{DeviceName: "a"}, ha, oa)
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	cb, err := Open(context.Background(), sb, wire.Hello{DeviceName: "b"}, hb, ob)
	if err != nil {
		t.Fatal(err)
	}
	ca := <-ch
	if ca == nil {
		t.FailNow()
	}
	return start(t, ca), start(t, cb), aOut, bOut
}

// exchange sends b's one-way messages and block requests to a, and checks
// what comes back: in order, intact.
func exchange(t *testing.T, a, b *running, ha *testHandler) {
	ctx := context.Background()
	sh := share.ID{1}
	const n = 300
	for i := range n {
		if err := b.c.Send(ctx, &wire.ShareState{Share: sh, Count: uint64(i), Root: merkle.Hash{byte(i % 3)}}); err != nil {
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
	ha.msgs = nil
	ha.mu.Unlock()

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			h := block.Sum([]byte{byte(i), byte(i >> 8)})
			h[0] = byte(i)
			size := 1 + (i*7919)%(200<<10)
			resp, err := Call[*wire.BlockResponse](ctx, b.c, &wire.BlockRequest{Share: sh, Hash: h, Size: uint32(size)})
			if err != nil {
				errs <- err
				return
			}
			want := textBlock(h, size)
			if i%2 == 1 {
				want = randomBlock(h, size)
			}
			if !bytes.Equal(resp.Data, want) {
				errs <- fmt.Errorf("block %d: wrong data", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestZstreamExchange: through the compressed stream, messages and blocks
// arrive in order and intact, and the link carries fewer bytes with blocks
// in it than with blocks around it, as to a peer on this machine (same
// exchange, same run).
func TestZstreamExchange(t *testing.T) {
	var sent [2]int64
	for k, compress := range []bool{false, true} {
		ha, hb := &mixedHandler{*newHandler()}, &mixedHandler{*newHandler()}
		o := Options{CompressLoopback: compress}
		a, b, aOut, bOut := zpair(t, ha, hb, o, o)
		if !a.c.Compresses() || !b.c.Compresses() || a.c.CompressesBlocks() != compress || b.c.CompressesBlocks() != compress {
			t.Fatalf("compresses: %v and %v, blocks %v and %v, want blocks %v",
				a.c.Compresses(), b.c.Compresses(), a.c.CompressesBlocks(), b.c.CompressesBlocks(), compress)
		}
		exchange(t, a, b, &ha.testHandler)
		a.c.Close()
		a.wait(t)
		b.wait(t)
		sent[k] = aOut.Load() + bOut.Load()
	}
	t.Logf("bytes on the link: %d with blocks around the stream, %d through it", sent[0], sent[1])
	// Half the blocks are random and go around the stream: the text half
	// shrinks several times over.
	if sent[1]*10 > sent[0]*7 {
		t.Fatalf("the stream saved too little: %d bytes, %d without it", sent[1], sent[0])
	}
}

// TestZstreamOneSided: each direction decides for itself whether blocks go
// through its stream: not to a peer on this machine unless asked.
func TestZstreamOneSided(t *testing.T) {
	ha, hb := &mixedHandler{*newHandler()}, &mixedHandler{*newHandler()}
	a, b, _, _ := zpair(t, ha, hb, Options{CompressLoopback: true}, Options{})
	if !a.c.CompressesBlocks() || b.c.CompressesBlocks() {
		t.Fatalf("compresses blocks: a %v, b %v; want a only", a.c.CompressesBlocks(), b.c.CompressesBlocks())
	}
	exchange(t, a, b, &ha.testHandler)
	exchange(t, b, a, &hb.testHandler)
}

// TestZstreamOlderPeer: a peer whose Hello lacks the capability gets no
// Zstream frame.
func TestZstreamOlderPeer(t *testing.T) {
	err := goodConnWith(t, Options{CompressLoopback: true}, func(c *Conn) {
		if c.Compresses() {
			t.Error("compresses to a peer that did not announce it")
		}
		for i := range 50 {
			c.Send(context.Background(), &wire.ShareState{Share: share.ID{1}, Count: uint64(i)})
		}
	}, func(bad Stream, stop <-chan struct{}) {
		defer bad.Close()
		r := wire.NewReader(badPeer(t, bad))
		for range 50 {
			f, err := r.ReadFrame()
			if err != nil {
				t.Error(err)
				return
			}
			if _, ok := f.Msg.(*wire.ShareState); !ok && !wire.IsRequest(f.Msg) {
				t.Errorf("older peer sent %s", wire.Name(f.Msg))
			}
		}
	})
	if err != nil && !errors.Is(err, ErrLost) && !errors.Is(err, ErrPeerClosed) {
		t.Fatal(err)
	}
}

// TestZstreamLevel: the level goes up while the writer waits on the link or
// compresses a trickle, and down while compressing takes most of its time
// and more than the link.
func TestZstreamLevel(t *testing.T) {
	ms := time.Millisecond
	for _, tt := range []struct {
		name                 string
		worked, waited, took time.Duration
		in                   int64
		want                 int
	}{
		{"a slow link leaves time for the best", 50 * ms, 500 * ms, 550 * ms, adaptEvery, zStartLevel + 1},
		{"the best would not keep up", 50 * ms, 120 * ms, 170 * ms, adaptEvery, zStartLevel},
		{"the cpu limits", 200 * ms, 10 * ms, 210 * ms, adaptEvery, zStartLevel - 1},
		{"a trickle on a fast link", 20 * ms, 1 * ms, 4 * time.Second, adaptEvery, zTrickleLevel},
		{"balanced", 50 * ms, 80 * ms, 300 * ms, adaptEvery, zStartLevel},
		{"compressing most of the time, the link still busy", 150 * ms, 40 * ms, 200 * ms, adaptEvery, zStartLevel},
		{"too little to judge", 200 * ms, 10 * ms, 210 * ms, adaptEvery - 1, zStartLevel},
		{"a peer on this machine waits for its disk", 50 * ms, 500 * ms, 550 * ms, adaptEvery, zLocalTop},
	} {
		t.Run(tt.name, func(t *testing.T) {
			top := len(zLevels) - 1
			if strings.Contains(tt.name, "this machine") {
				top = zLocalTop
			}
			z, err := newZwriter(top)
			if err != nil {
				t.Fatal(err)
			}
			defer z.Close()
			z.in, z.encTime = tt.in, tt.worked
			z.adapt(tt.waited, z.since.Add(tt.took))
			if z.next != tt.want {
				t.Fatalf("next level %d, want %d", z.next, tt.want)
			}
		})
	}
}

// zstreamBytes is a valid compressed stream of frames, a level change and
// a raw frame in between: the fuzz seed and the base of the hostile cases.
func zstreamBytes(t testing.TB) []byte {
	var out bytes.Buffer
	z, err := newZwriter(len(zLevels) - 1)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	put := func(m wire.Message) {
		b, err := wire.AppendFrame(nil, wire.Frame{Msg: m})
		if err != nil {
			t.Fatal(err)
		}
		if err := z.write(&out, b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		put(&wire.ShareState{Share: share.ID{1}, Count: uint64(i)})
	}
	if err := z.flush(&out); err != nil {
		t.Fatal(err)
	}
	if err := wire.WriteFrame(&out, wire.Frame{Msg: &wire.ShareState{Share: share.ID{2}}}); err != nil {
		t.Fatal(err)
	}
	z.next = 0 // a new frame at another level
	put(&wire.ShareState{Share: share.ID{3}, Count: 99})
	if err := z.flush(&out); err != nil {
		t.Fatal(err)
	}
	z.next = zStartLevel // and back, on the encoder kept for it
	put(&wire.ShareState{Share: share.ID{3}, Count: 100})
	if err := z.flush(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// readAll reads every frame of a byte stream as the reader goroutine does.
func readAll(b []byte, limit int) ([]wire.Frame, error) {
	s := &frames{r: wire.NewReader(bytes.NewReader(b)), zin: true}
	defer s.Close()
	var out []wire.Frame
	for range limit {
		f, err := s.next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, f)
	}
	return out, nil
}

func TestZstreamReader(t *testing.T) {
	good := zstreamBytes(t)
	fs, err := readAll(good, 100)
	if err != nil || len(fs) != 23 {
		t.Fatalf("read %d frames, %v; want 23", len(fs), err)
	}
	if m := fs[20].Msg.(*wire.ShareState); m.Share != (share.ID{2}) {
		t.Fatalf("the raw frame came out of order: %+v", m)
	}
	if m, n := fs[21].Msg.(*wire.ShareState), fs[22].Msg.(*wire.ShareState); m.Count != 99 || n.Count != 100 {
		t.Fatalf("the frames after level changes: %+v, %+v", m, n)
	}

	piece := func(b []byte) []byte {
		f, err := wire.AppendFrame(nil, wire.Frame{Msg: &wire.Zstream{Data: b}})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	compressed := func(frames []byte, opts ...zstd.EOption) []byte {
		enc, err := zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(frames, nil)
	}
	state, _ := wire.AppendFrame(nil, wire.Frame{Msg: &wire.ShareState{Share: share.ID{1}}})
	nested := piece(compressed(state))
	// A stream whose window is larger than we accept: a 16 MiB frame header
	// is enough to refuse it, whatever follows.
	var big bytes.Buffer
	enc, _ := zstd.NewWriter(&big, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(16<<20))
	enc.Write(state)
	enc.Flush()
	enc.Close()
	// Half a frame, then a plain frame where the rest should be.
	half := compressed(state[:len(state)-3])

	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{"garbage", piece([]byte("this is not zstd at all, not even close"))},
		{"a zstream inside the stream", piece(compressed(nested))},
		{"a window beyond the limit", piece(big.Bytes())},
		{"a plain frame inside a compressed one", append(piece(half), state...)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := readAll(tt.b, 10); !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("read: %v, want ErrMalformed", err)
			}
		})
	}

	// A peer we never offered the stream to may not send one.
	s := &frames{r: wire.NewReader(bytes.NewReader(good))}
	if _, err := s.next(); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("unoffered zstream: %v, want ErrMalformed", err)
	}
}

// FuzzZstream: no byte stream makes the reader panic or take more than its
// window's memory; a stream that reads is read the same way twice.
func FuzzZstream(f *testing.F) {
	f.Add(zstreamBytes(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs1, err1 := readAll(b, 64)
		fs2, err2 := readAll(b, 64)
		if len(fs1) != len(fs2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("two reads differ: %d frames (%v), %d frames (%v)", len(fs1), err1, len(fs2), err2)
		}
	})
}

// TestZstreamLargeFrameInPieces: a large frame goes into the stream and
// out to the connection a piece at a time, so what waits to be sent stays
// about a piece, not the whole frame compressed (an 8 MiB records response
// grew the buffer to 16 MiB).
func TestZstreamLargeFrameInPieces(t *testing.T) {
	z, err := newZwriter(len(zLevels) - 1)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	frame := make([]byte, 8<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range frame {
		frame[i] = byte(r.Uint32())
	}
	var sent countingWriter
	if err := z.write(&sent, frame); err != nil {
		t.Fatal(err)
	}
	if c := z.out.Cap(); c > 4*zPiece {
		t.Errorf("the stream held a buffer of %d bytes for a frame of %d", c, len(frame))
	}
	if err := z.flush(&sent); err != nil {
		t.Fatal(err)
	}
	if sent.n < len(frame) {
		t.Errorf("sent %d bytes of an incompressible frame of %d", sent.n, len(frame))
	}
}

type countingWriter struct{ n int }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
