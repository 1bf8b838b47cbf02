package conn

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/internal/corpus"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// shapedConn lets writes through at rate bytes a second, as a slow link
// behind a socket buffer of shapedBuffer bytes: the writer waits in Write
// once the buffer is full.
type shapedConn struct {
	net.Conn
	rate float64
	out  *atomic.Int64
	mu   sync.Mutex
	due  time.Time
}

func (c *shapedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	now := time.Now()
	if c.due.Before(now) {
		c.due = now
	}
	c.due = c.due.Add(time.Duration(float64(len(p)) / c.rate * float64(time.Second)))
	wait := time.Until(c.due) - time.Duration(shapedBuffer/c.rate*float64(time.Second))
	c.mu.Unlock()
	time.Sleep(wait)
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}

const shapedBuffer = 1 << 20

// benchText is the bench's "compressible" corpus (cmd/bench's genMixed):
// Zipf-distributed pseudo-words with one 64 KiB segment in eight random.
func benchText(n int) []byte {
	var b bytes.Buffer
	b.Grow(n)
	corpus.NewMixer(1, corpus.Vocabulary(1), "large", 0).Write(&b, int64(n), 0.12, 64<<10) // a bytes.Buffer takes all
	return b.Bytes()
}

// corpusHandler serves 64 KiB blocks of a corpus, the hash's first 8 bytes
// naming the offset.
type corpusHandler struct {
	testHandler
	data []byte
	// frames: each block in a zstd frame of its own where that pays, as
	// before the stream (sync/engine codec.go's compress, level default)
	frames bool
	enc    *zstd.Encoder
}

const corpusBlock = 64 << 10

func (h *corpusHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	r := req.(*wire.BlockRequest)
	at := int(binary.LittleEndian.Uint64(r.Hash[:]))
	b := h.data[at : at+int(r.Size)]
	random := true
	for _, c := range b[:64] {
		if c > 127 {
			continue
		}
		random = false
	}
	if h.frames {
		if z := h.enc.EncodeAll(b, nil); !random && len(z) < len(b)*95/100 {
			return &wire.BlockResponse{Encoding: wire.BlockZstd, Data: z}, nil
		}
	}
	return &wire.BlockResponse{Encoding: wire.BlockRaw, Data: b, Incompressible: random}, nil
}

// BenchmarkZstreamShaped sends 64 MiB of the bench's compressible corpus
// over a 100 Mbit/s link shaped in the sender's writes, 32 blocks in
// flight, through the stream and, as before it, each block in a frame of
// its own: bytes per input byte, and the time against the time the link
// takes to carry those bytes.
func BenchmarkZstreamShaped(b *testing.B) {
	data := benchText(64 << 20)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	b.Run("stream", func(b *testing.B) { shaped(b, data, false, nil) })
	b.Run("frames", func(b *testing.B) { shaped(b, data, true, enc) })
}

func shaped(b *testing.B, data []byte, frames bool, enc *zstd.Encoder) {
	for range b.N {
		ia, ib := newID(b), newID(b)
		sa, sb := streams(b, ia, ib)
		out := new(atomic.Int64)
		sa.Conn = &shapedConn{Conn: sa.Conn, rate: 12.5e6, out: out}
		ha := &corpusHandler{testHandler: *newHandler(), data: data, frames: frames, enc: enc}
		o := Options{CompressLoopback: !frames, Logger: testLogger(b, nil)}
		ch := make(chan *Conn, 1)
		go func() {
			c, err := Open(context.Background(), sa, wire.Hello{DeviceName: "a"}, ha, o)
			if err != nil {
				b.Error(err)
			}
			ch <- c
		}()
		cb, err := Open(context.Background(), sb, wire.Hello{DeviceName: "b"}, newHandler(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		ca := <-ch
		ra, rb := start(b, ca), start(b, cb)
		t0 := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for {
					at := (next.Add(1) - 1) * corpusBlock
					if at >= int64(len(data)) {
						return
					}
					var h block.Hash
					binary.LittleEndian.PutUint64(h[:], uint64(at))
					if _, err := Call[*wire.BlockResponse](context.Background(), rb.c, &wire.BlockRequest{Share: share.ID{1}, Hash: h, Size: corpusBlock}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(t0)
		b.ReportMetric(float64(out.Load())/float64(len(data)), "wire/input")
		b.ReportMetric(took.Seconds()/(float64(out.Load())/12.5e6), "time/link")
		b.ReportMetric(took.Seconds(), "s")
		ra.c.Close()
		ra.wait(b)
	}
}
