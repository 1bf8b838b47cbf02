package conn

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

// bulkHandler answers a BlockRequest of bulkSize with one shared block (so
// the server spends its time sending, not filling buffers) and any other
// with a fresh small one.
type bulkHandler struct {
	testHandler
	bulk *wire.BlockResponse
}

const bulkSize = wire.MaxBlockSize

func (h *bulkHandler) HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error) {
	if r, ok := req.(*wire.BlockRequest); ok && r.Size == bulkSize {
		return h.bulk, nil
	}
	return h.testHandler.HandleRequest(ctx, req)
}

// behindBulk is one connection of BenchmarkSmallBehindBulk: its requester
// side, the latencies measured on it, and its bulk transfer.
type behindBulk struct {
	name    string
	c       *Conn
	lat     []time.Duration
	active  atomic.Bool  // the bulk workers run
	running atomic.Int64 // bulk requests in flight
	bytes   atomic.Int64 // bulk bytes received
	busy    time.Duration
}

// BenchmarkSmallBehindBulk measures the latency of small requests (64-byte
// blocks, one at a time) while a bulk transfer runs on the same connection
// (1 MiB blocks, 16 requests in flight), over QUIC with a stream per
// request, QUIC on one stream (as before wire.CapStreams), and TCP + TLS.
// Rounds alternate between the three so that all see the same noise of a
// shared machine; each bulk runs only in its own rounds. b.N small requests
// per connection. It reports p50 and p99 of each and their ratios (below 1:
// streams are faster), and the bulk throughput of streams against one
// stream.
func BenchmarkSmallBehindBulk(b *testing.B) {
	h := func() Handler {
		return &bulkHandler{testHandler: *newHandler(), bulk: &wire.BlockResponse{Encoding: wire.BlockRaw, Data: make([]byte, bulkSize)}}
	}
	_, streams := quicPair(b, h(), newHandler(), Options{}, Options{}, 0, 0)
	_, one := quicPair(b, h(), newHandler(), Options{oneStream: true}, Options{oneStream: true}, 0, 0)
	_, tcp := pair(b, h(), newHandler(), Options{})
	if streams.c.qc == nil || one.c.qc != nil {
		b.Fatal("streams not negotiated as set up")
	}
	conns := []*behindBulk{{name: "quic-streams", c: streams.c}, {name: "quic-one-stream", c: one.c}, {name: "tcp", c: tcp.c}}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for _, bb := range conns {
		for range 16 {
			wg.Go(func() {
				for ctx.Err() == nil {
					if !bb.active.Load() {
						time.Sleep(time.Millisecond)
						continue
					}
					bb.running.Add(1)
					resp, err := Call[*wire.BlockResponse](ctx, bb.c, &wire.BlockRequest{Size: bulkSize})
					bb.running.Add(-1)
					if err != nil {
						if ctx.Err() == nil {
							b.Error(err)
						}
						return
					}
					bb.bytes.Add(int64(len(resp.Data)))
					resp.Release()
				}
			})
		}
	}

	const per = 25 // samples per round
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += per {
		n := min(per, b.N-done)
		for _, bb := range conns {
			bb.active.Store(true)
			for bb.bytes.Load() == 0 || bb.running.Load() < 16 { // the bulk is under way
				time.Sleep(time.Millisecond)
			}
			began := time.Now()
			for range n {
				t := time.Now()
				if _, err := Call[*wire.BlockResponse](ctx, bb.c, &wire.BlockRequest{Size: 64}); err != nil {
					b.Fatal(err)
				}
				bb.lat = append(bb.lat, time.Since(t))
			}
			bb.busy += time.Since(began)
			bb.active.Store(false)
			for bb.running.Load() > 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	b.StopTimer()

	q := func(bb *behindBulk, p float64) float64 {
		slices.Sort(bb.lat)
		return float64(bb.lat[int(p*float64(len(bb.lat)-1))]) / float64(time.Millisecond)
	}
	s, o, t := conns[0], conns[1], conns[2]
	b.ReportMetric(q(s, 0.5), "streams-p50-ms")
	b.ReportMetric(q(s, 0.99), "streams-p99-ms")
	b.ReportMetric(q(o, 0.5), "one-p50-ms")
	b.ReportMetric(q(o, 0.99), "one-p99-ms")
	b.ReportMetric(q(t, 0.5), "tcp-p50-ms")
	b.ReportMetric(q(t, 0.99), "tcp-p99-ms")
	b.ReportMetric(q(s, 0.5)/q(o, 0.5), "p50-streams/one")
	b.ReportMetric(q(s, 0.99)/q(o, 0.99), "p99-streams/one")
	b.ReportMetric(q(s, 0.5)/q(t, 0.5), "p50-streams/tcp")
	b.ReportMetric(q(s, 0.99)/q(t, 0.99), "p99-streams/tcp")
	rate := func(bb *behindBulk) float64 { return float64(bb.bytes.Load()) / bb.busy.Seconds() }
	b.ReportMetric(rate(s)/rate(o), "bulk-streams/one")
}
