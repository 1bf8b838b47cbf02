package index

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/store"
)

// TestRecentKeepsNoStaleRead: a read that started before a batch was
// committed, and found what the batch then replaced, is not kept: the
// share would go on answering the old envelope and state.
func TestRecentKeepsNoStaleRead(t *testing.T) {
	e := newEnv(t)
	e.write("f", []byte("one"))
	e.scan()
	oldEnv, _, _ := e.sh.Lookup("f")
	oldSt, _, _ := e.sh.LocalState("f")

	r := newRecent()
	k := oldEnv.Envelope.Key()
	gen := r.generation() // a reader starts, reads the old ones...
	e.write("f", []byte("two, longer"))
	e.scan()
	newEnv, _, _ := e.sh.Lookup("f")
	newSt, _, _ := e.sh.LocalState("f")
	r.wrote([]record.Envelope{newEnv.Envelope}, []pathState{{path: "f", state: &newSt}}) // ...a batch commits...
	r.keepEnvelope(gen, k, oldEnv.Envelope, true)                                        // ...and the reader ends
	r.keepState(gen, "f", oldSt, true)

	if env, ok, hit := r.envelope(k); !hit || !ok || env.Leaf() != newEnv.Envelope.Leaf() {
		t.Errorf("recent answers an envelope the database no longer holds (hit %v, ok %v)", hit, ok)
	}
	if st, ok, hit := r.state("f"); !hit || !ok || st.Size != newSt.Size {
		t.Errorf("recent answers a state the database no longer holds: size %d, want %d", st.Size, newSt.Size)
	}
}

// TestRecentIsBounded: however many paths are read, recent keeps at most
// recentKept of each.
func TestRecentIsBounded(t *testing.T) {
	r := newRecent()
	for i := range recentKept + 100 {
		var k merkle.Key
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		r.keepEnvelope(r.generation(), k, record.Envelope{}, false)
		r.keepState(r.generation(), record.Path(fmt.Sprint(i)), FileState{}, false)
	}
	if len(r.envs) > recentKept || len(r.states) > recentKept {
		t.Fatalf("recent keeps %d envelopes and %d states, at most %d each", len(r.envs), len(r.states), recentKept)
	}
	if _, _, hit := r.state(record.Path(fmt.Sprint(recentKept + 99))); !hit {
		t.Fatal("the newest state is not kept")
	}
}

// TestLookupAgreesWithDatabase reads records and states from many
// goroutines while scans rewrite them: once a scan has returned, every
// Lookup and LocalState answers what the database holds.
func TestLookupAgreesWithDatabase(t *testing.T) {
	e := newEnv(t)
	const n = 40
	paths := make([]record.Path, n)
	for i := range n {
		paths[i] = record.Path(fmt.Sprintf("d/f%d", i))
		e.write(string(paths[i]), randBytes(uint64(i), 10))
	}
	e.scan()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				for _, p := range paths {
					if _, _, err := e.sh.Lookup(p); err != nil {
						t.Error(err)
						return
					}
					if _, _, err := e.sh.LocalState(p); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	for round := range 20 {
		for i, p := range paths {
			if (i+round)%3 == 0 {
				e.write(string(p), randBytes(uint64(round*n+i), 10+round))
			}
		}
		e.scan()
		for _, p := range paths {
			checkAgainstDB(t, e.sh, p)
		}
	}
	stop.Store(true)
	wg.Wait()
}

// checkAgainstDB compares what the share answers for p with the stored
// bytes, read from Pebble directly.
func checkAgainstDB(t *testing.T, s *Share, p record.Path) {
	t.Helper()
	en, ok, err := s.Lookup(p)
	if err != nil || !ok {
		t.Fatalf("look up %q: ok %v, %v", p, ok, err)
	}
	v, closer, err := s.db.store.Pebble().Get(s.space.RecordKey(s.key.PathKey(string(p))))
	if err != nil {
		t.Fatal(err)
	}
	if string(v) != string(en.Envelope.Bytes()) {
		t.Fatalf("Lookup(%q) answers an envelope the database does not hold", p)
	}
	closer.Close()
	st, ok, err := s.LocalState(p)
	if err != nil || !ok {
		t.Fatalf("local state of %q: ok %v, %v", p, ok, err)
	}
	v, closer, err = s.db.store.Pebble().Get(s.space.StateKey(string(p)))
	if errors.Is(err, pebble.ErrNotFound) || err != nil {
		t.Fatalf("stored state of %q: %v", p, err)
	}
	want, err := store.ParseState(v)
	closer.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != want.Size || st.ModTime != want.ModTime || st.Inode != want.Inode {
		t.Fatalf("LocalState(%q) = %+v, the database holds %+v", p, st, want)
	}
}
