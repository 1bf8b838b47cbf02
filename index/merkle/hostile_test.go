package merkle

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble"
)

// liar answers like an honest tree, then lets edit change the answers.
type liar struct {
	honest Source
	edit   func(asked []Prefix, nodes []Node) []Node
}

func (l liar) Nodes(ctx context.Context, prefixes []Prefix) ([]Node, error) {
	nodes, err := l.honest.Nodes(ctx, prefixes)
	if err != nil {
		return nil, err
	}
	return l.edit(prefixes, nodes), nil
}

// answer is a Source that makes up every node itself.
type answer func(p Prefix) Node

func (a answer) Nodes(_ context.Context, prefixes []Prefix) ([]Node, error) {
	out := make([]Node, len(prefixes))
	for i, p := range prefixes {
		out[i] = a(p)
	}
	return out, nil
}

func loaded(t *testing.T, n int, seed uint64) (*pebble.DB, *Tree, []Entry) {
	t.Helper()
	db := newDB(t)
	tree := New([]byte("t"))
	entries := randomEntries(rand.New(rand.NewPCG(seed, seed)), n)
	b := db.NewBatch()
	if err := tree.Load(db, b, entries); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	return db, tree, entries
}

func TestDiffRejectsHostileRemote(t *testing.T) {
	dbA, ta, _ := loaded(t, 3000, 1)
	dbB, tb, _ := loaded(t, 3000, 2)
	local, honest := ta.Source(dbA), tb.Source(dbB)

	// A self-consistent chain of inner nodes all the way down: each node's
	// only child is the next one. It must stop at MaxDepth, not loop.
	chain := map[Prefix]Node{}
	var below Child
	for depth := MaxDepth; depth >= 0; depth-- {
		p := Prefix{Len: uint8(depth)}
		kids := [16]Child{0: {Hash: Hash{1}, Count: 1000}}
		if depth < MaxDepth {
			kids[0] = below
		}
		n := Node{Prefix: p, Count: 1000, Children: &kids, Hash: innerHash(&kids)}
		chain[p] = n
		below = Child{Hash: n.Hash, Count: n.Count}
	}

	tests := []struct {
		name   string
		remote Source
	}{
		{"too few nodes", liar{honest, func(_ []Prefix, n []Node) []Node { return n[:len(n)-1] }}},
		{"too many nodes", liar{honest, func(_ []Prefix, n []Node) []Node { return append(n, n[0]) }}},
		{"wrong prefix", liar{honest, func(_ []Prefix, n []Node) []Node {
			n[len(n)-1].Prefix = n[len(n)-1].Prefix.Child(3)
			return n
		}}},
		{"huge count", liar{honest, func(_ []Prefix, n []Node) []Node {
			n[0].Count = 1 << 62
			return n
		}}},
		{"children overflow", answer(func(p Prefix) Node {
			kids := [16]Child{{Hash: Hash{1}, Count: ^uint64(0)}, {Hash: Hash{2}, Count: 2}}
			return Node{Prefix: p, Count: 500, Children: &kids, Hash: innerHash(&kids)}
		})},
		{"inner without children", answer(func(p Prefix) Node { return Node{Prefix: p, Count: 500, Hash: Hash{9}} })},
		{"bucket with too many entries", answer(func(p Prefix) Node {
			es := randomEntries(rand.New(rand.NewPCG(9, 9)), BucketSize+1)
			sortEntries(es)
			return Node{Prefix: p, Count: uint64(len(es)), Entries: es, Hash: bucketHash(es)}
		})},
		{"empty child with a hash", answer(func(p Prefix) Node {
			kids := [16]Child{{Hash: Hash{1}, Count: 100}, {Hash: Hash{2}}}
			return Node{Prefix: p, Count: 100, Children: &kids, Hash: innerHash(&kids)}
		})},
		{"empty node with a hash", answer(func(p Prefix) Node { return Node{Prefix: p, Hash: Hash{1}} })},
		{"bucket hash wrong", liar{honest, func(_ []Prefix, n []Node) []Node {
			for i := range n {
				if n[i].Children == nil && len(n[i].Entries) > 0 {
					n[i].Entries[0].Leaf[0] ^= 1
				}
			}
			return n
		}}},
		{"entries unsorted", liar{honest, func(_ []Prefix, n []Node) []Node {
			for i := range n {
				if es := n[i].Entries; len(es) > 1 {
					es[0], es[1] = es[1], es[0]
					n[i].Hash = bucketHash(es)
				}
			}
			return n
		}}},
		{"entry outside its prefix", liar{honest, func(_ []Prefix, n []Node) []Node {
			for i := range n {
				if es := n[i].Entries; len(es) > 0 && n[i].Prefix.Len > 0 {
					es[len(es)-1].Key[0] ^= 0x80
					sortEntries(es)
					n[i].Hash = bucketHash(es)
				}
			}
			return n
		}}},
		{"child not what its parent claimed", liar{honest, func(asked []Prefix, n []Node) []Node {
			// A well-formed bucket, but not the one the parent hashed.
			for i := range n {
				if es := n[i].Entries; len(es) > 1 {
					n[i].Entries = es[1:]
					n[i].Count--
					n[i].Hash = bucketHash(n[i].Entries)
				}
			}
			return n
		}}},
		{"chain past full depth", answer(func(p Prefix) Node {
			if n, ok := chain[p]; ok {
				return n
			}
			return Node{Prefix: p}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			asked, err := Diff(context.Background(), local, tt.remote, func(Key, *Leaf, *Leaf) error { return nil })
			if !errors.Is(err, ErrBadNode) {
				t.Fatalf("err = %v, want ErrBadNode", err)
			}
			t.Log(err)
			if asked > 10*MaxDepth*16 {
				t.Fatalf("asked %d nodes before giving up", asked)
			}
		})
	}

	// A failing source and a failing callback end Diff with their errors.
	boom := errors.New("boom")
	if _, err := Diff(context.Background(), local, errSource{boom}, func(Key, *Leaf, *Leaf) error { return nil }); !errors.Is(err, boom) {
		t.Fatalf("source error: %v", err)
	}
	if _, err := Diff(context.Background(), local, honest, func(Key, *Leaf, *Leaf) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("callback error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Diff(ctx, local, honest, func(Key, *Leaf, *Leaf) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
}

type errSource struct{ err error }

func (e errSource) Nodes(context.Context, []Prefix) ([]Node, error) { return nil, e.err }
