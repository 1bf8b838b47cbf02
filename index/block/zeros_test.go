package block

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIsZeros(t *testing.T) {
	for _, n := range []int{1, 100, 64 << 10, 64<<10 + 1, 256 << 10, 3<<20 + 7} {
		z := make([]byte, n)
		if !IsZeros(Sum(z), uint32(n)) {
			t.Errorf("%d zero bytes: IsZeros false", n)
		}
		if !IsZeros(Sum(z), uint32(n)) { // cached
			t.Errorf("%d zero bytes: IsZeros false the second time", n)
		}
		if IsZeros(Sum(z), uint32(n+1)) {
			t.Errorf("%d zero bytes: IsZeros true for size %d", n, n+1)
		}
		z[n-1] = 1
		if IsZeros(Sum(z), uint32(n)) {
			t.Errorf("%d bytes ending in 1: IsZeros true", n)
		}
	}
	// Every size near and between the ladder's rungs, past its top too,
	// against a plain hash of that many zeros.
	for n := 1; n <= ladderTop+3*rungStep; n += rungStep/2 - 1 {
		for _, m := range []int{n, n - n%rungStep, n - n%rungStep - 1} {
			if m <= 0 {
				continue
			}
			if got, want := zerosHash(uint32(m)), Sum(make([]byte, m)); got != want {
				t.Fatalf("zerosHash(%d) = %s, want %s", m, got.Short(), want.Short())
			}
		}
	}
	if IsZeros(Sum(nil), 0) {
		t.Error("empty block counted as a hole")
	}
}

// The cache stays within its bound however many sizes are asked.
func TestZerosCacheBound(t *testing.T) {
	for n := uint32(1); n <= maxZeros+100; n++ {
		zerosHash(n)
	}
	zeros.Lock()
	defer zeros.Unlock()
	if len(zeros.m) > maxZeros {
		t.Fatalf("cache holds %d sizes, more than %d", len(zeros.m), maxZeros)
	}
}

// BenchmarkIsZeros asks IsZeros of blocks of sizes a content-defined
// chunker gives (all different, 16-256 KiB), as a puller does for every
// block, with a cold cache (miss: the ladder) and again (hit), and reports
// each time against hashing the blocks themselves, measured in the same
// run: without the ladder a miss cost as much as the hash (~1).
func BenchmarkIsZeros(b *testing.B) {
	sizes := make([]uint32, 1024)
	var total int64
	for i := range sizes {
		sizes[i] = 16<<10 + uint32(i*239)%(240<<10)
		total += int64(sizes[i])
	}
	data := make([]byte, 256<<10)
	data[0] = 1
	var h Hash
	b.ReportAllocs()
	b.SetBytes(total)
	var base, miss, hit time.Duration
	pass := func() time.Duration {
		start := time.Now()
		for _, n := range sizes {
			if IsZeros(h, n) {
				b.Fatal("a block with a 1 in it counted as zeros")
			}
		}
		return time.Since(start)
	}
	for b.Loop() {
		start := time.Now()
		for _, n := range sizes {
			h = Sum(data[:n])
		}
		base += time.Since(start)
		zeros.Lock()
		zeros.m = nil
		zeros.Unlock()
		miss += pass()
		hit += pass()
	}
	b.ReportMetric(float64(miss)/float64(base), "miss/sum")
	b.ReportMetric(float64(hit)/float64(base), "hit/sum")
}
