package engine

import (
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
)

// dataBytes is how many bytes of rec's content are data: its size less the
// blocks that are all zeros (a sparse file's holes), which a pull neither
// fetches nor writes (see pullFile), so they take neither transfer nor
// disk space.
func dataBytes(rec record.Record) int64 {
	if rec.Deleted || rec.Kind != record.File {
		return rec.Size
	}
	n := rec.Size
	for _, b := range rec.Blocks {
		if block.IsZeros(b.Hash, b.Size) {
			n -= int64(b.Size)
		}
	}
	return n
}
