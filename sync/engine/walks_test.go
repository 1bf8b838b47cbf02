package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// churn is how many more changes a churner makes.
type churn struct {
	left atomic.Int64
	made atomic.Int64
}

// churner writes a file and commits it to the index (a real scan of it)
// before answering each request for tree nodes, while it has changes left:
// every walk of its tree runs into a tree that changed since the walk began.
type churner struct {
	*Session
	d *device
	c *churn
}

func (c churner) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	if _, ok := m.(*wire.NodesRequest); ok && c.c.left.Add(-1) >= 0 {
		n := c.c.made.Add(1)
		rel := fmt.Sprintf("churn/c%05d.txt", n)
		if err := os.MkdirAll(filepath.Join(c.d.dir, "churn"), 0o755); err == nil {
			if err := os.WriteFile(filepath.Join(c.d.dir, rel), []byte(rel), 0o644); err == nil {
				c.e.folder(c.d.key.ID()).idx.Scan(ctx, index.ScanOptions{Paths: []record.Path{record.Path(rel)}})
			}
		}
	}
	return c.Session.HandleRequest(ctx, m)
}

// pushDropper loses every record pushed to its session: the device learns
// of changes only by walking the pusher's tree when it announces a root.
type pushDropper struct{ *Session }

func (p pushDropper) HandleMessage(ctx context.Context, m wire.Message) error {
	if _, ok := m.(*wire.RecordPush); ok {
		return nil
	}
	return p.Session.HandleMessage(ctx, m)
}

// TestWalkWhileTreeChanges: B walks A's tree while A makes thousands of
// changes. Every walk reads one version of A's tree, so none fails on a
// node that moved under it ("bad merkle node"), and both converge.
func TestWalkWhileTreeChanges(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	b.dropPushes = true // every change reaches B by a walk of A's tree
	a.churn = new(churn)
	a.churn.left.Store(300)
	a.addShare(b)
	b.addShare(a)
	const files, rounds, perRound = 1200, 8, 100
	for i := range files {
		mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("d%02d/f%04d.txt", i%40, i)), []byte(fmt.Sprintf("file %d", i)))
	}
	waitScanned(t, a)
	a.restart() // nothing pushed in flight: B learns A's tree by walking it
	waitScanned(t, a)
	link(t, a, b)
	changes := 0
	for r := range rounds {
		for k := range perRound {
			i := (r*perRound*7 + k*13) % files
			mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("d%02d/f%04d.txt", i%40, i)), []byte(fmt.Sprintf("file %d, round %d", i, r)))
			changes++
		}
		// New paths as well as edits: the tree's shape changes, not only leaves.
		for k := range perRound / 4 {
			mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("new%02d/g%04d.txt", r, k)), []byte("new"))
			changes++
		}
		a.rescan()
	}
	waitConvergedFor(t, 3*time.Minute, a, b)
	bad := strings.Count(a.logs.String(), "bad merkle node") + strings.Count(b.logs.String(), "bad merkle node")
	moved := strings.Count(a.logs.String(), "tree moved during the walk") + strings.Count(b.logs.String(), "tree moved during the walk")
	failed := strings.Count(a.logs.String(), "reconcile failed") + strings.Count(b.logs.String(), "reconcile failed")
	changes += int(a.churn.made.Load())
	t.Logf("%d changes on A while B walked: %d bad merkle nodes, %d failed reconciles, %d walks restarted on a moved root", changes, bad, failed, moved)
	if bad > 0 || failed > 0 {
		t.Errorf("walks read a tree that moved under them: %d bad merkle node errors, %d failed reconciles; want 0", bad, failed)
	}
}

