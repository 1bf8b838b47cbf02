package index

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/blueshift-sync/blueshift/index/record"
)

// TestConcurrentCommitsAreGrouped commits a peer's records from many
// goroutines at once, as the engine's appliers do: each Commit returns once
// its record is stored, and the result is the peer's tree and a block index
// that names only what the disk holds. A group that holds two records of
// one path (one after the other) ends with the later one and no block
// index entry of the earlier.
func TestConcurrentCommitsAreGrouped(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	b.key = a.key
	b.db.Close()
	b.open()
	const n = 300
	for i := range n {
		a.write(fmt.Sprintf("d%d/f%d", i%7, i), randBytes(uint64(i), 100+i))
	}
	a.scan()

	commitAll := func(entries []Entry) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, len(entries))
		for _, en := range entries {
			wg.Go(func() { errs <- b.sh.Commit(en.Envelope, b.put(t, a, en.Record)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	commitAll(entriesOf(t, a))

	// One group with two new versions of d0/f0, as two appliers would
	// queue them.
	a.write("d0/f0", []byte("the second version of f0"))
	a.scan()
	second, _, _ := a.sh.Lookup("d0/f0")
	a.write("d0/f0", []byte("the third version of f0"))
	a.scan()
	third, _, _ := a.sh.Lookup("d0/f0")
	rootA, countA, _ := a.sh.TreeRoot()
	st := b.put(t, a, third.Record)
	b.sh.write.Lock()
	group := []*pendingCommit{
		{env: second.Envelope, rec: second.Record, local: st, done: make(chan struct{})},
		{env: third.Envelope, rec: third.Record, local: st, done: make(chan struct{})},
	}
	b.sh.commitGroup(group)
	b.sh.write.Unlock()
	for _, c := range group {
		<-c.done
		if c.err != nil {
			t.Fatal(c.err)
		}
	}

	if r, n, _ := b.sh.TreeRoot(); r != rootA || n != countA {
		t.Fatalf("after concurrent commits: root differs (%v) or count %d, want %d", r != rootA, n, countA)
	}
	if locs, err := b.db.Locate(second.Record.Blocks[0].Hash); err != nil || len(locs) != 0 {
		t.Fatalf("block of the replaced version of d0/f0 still indexed: %+v %v", locs, err)
	}
	if locs, err := b.db.Locate(third.Record.Blocks[0].Hash); err != nil || len(locs) != 1 {
		t.Fatalf("block of the new version of d0/f0: %+v %v", locs, err)
	}
	if res := b.scan(); res.Hashed != 0 || res.Records != 0 {
		t.Fatalf("scan after commits: %+v", res)
	}
}

func entriesOf(t testing.TB, e *env) []Entry {
	var out []Entry
	if err := e.sh.Records(func(en Entry) error { out = append(out, en); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// put copies a's file at rec's path into e's folder, as the engine would
// before it commits, and returns what it left there.
func (e *env) put(t testing.TB, a *env, rec record.Record) *FileState {
	if rec.Kind != record.File {
		os.MkdirAll(filepath.Join(e.root, rec.Path.OS()), 0o755)
		return nil
	}
	e.write(rec.Path.OS(), mustRead(t, filepath.Join(a.root, rec.Path.OS())))
	return e.state(t, string(rec.Path))
}

func (e *env) state(t testing.TB, p string) *FileState {
	fi, err := os.Lstat(filepath.Join(e.root, filepath.FromSlash(p)))
	if err != nil {
		t.Fatal(err)
	}
	s := stateOf(fi)
	return &s
}
