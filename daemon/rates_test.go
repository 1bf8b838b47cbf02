package daemon

import (
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
)

func TestRates(t *testing.T) {
	var r rates[identity.DeviceID]
	id := identity.DeviceID{1}
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at           time.Duration
		in, out      int64
		wantIn, out2 float64
	}{
		{0, 100, 10, 0, 0},                       // first sample: no rate yet
		{500 * time.Millisecond, 600, 10, 0, 0},  // too soon: the last rate
		{2 * time.Second, 2100, 1010, 1000, 500}, // 2,000 B in, 1,000 B out over 2 s
		{2500 * time.Millisecond, 9999, 9999, 1000, 500},
		{3 * time.Second, 50, 5, 0, 0}, // counters went back: a new connection
	}
	for i, s := range steps {
		in, out := r.observe(id, s.in, s.out, t0.Add(s.at))
		if in != s.wantIn || out != s.out2 {
			t.Errorf("step %d: rates %.0f/%.0f, want %.0f/%.0f", i, in, out, s.wantIn, s.out2)
		}
	}
}
