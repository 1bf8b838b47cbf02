package engine

import (
	"context"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
)

// SetHelpers gives share id's pulls block sources beyond its connected
// members (nil or empty: none): a one-off send's receiver fetches from
// the sender's other devices under the sender's ticket
// (daemon/sendswarm.go). Blocks are spread across the members and the
// helpers by offset, as across members; a block a helper lacks is asked
// of the members, and one no member holds (the sender went away) of every
// helper. What a helper returns is checked against the block's hash.
func (e *Engine) SetHelpers(id share.ID, srcs []BlockSource) {
	if len(srcs) == 0 {
		e.helpers.Delete(id)
		return
	}
	e.helpers.Store(id, append([]BlockSource(nil), srcs...))
}

func (e *Engine) helpersOf(id share.ID) []BlockSource {
	v, ok := e.helpers.Load(id)
	if !ok {
		return nil
	}
	return v.([]BlockSource)
}

// fromHelpers asks helpers for block b, from helpers[start] on, until one
// returns it (checked against its hash).
func (e *Engine) fromHelpers(ctx context.Context, f *folder, helpers []BlockSource, start int, b record.BlockRef) ([]byte, bool) {
	for i := range helpers {
		src := helpers[(start+i)%len(helpers)]
		if err := f.waitRecv(ctx, int(b.Size)); err != nil {
			return nil, false
		}
		data, err := src(ctx, b.Hash, b.Size)
		if ctx.Err() != nil {
			return nil, false
		}
		if err != nil || uint32(len(data)) != b.Size || block.Sum(data) != b.Hash {
			f.log.Debug("a block from a helper", "err", err)
			continue
		}
		f.act.recv.Add(int64(len(data)))
		return data, true
	}
	return nil, false
}