// TestStatusNeedsOnlyTheDifference: two devices start with the same 2,000
// files (each scanned its own, so every record differs but no content
// does) and A has 20 more. While they settle, status never reports more
// needed items than the records whose content a device lacks.
func TestStatusNeedsOnlyTheDifference(t *testing.T) {
	a, b := newPair(t)
	const same, extra = 1500, 20
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range same {
		rel := fmt.Sprintf("d%02d/f%04d.txt", i%20, i)
		data := []byte(fmt.Sprintf("the same file %d", i))
		for _, d := range []*device{a, b} {
			p := filepath.Join(d.dir, rel)
			mustWrite(t, p, data)
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range extra {
		mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("extra/e%02d.txt", i)), []byte(fmt.Sprintf("only on A %d", i)))
	}
	waitScanned(t, a)
	waitScanned(t, b)
	// What each device truly lacks: paths whose content the other has and
	// it has not.
	lacks := func(d, other *device) int {
		have := map[string]bool{}
		for _, line := range strings.Split(snapshot(t, d.dir), "\n") {
			have[line] = true
		}
		n := 0
		for _, line := range strings.Split(snapshot(t, other.dir), "\n") {
			if !have[line] {
				n++
			}
		}
		return n
	}
	trueA, trueB := lacks(a, b), lacks(b, a)
	t.Logf("true difference: A lacks %d, B lacks %d", trueA, trueB)

	link(t, a, b)
	done := make(chan struct{})
	peak := make(chan [2]int, 1)
	defer func() { // the sampler stops before the devices close, even on failure
		select {
		case <-done:
		default:
			close(done)
		}
		<-peak
	}()
	go func() {
		var most [2]int
		for {
			for i, d := range []*device{a, b} {
				if st := d.e.Status(); len(st.Shares) == 1 {
					most[i] = max(most[i], st.Shares[0].NeedItems)
				}
			}
			select {
			case <-done:
				peak <- most
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	waitConvergedFor(t, 3*time.Minute, a, b)
	close(done)
	most := <-peak
	peak <- most
	t.Logf("most needed items status reported while settling: A %d, B %d", most[0], most[1])
	if most[0] > trueA || most[1] > trueB {
		t.Errorf("status reported A needing %d and B needing %d items; they lacked %d and %d", most[0], most[1], trueA, trueB)
	}
}

// TestNeededCountsEachLackingPathOnce: status counts a queued record as
// needed only while this device lacks its content, a path once however many
// of its records are queued, and stops counting queued copies as soon as
// the content is here.
func TestNeededCountsEachLackingPathOnce(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.addShare(b)
	b.addShare(a)
	mustWrite(t, filepath.Join(a.dir, "x.txt"), []byte("on A"))
	mustWrite(t, filepath.Join(b.dir, "y.txt"), []byte("on B"))
	waitScanned(t, a)
	waitScanned(t, b)
	incomingOf := func(d *device, p string) incoming {
		t.Helper()
		e, ok, err := d.e.folder(key.ID()).idx.Lookup(record.Path(p))
		if err != nil || !ok {
			t.Fatalf("no record of %s on %s: %v", p, d.name, err)
		}
		return incoming{env: e.Envelope, rec: e.Record, from: b.id.ID()}
	}
	f := a.e.folder(key.ID())
	need := func() int { return a.e.Status().Shares[0].NeedItems }

	f.countNeeded([]incoming{incomingOf(a, "x.txt")}, +1)
	if n := need(); n != 0 {
		t.Fatalf("A's own record counted as needed: %d", n)
	}
	y := incomingOf(b, "y.txt")
	f.countNeeded([]incoming{y, y}, +1)
	if n := need(); n != 1 {
		t.Fatalf("two copies of one lacking record: %d needed, want 1", n)
	}
	// A gets the same content by itself: the copies still queued are
	// equal now and no longer count, even before the puller reaches them.
	mustWrite(t, filepath.Join(a.dir, "y.txt"), []byte("on B"))
	waitScanned(t, a)
	f.countNeeded([]incoming{y}, -1)
	if n := need(); n != 0 {
		t.Fatalf("a queued copy whose content A now holds still counted: %d needed", n)
	}
	f.countNeeded([]incoming{y}, -1)
	f.countNeeded([]incoming{incomingOf(a, "x.txt")}, -1)
	if n := need(); n != 0 {
		t.Fatalf("%d needed after everything was taken out", n)
	}
}

// rootMover answers the first request of a walk that names a version of
// the tree with "root moved": it changes the tree (a real file, scanned)
// and names the new version, as a device does that let the walked one go.
type rootMover struct {
	*Session
	d    *device
	done *atomic.Bool
}

func (r rootMover) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	q, ok := m.(*wire.NodesRequest)
	if !ok || q.Root == (merkle.Hash{}) || r.done.Swap(true) {
		return r.Session.HandleRequest(ctx, m)
	}
	idx := r.e.folder(r.d.key.ID()).idx
	mustWrite(r.d.t, filepath.Join(r.d.dir, "moved-on.txt"), []byte("the tree moved on"))
	idx.Scan(ctx, index.ScanOptions{Paths: []record.Path{"moved-on.txt"}})
	v, release, err := idx.WalkView(merkle.Hash{})
	if err != nil {
		return nil, err
	}
	defer release()
	return &wire.NodesResponse{Root: v.Root}, nil
}

// TestWalkStartsAgainWhenRootMoved: a peer that let go of the version a
// walk reads says so and names its new one; the walk starts again from
// it, nothing fails, and the devices converge.
func TestWalkStartsAgainWhenRootMoved(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.moveOnce = new(atomic.Bool)
	a.addShare(b)
	b.addShare(a)
	for i := range 600 {
		mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("d%02d/f%04d.txt", i%12, i)), []byte(fmt.Sprintf("file %d", i)))
	}
	waitScanned(t, a)
	a.restart() // B learns A's tree by walking it
	waitScanned(t, a)
	link(t, a, b)
	waitConvergedFor(t, 3*time.Minute, a, b)
	expectFile(t, b, "moved-on.txt", []byte("the tree moved on"))
	logs := a.logs.String() + b.logs.String()
	if !a.moveOnce.Load() {
		t.Fatal("no walk named a version of A's tree")
	}
	if n := strings.Count(logs, "tree moved during the walk"); n == 0 {
		t.Error("B did not start its walk again after A said its root moved")
	}
	if n := strings.Count(logs, "reconcile failed") + strings.Count(logs, "bad merkle node"); n > 0 {
		t.Errorf("%d failed reconciles or bad nodes after a root moved; want 0", n)
	}
}

