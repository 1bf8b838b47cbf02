package multicast

import (
	"context"
	"math"
	"sync"

	"golang.org/x/time/rate"
)

// Congestion: the sender's rate starts at the device's cap and is
// additive-increase, multiplicative-decrease on the receivers' loss
// reports; the loss heard also sets the parity shards per group. The
// engine leaves the worst receiver out of the reports once three or more
// take part, so the slowest one falls back to unicast for what it misses
// instead of slowing the whole group.
const (
	// lossBackoff: a report of more loss than this halves the rate.
	lossBackoff = 0.02
	// growStep is the fraction of the cap the rate grows by on a clean report.
	growStep = 0.05
	// floorFraction of the cap is the least rate.
	floorFraction = 1.0 / 64
	// burstBytes is how far ahead of the rate a sender may run.
	burstBytes = 64 << 10
)

// Pacer spaces a sender's datagrams and chooses its parity. Safe for
// concurrent use.
type Pacer struct {
	lim *rate.Limiter
	cap float64

	mu struct {
		sync.Mutex
		rate float64 // guarded by mu: bytes per second
		loss float64 // guarded by mu: smoothed loss reported
	}
}

// NewPacer returns a Pacer that sends at most capBytes bytes a second.
func NewPacer(capBytes int64) *Pacer {
	c := float64(max(capBytes, 64<<10))
	p := &Pacer{lim: rate.NewLimiter(rate.Limit(c), burstBytes), cap: c}
	p.mu.rate = c
	return p
}

// Wait blocks until n more bytes may be sent, or ctx ends.
func (p *Pacer) Wait(ctx context.Context, n int) error {
	return p.lim.WaitN(ctx, min(n, burstBytes))
}

// Report takes a receiver's loss (the fraction of datagrams it missed
// since its last report) and adjusts the rate.
func (p *Pacer) Report(loss float64) {
	if math.IsNaN(loss) || loss < 0 {
		return
	}
	loss = min(loss, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.loss = 0.7*p.mu.loss + 0.3*loss
	if loss > lossBackoff {
		p.mu.rate = max(p.mu.rate/2, p.cap*floorFraction)
	} else {
		p.mu.rate = min(p.mu.rate+p.cap*growStep, p.cap)
	}
	p.lim.SetLimit(rate.Limit(p.mu.rate))
}

// Rate returns the bytes per second the Pacer allows now.
func (p *Pacer) Rate() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(p.mu.rate)
}

// Parity returns the parity shards to add to a group of k data shards:
// none while no loss is heard (a clean LAN pays no FEC), else enough to
// cover twice the loss heard, and one more.
func (p *Pacer) Parity(k int) int {
	p.mu.Lock()
	loss := p.mu.loss
	p.mu.Unlock()
	if loss < 0.001 {
		return 0
	}
	return min(maxParity, int(math.Ceil(float64(k)*loss*2))+1)
}
