// Package chunk cuts byte streams into content-defined chunks and names each
// by its BLAKE3-256 hash (a block.Hash).
//
// # Nouns
//
// A Chunk is one cut of a stream: its offset, its length and the hash of its
// bytes. Params bound the chunk sizes. A Splitter owns the buffers and, for
// large streams, the hashing goroutines of one Split at a time. FileHash names
// a whole file by its chunk list.
//
// # The cut (part of the format)
//
// Boundaries are FastCDC with normalized chunking (level 2): a gear rolling
// hash fp = fp<<1 + gear[b] over a fixed 256-entry table (gear.go, derived
// from BLAKE3), no test in the first Min bytes of a chunk, a mask of
// log2(Avg)+2 bits until Avg bytes, log2(Avg)-2 bits after, and a forced cut at
// Max. A cut depends only on the bytes since the previous cut, so an edit moves
// at most the boundaries from the chunk before it up to the first boundary
// after it that the edit's bytes do not reach. Every device of a share must
// cut identically: the gear table, the masks and DefaultParams are frozen, and
// golden vectors in the tests pin them.
//
// # Why 16/64/256 KiB (DefaultParams)
//
// Chosen by measurement: BenchmarkParams in sync/delta (it needs the delta
// codec), Min = Avg/4 and Max = 4*Avg, a 100 MiB random file, edits at seeded
// random offsets (8 trials, means). "new chunk" is what whole-block transfer
// would send; "wire" adds 36 B per new block entry to the signature and delta
// of each new chunk against the old chunks it overlaps.
//
//	avg     blocks  block list  1-byte insert        4 KiB overwrite      100 scattered inserts
//	                (36 B each) new chunk   wire     new chunk   wire     new chunk bytes
//	16 KiB  5615    202 KB      19.7 KB     1.6 KB   27.2 KB     5.6 KB    2.1 MB
//	32 KiB  2803    101 KB      39.4 KB     2.5 KB   60.3 KB     6.4 KB    4.0 MB
//	64 KiB  1377     50 KB      81.4 KB     3.6 KB   81.4 KB     6.1 KB    8.2 MB
//	128 KiB  693     25 KB       155 KB     4.7 KB    155 KB     7.0 KB   15.7 MB
//	256 KiB  361     13 KB       334 KB     6.9 KB    334 KB     8.2 KB   27.8 MB
//
// The sub-chunk delta makes the cost of a small edit grow only with the
// square root of the block size (3.6 KB at 64 KiB, 6.9 KB at 256 KiB), while
// the block list, which every new file, stored record and Merkle leaf carries,
// shrinks linearly. 16 KiB would put 202 KB of list on a 100 MiB file, more
// than rsync's whole 125 KB for an edit whenever a record travels whole;
// 256 KiB doubles the edit cost and loses whole-block reuse across files
// (27.8 MB against 8.2 MB after 100 scattered edits). 64 KiB (measured mean
// 76 KB) keeps the list near 0.05% of the data and an edit under 4 KB.
//
// # Contracts
//
// Split calls its callback on the caller's goroutine, in stream order; the
// data slice is only valid during the call. A Splitter is not safe for
// concurrent use; use one per scanning goroutine. Split and SplitAll stop
// every goroutine they start before returning.
package chunk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/block"
)

// Limits on Params. MinSize keeps the rolling hash window (up to 63 bytes)
// inside a chunk; MaxSize bounds the buffers a Splitter holds.
const (
	MinSize = 64
	MaxSize = 64 << 20
)

// ErrParams is returned for Params that Validate rejects.
var ErrParams = errors.New("invalid chunk params")

// Params bounds chunk sizes in bytes: no chunk is shorter than Min (except the
// last one of a stream) or longer than Max; the average is near Avg.
type Params struct {
	Min, Avg, Max int
	// Key, if set, keys the gear table (keyedGear): boundaries then depend
	// on the key, so whoever lacks it cannot recognise a known file by its
	// chunk sizes. Shares with encrypted members set it (index/seal).
	Key *[32]byte
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

// Validate reports whether p can be used: MinSize <= Min < Avg < Max <=
// MaxSize and Avg a power of two (the masks have log2(Avg)±2 bits).
func (p Params) Validate() error {
	switch {
	case p.Min < MinSize || p.Max > MaxSize:
		return fmt.Errorf("%w: min %d and max %d must lie within [%d, %d]", ErrParams, p.Min, p.Max, MinSize, MaxSize)
	case !(p.Min < p.Avg && p.Avg < p.Max):
		return fmt.Errorf("%w: want min < avg < max, got %d, %d, %d", ErrParams, p.Min, p.Avg, p.Max)
	case bits.OnesCount(uint(p.Avg)) != 1:
		return fmt.Errorf("%w: avg %d is not a power of two", ErrParams, p.Avg)
	}
	return nil
}

// Split reads r to EOF and calls fn once per chunk, in stream order. data holds
// the chunk's bytes and is only valid during the call. An error from r or fn
// stops the split and is returned.
func Split(r io.Reader, p Params, fn func(c Chunk, data []byte) error) error {
	s, err := NewSplitter(p)
	if err != nil {
		return err
	}
	return s.Split(context.Background(), r, fn)
}

// SplitAll reads r to EOF and returns its chunks, hashed. It is the scanner's
// fast path: cutting and hashing run on different cores.
func SplitAll(ctx context.Context, r io.Reader, p Params) ([]Chunk, error) {
	s, err := NewSplitter(p)
	if err != nil {
		return nil, err
	}
	return s.SplitAll(ctx, r)
}

// FileHash names a whole file by its chunk list: BLAKE3-256 over the chunk
// hashes in order. Two files with the same bytes have the same FileHash; an
// empty file (no chunks) has the BLAKE3-256 of nothing.
func FileHash(chunks []Chunk) block.Hash {
	h := blake3.New()
	for i := range chunks {
		h.Write(chunks[i].Hash[:])
	}
	var out block.Hash
	h.Sum(out[:0])
	return out
}
