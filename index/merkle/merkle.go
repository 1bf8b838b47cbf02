// Package merkle keeps a share's Merkle tree in Pebble and finds the keys in
// which two trees differ.
//
// # Nouns
//
// A Key places a record in the tree (a keyed BLAKE3 hash of its path, so keys
// are uniformly spread); a Leaf is the BLAKE3 of the record's stored envelope;
// an Entry is the pair. A node is named by a Prefix: the first Len nibbles of
// a key. The node at prefix p summarizes every entry whose key starts with p:
//
//   - no entry: the empty node, count 0, zero Hash;
//   - 1..BucketSize entries: a bucket,
//     Hash = BLAKE3(0x00 || key_1 || leaf_1 || ... || key_n || leaf_n), keys ascending;
//   - more: an inner node with 16 children (one per next nibble),
//     Hash = BLAKE3(0x01 || hash_0 || count_0 || ... || hash_15 || count_15),
//     counts as 8-byte big-endian, an empty child as a zero hash and count 0.
//
// A node is a pure function of the set of entries under its prefix, so the
// tree is history-independent: the same entries give the same root on every
// device, whatever the order of writes. Hashing the counts into inner nodes
// lets a peer trust a subtree's size once it trusts its hash.
//
// # Storage
//
// Under the tree's key prefix T (one per share):
//
//	T 'L' key[32]                    -> leaf[32]                            one per entry
//	T 'N' len[1] nibbles[(len+1)/2]  -> 0x01 (hash[32] count[8]) x 16       an inner node
//	T 'N' 0x00                       -> 0x00 hash[32] count[uvarint]        the root, if a bucket
//
// Only inner nodes are stored, each with its children's summaries; a bucket
// is summarized in its parent's record and its entries are read from the
// leaves. An update reads and rewrites the O(depth) inner nodes on one path
// (one seek each) and rescans one bucket; the root is one read. Apply
// makes a batch of updates at once, reading and rewriting each node on
// their paths once.
//
// # Contracts
//
// Set, Delete and Apply write into the caller's indexed batch, so the tree
// changes atomically with the records they describe; a Tree holds no state
// of its own and is safe for concurrent use, but writers to one tree must
// not interleave batches (the caller's lock). Diff trusts nothing a Source answers: every
// node is checked against its prefix, its content and its parent's claim, and
// a bad answer ends Diff with ErrBadNode.
package merkle

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble"
	"github.com/zeebo/blake3"
)

const (
	// BucketSize is the most entries a bucket holds; a subtree with more is
	// an inner node. Part of the hash format: every device must agree.
	BucketSize = 32
	// MaxDepth is the longest Prefix, in nibbles (a whole Key).
	MaxDepth = 64
	// MaxNodesPerCall is the most prefixes one Nodes call may ask. The
	// largest answer is then about MaxNodesPerCall*BucketSize*64 bytes (8 MiB).
	MaxNodesPerCall = 4096
)

var (
	// ErrBadNode: a Source answered a node that is not well formed or does
	// not match what its parent claimed. From a peer, that peer misbehaved.
	ErrBadNode = errors.New("bad merkle node")
	// ErrBadQuery: a Nodes call asked for an invalid prefix or too many.
	ErrBadQuery = errors.New("bad merkle query")
	// ErrCorrupt: the stored tree is inconsistent with itself; rebuild the
	// index (the database can be deleted and rebuilt from the folder).
	ErrCorrupt = errors.New("merkle tree corrupt")
	// ErrNotEmpty: Load was asked to fill a tree that already has entries.
	ErrNotEmpty = errors.New("merkle tree not empty")
)

// Key places a record in the tree: a keyed BLAKE3 hash of its path, so a member
// that cannot read names still holds the same tree.
type Key [32]byte

// Leaf is the BLAKE3-256 of a record's stored envelope.
type Leaf [32]byte

// Hash is a node's hash. The zero Hash is the empty tree.
type Hash [32]byte

// Entry is one leaf of the tree.
type Entry struct {
	Key  Key
	Leaf Leaf
}

