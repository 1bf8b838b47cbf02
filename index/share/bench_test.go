package share

import (
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

// BenchmarkPathKey compares PathKey with what it did before it kept its
// hashers (a keyed hasher made per call), measured in the same run.
func BenchmarkPathKey(b *testing.B) {
	k := FromSecret(fixedSecret())
	const p = "photos/2026/holiday/IMG_0042.jpg"
	b.ReportAllocs()
	start := time.Now()
	var sink merkle.Key
	for range b.N {
		h, _ := blake3.NewKeyed(k.pathKey[:])
		h.WriteString(p)
		h.Sum(sink[:0])
	}
	fresh := time.Since(start)
	start = time.Now()
	for range b.N {
		sink = k.PathKey(p)
	}
	kept := time.Since(start)
	_ = sink
	b.ReportMetric(float64(kept)/float64(fresh), "kept/fresh")
}
