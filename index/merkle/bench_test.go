package merkle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
)

// loadTree fills tree in db with entries through Load, in one batch.
func loadTree(tb testing.TB, db *pebble.DB, tree *Tree, entries []Entry) {
	tb.Helper()
	b := db.NewBatch()
	if err := tree.Load(db, b, entries); err != nil {
		tb.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkSet measures Set into a tree of 100,000 entries, in batches of
// 1000, against plain Pebble writes of the same (key, leaf) pairs.
func BenchmarkSet(b *testing.B) {
	const per = 1000
	rng := rand.New(rand.NewPCG(1, 1))
	db := newDB(b)
	tree := New([]byte("s"))
	loadTree(b, db, tree, randomEntries(rng, 100_000))

	raw := func(entries []Entry) time.Duration {
		start := time.Now()
		for i := 0; i < len(entries); i += per {
			batch := db.NewIndexedBatch()
			for _, e := range entries[i:min(i+per, len(entries))] {
				if err := batch.Set(append([]byte("raw"), e.Key[:]...), e.Leaf[:], nil); err != nil {
					b.Fatal(err)
				}
			}
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	base := raw(randomEntries(rng, 20_000))

	entries := randomEntries(rng, b.N)
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	start := time.Now()
	apply(b, db, tree, setOps(entries), per)
	elapsed := time.Since(start)
	b.StopTimer()
	perSet := elapsed.Seconds() / float64(b.N)
	b.ReportMetric(1/perSet, "records/s")
	b.ReportMetric(perSet/(base.Seconds()/20_000), "set/raw-pebble")
}

// BenchmarkApply is BenchmarkSet with each batch of 1000 made by one Apply,
// and reports its cost against one Set per entry in the same tree.
func BenchmarkApply(b *testing.B) {
	const per = 1000
	rng := rand.New(rand.NewPCG(1, 1))
	db := newDB(b)
	tree := New([]byte("s"))
	loadTree(b, db, tree, randomEntries(rng, 100_000))
	updates := func(entries []Entry) []Update {
		out := make([]Update, len(entries))
		for i, e := range entries {
			out[i] = Update{Key: e.Key, Leaf: e.Leaf}
		}
		return out
	}
	applyAll := func(us []Update) time.Duration {
		start := time.Now()
		for i := 0; i < len(us); i += per {
			batch := db.NewIndexedBatch()
			if err := tree.Apply(batch, us[i:min(i+per, len(us))]); err != nil {
				b.Fatal(err)
			}
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	start := time.Now()
	apply(b, db, tree, setOps(randomEntries(rng, 20_000)), per)
	perSet := time.Since(start).Seconds() / 20_000

	us := updates(randomEntries(rng, b.N))
	b.ReportAllocs()
	b.SetBytes(64)
	b.ResetTimer()
	elapsed := applyAll(us)
	b.StopTimer()
	perApply := elapsed.Seconds() / float64(b.N)
	b.ReportMetric(1/perApply, "records/s")
	b.ReportMetric(perApply/perSet, "apply/set")
}

// BenchmarkLoad1M builds a 1,000,000-entry tree with Load, compacts it and
// reports the build time and the bytes Pebble holds per leaf.
func BenchmarkLoad1M(b *testing.B) {
	const n = 1_000_000
	entries := randomEntries(rand.New(rand.NewPCG(2, 2)), n)
	b.ReportAllocs()
	b.SetBytes(64 * n)
	for b.Loop() {
		b.StopTimer()
		db := openDB(b, b.TempDir())
		tree := New([]byte("s"))
		b.StartTimer()
		start := time.Now()
		loadTree(b, db, tree, entries)
		b.ReportMetric(time.Since(start).Seconds(), "s/1M-build")
		b.StopTimer()
		if err := db.Compact([]byte{0}, []byte{0xff}, true); err != nil {
			b.Fatal(err)
		}
		m := db.Metrics()
		var size int64
		for _, l := range m.Levels {
			size += l.Size
		}
		b.ReportMetric(float64(size)/n, "B/leaf")
		b.ReportMetric(float64(size)/n/64, "leaf-bytes/raw-64")
		db.Close()
		b.StartTimer()
	}
}

// counting wraps a Source and counts the nodes and calls asked of it.
type counting struct {
	src          Source
	nodes, calls int
}

func (c *counting) Nodes(ctx context.Context, prefixes []Prefix) ([]Node, error) {
	c.nodes += len(prefixes)
	c.calls++
	return c.src.Nodes(ctx, prefixes)
}

// BenchmarkDiff1M diffs two 1,000,000-entry trees that differ in d keys and
// reports the nodes asked of the remote and the round trips (calls).
func BenchmarkDiff1M(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(3, 3))
	entries := randomEntries(rng, n)
	db := newDB(b)
	local, remote := New([]byte("a")), New([]byte("b"))
	start := time.Now()
	loadTree(b, db, local, entries)
	loadTree(b, db, remote, entries)
	b.Logf("built two 1M trees in %v", time.Since(start))

	changed := 0
	for _, d := range []int{1, 10, 1000} {
		// Change more leaves of the local tree until d keys differ.
		var ops []op
		for ; changed < d; changed++ {
			l := randomEntries(rng, 1)[0].Leaf
			ops = append(ops, op{key: entries[changed*997%n].Key, leaf: &l})
		}
		apply(b, db, local, ops, 1000)
		b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
			b.ReportAllocs()
			var nodes, calls int
			for b.Loop() {
				c := &counting{src: remote.Source(db)}
				found := 0
				if _, err := Diff(context.Background(), local.Source(db), c, func(Key, *Leaf, *Leaf) error { found++; return nil }); err != nil {
					b.Fatal(err)
				}
				if found != d {
					b.Fatalf("found %d differences, want %d", found, d)
				}
				nodes, calls = c.nodes, c.calls
			}
			b.ReportMetric(float64(nodes), "nodes/op")
			b.ReportMetric(float64(calls), "calls/op")
			b.ReportMetric(float64(nodes)/float64(d), "nodes/diff")
		})
	}
}

// BenchmarkApplyTouch is a touch of every file of a 100,000-file share as
// the index records it: every entry's leaf replaced, in batches of 8,192
// (a scan's) in random key order, most buckets changing in every batch. It
// reports the cost per entry against loading the same 100,000 entries into
// an empty tree in the same run.
func BenchmarkApplyTouch(b *testing.B) {
	const n, per = 100_000, 8192
	rng := rand.New(rand.NewPCG(5, 6))
	entries := randomEntries(rng, n)
	start := time.Now()
	loadTree(b, newDB(b), New([]byte("s")), entries)
	load := time.Since(start)

	db := newDB(b)
	tree := New([]byte("s"))
	loadTree(b, db, tree, entries)
	b.ReportAllocs()
	var elapsed time.Duration
	for b.Loop() {
		us := make([]Update, n)
		for i, e := range entries {
			fill(rng, e.Leaf[:])
			us[i] = Update{Key: e.Key, Leaf: e.Leaf}
		}
		rng.Shuffle(len(us), func(i, j int) { us[i], us[j] = us[j], us[i] })
		start := time.Now()
		for i := 0; i < n; i += per {
			batch := db.NewIndexedBatch()
			if err := tree.Apply(batch, us[i:min(i+per, n)]); err != nil {
				b.Fatal(err)
			}
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*n), "ns/entry")
	b.ReportMetric(elapsed.Seconds()/float64(b.N)/load.Seconds(), "touch/load")
}
