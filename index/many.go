package index

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/store"
)

// Reads of many paths at once. A Get builds an iterator over every level
// of the database for one key: for a `touch` of 20,000 files the scan's
// and the receiver's Gets of records and states were a fifth of the CPU of
// the whole sync, most of it finding again the blocks the Get before had
// found. Many keys read in key order through one iterator reuse its
// position and the blocks it holds.

// manyAtOnce is the fewest keys read through one iterator rather than a Get
// each (an iterator costs more than a Get to set up).
const manyAtOnce = 8

// envelopes returns the stored envelopes at keys (ok[i] false: none), as
// Envelope would each, from one iterator when there are many. It neither
// asks nor fills recent: its callers read each key once.
func (s *Share) envelopes(keys []merkle.Key) (envs []record.Envelope, ok []bool, err error) {
	envs, ok = make([]record.Envelope, len(keys)), make([]bool, len(keys))
	if len(keys) < manyAtOnce {
		for i, k := range keys {
			if envs[i], ok[i], err = s.Envelope(k); err != nil {
				return nil, nil, err
			}
		}
		return envs, ok, nil
	}
	err = s.readSorted(s.space.RecordPrefix(), len(keys),
		func(i int) []byte { return s.space.RecordKey(keys[i]) },
		func(i int, v []byte) error {
			env, err := record.Open(v) // Open copies v
			if err != nil {
				return fmt.Errorf("%w: stored record %x: %w", ErrCorrupt, keys[i][:4], err)
			}
			envs[i], ok[i] = env, true
			return nil
		})
	if err != nil {
		return nil, nil, fmt.Errorf("read %d records: %w", len(keys), err)
	}
	return envs, ok, nil
}

// PrefetchMax is the most records, and states, one Prefetch reads: what
// the share keeps in memory leaves room for those of the batch before.
const PrefetchMax = recentKept / 2

// Prefetch reads the records at keys and the local states of paths that
// recent does not keep, each kind through one iterator, and keeps them in
// recent: a receiver about to take many records reads each one's record
// and state several times (Envelope, Lookup, LocalState), the first time
// with a Get each. At most PrefetchMax of each are read.
func (s *Share) Prefetch(keys []merkle.Key, paths []record.Path) error {
	keys = slices.DeleteFunc(slices.Clone(keys), func(k merkle.Key) bool {
		_, _, hit := s.recent.envelope(k)
		return hit
	})
	keys = keys[:min(len(keys), PrefetchMax)]
	if len(keys) >= manyAtOnce {
		gen := s.recent.generation()
		envs, ok, err := s.envelopes(keys)
		if err != nil {
			return err
		}
		for i, k := range keys {
			s.recent.keepEnvelope(gen, k, envs[i], ok[i])
		}
	}
	paths = slices.DeleteFunc(slices.Clone(paths), func(p record.Path) bool {
		_, _, hit := s.recent.state(p)
		return hit
	})
	paths = paths[:min(len(paths), PrefetchMax)]
	if len(paths) < manyAtOnce {
		return nil
	}
	gen := s.recent.generation()
	states, ok := make([]FileState, len(paths)), make([]bool, len(paths))
	err := s.readSorted(s.space.StatePrefix(), len(paths),
		func(i int) []byte { return s.space.StateKey(string(paths[i])) },
		func(i int, v []byte) error {
			st, err := store.ParseState(v)
			if err != nil {
				return fmt.Errorf("local state of %q: %w", paths[i], err)
			}
			states[i], ok[i] = st, true
			return nil
		})
	if err != nil {
		return fmt.Errorf("read %d local states: %w", len(paths), err)
	}
	for i, p := range paths {
		s.recent.keepState(gen, p, states[i], ok[i])
	}
	return nil
}

// readSorted reads the n keys key(i), all under prefix, in key order
// through one iterator of the database, and calls found for each one
// stored, with its value (valid during the call only).
func (s *Share) readSorted(prefix []byte, n int, key func(i int) []byte, found func(i int, v []byte) error) error {
	type at struct {
		i   int
		key []byte
	}
	order := make([]at, n)
	for i := range order {
		order[i] = at{i, key(i)}
	}
	slices.SortFunc(order, func(a, b at) int { return bytes.Compare(a.key, b.key) })
	it, err := s.db.store.Pebble().NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: store.PrefixEnd(prefix)})
	if err != nil {
		return err
	}
	for _, a := range order {
		if !it.SeekGE(a.key) || !bytes.Equal(it.Key(), a.key) {
			continue
		}
		v, err := it.ValueAndErr()
		if err == nil {
			err = found(a.i, v)
		}
		if err != nil {
			it.Close()
			return err
		}
	}
	return errors.Join(it.Error(), it.Close())
}
