package main

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// A counter that stops moving stops the run, with errStalled as the cause.
func TestWatchStallStopsAStalledRun(t *testing.T) {
	var n atomic.Int64
	n.Store(5 << 20)
	ctx, stop := watchStall(context.Background(), n.Load, 40*time.Millisecond, 1<<20)
	defer stop()
	select {
	case <-ctx.Done():
	case <-time.After(time.Minute):
		t.Fatal("a counter that never moved did not stop the run")
	}
	if err := context.Cause(ctx); !errors.Is(err, errStalled) {
		t.Fatalf("cause %v, want errStalled", err)
	}
}

// A counter that moves enough between any two reads never stops the run,
// however slowly the reads come; nor does a counter that cannot be read.
func TestWatchStallLetsAMovingRunGoOn(t *testing.T) {
	for _, c := range []struct {
		name  string
		total func() int64
	}{
		{"moving", func() func() int64 {
			var n atomic.Int64
			return func() int64 { return n.Add(1 << 20) }
		}()},
		{"unreadable", func() int64 { return -1 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var reads atomic.Int64
			total := func() int64 { reads.Add(1); return c.total() }
			ctx, stop := watchStall(context.Background(), total, 8*time.Millisecond, 1<<20)
			for reads.Load() < 40 && ctx.Err() == nil { // 40 reads: 5 windows
				time.Sleep(time.Millisecond)
			}
			stop()
			if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("the run was stopped: %v", err)
			}
		})
	}
}
