package index

import (
	"slices"
	"sync"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
)

// recentKept bounds the envelopes, and the local states, a share keeps in
// memory (recent): more than a receiver has in flight at once (records
// checked but not yet committed).
const recentKept = 8192

// recentMaxEnvelope is the largest envelope recent keeps: a file of many
// blocks has a large record, read seldom and costly to hold.
const recentMaxEnvelope = 4 << 10

// recent keeps the envelopes and local states of a share's paths read or
// written lately. A receiver reads each path's record four times while it
// takes a record for it (to decode a delta against it, to count it in
// status, to decide, to commit) and its state twice: with a Pebble Get each,
// that was a fifth of the CPU of taking a `touch` of many small files.
//
// It never answers what the database no longer holds: a writer's flush
// overwrites the entries of what it committed (wrote) before it gives up
// the write lock, and a reader keeps what it read only if no batch was
// committed since it started (gen), else what it read may be older than
// what the flush put here. All methods are safe for concurrent use.
type recent struct {
	mu        sync.Mutex
	gen       uint64                        // guarded by mu: committed batches so far
	envs      map[merkle.Key]recentEnvelope // guarded by mu
	states    map[record.Path]recentState   // guarded by mu
	envRing   ring[merkle.Key]              // guarded by mu: envs' keys, to evict
	stateRing ring[record.Path]             // guarded by mu: states' keys, to evict
}

type recentEnvelope struct {
	env record.Envelope
	ok  bool // false: none stored
}

type recentState struct {
	st FileState
	ok bool // false: none stored
}

func newRecent() *recent {
	return &recent{
		envs:      make(map[merkle.Key]recentEnvelope),
		states:    make(map[record.Path]recentState),
		envRing:   ring[merkle.Key]{keys: make([]merkle.Key, 0, recentKept)},
		stateRing: ring[record.Path]{keys: make([]record.Path, 0, recentKept)},
	}
}

// generation returns the count of committed batches, taken before a read
// of the database whose answer is then kept with keepEnvelope or keepState.
func (r *recent) generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// envelope returns the envelope kept for k; hit is false if none is kept.
func (r *recent) envelope(k merkle.Key) (env record.Envelope, ok, hit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, hit := r.envs[k]
	return e.env, e.ok, hit
}

// state returns the local state kept for p; hit is false if none is kept.
// Its block list is the caller's.
func (r *recent) state(p record.Path) (st FileState, ok, hit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, hit := r.states[p]
	st = s.st
	st.Blocks = slices.Clone(st.Blocks)
	return st, s.ok, hit
}

// keepEnvelope keeps what a read at generation gen found at k.
func (r *recent) keepEnvelope(gen uint64, k merkle.Key, env record.Envelope, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == gen {
		r.putEnvelopeLocked(k, env, ok)
	}
}

// keepState keeps what a read at generation gen found at p.
func (r *recent) keepState(gen uint64, p record.Path, st FileState, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == gen {
		r.putStateLocked(p, st, ok)
	}
}

// wrote keeps what a committed batch wrote: envs, and for each path of
// states its new state (nil: removed). The share's write lock is held.
func (r *recent) wrote(envs []record.Envelope, states []pathState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	for _, env := range envs {
		r.putEnvelopeLocked(env.Key(), env, true)
	}
	for _, ps := range states {
		if ps.state == nil {
			r.putStateLocked(ps.path, FileState{}, false)
			continue
		}
		st := *ps.state
		st.Blocks = slices.Clone(st.Blocks)
		r.putStateLocked(ps.path, st, true)
	}
}

func (r *recent) putEnvelopeLocked(k merkle.Key, env record.Envelope, ok bool) {
	if len(env.Bytes()) > recentMaxEnvelope {
		// Not kept; nor may an older one be.
		delete(r.envs, k)
		return
	}
	if _, had := r.envs[k]; !had {
		if old, full := r.envRing.add(k); full {
			delete(r.envs, old)
		}
	}
	r.envs[k] = recentEnvelope{env: env, ok: ok}
}

func (r *recent) putStateLocked(p record.Path, st FileState, ok bool) {
	if _, had := r.states[p]; !had {
		if old, full := r.stateRing.add(p); full {
			delete(r.states, old)
		}
	}
	r.states[p] = recentState{st: st, ok: ok}
}

// pathState is the state a writer stored at a path (nil: removed).
type pathState struct {
	path  record.Path
	state *FileState
}

// ring holds up to cap(keys) keys, oldest at next once full.
type ring[K comparable] struct {
	keys []K
	next int
}

// add adds k and returns the key it pushed out, if the ring was full.
func (r *ring[K]) add(k K) (old K, full bool) {
	if len(r.keys) < cap(r.keys) {
		r.keys = append(r.keys, k)
		return old, false
	}
	old = r.keys[r.next]
	r.keys[r.next] = k
	r.next = (r.next + 1) % len(r.keys)
	return old, true
}
