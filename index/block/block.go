// Package block names content: a block is a run of file bytes cut by the
// chunker, and its Hash is the BLAKE3-256 of its plaintext.
//
// A Hash is a value type (an array); it is safe to copy and compare with ==.
// Every part of Blueshift that speaks of content (records, the block index,
// the wire) uses this one type.
//
// IsZeros recognises the hash of an all-zero block (a sparse file's hole).
// It is asked of every block of a file a device pulls, so it is cheap: a
// cache by size and, for a size not in it, a ladder of hasher states that
// have taken in zeros (a clone and at most 8 KiB hashed, whatever the
// size). Both are safe for concurrent use.
package block

import (
	"encoding/hex"
	"fmt"

	"github.com/zeebo/blake3"
)

// Size is the length of a Hash in bytes.
const Size = 32

// Hash is the BLAKE3-256 digest of a block's plaintext.
type Hash [Size]byte

// Sum returns the Hash of data.
func Sum(data []byte) Hash {
	return Hash(blake3.Sum256(data))
}

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 8 hex digits, for log lines.
func (h Hash) Short() string { return hex.EncodeToString(h[:4]) }

// IsZero reports whether h is the zero hash (no content named).
func (h Hash) IsZero() bool { return h == Hash{} }

// Parse reads a hash written by String.
func Parse(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*Size {
		return h, fmt.Errorf("parse block hash %q: want %d hex digits, got %d", s, 2*Size, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("parse block hash %q: %w", s, err)
	}
	return h, nil
}

// FromBytes copies a 32-byte slice into a Hash; it fails on any other length,
// so a decoder can hand it untrusted bytes.
func FromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != Size {
		return h, fmt.Errorf("block hash: want %d bytes, got %d", Size, len(b))
	}
	copy(h[:], b)
	return h, nil
}
