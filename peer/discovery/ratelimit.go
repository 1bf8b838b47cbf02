package discovery

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per source address plus one for all sources
// together, so that neither one noisy host nor many spoofed ones can make
// the receiver spend its time verifying signatures. Safe for concurrent use.
type limiter struct {
	perSource, global bucketSpec
	maxSources        int

	mu struct {
		sync.Mutex
		global  bucket
		sources map[netip.Addr]*bucket
	}
}

type bucketSpec struct {
	rate  float64 // tokens per second
	burst float64
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perSource, global bucketSpec, maxSources int) *limiter {
	l := &limiter{perSource: perSource, global: global, maxSources: maxSources}
	l.mu.global = bucket{tokens: global.burst}
	l.mu.sources = make(map[netip.Addr]*bucket)
	return l
}

// allow takes one token from src's bucket and from the global one.
func (l *limiter) allow(src netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.mu.sources[src]
	if b == nil {
		if len(l.mu.sources) >= l.maxSources {
			l.forgetIdleLocked(now)
			if len(l.mu.sources) >= l.maxSources {
				return false
			}
		}
		b = &bucket{tokens: l.perSource.burst, last: now}
		l.mu.sources[src] = b
	}
	if !b.take(l.perSource, now) {
		return false
	}
	return l.mu.global.take(l.global, now)
}

// forgetIdleLocked drops the sources whose bucket has refilled: they are
// indistinguishable from new ones.
func (l *limiter) forgetIdleLocked(now time.Time) {
	for src, b := range l.mu.sources {
		b.refill(l.perSource, now)
		if b.tokens >= l.perSource.burst {
			delete(l.mu.sources, src)
		}
	}
}

func (b *bucket) refill(s bucketSpec, now time.Time) {
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(s.burst, b.tokens+dt*s.rate)
	}
	b.last = now
}

func (b *bucket) take(s bucketSpec, now time.Time) bool {
	b.refill(s, now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
