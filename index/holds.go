package index

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/store"
)

// Holds returns which of hs the block index lists in any share's files:
// one iterator for a whole file's blocks, so a pull looks up (with Locate)
// only blocks it may find here. On a first sync it finds none, at the cost
// of one seek per block instead of a new iterator per block. Like Locate,
// the answer is what the index last saw; a block absent here may still be
// in a pull's temp.
func (db *DB) Holds(hs []block.Hash) (map[block.Hash]bool, error) {
	sorted := slices.Clone(hs)
	slices.SortFunc(sorted, func(a, b block.Hash) int { return bytes.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)
	held := make(map[block.Hash]bool)
	if len(sorted) == 0 {
		return held, nil
	}
	lo := store.BlockPrefix(sorted[0])
	it, err := db.store.Pebble().NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: store.PrefixEnd(store.BlockPrefix(sorted[len(sorted)-1]))})
	if err != nil {
		return nil, fmt.Errorf("look up %d blocks: %w", len(sorted), err)
	}
	defer it.Close()
	for _, h := range sorted {
		p := store.BlockPrefix(h)
		if it.SeekGE(p) && bytes.HasPrefix(it.Key(), p) {
			held[h] = true
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("look up %d blocks: %w", len(sorted), err)
	}
	return held, nil
}
