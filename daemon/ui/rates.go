package ui

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// rateWindow is how far back the transfer-rate plot looks.
const rateWindow = time.Hour

// rateSample is the device's total transfer rate at one time.
type rateSample struct {
	Time    time.Time
	In, Out float64 // bytes per second, summed over connected peers
}

// sampleRates adds the rates of st to the history, dropping samples older
// than the window.
func (s *Server) sampleRates(st daemon.Status) {
	var in, out float64
	for _, p := range st.Peers {
		in += p.RateIn
		out += p.RateOut
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.rates = append(s.mu.rates, rateSample{Time: now, In: in, Out: out})
	cut := 0
	for cut < len(s.mu.rates) && now.Sub(s.mu.rates[cut].Time) > rateWindow {
		cut++
	}
	s.mu.rates = append(s.mu.rates[:0], s.mu.rates[cut:]...)
}

func (s *Server) rateHistory() []rateSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rateSample(nil), s.mu.rates...)
}

// Plot geometry, in SVG user units.
const (
	plotW, plotH = 720.0, 240.0
	plotLeft     = 70.0
	plotRight    = 30.0 // room for the last label
	plotTop      = 10.0
	plotBottom   = 24.0
)

// ratePlot draws the history as an inline SVG: received and sent bytes per
// second over the last hour, now at the right edge.
func ratePlot(samples []rateSample, now time.Time) template.HTML {
	top := 1024.0 // at least 1 KiB/s high, so an idle line sits at the bottom
	for _, r := range samples {
		top = max(top, r.In, r.Out)
	}
	top *= 1.1
	x := func(t time.Time) float64 {
		f := 1 - float64(now.Sub(t))/float64(rateWindow)
		return plotLeft + max(0, min(1, f))*(plotW-plotLeft-plotRight)
	}
	y := func(v float64) float64 { return plotTop + (plotH-plotBottom-plotTop)*(1-v/top) }
	line := func(get func(rateSample) float64) string {
		var b strings.Builder
		for _, r := range samples {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(r.Time), y(get(r)))
		}
		return b.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="rate-plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-label="transfer rates over the last hour">`, plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" class="plot-bg"/>`, plotLeft, plotTop, plotW-plotLeft-plotRight, plotH-plotBottom-plotTop)
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="grid"/>`, plotLeft, plotW-plotRight, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="axis" text-anchor="end">%s/s</text>`, plotLeft-4, y(v)+4, template.HTMLEscapeString(sizeText(int64(v))))
	}
	for m := 0; m <= 60; m += 15 {
		xx := x(now.Add(-time.Duration(m) * time.Minute))
		label := "now"
		if m > 0 {
			label = fmt.Sprintf("-%d min", m)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" class="axis" text-anchor="middle">%s</text>`, xx, plotH-6, label)
	}
	if len(samples) > 0 {
		fmt.Fprintf(&b, `<polyline class="rate-in" points="%s"/>`, line(func(r rateSample) float64 { return r.In }))
		fmt.Fprintf(&b, `<polyline class="rate-out" points="%s"/>`, line(func(r rateSample) float64 { return r.Out }))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every value above is a number or escaped
}

// sizeText writes a byte count the way the command line does.
func sizeText(n int64) string { return engine.SizeText(n) }
