package engine

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/record"
)

// envelopeOf returns d's stored envelope of path p.
func envelopeOf(t testing.TB, d *device, p string) record.Envelope {
	t.Helper()
	idx, err := d.db.Share(d.key, d.dir, d.id.ID().Short())
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := idx.Lookup(record.Path(p))
	if err != nil || !ok {
		t.Fatalf("no record of %s on %s: %v", p, d.name, err)
	}
	return e.Envelope
}

func shareOf(t testing.TB, d *device) *index.Share {
	t.Helper()
	idx, err := d.db.Share(d.key, d.dir, d.id.ID().Short())
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// Two devices that both announce batched envelopes: A's scan signs its
// records in batches, B verifies and stores them, and both end with
// byte-identical envelopes and equal trees.
func TestBatchSignedRecordsSync(t *testing.T) {
	const n = 70
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.batchSig, b.batchSig = true, true
	a.addShare(b)
	b.addShare(a)
	link(t, a, b)
	waitCond(t, "A to see B announce batched envelopes", func() bool { return shareOf(t, a).BatchSigning() })
	for i := range n {
		mustWrite(t, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
	}
	a.rescan()
	waitConverged(t, a, b)
	batched := 0
	for i := range n {
		ea, eb := envelopeOf(t, a, tinyName(i)), envelopeOf(t, b, tinyName(i))
		if bn, _ := ea.Batch(); bn > 1 {
			batched++
		}
		if !bytes.Equal(ea.Bytes(), eb.Bytes()) {
			t.Fatalf("%s: B's envelope differs from A's", tinyName(i))
		}
	}
	if batched != n {
		t.Fatalf("%d of %d records signed in batches", batched, n)
	}
	ra, _, _ := shareOf(t, a).TreeRoot()
	rb, _, _ := shareOf(t, b).TreeRoot()
	if ra != rb {
		t.Fatal("trees differ after sync")
	}
}

// A member that does not announce the capability keeps every writer
// signing records alone: it could not open a batch. So does a member not
// seen yet.
func TestBatchSigningWaitsForEveryMember(t *testing.T) {
	key := newKey(t)
	a, b, c := newDevice(t, "A", key), newDevice(t, "B", key), newDevice(t, "C", key)
	a.batchSig, b.batchSig = true, true // C is an older device
	a.addShare(b, c)
	b.addShare(a, c)
	c.addShare(a, b)
	link(t, a, b)
	mustWrite(t, filepath.Join(a.dir, "before-c"), []byte("x"))
	mustWrite(t, filepath.Join(a.dir, "before-c2"), []byte("y"))
	a.rescan()
	waitConverged(t, a, b)
	if shareOf(t, a).BatchSigning() {
		t.Fatal("A signs in batches before it has seen member C")
	}
	if bn, _ := envelopeOf(t, a, "before-c").Batch(); bn != 0 {
		t.Fatalf("signed in a batch of %d while C was unseen", bn)
	}
	link(t, a, c)
	link(t, b, c)
	for i := range 5 {
		mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("with-c-%d", i)), []byte{byte(i)})
	}
	a.rescan()
	waitConverged(t, a, b, c)
	if shareOf(t, a).BatchSigning() {
		t.Fatal("A signs in batches though member C lacks the capability")
	}
	for i := range 5 {
		if bn, _ := envelopeOf(t, c, fmt.Sprintf("with-c-%d", i)).Batch(); bn != 0 {
			t.Fatalf("C got a record signed in a batch of %d", bn)
		}
	}
}
