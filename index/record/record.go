// Package record defines what Blueshift knows about one path of a share, and
// the signed envelope in which a record is stored and travels.
//
// CONTRACT (skeleton, to be filled in by the index work): the types in this file
// are what the scanner, the sync engine and the wire build against.
package record

import (
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
	ModTime    time.Time // nanosecond precision
	Blocks     []BlockRef
	FileHash   block.Hash // chunk.FileHash of Blocks; zero for dirs and symlinks
	Target     string     // symlink target, verbatim, never followed
	Version    Vector
	Deleted    bool
	ModifiedBy Device
}
