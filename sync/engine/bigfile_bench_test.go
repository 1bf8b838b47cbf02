package engine

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkLargeFile measures the first sync of one large random file
// between two engines on loopback, from the sender's scan to identical
// trees: the case where CPU per byte (hashing, copies, lookups) bounds the
// time. Run with -benchtime=1x and -cpuprofile to see where it goes.
//
//	go test ./sync/engine -run '^$' -bench LargeFile -benchtime=1x
func BenchmarkLargeFile(b *testing.B) {
	size := int64(512 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	for b.Loop() {
		b.StopTimer()
		key := newKey(b)
		a, bb := newDevice(b, "A", key), newDevice(b, "B", key)
		a.addShare(bb)
		bb.addShare(a)
		writeRandomFile(b, filepath.Join(a.dir, "big.bin"), size)
		// As a file that was not written the instant before its scan: a
		// scan's proof of it then counts (see index.proofs).
		time.Sleep(1100 * time.Millisecond)
		b.SetBytes(size)
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		a.rescan()
		link(b, a, bb)
		waitInSync(b, 5*time.Minute, size, a, bb)
		took, cpu := time.Since(start), processCPU()-cpu0
		b.StopTimer()
		waitConvergedFor(b, time.Minute, a, bb) // content compared outside the timed part
		b.ReportMetric(took.Seconds(), "s")
		if cpu > 0 {
			b.ReportMetric(cpu.Seconds()/(float64(size)/1e9), "cpu-s/GB")
		}
		b.StartTimer()
	}
}

// waitInSync waits until every device reports in sync on the same root
// and the last one holds big.bin at its full size: cheap to poll, unlike
// comparing contents (done after, untimed).
func waitInSync(t testing.TB, limit time.Duration, size int64, ds ...*device) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		ok := true
		var root string
		for i, d := range ds {
			st := d.e.Status()
			if len(st.Shares) != 1 || !st.Shares[0].InSync || (i > 0 && st.Shares[0].Root != root) {
				ok = false
				break
			}
			root = st.Shares[0].Root
		}
		if fi, err := os.Stat(filepath.Join(ds[len(ds)-1].dir, "big.bin")); ok && err == nil && fi.Size() == size {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("devices did not converge within %s", limit)
}

// writeRandomFile writes n pseudo-random bytes to path, 1 MiB at a time.
func writeRandomFile(t testing.TB, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{7})
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		_, _ = r.Read(buf[:k])
		if _, err := f.Write(buf[:k]); err != nil {
			t.Fatal(err)
		}
		n -= k
	}
}
