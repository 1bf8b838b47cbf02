package index

import (
	"sync"
	"time"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

// Views of a share's tree kept for peers' walks (see Share.WalkView). Each
// holds a Pebble snapshot, which keeps data that later writes replace from
// being compacted away: count and age are bounded so that no peer can pin
// one for long, whatever it asks.
const (
	maxWalkViews = 8                // views of one share kept at once
	walkViewIdle = 30 * time.Second // a view no walk has read for this long is let go
	walkViewLife = 2 * time.Minute  // and any view, this long after it was made
)

// walkViews keeps the recent views of one share's tree, by root. Expired
// views are let go whenever a view is asked for and whenever the database
// commits a batch (a snapshot costs nothing while nothing is written), so
// no goroutine or timer is needed. Safe for concurrent use.
type walkViews struct {
	now func() time.Time
	mu  struct {
		sync.Mutex
		views  []*walkView // guarded by mu: oldest first
		closed bool        // guarded by mu: the database is closing
	}
}

// walkView is one kept view and the answers reading it.
type walkView struct {
	v          *TreeView
	refs       int       // guarded by walkViews.mu: answers reading v now
	made, used time.Time // guarded by walkViews.mu
	gone       bool      // guarded by walkViews.mu: let go; closed when refs reaches 0
}

// WalkView returns a view of the share's tree for answering a peer that
// walks the version whose root is root: a view kept from an earlier answer,
// or else the tree as it is now (then kept for the answers that follow). If
// the returned view's Root is not root, that version is no longer held and
// the walk should start again from the returned one. The zero root asks for
// the tree as it is now. Call release when done reading the view; do not
// Close it.
func (s *Share) WalkView(root merkle.Hash) (v *TreeView, release func(), err error) {
	if root != (merkle.Hash{}) {
		if v, release := s.views.get(root); v != nil {
			return v, release, nil
		}
	}
	fresh, err := s.View()
	if err != nil {
		return nil, nil, err
	}
	v, release = s.views.add(fresh)
	return v, release, nil
}

func (s *Share) expireViews() { s.views.expire() }
func (s *Share) closeViews()  { s.views.close() }

// get returns the kept view of root, if any, and its release.
func (w *walkViews) get(root merkle.Hash) (*TreeView, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	w.expireLocked(now)
	for _, kv := range w.mu.views {
		if kv.v.Root == root {
			return w.takeLocked(kv, now)
		}
	}
	return nil, nil
}

// add keeps fresh, or closes it if a view of the same root is kept already
// (then that one is returned), and lets the oldest go past maxWalkViews.
func (w *walkViews) add(fresh *TreeView) (*TreeView, func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	w.expireLocked(now)
	for _, kv := range w.mu.views {
		if kv.v.Root == fresh.Root {
			fresh.Close()
			return w.takeLocked(kv, now)
		}
	}
	kv := &walkView{v: fresh, made: now}
	if w.mu.closed {
		kv.gone = true // answer this one, keep nothing
	} else {
		w.mu.views = append(w.mu.views, kv)
		for len(w.mu.views) > maxWalkViews {
			w.letGoLocked(w.mu.views[0])
			w.mu.views = w.mu.views[1:]
		}
	}
	return w.takeLocked(kv, now)
}

// takeLocked counts a reader of kv and returns the view and its release.
func (w *walkViews) takeLocked(kv *walkView, now time.Time) (*TreeView, func()) {
	kv.refs++
	kv.used = now
	var once sync.Once
	return kv.v, func() {
		once.Do(func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			kv.refs--
			kv.used = w.now()
			if kv.gone && kv.refs == 0 {
				kv.v.Close()
			}
		})
	}
}

// expire lets go of views past their age.
func (w *walkViews) expire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expireLocked(w.now())
}

func (w *walkViews) expireLocked(now time.Time) {
	kept := w.mu.views[:0]
	for _, kv := range w.mu.views {
		if kv.refs == 0 && now.Sub(kv.used) >= walkViewIdle || now.Sub(kv.made) >= walkViewLife {
			w.letGoLocked(kv)
			continue
		}
		kept = append(kept, kv)
	}
	clear(w.mu.views[len(kept):])
	w.mu.views = kept
}

// letGoLocked stops keeping kv: it is closed now, or by its last reader.
func (w *walkViews) letGoLocked(kv *walkView) {
	kv.gone = true
	if kv.refs == 0 {
		kv.v.Close()
	}
}

// close lets every view go; the database is closing.
func (w *walkViews) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mu.closed = true
	for _, kv := range w.mu.views {
		w.letGoLocked(kv)
	}
	w.mu.views = nil
}

// kept returns how many views are kept (for tests).
func (w *walkViews) kept() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.mu.views)
}
