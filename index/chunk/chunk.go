// Package chunk cuts byte streams into content-defined chunks and names each
// by its BLAKE3-256 hash.
//
// CONTRACT (skeleton, to be filled in by the chunk work): the signatures in this
// file are what the scanner and the sync engine build against. Keep them, or
// change them together with their callers.
package chunk

import (
	"errors"
	"io"

	"github.com/blueshift-sync/blueshift/index/block"
)

// Params bounds chunk sizes in bytes: no chunk is shorter than Min (except the
// last one of a stream) or longer than Max; the average is near Avg.
type Params struct {
	Min, Avg, Max int
}

// Chunk is one cut of a stream.
type Chunk struct {
	Offset int64
	Length int
	Hash   block.Hash
}

// DefaultParams returns the sizes Blueshift uses for every share. Every device
// of a share must use the same sizes, so they are fixed, not configurable.
func DefaultParams() Params {
	return Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10}
}

// Split reads r to EOF and calls fn once per chunk, in stream order. data holds
// the chunk's bytes and is only valid during the call.
func Split(r io.Reader, p Params, fn func(c Chunk, data []byte) error) error {
	return errors.New("chunk.Split: not implemented yet")
}

// FileHash names a whole file by its chunk list: BLAKE3-256 over the chunk
// hashes in order. Two files with the same bytes have the same FileHash.
func FileHash(chunks []Chunk) block.Hash {
	return block.Hash{}
}
