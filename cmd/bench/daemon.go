package main

import (
	"context"
	"fmt"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/cmd/internal/tree"
)

// cluster is a set of running devices of one continuously-syncing tool
// (Syncthing or Blueshift). Device 0 is the source; share makes its folder
// shared with every other device. The harness owns the processes: close stops
// them all.
type cluster interface {
	// start starts device i (its folder is dirs[i]); it returns when the
	// device answers on its control interface.
	start(ctx context.Context, i int) error
	// stop stops device i and waits for it to exit.
	stop(i int)
	// share shares device 0's folder with all others and pairs every device
	// with every other one (so devices that have data can serve each other).
	share(ctx context.Context) error
	// inSync reports whether device i is connected and, by the tool's own
	// account, has everything device 0 has and is idle.
	inSync(ctx context.Context, i int) (bool, error)
	// procs returns the running processes, for CPU and RSS.
	procs() []*proc
	// wirePorts are the TCP ports the devices use between each other.
	wirePorts() []int
	close()
}

// newCluster is how a scenario makes a cluster of n devices on nw.
type newCluster func(ctx context.Context, work string, nw *netns.Network, dirs []string) (cluster, error)

// startAll starts every device.
func startAll(ctx context.Context, c cluster, n int) error {
	for i := range n {
		if err := c.start(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// waitAllConverged waits for each of dsts to converge with src, receiver i
// of c being the device at dsts[i-1]; it returns when the last one did.
func waitAllConverged(ctx context.Context, c cluster, src string, dsts []string, timeout time.Duration) (time.Time, error) {
	var last time.Time
	for i, dst := range dsts {
		t, err := waitConverged(ctx, c, i+1, src, dst, timeout)
		if err != nil {
			return last, err
		}
		last = t
	}
	return last, nil
}

// waitConverged polls until device i reports in sync and its folder is
// byte-identical to device 0's, and returns the time of the successful poll.
// A tool that claims to be in sync while the trees differ is polled again
// (it may still be cleaning up); after timeout the last difference is
// returned as the error.
func waitConverged(ctx context.Context, c cluster, i int, src, dst string, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		for _, p := range c.procs() {
			if err := p.died(); err != nil {
				return time.Time{}, err // no use polling a dead device
			}
		}
		ok, err := c.inSync(ctx, i)
		if err == nil && ok {
			t := time.Now()
			if last = tree.Compare(src, dst); last == nil {
				return t, nil
			}
		} else if err != nil {
			last = err
		} else {
			last = fmt.Errorf("device %d not in sync", i)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("device %d did not converge in %v: %w", i, timeout, last)
}
