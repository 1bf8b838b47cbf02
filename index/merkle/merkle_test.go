package merkle

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openDB(tb testing.TB, dir string) *pebble.DB {
	tb.Helper()
	// A block cache the size a device would give its index, so reads of
	// hot nodes come from memory as they would in the daemon.
	cache := pebble.NewCache(64 << 20)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{FS: vfs.Default, Cache: cache})
	if err != nil {
		tb.Fatal(err)
	}
	return db
}

func newDB(tb testing.TB) *pebble.DB {
	tb.Helper()
	db := openDB(tb, tb.TempDir())
	tb.Cleanup(func() { db.Close() })
	return db
}

func randomEntries(rng *rand.Rand, n int) []Entry {
	out := make([]Entry, n)
	for i := range out {
		fill(rng, out[i].Key[:])
		fill(rng, out[i].Leaf[:])
	}
	return out
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// op is one write: a Set, or a Delete when leaf is nil.
type op struct {
	key  Key
	leaf *Leaf
}

// apply writes ops into tree in batches of per, committing each.
func apply(tb testing.TB, db *pebble.DB, tree *Tree, ops []op, per int) {
	tb.Helper()
	for len(ops) > 0 {
		n := min(per, len(ops))
		b := db.NewIndexedBatch()
		for _, o := range ops[:n] {
			var err error
			if o.leaf != nil {
				err = tree.Set(b, o.key, *o.leaf)
			} else {
				err = tree.Delete(b, o.key)
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			tb.Fatal(err)
		}
		ops = ops[n:]
	}
}

func setOps(entries []Entry) []op {
	ops := make([]op, len(entries))
	for i := range entries {
		ops[i] = op{key: entries[i].Key, leaf: &entries[i].Leaf}
	}
	return ops
}

func root(tb testing.TB, tree *Tree, r pebble.Reader) (Hash, uint64) {
	tb.Helper()
	h, n, err := tree.Root(r)
	if err != nil {
		tb.Fatal(err)
	}
	return h, n
}

// collect runs Diff and returns the differences found and nodes asked.
func collect(tb testing.TB, local, remote Source) (map[Key][2]*Leaf, int) {
	tb.Helper()
	got := map[Key][2]*Leaf{}
	asked, err := Diff(context.Background(), local, remote, func(k Key, l, r *Leaf) error {
		if _, dup := got[k]; dup {
			tb.Fatalf("key %x reported twice", k[:4])
		}
		got[k] = [2]*Leaf{l, r}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return got, asked
}

// TestRootIndependentOfOrder writes the same final set in different orders,
// with extra keys set and deleted in between, through Set and through Load,
// and expects one root; deleting everything gives the empty tree.
func TestRootIndependentOfOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	entries := randomEntries(rng, 3000)
	extra := randomEntries(rng, 500)

	var want Hash
	for round := range 4 {
		db := newDB(t)
		tree := New([]byte("s1"))
		ops := setOps(entries)
		if round > 0 {
			ops = interleave(rng, ops, entries, extra)
		} else {
			rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		}
		apply(t, db, tree, ops, 1+rng.IntN(700))
		h, n := root(t, tree, db)
		if n != uint64(len(entries)) {
			t.Fatalf("round %d: count %d, want %d", round, n, len(entries))
		}
		if round == 0 {
			want = h
		} else if h != want {
			t.Fatalf("round %d: root %x, want %x", round, h[:8], want[:8])
		}
		// Every stored node answers consistently.
		if _, err := tree.Nodes(db, []Prefix{{}, PrefixOf(entries[0].Key, 1), PrefixOf(entries[0].Key, 2)}); err != nil {
			t.Fatal(err)
		}

		if round == 3 {
			var dels []op
			for _, e := range entries {
				dels = append(dels, op{key: e.Key})
			}
			rng.Shuffle(len(dels), func(i, j int) { dels[i], dels[j] = dels[j], dels[i] })
			apply(t, db, tree, dels, 333)
			if h, n := root(t, tree, db); h != (Hash{}) || n != 0 {
				t.Fatalf("after deleting all: root %x count %d", h[:8], n)
			}
			assertNoNodes(t, db)
		}
	}

	db := newDB(t)
	tree := New([]byte("s1"))
	b := db.NewBatch()
	if err := tree.Load(db, b, entries); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if h, _ := root(t, tree, db); h != want {
		t.Fatalf("Load root %x, want %x", h[:8], want[:8])
	}
	if err := tree.Load(db, db.NewBatch(), entries[:1]); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Load into a full tree: %v", err)
	}
}

// interleave shuffles ops and mixes in, at random times, extra keys that are
// set (twice, with different leaves) and later deleted, and a real key set
// to a wrong leaf before its right one.
func interleave(rng *rand.Rand, ops []op, entries, extra []Entry) []op {
	type timed struct {
		at float64
		op op
	}
	var all []timed
	for _, o := range ops {
		all = append(all, timed{rng.Float64(), o})
	}
	for i := range extra {
		t1, t2 := rng.Float64(), rng.Float64()
		if t1 > t2 {
			t1, t2 = t2, t1
		}
		other := extra[(i+1)%len(extra)].Leaf
		all = append(all,
			timed{t1, op{key: extra[i].Key, leaf: &extra[i].Leaf}},
			timed{(t1 + t2) / 2, op{key: extra[i].Key, leaf: &other}},
			timed{t2, op{key: extra[i].Key}})
	}
	// entries[7] gets a wrong leaf just before its real Set.
	for i := range all {
		if all[i].op.key == entries[7].Key {
			wrong := extra[0].Leaf
			all = append(all, timed{all[i].at / 2, op{key: entries[7].Key, leaf: &wrong}})
			break
		}
	}
	slices.SortFunc(all, func(a, b timed) int { return cmp.Compare(a.at, b.at) })
	out := make([]op, len(all))
	for i := range all {
		out[i] = all[i].op
	}
	return out
}

// assertNoNodes checks that an emptied tree left no node or leaf behind
// (merges deleted every stale descendant).
func assertNoNodes(t *testing.T, db *pebble.DB) {
	t.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		t.Fatalf("key %q left behind", it.Key())
	}
}

// TestSplitAndMergeAtTheBucketEdge grows a subtree across BucketSize and
// back, with keys sharing long prefixes, and checks the root each time
// against a fresh Load of the same set.
func TestSplitAndMergeAtTheBucketEdge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	db := newDB(t)
	tree := New([]byte("x"))
	// 40 keys sharing their first 5 nibbles, 10 sharing 9: chains of inner
	// nodes that split and merge together.
	entries := randomEntries(rng, 50)
	for i := range entries {
		copy(entries[i].Key[:2], []byte{0xab, 0xcd})
		entries[i].Key[2] = 0xe0 | entries[i].Key[2]&0x0f
		if i < 10 {
			copy(entries[i].Key[:5], []byte{0xab, 0xcd, 0xef, 0x01, 0x20})
		}
	}
	var present []Entry
	check := func() {
		t.Helper()
		h, n := root(t, tree, db)
		ref := newDB(t)
		rt := New([]byte("x"))
		b := ref.NewBatch()
		if err := rt.Load(ref, b, present); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		rh, rn := root(t, rt, ref)
		if h != rh || n != rn || n != uint64(len(present)) {
			t.Fatalf("with %d entries: root %x/%d, fresh load %x/%d", len(present), h[:8], n, rh[:8], rn)
		}
		if got, _ := collect(t, tree.Source(db), rt.Source(ref)); len(got) != 0 {
			t.Fatalf("diff against fresh load: %d keys", len(got))
		}
	}
	for _, e := range entries {
		apply(t, db, tree, []op{{key: e.Key, leaf: &e.Leaf}}, 1)
		present = append(present, e)
		check()
	}
	for len(present) > 0 {
		i := rng.IntN(len(present))
		apply(t, db, tree, []op{{key: present[i].Key}}, 1)
		present = append(present[:i], present[i+1:]...)
		check()
	}
	assertNoNodes(t, db)
}