// Child summarizes one child of an inner node.
type Child struct {
	Hash  Hash
	Count uint64
}

// Node is what one device tells another about a subtree: its hash and count,
// and either its 16 children (inner node) or its entries (a bucket: a
// subtree small enough to list).
type Node struct {
	Prefix   Prefix
	Hash     Hash
	Count    uint64
	Children *[16]Child // set for an inner node
	Entries  []Entry    // set for a bucket, sorted by Key
}

// Source answers node queries: a local Tree, or a remote peer over the wire.
// It answers one Node per prefix, in order; a prefix with no entries gets
// the empty node. At most MaxNodesPerCall prefixes are asked at once.
type Source interface {
	Nodes(ctx context.Context, prefixes []Prefix) ([]Node, error)
}

// Tree is one share's tree, stored under a key prefix in Pebble.
type Tree struct {
	prefix []byte // T; every key of the tree starts with it
}

// New returns the tree stored under prefix. Prefix must not be a prefix of
// another tree's prefix (give each share a fixed-length one).
func New(prefix []byte) *Tree { return &Tree{prefix: append([]byte(nil), prefix...)} }

// Set puts (key, leaf) into the tree within batch b (an indexed batch, so reads
// see its own writes).
func (t *Tree) Set(b *pebble.Batch, key Key, leaf Leaf) error {
	if err := t.Apply(b, []Update{{Key: key, Leaf: leaf}}); err != nil {
		return fmt.Errorf("set merkle key %x: %w", key[:4], err)
	}
	return nil
}

// Delete removes key from the tree within batch b. Deleting a missing key
// does nothing.
func (t *Tree) Delete(b *pebble.Batch, key Key) error {
	if err := t.Apply(b, []Update{{Key: key, Delete: true}}); err != nil {
		return fmt.Errorf("delete merkle key %x: %w", key[:4], err)
	}
	return nil
}

// Update is one change of the tree: Key gets Leaf, or is removed when
// Delete is set.
type Update struct {
	Key    Key
	Leaf   Leaf
	Delete bool
}

