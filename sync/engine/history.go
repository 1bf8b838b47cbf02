package engine

import (
	"container/list"
	gosync "sync"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
)

// history remembers, for recently changed keys, the envelope before the
// current one, so a record can travel as a delta against what a peer still
// holds. It is bounded by the bytes it keeps and safe for concurrent use.
type history struct {
	mu    gosync.Mutex
	limit int                          // guarded by mu: bytes kept at most
	size  int                          // guarded by mu
	order *list.List                   // guarded by mu: of *histEntry, newest first
	byKey map[merkle.Key]*list.Element // guarded by mu
	// byLeaf finds an envelope by its leaf alone: a renamed file's new record
	// travels as a delta against the old path's envelope.
	byLeaf map[merkle.Leaf]*record.Envelope // guarded by mu
}

// historyBytes bounds a share's history: about 15,000 small records, or a
// few dozen of the largest files; enough for the edits of the last minutes.
const historyBytes = 4 << 20

// entryOverhead approximates what one entry costs beside its envelopes' bytes
// (the entry, its list element, two map entries, the envelope headers).
const entryOverhead = 320

type histEntry struct {
	key       merkle.Key
	cur, prev *record.Envelope
}

func newHistory(limit int) *history {
	return &history{limit: limit, order: list.New(), byKey: make(map[merkle.Key]*list.Element),
		byLeaf: make(map[merkle.Leaf]*record.Envelope)}
}

// put records env as the current envelope of its key and returns the one it
// replaced, if known.
func (h *history) put(env record.Envelope) *record.Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := env.Key()
	if el, ok := h.byKey[k]; ok {
		e := el.Value.(*histEntry)
		if e.cur != nil && e.cur.Leaf() == env.Leaf() {
			h.order.MoveToFront(el)
			return e.prev
		}
		h.size -= entrySize(e)
		if e.prev != nil {
			delete(h.byLeaf, e.prev.Leaf())
		}
		e.prev, e.cur = e.cur, &env
		h.byLeaf[env.Leaf()] = &env
		h.size += entrySize(e)
		h.order.MoveToFront(el)
		h.trimLocked()
		return e.prev
	}
	e := &histEntry{key: k, cur: &env}
	h.byKey[k] = h.order.PushFront(e)
	h.byLeaf[env.Leaf()] = &env
	h.size += entrySize(e)
	h.trimLocked()
	return nil
}

// find returns the kept envelope whose leaf is leaf, of any key.
func (h *history) find(leaf merkle.Leaf) *record.Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byLeaf[leaf]
}

func (h *history) trimLocked() {
	for h.size > h.limit && h.order.Len() > 0 {
		el := h.order.Back()
		e := el.Value.(*histEntry)
		h.size -= entrySize(e)
		delete(h.byKey, e.key)
		for _, env := range []*record.Envelope{e.cur, e.prev} {
			if env != nil {
				delete(h.byLeaf, env.Leaf())
			}
		}
		h.order.Remove(el)
	}
}

func entrySize(e *histEntry) int {
	n := entryOverhead
	if e.cur != nil {
		n += len(e.cur.Bytes())
	}
	if e.prev != nil {
		n += len(e.prev.Bytes())
	}
	return n
}