// TestDiffFindsExactlyTheDifferences compares two trees of n keys that
// differ in d keys (added, removed and changed) and bounds the nodes asked.
func TestDiffFindsExactlyTheDifferences(t *testing.T) {
	const n = 20000
	rng := rand.New(rand.NewPCG(5, 6))
	entries := randomEntries(rng, n)
	dbA, dbB := newDB(t), newDB(t)
	ta, tb := New([]byte("a")), New([]byte("b"))
	load := func(db *pebble.DB, tree *Tree, es []Entry) {
		b := db.NewBatch()
		if err := tree.Load(db, b, es); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	load(dbA, ta, entries)
	load(dbB, tb, entries)
	if got, asked := collect(t, ta.Source(dbA), tb.Source(dbB)); len(got) != 0 || asked != 1 {
		t.Fatalf("equal trees: %d differences, %d nodes asked", len(got), asked)
	}

	// depth of a 20,000-key tree with buckets of 32: about log16(20000/32)+1.
	const depth = 4
	want := map[Key][2]*Leaf{}
	var ops []op
	for i, d := 0, 0; d < 10; i, d = i+1, d+1 {
		switch i % 3 {
		case 0: // only in a
			e := randomEntries(rng, 1)[0]
			ops = append(ops, op{key: e.Key, leaf: &e.Leaf})
			want[e.Key] = [2]*Leaf{&e.Leaf, nil}
		case 1: // only in b
			e := entries[i]
			ops = append(ops, op{key: e.Key})
			want[e.Key] = [2]*Leaf{nil, &entries[i].Leaf}
		case 2: // changed
			e := entries[i]
			l := randomEntries(rng, 1)[0].Leaf
			ops = append(ops, op{key: e.Key, leaf: &l})
			want[e.Key] = [2]*Leaf{&l, &entries[i].Leaf}
		}
		apply(t, dbA, ta, ops[len(ops)-1:], 1)
		got, asked := collect(t, ta.Source(dbA), tb.Source(dbB))
		if len(got) != len(want) {
			t.Fatalf("d=%d: found %d differences", len(want), len(got))
		}
		for k, w := range want {
			g, ok := got[k]
			if !ok || !sameLeaf(g[0], w[0]) || !sameLeaf(g[1], w[1]) {
				t.Fatalf("d=%d: key %x: got %v, want %v", len(want), k[:4], g, w)
			}
		}
		// Each difference costs at most one path of depth+1 nodes, each
		// asked once; 2x leaves room for a split near the bucket edge.
		if limit := 2 * len(want) * (depth + 1); asked > limit {
			t.Fatalf("d=%d: asked %d nodes, want <= %d", len(want), asked, limit)
		}
		t.Logf("d=%d: %d nodes asked", len(want), asked)
		// Diff is symmetric.
		back, _ := collect(t, tb.Source(dbB), ta.Source(dbA))
		if len(back) != len(want) {
			t.Fatalf("d=%d: reverse diff found %d", len(want), len(back))
		}
	}

	// Against an empty tree, every key is a difference.
	empty := newDB(t)
	got, _ := collect(t, New([]byte("a")).Source(empty), tb.Source(dbB))
	if len(got) != n {
		t.Fatalf("against empty: %d differences, want %d", len(got), n)
	}
}

func sameLeaf(a, b *Leaf) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// TestRestartKeepsRoot closes and reopens Pebble and shows Root answers from
// the stored root node alone: with every leaf and every other node deleted
// behind the tree's back, Root still returns the old hash and count.
func TestRestartKeepsRoot(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	dir := t.TempDir()
	db := openDB(t, dir)
	tree := New([]byte("share"))
	entries := randomEntries(rng, 2000)
	apply(t, db, tree, setOps(entries), 500)
	h1, n1 := root(t, tree, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = openDB(t, dir)
	defer db.Close()
	rootKey := tree.nodeKey(Prefix{})
	b := db.NewBatch()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for ok := it.First(); ok; ok = it.Next() {
		if string(it.Key()) != string(rootKey) {
			if err := b.Delete(it.Key(), nil); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	it.Close()
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if deleted < 2000 {
		t.Fatalf("deleted only %d keys", deleted)
	}
	h2, n2 := root(t, tree, db)
	if h1 != h2 || n1 != n2 || n1 != 2000 {
		t.Fatalf("after restart: %x/%d, before %x/%d", h2[:8], n2, h1[:8], n1)
	}
	// The rest of the tree is gone; Diff against the real tree notices
	// rather than reporting wrong differences.
	ref := newDB(t)
	loadTree(t, ref, tree, entries[1:])
	if _, err := Diff(context.Background(), tree.Source(db), tree.Source(ref), func(Key, *Leaf, *Leaf) error { return nil }); !errors.Is(err, ErrBadNode) {
		t.Fatalf("Diff of a gutted tree: %v", err)
	}
}

func TestNodesLimits(t *testing.T) {
	db := newDB(t)
	tree := New([]byte("s"))
	if _, err := tree.Nodes(db, make([]Prefix, MaxNodesPerCall+1)); !errors.Is(err, ErrBadQuery) {
		t.Fatalf("too many prefixes: %v", err)
	}
	for _, p := range []Prefix{
		{Len: MaxDepth + 1},
		{Len: 1, Nibbles: [32]byte{0x11}},
		{Len: 2, Nibbles: [32]byte{0x11, 0x01}},
		{Len: 0, Nibbles: [32]byte{31: 1}},
	} {
		if _, err := tree.Nodes(db, []Prefix{p}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("prefix %+v: %v", p, err)
		}
	}
	nodes, err := tree.Nodes(db, []Prefix{{}, {Len: MaxDepth}, {Len: 3, Nibbles: [32]byte{0xab, 0xc0}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Count != 0 || n.Hash != (Hash{}) || n.Children != nil || len(n.Entries) != 0 {
			t.Fatalf("empty tree answered %+v", n)
		}
	}
}

// TestApplyInBatchesMatchesLoad makes random batches of sets, replacements
// and deletes (a key may come twice in one batch: the later wins) through
// Apply, and after each batch expects the stored tree, byte for byte, to be
// the one Load makes of the same set: a batch that grows a bucket into
// several levels at once, or empties an inner node into a bucket, leaves no
// stale node behind.
func TestApplyInBatchesMatchesLoad(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	db := newDB(t)
	tree := New([]byte("s1"))
	want := map[Key]Leaf{}
	pool := randomEntries(rng, 4000)
	for round := range 40 {
		var us []Update
		n := 1 + rng.IntN(1500)
		switch {
		case round%10 == 0:
			n = 1 + rng.IntN(5) // small batches too
		case round >= 20 && round < 30:
			n = rng.IntN(10)
		}
		if round >= 20 && round < 30 { // halve the set: inner nodes shrink into buckets
			for k := range want {
				if rng.IntN(2) == 0 {
					us = append(us, Update{Key: k, Delete: true})
				}
			}
		}
		for range n {
			e := pool[rng.IntN(len(pool))]
			if rng.IntN(5) == 0 {
				us = append(us, Update{Key: e.Key, Delete: true})
				continue
			}
			fill(rng, e.Leaf[:])
			us = append(us, Update{Key: e.Key, Leaf: e.Leaf})
		}
		rng.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
		b := db.NewIndexedBatch()
		if err := tree.Apply(b, us); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		for _, u := range us {
			if u.Delete {
				delete(want, u.Key)
			} else {
				want[u.Key] = u.Leaf
			}
		}

		ref := openDB(t, t.TempDir())
		entries := make([]Entry, 0, len(want))
		for k, l := range want {
			entries = append(entries, Entry{Key: k, Leaf: l})
		}
		lb := ref.NewBatch()
		if err := tree.Load(ref, lb, entries); err != nil {
			t.Fatal(err)
		}
		if err := lb.Commit(pebble.NoSync); err != nil {
			t.Fatal(err)
		}
		got, exp := dump(t, db), dump(t, ref)
		if !slices.Equal(got, exp) {
			t.Fatalf("round %d (%d updates, %d entries): stored tree differs from Load's: %d keys, want %d",
				round, len(us), len(want), len(got), len(exp))
		}
		if h, c := root(t, tree, db); c != uint64(len(want)) {
			t.Fatalf("round %d: count %d, want %d (root %x)", round, c, len(want), h[:4])
		}
		ref.Close()
	}
}

// dump lists every key and value of db, as strings.
func dump(tb testing.TB, db *pebble.DB) []string {
	tb.Helper()
	it, err := db.NewIter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer it.Close()
	var out []string
	for it.First(); it.Valid(); it.Next() {
		out = append(out, string(it.Key())+"="+string(it.Value()))
	}
	return out
}
