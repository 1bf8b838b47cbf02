package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A first sync over the shaped link that stops moving bytes is stopped
// early. Syncthing 1.19 twice hung there in full runs (both devices dialled
// each other through the delay relay; each Hello read timed out, once a
// minute), and each time the run waited out its 15-minute limit before the
// harness ran it again. On that link every tool moves megabytes a second
// while it syncs, so a few minutes without a megabyte is a hang, not a slow
// run.
const (
	stallWindow = 4 * time.Minute
	stallBytes  = 1 << 20
)

// errStalled is the cause of a run stopped by watchStall.
var errStalled = errors.New("stalled")

// watchStall returns ctx with a watchdog: it is cancelled, with a cause
// wrapping errStalled, once total (the bytes on the run's wire so far) has
// grown by less than minBytes over window. stop ends the watchdog; call it
// before the run's counter is closed.
func watchStall(ctx context.Context, total func() int64, window time.Duration, minBytes int64) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		type sample struct {
			at    time.Time
			bytes int64
		}
		tick := time.NewTicker(window / 8)
		defer tick.Stop()
		samples := []sample{{time.Now(), total()}}
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				cur := sample{now, total()}
				// The oldest sample still inside the window's reach: the
				// newest one taken at least window ago.
				for len(samples) > 1 && now.Sub(samples[1].at) >= window {
					samples = samples[1:]
				}
				if old := samples[0]; now.Sub(old.at) >= window && cur.bytes >= 0 && old.bytes >= 0 && cur.bytes-old.bytes < minBytes {
					cancel(fmt.Errorf("%w: %d bytes on the wire in the last %v (fewer than %d)", errStalled, cur.bytes-old.bytes, now.Sub(old.at).Round(time.Second), minBytes))
					return
				}
				samples = append(samples, cur)
			}
		}
	}()
	return ctx, func() {
		close(done)
		<-finished
		cancel(nil)
	}
}
