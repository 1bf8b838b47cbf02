package engine

import (
	gosync "sync"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// inflight knows the blocks that have arrived in temps of pulls still under
// way, so a device serves what it already has of a large file to the other
// devices fetching it (swarm: newcomers help each other, and the seeder
// uploads less than once per newcomer). Each block is kept with the share
// whose file is being pulled: a peer is served only the temps of the share
// it asked about, while a local pull may use any. Safe for concurrent use.
type inflight struct {
	mu gosync.Mutex
	m  map[block.Hash][]tempBlock // guarded by mu
	// pulls are the files being pulled, for Haves (see swarm.go); users
	// counts the pulls of each (the same content at two paths).
	pulls map[fileKey]*localPull // guarded by mu
	users map[*localPull]int     // guarded by mu
}

// tempBlock is a block written into a pull's temp.
type tempBlock struct {
	share share.ID // the share of the file being pulled
	t     *apply.Temp
	off   int64
	size  uint32
}

func newInflight() *inflight {
	return &inflight{m: make(map[block.Hash][]tempBlock), pulls: make(map[fileKey]*localPull), users: make(map[*localPull]int)}
}

// add notes that block h was written at off of temp t, of a file of share id.
func (f *inflight) add(id share.ID, h block.Hash, t *apply.Temp, off int64, size uint32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[h] = append(f.m[h], tempBlock{share: id, t: t, off: off, size: size})
}

// forget drops every block of temp t (committed, or closed for later).
func (f *inflight) forget(t *apply.Temp, hashes []block.Hash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range hashes {
		locs := f.m[h]
		kept := locs[:0]
		for _, l := range locs {
			if l.t != t {
				kept = append(kept, l)
			}
		}
		if len(kept) == 0 {
			delete(f.m, h)
		} else {
			f.m[h] = kept
		}
	}
}

// read returns block h from a temp of a share that may be used, checked
// against h.
func (f *inflight) read(may func(share.ID) bool, h block.Hash, size uint32) ([]byte, bool) {
	f.mu.Lock()
	locs := append([]tempBlock(nil), f.m[h]...)
	f.mu.Unlock()
	var buf []byte
	for _, l := range locs {
		if l.size != size || !may(l.share) {
			continue
		}
		if buf == nil {
			buf = make([]byte, size)
		}
		if n, err := l.t.ReadAt(buf, l.off); err == nil && n == len(buf) && block.Sum(buf) == h {
			return buf, true
		}
	}
	return nil, false
}
