package merkle

import (
	"context"
	"fmt"
)

// diffBatch is how many prefixes Diff asks of a Source per call. Smaller
// than MaxNodesPerCall to keep answers (and Diff's pending work) modest; a
// diff of d keys still takes about depth calls while d*16 fits.
const diffBatch = 1024

// Diff walks two trees from the root, descending only where hashes differ,
// and calls fn for every key whose leaf differs (nil where a side lacks it),
// once per key, in no particular order. It returns the number of nodes it
// asked of remote.
//
// Nodes are asked level by level, many per call, so a diff costs about one
// round trip per level of the tree. Where one side is a bucket and the other
// an inner node, the bucket's children are computed from its entries rather
// than asked. Every answer is validated; a bad one from either side ends
// Diff with an error wrapping ErrBadNode.
func Diff(ctx context.Context, local, remote Source, fn func(key Key, local, remote *Leaf) error) (int, error) {
	d := differ{local: local, remote: remote, fn: fn}
	root := pending{prefix: Prefix{}, local: side{unchecked: true}, remote: side{unchecked: true}}
	d.stack = append(d.stack, root)
	for len(d.stack) > 0 {
		if err := ctx.Err(); err != nil {
			return d.asked, err
		}
		n := min(len(d.stack), diffBatch)
		batch := append([]pending(nil), d.stack[len(d.stack)-n:]...)
		d.stack = d.stack[:len(d.stack)-n]
		if err := d.fetch(ctx, batch); err != nil {
			return d.asked, err
		}
		for i := range batch {
			if err := d.compare(batch[i].prefix, batch[i].local.node, batch[i].remote.node); err != nil {
				return d.asked, err
			}
		}
	}
	return d.asked, nil
}

// side is one tree's view of a pending prefix: its node, once known, and
// the (hash, count) its parent claimed for it.
type side struct {
	node      *Node
	want      Child
	unchecked bool // the root: no parent claim
}

type pending struct {
	prefix        Prefix
	local, remote side
}

type differ struct {
	local, remote Source
	fn            func(key Key, local, remote *Leaf) error
	stack         []pending // depth-first, so memory stays ~ depth*16*diffBatch
	asked         int       // nodes asked of remote
}

// fetch fills in every unknown node of batch, one call per side.
func (d *differ) fetch(ctx context.Context, batch []pending) error {
	for _, s := range []struct {
		name string
		src  Source
		get  func(*pending) *side
	}{
		{"local", d.local, func(p *pending) *side { return &p.local }},
		{"remote", d.remote, func(p *pending) *side { return &p.remote }},
	} {
		var prefixes []Prefix
		var sides []*side
		for i := range batch {
			if sd := s.get(&batch[i]); sd.node == nil {
				prefixes = append(prefixes, batch[i].prefix)
				sides = append(sides, sd)
			}
		}
		if len(prefixes) == 0 {
			continue
		}
		if s.name == "remote" {
			d.asked += len(prefixes)
		}
		nodes, err := s.src.Nodes(ctx, prefixes)
		if err != nil {
			return fmt.Errorf("ask %s for %d merkle nodes: %w", s.name, len(prefixes), err)
		}
		if len(nodes) != len(prefixes) {
			return fmt.Errorf("%s answered %d merkle nodes for %d asked: %w", s.name, len(nodes), len(prefixes), ErrBadNode)
		}
		for i := range nodes {
			if err := check(&nodes[i], prefixes[i], sides[i]); err != nil {
				return fmt.Errorf("%s merkle node %v: %w", s.name, prefixes[i], err)
			}
			sides[i].node = &nodes[i]
		}
	}
	return nil
}

