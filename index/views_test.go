package index

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// change writes n new files and scans them: a new version of the tree.
func (e *env) change(round, n int) {
	e.t.Helper()
	for i := range n {
		e.write(fmt.Sprintf("r%03d/f%04d.txt", round, i), []byte(fmt.Sprintf("round %d file %d", round, i)))
	}
	e.scan()
}

func nodesOf(t *testing.T, v *TreeView, prefixes ...merkle.Prefix) []merkle.Node {
	t.Helper()
	nodes, err := v.Nodes(context.Background(), prefixes)
	if err != nil {
		t.Fatal(err)
	}
	return nodes
}

// TestWalkViewHoldsAVersion: a walk of a version of the tree reads that
// version while the share keeps changing, and a version no longer held is
// answered with the tree as it is now.
func TestWalkViewHoldsAVersion(t *testing.T) {
	e := newEnv(t)
	e.change(0, 200)
	v, release, err := e.sh.WalkView(merkle.Hash{})
	if err != nil {
		t.Fatal(err)
	}
	first := v.Root
	root := nodesOf(t, v, merkle.Prefix{})
	release()

	e.change(1, 200) // the tree moves on
	now, _, err := e.sh.TreeRoot()
	if err != nil || now == first {
		t.Fatalf("the tree did not change: %v", err)
	}
	v, release, err = e.sh.WalkView(first)
	if err != nil {
		t.Fatal(err)
	}
	if v.Root != first {
		t.Fatalf("asked for %x, answered from %x", first[:4], v.Root[:4])
	}
	if again := nodesOf(t, v, merkle.Prefix{}); !reflect.DeepEqual(again, root) {
		t.Fatal("the kept view answers differently from the first answer")
	}
	// A child of the old root, as the old root claimed it.
	p := merkle.Prefix{}.Child(3)
	if got := nodesOf(t, v, p)[0]; got.Hash != root[0].Children[3].Hash {
		t.Fatalf("child 3 of the kept version: hash %x, its parent claimed %x", got.Hash[:4], root[0].Children[3].Hash[:4])
	}
	release()

	var unknown merkle.Hash
	unknown[0] = 1
	v, release, err = e.sh.WalkView(unknown)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if v.Root != now {
		t.Fatalf("a version never held: answered from %x, want the tree as it is now, %x", v.Root[:4], now[:4])
	}
}

// TestWalkViewsBounded: however a peer asks, at most maxWalkViews views are
// kept, none past its idle time or its life, and one being read is closed
// only when its reader is done.
func TestWalkViewsBounded(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	e.sh.views.now = clock.now
	var roots []merkle.Hash
	for round := range 3 * maxWalkViews {
		e.change(round, 5)
		v, release, err := e.sh.WalkView(merkle.Hash{})
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, v.Root)
		release()
		if n := e.sh.views.kept(); n > maxWalkViews {
			t.Fatalf("%d views kept, at most %d", n, maxWalkViews)
		}
	}
	if v, release, _ := e.sh.WalkView(roots[0]); v.Root == roots[0] {
		t.Fatal("the oldest version is still served past the count bound")
	} else {
		release()
	}

	// A walk keeps reading a view, touching it often: it still goes at the
	// end of its life, once the walk is done with it.
	reading, done, err := e.sh.WalkView(roots[len(roots)-1])
	if err != nil || reading.Root != roots[len(roots)-1] {
		t.Fatalf("the newest version is not served: %v", err)
	}
	for range 5 {
		clock.advance(walkViewIdle / 2)
		_, release, _ := e.sh.WalkView(reading.Root)
		release()
	}
	clock.advance(walkViewLife)
	e.sh.views.expire()
	if n := e.sh.views.kept(); n != 0 {
		t.Fatalf("%d views kept past their life", n)
	}
	nodesOf(t, reading, merkle.Prefix{}) // still readable: its reader holds it
	done()
	done() // twice is harmless

	// Idle views go when the database writes, without anyone asking.
	_, release, _ := e.sh.WalkView(merkle.Hash{})
	release()
	clock.advance(walkViewIdle)
	e.change(99, 1)
	if n := e.sh.views.kept(); n != 0 {
		t.Fatalf("%d idle views kept after a write", n)
	}

	// Kept views do not outlive the database: it closes without leaked
	// snapshots.
	_, release, _ = e.sh.WalkView(merkle.Hash{})
	release()
	if e.sh.views.kept() != 1 {
		t.Fatal("no view kept")
	}
	e.reopen()
}
