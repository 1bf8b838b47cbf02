package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestRatePlot: samples within the hour are drawn left to right by time,
// higher rates higher up; older samples are dropped.
func TestRatePlot(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	svg := string(ratePlot([]rateSample{
		{Time: now.Add(-time.Hour), In: 0, Out: 2000},
		{Time: now.Add(-30 * time.Minute), In: 1000, Out: 0},
		{Time: now, In: 4000, Out: 0},
	}, now))
	in := between(svg, `class="rate-in" points="`, `"`)
	if in != "70.0,216.0 380.0,169.2 690.0,28.7 " {
		t.Fatalf("received line: %q", in)
	}
	if !strings.Contains(svg, ">now<") || !strings.Contains(svg, ">-60 min<") {
		t.Fatalf("axis labels missing: %s", svg)
	}

	s := &Server{now: func() time.Time { return now }}
	s.mu.rates = []rateSample{{Time: now.Add(-2 * time.Hour)}, {Time: now.Add(-time.Minute)}}
	s.sampleRates(statusWithRates(10, 20))
	h := s.rateHistory()
	if len(h) != 2 || h[1].In != 10 || h[1].Out != 20 {
		t.Fatalf("history: %+v", h)
	}
}

func between(s, from, to string) string {
	_, rest, _ := strings.Cut(s, from)
	v, _, _ := strings.Cut(rest, to)
	return v
}

func statusWithRates(in, out float64) daemon.Status {
	return daemon.Status{Peers: []daemon.PeerStatus{{RateIn: in / 2, RateOut: out}, {RateIn: in / 2}}}
}
