// Package record defines what Blueshift knows about one path of a share, and
// the signed envelope in which a record is stored and travels.
//
// Nouns:
//   - Path: a validated share-relative path ("a/b.txt"); see ParsePath.
//   - Vector: a version vector of (Device, Counter) pairs; Update, Compare
//     and Merge are pure and never mutate their receiver.
//   - Record: one path's state (kind, size, mode, mtime, blocks, version,
//     deleted flag, last modifier). A deleted record (tombstone) keeps Path,
//     Kind, Version and ModifiedBy and has no content.
//   - Envelope: the record as its writer sealed it: the path's tree key, the
//     encoded body and an Ed25519 signature by the share key. Two devices in
//     sync hold byte-identical envelopes, because an envelope is encoded and
//     signed once by its writer and afterwards only copied.
//
// The envelope is a protobuf message (recordpb.Envelope) that Open accepts only
// in its one canonical form, so its bytes (and so its merkle.Leaf) are a
// function of what is signed:
//
//	field 1 kind       08 KK                   KK: 1 record, 2 sealed
//	field 2 path_key   12 20 <32 bytes>        merkle.Key of the path
//	field 3 body       1a <varint n> <n bytes> encoded recordpb.Record
//	field 4 signature  22 40 <64 bytes>        Ed25519 over the message below
//
//	signed message = "blueshift/envelope/v1\x00" || KK || path_key || body
//
// A writer that seals many records at once (a scan) may sign them as a
// batch (batch.go): fields 5-8 replace field 4, and the one signature
// covers the root of a Merkle tree over the records' leaf hashes, each
// envelope carrying its inclusion proof (at most MaxProofDepth hashes), so
// it still verifies alone and is still the same bytes on every device:
//
//	field 5 batch size 28 <varint n>          2..MaxBatch
//	field 6 index      30 <varint i>          0..n-1
//	field 7 proof      3a <varint> <32*d>     d fixed by (i, n), deepest first
//	field 8 signature  42 40 <64 bytes>       Ed25519 over the message below
//
//	leaf   = BLAKE3("blueshift/envelope-leaf/v1\x00" || KK || path_key || body)
//	node   = BLAKE3(0x01 || left || right)         (RFC 9162 tree shape)
//	signed = "blueshift/envelope-batch/v1\x00" || n (4 bytes BE) || root
//
// Roots caches the roots already verified, so the other records of a batch
// cost a few hashes each. On the wire a batch's records may travel trimmed
// (Trimmed, SplitBatch, JoinBatch): without proof and signature, which the
// receiver rebuilds into the exact envelope before verifying it.
//
// Encrypted capability members will hold envelopes with kind 2 (sealed):
// the body is then ciphertext under the share's read key. Such a member can
// still Open, Verify and place the envelope in the tree (Key, Leaf), but
// Record returns ErrSealed. Sealing is not built yet; only the kind is
// reserved, and it is covered by the signature.
//
// Contracts: Open copies its input and checks every length against a limit
// before allocating; no input makes it panic. An Envelope is immutable and
// safe for concurrent use; Bytes returns the stored slice, which callers
// must not modify. Record validates everything a record promises (a valid
// Path, a sorted vector naming ModifiedBy, block sizes adding up to Size,
// no content on dirs, symlinks and tombstones) before returning it.
package record

import (
	"strconv"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
)

// Path is a validated, share-relative, slash-separated path ("a/b.txt").
// Build one with ParsePath; a Path is never absolute, never empty, never
// contains "." or ".." components, NUL, or invalid UTF-8.
type Path string

// Kind is what a record describes.
type Kind uint8

const (
	File Kind = iota + 1
	Dir
	Symlink
)

// String names the kind for messages.
func (k Kind) String() string {
	switch k {
	case File:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Device is the short form of a device ID (its first 8 bytes, big-endian):
// what version vectors and records name a device by.
type Device uint64

// Counter is one device's entry in a version vector.
type Counter struct {
	Device Device
	Value  uint64
}

// Vector is a version vector, sorted by Device, no zero values.
type Vector []Counter

// BlockRef is one block of a file, in order.
type BlockRef struct {
	Hash block.Hash
	Size uint32
}

// Record is one path's state. Two devices in sync hold identical records.
type Record struct {
	Path       Path
	Kind       Kind
	Size       int64
	Mode       uint32    // permission bits (0777 mask)
	ModTime    time.Time // nanosecond precision; decoded records are in UTC
	Blocks     []BlockRef
	FileHash   block.Hash // chunk.FileHash of Blocks; zero for dirs and symlinks
	Target     string     // symlink target, verbatim, never followed
	Version    Vector
	Deleted    bool
	ModifiedBy Device
}
