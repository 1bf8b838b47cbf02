package engine

import (
	"path/filepath"
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
	n := filesFromEnv(b, "BLUESHIFT_JOIN_FILES", 20_000)
	for b.Loop() {
		b.StopTimer()
		key := newKey(b)
		a, bb := newDevice(b, "A", key), newDevice(b, "B", key)
		a.batchSig, bb.batchSig = true, true
		a.addShare(bb)
		bb.addShare(a)
		cut := link(b, a, bb)
		waitBatchSigning(b, a)
		cut()
		for i := range n {
			mustWrite(b, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
		}
		since := time.Now()
		a.rescan()
		for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if st := a.e.Status().Shares[0]; st.Scanned.After(since) && st.Records >= uint64(n) {
				break
			}
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
