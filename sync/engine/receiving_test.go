package engine

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestTakenPushCountsAsPulling: a push the session has taken in and not
// yet handed to the puller makes the share "pulling" in what it announces.
// Without it a puller that outran the checking of the next push announced
// a root short of the pusher's as settled, and the pusher walked it and
// fetched back the records it had just pushed (a touch cost 300-440 bytes
// per file, not 180).
func TestTakenPushCountsAsPulling(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.addShare(b)
	b.addShare(a)
	link(t, a, b)
	waitConverged(t, a, b)
	f := b.e.folder(key.ID())
	s := b.e.session(a.id.ID())
	if f == nil || s == nil {
		t.Fatal("B has no folder or no session with A")
	}
	waitCond(t, "B idle", func() bool { return !f.pulling() })

	// As HandleMessage counts a push it queues for the session.
	s.mu.Lock()
	s.mu.received[f.id]++
	s.mu.Unlock()
	if !f.pulling() {
		t.Fatal("a push taken in and not yet handed over does not count as pulling")
	}
	s.takePush(context.Background(), inPush{m: &wire.RecordPush{Share: f.id}})
	waitCond(t, "B idle after the push", func() bool { return !f.pulling() })
	s.mu.Lock()
	left := len(s.mu.received)
	s.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d shares still counted as receiving once their pushes were taken", left)
	}
}

// TestTouchCommittedInBatches: the records of a touch that B applies in
// place are committed to its index together, a few updates of its tree for
// hundreds of files, not one each (each rewrote the tree's upper nodes and
// wrote the log once per file).
func TestTouchCommittedInBatches(t *testing.T) {
	const n = 300
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.addShare(b)
	b.addShare(a)
	for i := range n {
		mustWrite(t, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
	}
	a.rescan()
	link(t, a, b)
	waitConverged(t, a, b)

	var commits, records atomic.Int64
	cancel := b.e.folder(key.ID()).idx.Subscribe(func(u index.Update) {
		if !u.FromScan {
			commits.Add(1)
			records.Add(int64(len(u.Envelopes)))
		}
	})
	defer cancel()
	touchAll(t, a.dir, n, time.Now().Add(-time.Hour))
	a.rescan()
	waitConverged(t, a, b)
	waitAttrsEqual(t, a, b, n)
	t.Logf("B committed %d records in %d batches", records.Load(), commits.Load())
	if records.Load() < n || commits.Load() > 10 {
		t.Fatalf("B committed %d records of a touch of %d files in %d batches, want them all in at most 10", records.Load(), n, commits.Load())
	}
}
