package peer

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait between failed dials to one device: it doubles from
// min to max, and each wait is drawn uniformly from [d/2, d] so that two
// devices that failed together do not retry in lockstep. Owned by one
// dialer goroutine.
type backoff struct {
	min, max time.Duration
	cur      time.Duration // the next wait's upper bound; 0 means min
}

// next returns the wait before the next attempt and doubles the bound.
func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// reset starts again from min: after a connection, or a Kick.
func (b *backoff) reset() { b.cur = 0 }