// walkingPair returns two devices of one share where B learns of A's files
// by walking A's tree only (it drops A's pushes) and A counts what it serves.
func walkingPair(t *testing.T) (a, b *device) {
	t.Helper()
	key := newKey(t)
	a, b = newDevice(t, "A", key), newDevice(t, "B", key)
	a.served = new(served)
	b.dropPushes = true
	a.addShare(b)
	b.addShare(a)
	return a, b
}

// TestWalkLeavesQueuedRecordsToThePuller: while B's puller is held up (it
// puts a large file in place), B walks A's tree again and again as A's
// tree grows. The records an earlier walk delivered wait in B's inbox;
// a later walk, whose view of B's tree lacks them, leaves them to the
// puller instead of fetching them (and their inline contents) again. A
// first sync of 20,000 small files over 100 Mbit/s sent 11% of its bytes
// twice that way.
func TestWalkLeavesQueuedRecordsToThePuller(t *testing.T) {
	a, b := walkingPair(t)
	big := randBytes(smallFile + 4096)
	write(t, a, "big.bin", big)
	waitScanned(t, a)

	held, release := make(chan struct{}), make(chan struct{})
	var once atomic.Bool
	testHookPut = func(f *folder, p record.Path) {
		if f.e != b.e || p != "big.bin" || !once.CompareAndSwap(false, true) {
			return
		}
		close(held)
		select {
		case <-release:
		case <-time.After(2 * time.Minute):
		}
	}
	t.Cleanup(func() { testHookPut = nil })
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	link(t, a, b)
	select {
	case <-held:
	case <-time.After(time.Minute):
		t.Fatal("B never put big.bin in place")
	}

	// Each round's files are asked for by a walk while the puller still
	// holds up everything before them; the next round's walk sees a tree
	// of B's without them.
	const rounds, perRound = 3, 100
	small := make(map[string][]byte)
	for round := range rounds {
		for i := range perRound {
			rel := fmt.Sprintf("small/r%d-%03d.txt", round, i)
			small[rel] = []byte(strings.Repeat(rel, 50))
			write(t, a, rel, small[rel])
		}
		waitScanned(t, a)
		want := int64(1 + (round+1)*perRound) // and big.bin
		deadline := time.Now().Add(time.Minute)
		for a.served.distinct.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: B asked A for %d distinct records, want %d", round, a.served.distinct.Load(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Directory records change as files are added: a few keys are asked
	// for again rightly. The files already on their way must not be.
	if total, distinct := a.served.records.Load(), a.served.distinct.Load(); total > distinct+10 {
		t.Errorf("B asked A for %d records, %d distinct, while its puller was held up: records on their way were fetched again", total, distinct)
	}
	released = true
	close(release)
	waitConvergedFor(t, time.Minute, a, b)
	expectFile(t, b, "big.bin", big)
	for rel, data := range small {
		expectFile(t, b, rel, data)
	}
}

// TestWalkSkipsWhatWasAppliedSinceItsView: a walk compares the peer's tree
// with a view of this device's taken when it started; records the puller
// applied since (the answers of an earlier walk, pushed records whose
// content was asked for) are missing from that view, and no longer on their
// way either. The walk must not fetch them again: over 100 Mbit/s a walk
// takes seconds, and a first sync of 20,000 small files fetched up to 3,000
// records twice that way, their inline content with them (+13% bytes).
func TestWalkSkipsWhatWasAppliedSinceItsView(t *testing.T) {
	a, b := walkingPair(t)
	for i := range 50 {
		mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("d/f%02d.txt", i)), []byte(strings.Repeat(fmt.Sprint(i), 100)))
	}
	waitScanned(t, a)
	var entries []index.Entry
	if err := a.index().Records(func(e index.Entry) error { entries = append(entries, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 51 {
		t.Fatalf("A recorded %d paths; want 51 (d and its 50 files)", len(entries))
	}

	// Once B's first walk has its view, B gets all of A's records another
	// way and applies them, before the walk compares anything.
	var once atomic.Bool
	testHookWalkView = func(f *folder) {
		if f.e != b.e || !once.CompareAndSwap(false, true) {
			return
		}
		batch := make([]incoming, 0, len(entries))
		for _, e := range entries {
			in := incoming{env: e.Envelope, rec: e.Record, from: a.id.ID()}
			if e.Record.Kind == record.File {
				data, err := os.ReadFile(filepath.Join(a.dir, e.Record.Path.OS()))
				if err != nil {
					t.Error(err)
					return
				}
				in.content = data
			}
			batch = append(batch, in)
		}
		if err := f.deliver(context.Background(), batch); err != nil {
			t.Error(err)
			return
		}
		deadline := time.Now().Add(time.Minute)
		for _, e := range entries {
			for {
				if got, ok, _ := f.idx.Envelope(e.Envelope.Key()); ok && got.Leaf() == e.Envelope.Leaf() {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("B never applied %q", e.Record.Path)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	t.Cleanup(func() { testHookWalkView = nil })
	link(t, a, b)
	waitConverged(t, a, b)
	if !once.Load() {
		t.Fatal("B never walked A's tree")
	}
	if n := a.served.records.Load(); n > 0 {
		t.Errorf("B's walk asked A for %d records of %d, all applied since its view was taken; want none", n, len(entries))
	}
}
