package index

import (
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/store"
)

// MaxLocalChanges bounds the paths LocalChanges lists; the count goes on.
const MaxLocalChanges = 1000

// LocalChange is a path whose disk differs from the share's record on a
// device that cannot sign (a read-only member): its edit stays local.
type LocalChange struct {
	Path record.Path `json:"path"`
	What string      `json:"what"` // "changed", "added" or "deleted"
}

// LocalChanges lists, as the last scan saw them, the paths whose disk
// differs from the share's record, when this device cannot sign; n counts
// them all, the list stops at MaxLocalChanges. A device that signs has none:
// its edits become records.
func (s *Share) LocalChanges() (list []LocalChange, n int, err error) {
	if s.canSign {
		return nil, 0, nil
	}
	add := func(p record.Path, what string) {
		n++
		if len(list) < MaxLocalChanges {
			list = append(list, LocalChange{Path: p, What: what})
		}
	}
	snap := s.db.store.Pebble().NewSnapshot()
	defer snap.Close()
	prefix := s.space.StatePrefix()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: store.PrefixEnd(prefix)})
	if err != nil {
		return nil, 0, fmt.Errorf("list local changes: %w", err)
	}
	seen := map[record.Path]bool{}
	for it.First(); it.Valid(); it.Next() {
		path, ok := s.space.StatePath(it.Key())
		st, err := store.ParseState(it.Value())
		if !ok || err != nil {
			continue
		}
		p := record.Path(path)
		seen[p] = true
		e, has, err := s.Lookup(p)
		if err != nil {
			it.Close()
			return nil, 0, err
		}
		rec := e.Record
		switch {
		case !has || rec.Deleted:
			add(p, "added")
		case rec.Kind != st.Kind:
			add(p, "changed")
		case st.Kind == record.File && (!st.FileHash.IsZero() && st.FileHash != rec.FileHash || st.Mode != rec.Mode):
			add(p, "changed")
		}
	}
	if err := it.Close(); err != nil {
		return nil, 0, fmt.Errorf("list local changes: %w", err)
	}
	err = s.Records(func(e Entry) error {
		if !e.Envelope.Sealed() && !e.Record.Deleted && !seen[e.Record.Path] {
			add(e.Record.Path, "deleted")
		}
		return nil
	})
	return list, n, err
}
