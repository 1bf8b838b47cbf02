package engine

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

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

// Three devices that announce batched envelopes: A's scan signs its
// records in batches and pushes them to B trimmed; C, which comes later,
// gets them from B's answers to its walk, parts of batches per answer (a
// walk asks by tree key, not by batch). All end with byte-identical
// envelopes and equal trees.
func TestBatchSignedRecordsSync(t *testing.T) {
	const n = 200 // with their folders, more records than one walk request asks for
	key := newKey(t)
	a, b, c := newDevice(t, "A", key), newDevice(t, "B", key), newDevice(t, "C", key)
	a.batchSig, b.batchSig, c.batchSig = true, true, true
	a.addShare(b, c)
	b.addShare(a, c)
	c.addShare(a, b)
	link(t, a, b)
	cutAC := link(t, a, c)
	waitCond(t, "A to see B and C announce batched envelopes", func() bool { return shareOf(t, a).BatchSigning() })
	cutAC()
	for i := range n {
		mustWrite(t, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
	}
	a.rescan()
	waitConverged(t, a, b)
	link(t, b, c)
	waitConverged(t, a, b, c)
	batched := 0
	for i := range n {
		ea := envelopeOf(t, a, tinyName(i))
		if bn, _ := ea.Batch(); bn > 1 {
			batched++
		}
		for _, d := range []*device{b, c} {
			if !bytes.Equal(ea.Bytes(), envelopeOf(t, d, tinyName(i)).Bytes()) {
				t.Fatalf("%s: %s's envelope differs from A's", tinyName(i), d.name)
			}
		}
	}
	if batched != n {
		t.Fatalf("%d of %d records signed in batches", batched, n)
	}
	ra, _, _ := shareOf(t, a).TreeRoot()
	for _, d := range []*device{b, c} {
		if r, _, _ := shareOf(t, d).TreeRoot(); r != ra {
			t.Fatalf("%s's tree differs from A's", d.name)
		}
	}
}

// A touch of files signed in batches still costs at most touchBudget bytes
// a file on the wire (records trimmed of proof and signature), and its
// records are signed in batches.
func TestTouchBatchedTravelsAsRecordOnly(t *testing.T) {
	const n = 300
	a, b, per := batchedTouchOnWire(t, n, false)
	t.Logf("a touch of batch-signed records cost %.0f bytes on the wire per file", per)
	if per > touchBudget {
		t.Errorf("a touch cost %.0f bytes on the wire per file, want <= %d", per, touchBudget)
	}
	for i := range n {
		ea := envelopeOf(t, a, tinyName(i))
		if bn, _ := ea.Batch(); bn < 2 {
			t.Fatalf("%s signed alone", tinyName(i))
		}
		if !bytes.Equal(ea.Bytes(), envelopeOf(t, b, tinyName(i)).Bytes()) {
			t.Fatalf("%s: B's envelope differs from A's", tinyName(i))
		}
	}
}

// batchedTouchOnWire syncs n tiny files from A to B, both signing in
// batches (and with compress, through the compressed stream), then
// touches them all and returns what that cost on the wire per file, once
// B holds the new attributes.
func batchedTouchOnWire(t *testing.T, n int, compress bool) (a, b *device, per float64) {
	t.Helper()
	a, b = newPair(t, func(d *device) { d.batchSig, d.compress = true, compress })
	for i := range n {
		mustWrite(t, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
	}
	var count wireCount
	linkCounted(t, a, b, &count)
	waitCond(t, "A to see B announce batched envelopes", func() bool { return shareOf(t, a).BatchSigning() })
	a.rescan()
	waitConverged(t, a, b)
	count.n.Store(0)
	touchAll(t, a.dir, n, time.Now().Add(-time.Hour))
	a.rescan()
	waitConverged(t, a, b)
	waitAttrsEqual(t, a, b, n)
	return a, b, float64(count.n.Load()) / float64(n)
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
