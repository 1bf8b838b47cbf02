package merkle

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
)

// Key kinds after the tree's prefix. Leaves sort before nodes.
const (
	kindLeaf = 'L'
	kindNode = 'N'
)

func (t *Tree) leafKey(k Key) []byte {
	out := make([]byte, 0, len(t.prefix)+1+len(k))
	out = append(out, t.prefix...)
	out = append(out, kindLeaf)
	return append(out, k[:]...)
}

func (t *Tree) nodeKey(p Prefix) []byte {
	n := (int(p.Len) + 1) / 2
	out := make([]byte, 0, len(t.prefix)+2+n)
	out = append(out, t.prefix...)
	out = append(out, kindNode, p.Len)
	return append(out, p.Nibbles[:n]...)
}

func getLeaf(r pebble.Reader, key []byte) (Leaf, bool, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return Leaf{}, false, nil
	}
	if err != nil {
		return Leaf{}, false, err
	}
	defer closer.Close()
	var l Leaf
	if len(v) != len(l) {
		return Leaf{}, false, fmt.Errorf("leaf of %d bytes: %w", len(v), ErrCorrupt)
	}
	copy(l[:], v)
	return l, true, nil
}

// decodeNode reads a stored node value: hash[32] count[uvarint].
func decodeNode(v []byte) (Child, error) {
	var c Child
	if len(v) <= len(c.Hash) || len(v) > len(c.Hash)+binary.MaxVarintLen64 {
		return Child{}, fmt.Errorf("node value of %d bytes: %w", len(v), ErrCorrupt)
	}
	copy(c.Hash[:], v)
	count, n := binary.Uvarint(v[len(c.Hash):])
	if n != len(v)-len(c.Hash) || count == 0 {
		return Child{}, fmt.Errorf("node value with bad count: %w", ErrCorrupt)
	}
	c.Count = count
	return c, nil
}

// view reads one tree through one iterator (of a DB, snapshot or batch).
type view struct {
	t  *Tree
	it *pebble.Iterator
}

func (t *Tree) newView(r pebble.Reader) (*view, error) {
	lower := append(append([]byte(nil), t.prefix...), kindLeaf)
	upper := append(append([]byte(nil), t.prefix...), kindNode+1)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, err
	}
	return &view{t: t, it: it}, nil
}

func (v *view) close() { v.it.Close() }

// node reads the stored summary of p; found is false when none is stored.
func (v *view) node(p Prefix) (c Child, found bool, err error) {
	key := v.t.nodeKey(p)
	if !v.it.SeekGE(key) || string(v.it.Key()) != string(key) {
		return Child{}, false, v.it.Error()
	}
	c, err = decodeNode(v.it.Value())
	return c, err == nil, err
}

// children reads the stored summaries of p's 16 children. One seek per
// child, not one scan: a node key is rewritten by every update below it, and
// a scan would step over every old version still in the memtable.
func (v *view) children(p Prefix) ([16]Child, error) {
	var kids [16]Child
	for c := range kids {
		kid, _, err := v.node(p.Child(byte(c)))
		if err != nil {
			return kids, err
		}
		kids[c] = kid
	}
	return kids, nil
}

// leaves reads up to limit entries under p, in key order.
func (v *view) leaves(p Prefix, limit int) ([]Entry, error) {
	var out []Entry
	start := v.t.leafKey(Key(p.Nibbles))
	base := len(start) - len(Key{})
	for ok := v.it.SeekGE(start); ok && len(out) < limit; ok = v.it.Next() {
		k := v.it.Key()
		if len(k) != len(start) || k[base-1] != kindLeaf {
			break // past the leaves
		}
		var e Entry
		copy(e.Key[:], k[base:])
		if !p.Contains(e.Key) {
			break
		}
		val := v.it.Value()
		if len(val) != len(e.Leaf) {
			return nil, fmt.Errorf("leaf of %d bytes: %w", len(val), ErrCorrupt)
		}
		copy(e.Leaf[:], val)
		out = append(out, e)
	}
	return out, v.it.Error()
}