// check validates an answered node: its prefix, its shape, its hash, and
// its parent's claim.
func check(n *Node, p Prefix, sd *side) error {
	if n.Prefix != p {
		return fmt.Errorf("answer for prefix %v: %w", n.Prefix, ErrBadNode)
	}
	switch {
	case n.Count == 0:
		if n.Hash != (Hash{}) || n.Children != nil || len(n.Entries) != 0 {
			return fmt.Errorf("empty node with content: %w", ErrBadNode)
		}
	case n.Count <= BucketSize:
		if n.Children != nil || uint64(len(n.Entries)) != n.Count {
			return fmt.Errorf("bucket of %d with %d entries: %w", n.Count, len(n.Entries), ErrBadNode)
		}
		for i, e := range n.Entries {
			if !p.Contains(e.Key) {
				return fmt.Errorf("entry %x outside the node: %w", e.Key[:4], ErrBadNode)
			}
			if i > 0 && compareKeys(n.Entries[i-1].Key, e.Key) >= 0 {
				return fmt.Errorf("entries out of order: %w", ErrBadNode)
			}
		}
		if bucketHash(n.Entries) != n.Hash {
			return fmt.Errorf("bucket hash mismatch: %w", ErrBadNode)
		}
	default:
		if n.Children == nil || len(n.Entries) != 0 || p.Len >= MaxDepth {
			return fmt.Errorf("inner node of %d without children or too deep: %w", n.Count, ErrBadNode)
		}
		sum, ok := sumCounts(n.Children)
		if !ok {
			return fmt.Errorf("children counts overflow: %w", ErrBadNode)
		}
		if sum != n.Count {
			return fmt.Errorf("children hold %d entries, node says %d: %w", sum, n.Count, ErrBadNode)
		}
		for _, k := range n.Children {
			if (k.Count == 0) != (k.Hash == Hash{}) {
				return fmt.Errorf("child count and hash disagree: %w", ErrBadNode)
			}
		}
		if innerHash(n.Children) != n.Hash {
			return fmt.Errorf("inner hash mismatch: %w", ErrBadNode)
		}
	}
	if !sd.unchecked && (n.Hash != sd.want.Hash || n.Count != sd.want.Count) {
		return fmt.Errorf("node differs from its parent's claim: %w", ErrBadNode)
	}
	return nil
}

// compare reports the keys under p where the two (validated) nodes differ,
// or queues the children that differ.
func (d *differ) compare(p Prefix, l, r *Node) error {
	if l.Hash == r.Hash && l.Count == r.Count {
		return nil
	}
	if l.Children == nil && r.Children == nil {
		return d.mergeEntries(l.Entries, r.Entries)
	}
	lk, lsub := childrenOf(l)
	rk, rsub := childrenOf(r)
	for c := range 16 {
		if lk[c] == rk[c] {
			continue
		}
		d.stack = append(d.stack, pending{
			prefix: p.Child(byte(c)),
			local:  side{node: lsub[c], want: lk[c]},
			remote: side{node: rsub[c], want: rk[c]},
		})
	}
	return nil
}

// childrenOf returns the children of n: as claimed by an inner node (nodes
// still to ask), or computed from a bucket's entries (nodes already known).
func childrenOf(n *Node) ([16]Child, [16]*Node) {
	var kids [16]Child
	var sub [16]*Node
	if n.Children != nil {
		return *n.Children, sub
	}
	runs := splitByNibble(n.Entries, int(n.Prefix.Len))
	for c, run := range runs {
		child := &Node{Prefix: n.Prefix.Child(byte(c)), Count: uint64(len(run)), Entries: run}
		if len(run) > 0 {
			child.Hash = bucketHash(run)
		}
		kids[c] = Child{Hash: child.Hash, Count: child.Count}
		sub[c] = child
	}
	return kids, sub
}

// mergeEntries reports the differences between two sorted entry lists.
func (d *differ) mergeEntries(l, r []Entry) error {
	for len(l) > 0 || len(r) > 0 {
		var err error
		switch {
		case len(r) == 0 || len(l) > 0 && compareKeys(l[0].Key, r[0].Key) < 0:
			leaf := l[0].Leaf
			err = d.fn(l[0].Key, &leaf, nil)
			l = l[1:]
		case len(l) == 0 || compareKeys(l[0].Key, r[0].Key) > 0:
			leaf := r[0].Leaf
			err = d.fn(r[0].Key, nil, &leaf)
			r = r[1:]
		default:
			if l[0].Leaf != r[0].Leaf {
				ll, rl := l[0].Leaf, r[0].Leaf
				err = d.fn(l[0].Key, &ll, &rl)
			}
			l, r = l[1:], r[1:]
		}
		if err != nil {
			return err
		}
	}
	return nil
}
