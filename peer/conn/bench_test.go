package conn

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// copier is the baseline: a plain io.Copy through a TLS connection on
// loopback, set up like ours. Benchmarks alternate rounds of it with rounds of
// their own, so both see the same noise of a shared machine.
type copier struct {
	src, dst Stream
	spent    time.Duration // wall time
	cpu      time.Duration // CPU time of the process (both ends, GC included)
	buf      []byte
}

func newCopier(b *testing.B) *copier {
	sa, sb := streams(b, newID(b), newID(b))
	b.Cleanup(func() { sa.Close(); sb.Close() })
	return &copier{src: sb, dst: sa, buf: make([]byte, 32<<10)}
}

// copy moves n bytes through the baseline connection and times it.
func (c *copier) copy(b *testing.B, n int64) {
	start, cpu := time.Now(), cpuTime()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := io.CopyBuffer(c.src, io.LimitReader(zeros{}, n), c.buf); err != nil {
			b.Error(err)
		}
	})
	if _, err := io.Copy(io.Discard, io.LimitReader(c.dst, n)); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	c.spent += time.Since(start)
	c.cpu += cpuTime() - cpu
}

// cpuTime returns the CPU time (user + system) the process has used. On a
// shared machine it is steadier than wall time: other processes do not add
// to it.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rounds runs fn over b.N items in rounds of per, each after a baseline copy
// of per*frame bytes, and reports both.
func rounds(b *testing.B, per int, frame int64, fn func(n int)) {
	base := newCopier(b)
	var ours, oursCPU time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += per {
		n := min(per, b.N-done)
		b.StopTimer()
		base.copy(b, int64(n)*frame)
		b.StartTimer()
		start, cpu := time.Now(), cpuTime()
		fn(n)
		ours += time.Since(start)
		oursCPU += cpuTime() - cpu
	}
	b.StopTimer()
	bytes := float64(b.N) * float64(frame)
	b.ReportMetric(float64(b.N)/ours.Seconds(), "msgs/s")
	b.ReportMetric(bytes/base.spent.Seconds()/1e6, "copy-MB/s")
	// Throughput ratio in wall time, and in CPU time per byte.
	b.ReportMetric(base.spent.Seconds()/ours.Seconds(), "ours/io.Copy")
	b.ReportMetric(base.cpu.Seconds()/oursCPU.Seconds(), "cpu-ours/io.Copy")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// countHandler counts one-way messages and closes done at want.
type countHandler struct {
	testHandler
	n    atomic.Int64
	want int64
	done chan struct{} // buffered 1: "n changed"
}

func (h *countHandler) HandleMessage(ctx context.Context, m wire.Message) error {
	h.n.Add(1)
	select { // wake a waiter, never block
	case h.done <- struct{}{}:
	default:
	}
	return nil
}

// BenchmarkBlocks128K: a peer pulls 128 KiB blocks, 32 requests in flight.
func BenchmarkBlocks128K(b *testing.B) {
	const size = 128 << 10
	ha := newHandler()
	ha.resp = &wire.BlockResponse{Encoding: wire.BlockRaw, Data: make([]byte, size)}
	_, pb := pair(b, ha, newHandler(), Options{})
	frame, _ := wire.AppendFrame(nil, wire.Frame{ID: 1, Msg: ha.resp})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	rounds(b, 256, int64(len(frame)), func(n int) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					resp, err := Call[*wire.BlockResponse](context.Background(), pb.c, &wire.BlockRequest{Size: size})
					if err != nil {
						b.Error(err)
						return
					}
					resp.Release() // as the engine does after writing the block
				}
			})
		}
		wg.Wait()
	})
}

// BenchmarkSmallMessages: one-way ShareState messages (the smallest real ones).
func BenchmarkSmallMessages(b *testing.B) {
	h := &countHandler{testHandler: *newHandler(), want: -1, done: make(chan struct{}, 1)}
	_, pb := pair(b, h, newHandler(), Options{})
	msg := &wire.ShareState{Share: share.ID{1}, Count: 1}
	frame, _ := wire.AppendFrame(nil, wire.Frame{Msg: msg})
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	sent := int64(0)
	rounds(b, 10000, int64(len(frame)), func(n int) {
		for range n {
			if err := pb.c.Send(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
		}
		sent += int64(n)
		for h.n.Load() < sent {
			<-h.done
		}
	})
}

// BenchmarkSmallRequests: round trips of small requests, 32 in flight.
func BenchmarkSmallRequests(b *testing.B) {
	_, pb := pair(b, newHandler(), newHandler(), Options{})
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := Call[*wire.Pong](context.Background(), pb.c, &wire.Ping{}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
