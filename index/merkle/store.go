package merkle

import (
	"bytes"
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

// leaf reads the leaf stored at key (a leafKey), if any.
func (v *view) leaf(key []byte) (Leaf, bool, error) {
	if !v.it.SeekGE(key) || !bytes.Equal(v.it.Key(), key) {
		return Leaf{}, false, v.it.Error()
	}
	val := v.it.Value()
	var l Leaf
	if len(val) != len(l) {
		return Leaf{}, false, fmt.Errorf("leaf of %d bytes: %w", len(val), ErrCorrupt)
	}
	copy(l[:], val)
	return l, true, nil
}

// Stored node values. An inner node keeps its children's summaries, so an
// update reads one record per level and Nodes answers an inner node with one
// read; its own hash and count are computed from them. A bucket has no
// record, except the root's when the whole tree is one bucket.
const (
	valueBucket = 0x00 // 0x00 hash[32] count[uvarint]
	valueInner  = 0x01 // 0x01 (hash[32] count[8, big-endian]) x 16
	innerSize   = 1 + 16*40
)

// record is a decoded node value.
type record struct {
	found bool
	inner bool
	kids  [16]Child // inner only
	sum   Child     // the node's own hash and count
}

func encodeInner(kids *[16]Child) []byte {
	v := make([]byte, innerSize)
	v[0] = valueInner
	for i, k := range kids {
		copy(v[1+i*40:], k.Hash[:])
		binary.BigEndian.PutUint64(v[1+i*40+32:], k.Count)
	}
	return v
}

func encodeBucket(c Child) []byte {
	v := make([]byte, 1+32, 1+32+binary.MaxVarintLen64)
	v[0] = valueBucket
	copy(v[1:], c.Hash[:])
	return binary.AppendUvarint(v, c.Count)
}

func decodeRecord(v []byte) (record, error) {
	r := record{found: true}
	switch {
	case len(v) == innerSize && v[0] == valueInner:
		r.inner = true
		for i := range r.kids {
			copy(r.kids[i].Hash[:], v[1+i*40:])
			r.kids[i].Count = binary.BigEndian.Uint64(v[1+i*40+32:])
		}
		sum, ok := sumCounts(&r.kids)
		if !ok || sum <= BucketSize {
			return record{}, fmt.Errorf("inner node of %d entries: %w", sum, ErrCorrupt)
		}
		r.sum = Child{Hash: innerHash(&r.kids), Count: sum}
	case len(v) > 1+32 && len(v) <= 1+32+binary.MaxVarintLen64 && v[0] == valueBucket:
		copy(r.sum.Hash[:], v[1:])
		count, n := binary.Uvarint(v[1+32:])
		if n != len(v)-1-32 || count == 0 || count > BucketSize {
			return record{}, fmt.Errorf("bucket node with bad count: %w", ErrCorrupt)
		}
		r.sum.Count = count
	default:
		return record{}, fmt.Errorf("node value of %d bytes: %w", len(v), ErrCorrupt)
	}
	return r, nil
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

func (v *view) close() error { return v.it.Close() }

// node reads the record of p, if one is stored.
func (v *view) node(p Prefix) (record, error) {
	key := v.t.nodeKey(p)
	if !v.it.SeekGE(key) || string(v.it.Key()) != string(key) {
		return record{}, v.it.Error()
	}
	return decodeRecord(v.it.Value())
}

// inner reads the record of p, which must be an inner node of the given
// summary (as its parent claims).
func (v *view) inner(p Prefix, want Child) (record, error) {
	r, err := v.node(p)
	if err != nil {
		return record{}, err
	}
	if !r.inner || r.sum != want {
		return record{}, fmt.Errorf("node %v disagrees with its parent: %w", p, ErrCorrupt)
	}
	return r, nil
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
