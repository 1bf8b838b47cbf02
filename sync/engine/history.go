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
}

type histEntry struct {
	key       merkle.Key
	cur, prev *record.Envelope
}

func newHistory(limit int) *history {
	return &history{limit: limit, order: list.New(), byKey: make(map[merkle.Key]*list.Element)}
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
		e.prev, e.cur = e.cur, &env
		h.size += entrySize(e)
		h.order.MoveToFront(el)
		h.trimLocked()
		return e.prev
	}
	e := &histEntry{key: k, cur: &env}
	h.byKey[k] = h.order.PushFront(e)
	h.size += entrySize(e)
	h.trimLocked()
	return nil
}

// find returns an envelope of key k whose leaf is leaf, if kept.
func (h *history) find(k merkle.Key, leaf merkle.Leaf) *record.Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	el, ok := h.byKey[k]
	if !ok {
		return nil
	}
	e := el.Value.(*histEntry)
	for _, env := range []*record.Envelope{e.cur, e.prev} {
		if env != nil && env.Leaf() == leaf {
			return env
		}
	}
	return nil
}

func (h *history) trimLocked() {
	for h.size > h.limit && h.order.Len() > 0 {
		el := h.order.Back()
		e := el.Value.(*histEntry)
		h.size -= entrySize(e)
		delete(h.byKey, e.key)
		h.order.Remove(el)
	}
}

func entrySize(e *histEntry) int {
	n := 64
	if e.cur != nil {
		n += len(e.cur.Bytes())
	}
	if e.prev != nil {
		n += len(e.prev.Bytes())
	}
	return n
}
