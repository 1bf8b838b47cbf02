package engine

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkJoinWalk measures the bytes of a first sync that goes by walks
// alone: A scans n tiny files with batch signing on while B is away, then
// B connects and fetches them all by reconciling (a device joining a share
// that already has its files). It reports the bytes on the wire per file,
// both directions and TLS included, and the time to agree.
//
//	go test ./sync/engine -run '^$' -bench JoinWalk -benchtime=1x
//
// BLUESHIFT_JOIN_FILES sets the count (default 20,000).
func BenchmarkJoinWalk(b *testing.B) {
	n := 20_000
	if s := os.Getenv("BLUESHIFT_JOIN_FILES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("BLUESHIFT_JOIN_FILES=%q: want a positive count of files", s)
		}
		n = v
	}
	for b.Loop() {
		b.StopTimer()
		key := newKey(b)
		a, bb := newDevice(b, "A", key), newDevice(b, "B", key)
		a.batchSig, bb.batchSig = true, true
		a.addShare(bb)
		bb.addShare(a)
		cut := link(b, a, bb)
		for deadline := time.Now().Add(time.Minute); !shareOf(b, a).BatchSigning(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("A never saw B announce batched envelopes")
			}
		}
		cut()
		for i := range n {
			mustWrite(b, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
		}
		since := time.Now()
		a.rescan()
		for deadline := time.Now().Add(5 * time.Minute); !a.e.Status().Shares[0].Scanned.After(since) || a.e.Status().Shares[0].Records < uint64(n); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatal("A's scan did not end")
			}
		}
		root := rootOf(bb)
		var count wireCount
		b.StartTimer()
		start := time.Now()
		linkCounted(b, a, bb, &count)
		waitAgreed(b, root, a, bb)
		took := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(count.n.Load())/float64(n), "wire-B/file")
		b.ReportMetric(took.Seconds(), "s")
		b.StartTimer()
	}
}