// Apply makes updates within batch b (an indexed batch), as one Set or
// Delete each would, in order (of two updates of one key, the later wins).
// Each node on the updated paths is read and rewritten once, however many
// updates pass through it: a batch of n updates in a tree of m entries
// rewrites about min(n, m/BucketSize) nodes, where n Sets rewrite the
// upper nodes n times.
func (t *Tree) Apply(b *pebble.Batch, updates []Update) error {
	if !b.Indexed() {
		return errors.New("batch is not indexed")
	}
	if len(updates) == 0 {
		return nil
	}
	us := append([]Update(nil), updates...)
	slices.SortStableFunc(us, func(a, b Update) int { return compareKeys(a.Key, b.Key) })
	changes := make([]keyDelta, 0, len(us))
	// Many old leaves are read through one iterator, in key order: a Get
	// each built an iterator over every level per key (a quarter of
	// Apply's time in a touch of many files), where a seek forward mostly
	// stays in the block the last one loaded. It sees the batch as it is
	// now, which is all it needs: each key is read once, before its write.
	// A few are read with a Get each, which costs less than an iterator.
	read := func(lk []byte) (Leaf, bool, error) { return getLeaf(b, lk) }
	if len(us) >= iterLeaves {
		leaves, err := t.newView(b)
		if err != nil {
			return err
		}
		defer leaves.close()
		read = leaves.leaf
	}
	for i, u := range us {
		if i+1 < len(us) && us[i+1].Key == u.Key {
			continue // a later update of the key wins
		}
		delta, err := t.setLeaf(b, read, u)
		if err != nil {
			return err
		}
		if delta != noChange {
			changes = append(changes, keyDelta{key: u.Key, delta: delta})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	// The view sees the leaf writes above and none of the node writes
	// below: each node is read as it was before the batch.
	v, err := t.newView(b)
	if err != nil {
		return err
	}
	defer v.close()
	root, err := v.node(Prefix{})
	if err != nil {
		return err
	}
	sum, err := t.apply(b, v, Prefix{}, root.sum, changes)
	if err != nil {
		return err
	}
	return t.putRootBucket(b, sum)
}

// keyDelta is one key whose leaf changed, and how its subtree's count
// changes with it: -1 removed, 0 replaced, +1 added.
type keyDelta struct {
	key   Key
	delta int
}

// noChange: setLeaf found the leaf as the update wants it.
const noChange = 2

// iterLeaves is the fewest updates whose old leaves Apply reads through
// one iterator rather than a Get each.
const iterLeaves = 8

// setLeaf writes u's leaf into b and returns the change of count, or
// noChange. read reads the leaf u replaces.
func (t *Tree) setLeaf(b *pebble.Batch, read func(leafKey []byte) (Leaf, bool, error), u Update) (int, error) {
	lk := t.leafKey(u.Key)
	old, found, err := read(lk)
	if err != nil {
		return 0, err
	}
	switch {
	case !u.Delete && found && old == u.Leaf:
		return noChange, nil
	case !u.Delete:
		delta := 0
		if !found {
			delta = 1
		}
		return delta, b.Set(lk, u.Leaf[:], nil)
	case !found:
		return noChange, nil
	}
	return -1, b.Delete(lk, nil)
}

// apply returns the new summary of the subtree at p, of summary cur before
// the batch, once changes (sorted, all under p) are made: an inner node
// that stays one has its record read once, the changes passed down to its
// children, and its record rewritten once. Where the shape may change (a
// bucket stays a bucket, grows into an inner node or shrinks from one) the
// subtree is rebuilt from its leaves.
func (t *Tree) apply(b *pebble.Batch, v *view, p Prefix, cur Child, changes []keyDelta) (Child, error) {
	delta := 0
	for _, c := range changes {
		delta += c.delta
	}
	if delta < 0 && uint64(-delta) > cur.Count {
		return Child{}, fmt.Errorf("node %v of %d entries loses %d: %w", p, cur.Count, -delta, ErrCorrupt)
	}
	n := add(cur.Count, delta)
	if cur.Count > BucketSize && n > BucketSize {
		rec, err := v.inner(p, cur)
		if err != nil {
			return Child{}, err
		}
		if p.Len >= MaxDepth {
			return Child{}, fmt.Errorf("inner node at full depth: %w", ErrCorrupt)
		}
		kids := rec.kids
		for c, run := range splitChanges(changes, int(p.Len)) {
			if len(run) == 0 {
				continue
			}
			if kids[c], err = t.apply(b, v, p.Child(byte(c)), rec.kids[c], run); err != nil {
				return Child{}, err
			}
		}
		if sum, ok := sumCounts(&kids); !ok || sum != n {
			return Child{}, fmt.Errorf("node %v: children hold %d entries, %d expected: %w", p, sum, n, ErrCorrupt)
		}
		if err := b.Set(t.nodeKey(p), encodeInner(&kids), nil); err != nil {
			return Child{}, err
		}
		return Child{Hash: innerHash(&kids), Count: n}, nil
	}
	if cur.Count > BucketSize { // merge: p's record and those below are stale
		if err := t.clear(b, v, p, cur); err != nil {
			return Child{}, err
		}
	}
	entries, err := v.leaves(p, int(min(n, uint64(len(changes))+BucketSize))+1)
	if err != nil {
		return Child{}, err
	}
	if uint64(len(entries)) != n {
		return Child{}, fmt.Errorf("node %v: %d leaves stored, %d expected: %w", p, len(entries), n, ErrCorrupt)
	}
	return t.build(b, p, entries)
}

// build returns the summary of the subtree at p holding entries (sorted, all
// under p) and stores the record of every inner node in it, p included.
func (t *Tree) build(b *pebble.Batch, p Prefix, entries []Entry) (Child, error) {
	n := uint64(len(entries))
	if n == 0 {
		return Child{}, nil
	}
	if n <= BucketSize {
		return Child{Hash: bucketHash(entries), Count: n}, nil
	}
	if p.Len >= MaxDepth {
		return Child{}, fmt.Errorf("%d entries share key %v", n, p)
	}
	var kids [16]Child
	for c, run := range splitByNibble(entries, int(p.Len)) {
		kid, err := t.build(b, p.Child(byte(c)), run)
		if err != nil {
			return Child{}, err
		}
		kids[c] = kid
	}
	if err := b.Set(t.nodeKey(p), encodeInner(&kids), nil); err != nil {
		return Child{}, err
	}
	return Child{Hash: innerHash(&kids), Count: n}, nil
}

// clear deletes the records of the inner node p (of summary want) and of
// the inner nodes below it, as read through v.
func (t *Tree) clear(b *pebble.Batch, v *view, p Prefix, want Child) error {
	rec, err := v.inner(p, want)
	if err != nil {
		return err
	}
	if p.Len >= MaxDepth {
		return fmt.Errorf("inner node at full depth: %w", ErrCorrupt)
	}
	for c, kid := range rec.kids {
		if kid.Count > BucketSize {
			if err := t.clear(b, v, p.Child(byte(c)), kid); err != nil {
				return err
			}
		}
	}
	return b.Delete(t.nodeKey(p), nil)
}

// putRootBucket stores the root when the whole tree is one bucket (an
// inner root is stored by build), or removes it when the tree is empty.
func (t *Tree) putRootBucket(b *pebble.Batch, root Child) error {
	switch {
	case root.Count == 0:
		return b.Delete(t.nodeKey(Prefix{}), nil)
	case root.Count <= BucketSize:
		return b.Set(t.nodeKey(Prefix{}), encodeBucket(root), nil)
	}
	return nil
}

// Root returns the root hash and the number of leaves: one stored read.
func (t *Tree) Root(r pebble.Reader) (Hash, uint64, error) {
	v, err := t.newView(r)
	if err != nil {
		return Hash{}, 0, err
	}
	defer v.close()
	root, err := v.node(Prefix{})
	if err != nil {
		return Hash{}, 0, fmt.Errorf("read merkle root: %w", err)
	}
	return root.sum.Hash, root.sum.Count, nil
}

// Load fills an empty tree with entries in one pass, writing into b (which
// need not be indexed; the caller commits it). r is read to check that the
// tree is empty. It costs one write per entry and per stored node, against
// O(depth) node rewrites per Set. Entries may come in any order; duplicate
// keys are an error.
func (t *Tree) Load(r pebble.Reader, b *pebble.Batch, entries []Entry) error {
	if _, n, err := t.Root(r); err != nil {
		return err
	} else if n != 0 {
		return fmt.Errorf("load %d entries: %w (it has %d)", len(entries), ErrNotEmpty, n)
	}
	sorted := append([]Entry(nil), entries...)
	sortEntries(sorted)
	for i := range sorted {
		if i > 0 && sorted[i].Key == sorted[i-1].Key {
			return fmt.Errorf("load entries: duplicate key %x", sorted[i].Key[:])
		}
		if err := b.Set(t.leafKey(sorted[i].Key), sorted[i].Leaf[:], nil); err != nil {
			return err
		}
	}
	root, err := t.build(b, Prefix{}, sorted)
	if err != nil {
		return fmt.Errorf("load entries: %w", err)
	}
	return t.putRootBucket(b, root)
}

// Source returns the tree as read through r, for Diff.
func (t *Tree) Source(r pebble.Reader) Source { return localSource{t: t, r: r} }

type localSource struct {
	t *Tree
	r pebble.Reader
}

func (s localSource) Nodes(ctx context.Context, prefixes []Prefix) ([]Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.t.Nodes(s.r, prefixes)
}

// Nodes answers node queries from r: one Node per prefix, in order. An
// inner node comes with its children, a bucket with its entries, a prefix
// with no entries as the empty node.
func (t *Tree) Nodes(r pebble.Reader, prefixes []Prefix) ([]Node, error) {
	if len(prefixes) > MaxNodesPerCall {
		return nil, fmt.Errorf("%d prefixes asked, at most %d: %w", len(prefixes), MaxNodesPerCall, ErrBadQuery)
	}
	for _, p := range prefixes {
		if !p.Valid() {
			return nil, fmt.Errorf("prefix of length %d: %w", p.Len, ErrBadQuery)
		}
	}
	v, err := t.newView(r)
	if err != nil {
		return nil, err
	}
	defer v.close()
	out := make([]Node, len(prefixes))
	for i, p := range prefixes {
		if out[i], err = v.answer(p); err != nil {
			return nil, fmt.Errorf("read merkle node %v: %w", p, err)
		}
	}
	return out, nil
}

// answer reads the node at p.
func (v *view) answer(p Prefix) (Node, error) {
	rec, err := v.node(p)
	if err != nil {
		return Node{}, err
	}
	if rec.inner {
		kids := rec.kids
		return Node{Prefix: p, Hash: rec.sum.Hash, Count: rec.sum.Count, Children: &kids}, nil
	}
	entries, err := v.leaves(p, BucketSize+1)
	if err != nil {
		return Node{}, err
	}
	n := Node{Prefix: p, Count: uint64(len(entries)), Entries: entries}
	if n.Count > BucketSize {
		return Node{}, fmt.Errorf("more than %d leaves under a bucket: %w", BucketSize, ErrCorrupt)
	}
	if n.Count > 0 {
		n.Hash = bucketHash(entries)
	}
	if rec.found && rec.sum != (Child{Hash: n.Hash, Count: n.Count}) {
		return Node{}, fmt.Errorf("leaves disagree with node: %w", ErrCorrupt)
	}
	return n, nil
}

// bucketHash hashes a bucket's sorted entries.
func bucketHash(entries []Entry) Hash {
	if len(entries) > BucketSize+1 { // callers never pass more; stay correct anyway
		h := blake3.New()
		h.Write([]byte{0x00})
		for _, e := range entries {
			h.Write(e.Key[:])
			h.Write(e.Leaf[:])
		}
		var out Hash
		h.Sum(out[:0])
		return out
	}
	var buf [1 + (BucketSize+1)*64]byte
	buf[0] = 0x00
	n := 1
	for _, e := range entries {
		n += copy(buf[n:], e.Key[:])
		n += copy(buf[n:], e.Leaf[:])
	}
	return blake3.Sum256(buf[:n])
}

// innerHash hashes an inner node's 16 children.
func innerHash(kids *[16]Child) Hash {
	var buf [1 + 16*40]byte
	buf[0] = 0x01
	for i, k := range kids {
		copy(buf[1+i*40:], k.Hash[:])
		binary.BigEndian.PutUint64(buf[1+i*40+32:], k.Count)
	}
	return blake3.Sum256(buf[:])
}

// sumCounts adds the children's counts; ok is false on overflow.
func sumCounts(kids *[16]Child) (sum uint64, ok bool) {
	for _, k := range kids {
		if sum+k.Count < sum {
			return 0, false
		}
		sum += k.Count
	}
	return sum, true
}

func add(n uint64, delta int) uint64 {
	if delta < 0 {
		return n - uint64(-delta)
	}
	return n + uint64(delta)
}

// splitChanges cuts sorted changes into 16 runs by the nibble at depth.
func splitChanges(changes []keyDelta, depth int) [16][]keyDelta {
	var runs [16][]keyDelta
	start := 0
	for start < len(changes) {
		c := changes[start].key.Nibble(depth)
		end := start + 1
		for end < len(changes) && changes[end].key.Nibble(depth) == c {
			end++
		}
		runs[c] = changes[start:end:end]
		start = end
	}
	return runs
}

// splitByNibble cuts sorted entries into 16 runs by the nibble at depth.
func splitByNibble(entries []Entry, depth int) [16][]Entry {
	var runs [16][]Entry
	start := 0
	for start < len(entries) {
		c := entries[start].Key.Nibble(depth)
		end := start + 1
		for end < len(entries) && entries[end].Key.Nibble(depth) == c {
			end++
		}
		runs[c] = entries[start:end:end]
		start = end
	}
	return runs
}

func compareKeys(a, b Key) int { return bytes.Compare(a[:], b[:]) }
