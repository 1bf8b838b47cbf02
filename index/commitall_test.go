package index

import (
	"fmt"
	"sync"
	"testing"

	"github.com/blueshift-sync/blueshift/index/record"
)

// TestCommitAllWritesInBatches: records committed together are written a
// batch at a time (subscribers hear a few batches, not one per record, so
// the tree is updated once per batch), never more than maxBatchPaths/2 to one
// batch, and end as the sender's tree; a record that does not verify is
// refused alone.
func TestCommitAllWritesInBatches(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	b.key = a.key
	b.db.Close()
	b.open()
	const n = 1300
	for i := range n {
		a.write(fmt.Sprintf("d%d/f%d", i%5, i), randBytes(uint64(i), 20+i%50))
	}
	a.scan()
	entries := entriesOf(t, a)

	var mu sync.Mutex
	var sizes []int
	cancel := b.sh.Subscribe(func(u Update) {
		mu.Lock()
		sizes = append(sizes, len(u.Envelopes))
		mu.Unlock()
	})
	defer cancel()

	other, err := testKey(t, 2).Seal(record.Record{Path: "forged", Kind: record.File, ModifiedBy: 0xB2, Version: record.Vector{{Device: 0xB2, Value: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]Applied, 0, len(entries)+1)
	for i, en := range entries {
		if i == len(entries)/2 {
			recs = append(recs, Applied{Envelope: other})
		}
		recs = append(recs, Applied{Envelope: en.Envelope, Local: b.put(t, a, en.Record)})
	}
	errs := b.sh.CommitAll(recs)
	for i, err := range errs {
		if (recs[i].Envelope.Key() == other.Key()) != (err != nil) {
			t.Fatalf("record %d: %v", i, err)
		}
	}

	rootA, countA, _ := a.sh.TreeRoot()
	if r, c, _ := b.sh.TreeRoot(); r != rootA || c != countA {
		t.Fatalf("after CommitAll: root differs (%v) or count %d, want %d", r != rootA, c, countA)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) > 3 {
		t.Fatalf("%d records committed in %d batches (%v), want at most 3", len(entries), len(sizes), sizes)
	}
	for _, s := range sizes {
		if s > maxBatchPaths/2 {
			t.Fatalf("a batch of %d records, more than %d", s, maxBatchPaths/2)
		}
	}
	if res := b.scan(); res.Hashed != 0 || res.Records != 0 {
		t.Fatalf("scan after CommitAll: %+v", res)
	}
}
