package block

import (
	"testing"

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
	if IsZeros(Sum(nil), 0) {
		t.Error("empty block counted as a hole")
	}
}
