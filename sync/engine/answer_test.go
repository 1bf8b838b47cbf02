package engine

import (
	"context"
	"testing"
)

// A device that takes a push and is left as it was still announces: the
// pusher puts off walking it until it next announces (pushedLately), and a
// first sync of 20,000 small files waited out pushSettle (10 s) in about
// half the runs for an announcement that never came (cmd/bench scenario 1).
func TestUnchangedPushIsAnswered(t *testing.T) {
	a, b := newPair(t)
	write(t, a, "f.txt", []byte("x"))
	a.rescan()
	link(t, a, b)
	waitConverged(t, a, b)

	fa, fb := a.e.folders()[0], b.e.folders()[0]
	sb := b.e.session(a.id.ID())
	if sb == nil {
		t.Fatal("B has no session with A")
	}
	entry, ok, err := fb.idx.Lookup("f.txt")
	if err != nil || !ok {
		t.Fatalf("B's record of f.txt: %v, %v", ok, err)
	}
	// B pushed its record of f.txt, which A holds already.
	sb.pushed(fb)
	if err := fa.deliver(context.Background(), []incoming{{env: entry.Envelope, rec: entry.Record, from: b.id.ID()}}); err != nil {
		t.Fatal(err)
	}
	// Only A's announcement clears it; pushSettle does not.
	waitCond(t, "A to announce after taking B's push without a change (else B puts off walking A for pushSettle)", func() bool {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		_, waiting := sb.mu.pushedAt[fb.id]
		return !waiting
	})
}
