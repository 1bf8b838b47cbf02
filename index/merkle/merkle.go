// Package merkle keeps a share's Merkle tree in Pebble and finds the keys in
// which two trees differ.
//
// CONTRACT (skeleton, to be filled in by the merkle work): the signatures in this
// file are what the index and the sync engine build against.
package merkle

import (
	"context"
	"errors"

	"github.com/cockroachdb/pebble"
)

// Key places a record in the tree: a keyed BLAKE3 hash of its path, so a member
// that cannot read names still holds the same tree.
type Key [32]byte

// Leaf is the BLAKE3-256 of a record's stored envelope.
type Leaf [32]byte

// Hash is a node's hash. The zero Hash is the empty tree.
type Hash [32]byte

// Prefix names a node: the first Len nibbles (4-bit digits) of a Key.
// The root is the zero Prefix.
type Prefix struct {
	Len     uint8
	Nibbles [32]byte // packed, high nibble first; bits past Len are zero
}

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
type Source interface {
	Nodes(ctx context.Context, prefixes []Prefix) ([]Node, error)
}

// Tree is one share's tree, stored under a key prefix in Pebble.
type Tree struct {
	prefix []byte
}

// New returns the tree stored under prefix.
func New(prefix []byte) *Tree { return &Tree{prefix: append([]byte(nil), prefix...)} }

// Set puts (key, leaf) into the tree within batch b (an indexed batch, so reads
// see its own writes).
func (t *Tree) Set(b *pebble.Batch, key Key, leaf Leaf) error { return errors.New("not implemented") }

// Delete removes key from the tree within batch b.
func (t *Tree) Delete(b *pebble.Batch, key Key) error { return errors.New("not implemented") }

// Root returns the root hash and the number of leaves.
func (t *Tree) Root(r pebble.Reader) (Hash, uint64, error) { return Hash{}, 0, errors.New("not implemented") }

// Nodes answers node queries from r.
func (t *Tree) Nodes(r pebble.Reader, prefixes []Prefix) ([]Node, error) {
	return nil, errors.New("not implemented")
}

// Diff walks two trees from the root, descending only where hashes differ,
// and calls fn for every key whose leaf differs (nil where a side lacks it).
// It returns the number of nodes it asked of remote.
func Diff(ctx context.Context, local, remote Source, fn func(key Key, local, remote *Leaf) error) (int, error) {
	return 0, errors.New("not implemented")
}
