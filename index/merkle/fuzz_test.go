package merkle

import (
	"context"
	"errors"
	"testing"

	"github.com/cockroachdb/pebble"
)

// fuzzKey spreads a byte pair over keys that share long prefixes, so small
// inputs split and merge buckets several nibbles deep.
func fuzzKey(a, b byte) Key {
	var k Key
	k[0] = a & 0x31 // few distinct first bytes: crowded subtrees
	k[1] = b
	k[2] = a
	return k
}

// FuzzDiff builds two trees from fuzzed Sets and Deletes (in batches of
// fuzzed sizes) and checks that Diff reports exactly the set difference and
// that each root equals a fresh Load of the same entries.
func FuzzDiff(f *testing.F) {
	f.Add([]byte{0x03, 1, 2, 0x01, 1, 3, 0x02, 4, 5, 0x07, 1, 2})
	seed := make([]byte, 0, 3*120)
	for i := range 120 {
		seed = append(seed, byte(i%4), byte(i*7), byte(i*13))
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 3*400 {
			return
		}
		dbs := [2]*pebble.DB{newDB(t), newDB(t)}
		trees := [2]*Tree{New([]byte("a")), New([]byte("b"))}
		want := [2]map[Key]Leaf{{}, {}}
		batches := [2]*pebble.Batch{dbs[0].NewIndexedBatch(), dbs[1].NewIndexedBatch()}
		for ; len(data) >= 3; data = data[3:] {
			flags, key := data[0], fuzzKey(data[1], data[2])
			leaf := Leaf{flags >> 4}
			for s := range 2 {
				if flags&(1<<s) == 0 {
					continue
				}
				var err error
				if flags&4 != 0 {
					err = trees[s].Delete(batches[s], key)
					delete(want[s], key)
				} else {
					err = trees[s].Set(batches[s], key, leaf)
					want[s][key] = leaf
				}
				if err != nil {
					t.Fatal(err)
				}
				if flags&8 != 0 { // commit here: the next writes go to a new batch
					if err := batches[s].Commit(pebble.NoSync); err != nil {
						t.Fatal(err)
					}
					batches[s] = dbs[s].NewIndexedBatch()
				}
			}
		}
		for s := range 2 {
			if err := batches[s].Commit(pebble.NoSync); err != nil {
				t.Fatal(err)
			}
			checkAgainstLoad(t, dbs[s], trees[s], want[s])
		}

		got := map[Key][2]*Leaf{}
		_, err := Diff(context.Background(), trees[0].Source(dbs[0]), trees[1].Source(dbs[1]), func(k Key, l, r *Leaf) error {
			if _, dup := got[k]; dup {
				t.Fatalf("key %x twice", k[:4])
			}
			got[k] = [2]*Leaf{l, r}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		expect := 0
		for k, l := range want[0] {
			if r, ok := want[1][k]; !ok || r != l {
				expect++
				g := got[k]
				if g[0] == nil || *g[0] != l || (ok && (g[1] == nil || *g[1] != r)) || (!ok && g[1] != nil) {
					t.Fatalf("key %x: got %v", k[:4], g)
				}
			}
		}
		for k, r := range want[1] {
			if _, ok := want[0][k]; !ok {
				expect++
				if g := got[k]; g[0] != nil || g[1] == nil || *g[1] != r {
					t.Fatalf("key %x: got %v", k[:4], g)
				}
			}
		}
		if len(got) != expect {
			t.Fatalf("diff found %d keys, want %d", len(got), expect)
		}
	})
}

// checkAgainstLoad compares tree's root with a fresh Load of want.
func checkAgainstLoad(t *testing.T, db *pebble.DB, tree *Tree, want map[Key]Leaf) {
	t.Helper()
	var entries []Entry
	for k, l := range want {
		entries = append(entries, Entry{k, l})
	}
	fresh := New([]byte("fresh"))
	b := db.NewBatch()
	if err := fresh.Load(db, b, entries); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	h, n := root(t, tree, db)
	fh, fn := root(t, fresh, db)
	if h != fh || n != fn || n != uint64(len(want)) {
		t.Fatalf("root %x/%d, fresh load %x/%d, want %d entries", h[:8], n, fh[:8], fn, len(want))
	}
}

// FuzzHostileNodes lets fuzzed bytes rewrite a remote's answers. Diff must
// never panic or loop, and must either fail with ErrBadNode or report what
// it reported for the honest answers (an edit can leave an answer intact).
func FuzzHostileNodes(f *testing.F) {
	f.Add([]byte{0, 0, 1})
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{0xff, 0x10, 0x20, 0x30, 0x00, 0x01})
	db := newDB(f)
	ta, tb := New([]byte("a")), New([]byte("b"))
	b := db.NewIndexedBatch()
	for i := range 300 {
		k := fuzzKey(byte(i), byte(i*3))
		if err := ta.Set(b, k, Leaf{byte(i)}); err != nil {
			f.Fatal(err)
		}
		if i%5 != 0 {
			if err := tb.Set(b, k, Leaf{byte(i + i%3)}); err != nil {
				f.Fatal(err)
			}
		}
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		f.Fatal(err)
	}
	honestCount := 0
	if _, err := Diff(context.Background(), ta.Source(db), tb.Source(db), func(Key, *Leaf, *Leaf) error { honestCount++; return nil }); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, edits []byte) {
		calls := 0
		remote := liar{tb.Source(db), func(asked []Prefix, nodes []Node) []Node {
			calls++
			for e := edits; len(e) >= 3; e = e[3:] {
				if len(nodes) == 0 {
					break
				}
				n := &nodes[int(e[0])%len(nodes)]
				switch e[1] % 9 {
				case 0:
					n.Count += uint64(e[2])
				case 1:
					n.Hash[e[2]%32] ^= 1
				case 2:
					if n.Prefix.Len < MaxDepth {
						n.Prefix = n.Prefix.Child(e[2] % 16)
					} else {
						n.Prefix.Len--
					}
				case 3:
					if n.Children != nil {
						n.Children[e[2]%16].Count ^= uint64(e[2])
					}
				case 4:
					if len(n.Entries) > 0 {
						n.Entries[int(e[2])%len(n.Entries)].Key[e[2]%32] ^= 0x80
					}
				case 5:
					n.Entries = append(n.Entries, Entry{Key: Key{e[2]}})
				case 6:
					n.Children = nil
				case 7:
					nodes = nodes[:len(nodes)-1]
				case 8:
					// Self-consistent, so only a parent's claim can catch it;
					// the root has no parent (a remote may claim any tree).
					if len(n.Entries) > 0 && n.Prefix.Len > 0 {
						n.Entries = n.Entries[1:]
						n.Count = uint64(len(n.Entries))
						n.Hash = Hash{}
						if n.Count > 0 {
							n.Hash = bucketHash(n.Entries)
						}
					}
				}
			}
			return nodes
		}}
		found := 0
		_, err := Diff(context.Background(), ta.Source(db), remote, func(Key, *Leaf, *Leaf) error { found++; return nil })
		if err != nil {
			if !errors.Is(err, ErrBadNode) {
				t.Fatalf("err = %v, want ErrBadNode", err)
			}
			return
		}
		if found != honestCount {
			t.Fatalf("accepted answers changed the diff: %d keys, honest %d", found, honestCount)
		}
		if calls > 2*MaxDepth {
			t.Fatalf("%d calls", calls)
		}
	})
}
