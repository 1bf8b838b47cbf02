package daemon

import (
	gosync "sync"
	"time"
)

// rates turns byte counters (a connection's, keyed by device, or a share's)
// into bytes per second, measured
// between status samples at least rateEvery apart (status --watch polls
// often; a rate over a few milliseconds would only be noise). Safe for
// concurrent use.
type rates[K comparable] struct {
	mu   gosync.Mutex
	last map[K]rateSample // guarded by mu
}

const rateEvery = time.Second

type rateSample struct {
	at              time.Time
	in, out         int64
	inRate, outRate float64
}

// observe records the counters of id at now and returns its current rates.
func (r *rates[K]) observe(id K, in, out int64, now time.Time) (inRate, outRate float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last = make(map[K]rateSample)
	}
	prev, ok := r.last[id]
	switch {
	case !ok || in < prev.in || out < prev.out: // first sample, or a new connection
		r.last[id] = rateSample{at: now, in: in, out: out}
		return 0, 0
	case now.Sub(prev.at) < rateEvery:
		return prev.inRate, prev.outRate
	}
	secs := now.Sub(prev.at).Seconds()
	s := rateSample{at: now, in: in, out: out, inRate: float64(in-prev.in) / secs, outRate: float64(out-prev.out) / secs}
	r.last[id] = s
	return s.inRate, s.outRate
}
