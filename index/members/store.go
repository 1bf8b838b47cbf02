package members

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/store"
)

// Pebble keys, beside the index's (index/store), under their own tag:
//
//	'W' share[32] 'e' seq[8]     -> entry   the log, in order
//	'W' share[32] 'p' hash[32]   -> entry   a pending change (fewer than k owner signatures)
//	'W' share[32] 'k' epoch[8]   -> key[32] an epoch key this device holds
//	'W' share[32] 'd' device[32] -> pub[32] a member's Ed25519 key, checked against its ID
//	'W' share[32] 'i' token      -> device[32] the device an invitation admitted
const tag = 'W'

const (
	subEntry   = 'e'
	subPending = 'p'
	subKey     = 'k'
	subPub     = 'd'
	subInvitee = 'i'

	maxPending = 64 // pending changes kept per share
	maxRefused = 20 // refusals kept per share for status
)

// Refusal is a membership change this device refused, for status.
type Refusal struct {
	At     time.Time
	From   string // the peer that sent it, as the caller names it
	Reason string
}

// Store keeps every share's membership log in the device's Pebble database
// and answers questions about it. It is safe for concurrent use; one mutex
// guards the logs held in memory, and every write reaches Pebble (synced)
// before the memory changes.
type Store struct {
	db *pebble.DB

	mu struct {
		sync.Mutex
		logs map[[32]byte]*shareLog // guarded by mu
	}
}

// shareLog is one share's log in memory.
type shareLog struct {
	state   *State
	writers map[uint64]writer // short device ID -> its right to write records
	pending map[Hash]*Entry
	refused []Refusal
}

// writer is what MayWrite needs of one device.
type writer struct {
	active  bool
	level   Level
	removed time.Time // zero while a member
}

// Open returns the store over db (the index's Pebble database).
func Open(db *pebble.DB) *Store {
	s := &Store{db: db}
	s.mu.logs = map[[32]byte]*shareLog{}
	return s
}

func prefix(share [32]byte, sub byte) []byte {
	p := make([]byte, 0, 2+32+32)
	p = append(p, tag)
	p = append(p, share[:]...)
	return append(p, sub)
}

// load returns the share's log, reading it from Pebble the first time.
// Called with mu held.
func (s *Store) loadLocked(share [32]byte, sharePub ed25519.PublicKey) (*shareLog, error) {
	if l, ok := s.mu.logs[share]; ok {
		return l, nil
	}
	var entries []*Entry
	err := s.scan(prefix(share, subEntry), func(_, v []byte) error {
		e, err := Decode(v)
		if err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the membership log: %w", err)
	}
	st, err := Replay(share, sharePub, entries)
	if err != nil {
		return nil, fmt.Errorf("the stored membership log does not verify (%w); delete the database to fetch it again from the members", err)
	}
	l := &shareLog{state: st, pending: map[Hash]*Entry{}}
	err = s.scan(prefix(share, subPending), func(_, v []byte) error {
		if e, err := Decode(v); err == nil {
			l.pending[e.hash] = e
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	l.index()
	s.mu.logs[share] = l
	return l, nil
}

func (s *Store) scan(p []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: store.PrefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if err := fn(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	return it.Error()
}

// index rebuilds the short-ID table MayWrite reads.
func (l *shareLog) index() {
	l.writers = map[uint64]writer{}
	for _, in := range l.state.Members() {
		w := writer{active: !in.Removed, level: in.Level}
		if in.Removed {
			w.removed = in.RemovedAt
		}
		l.writers[binary.BigEndian.Uint64(in.Device[:8])] = w
	}
}

// State returns a copy of the share's log state (an empty one when the
// share has none yet).
func (s *Store) State(share [32]byte, sharePub ed25519.PublicKey) (*State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.loadLocked(share, sharePub)
	if err != nil {
		return nil, err
	}
	return Replay(share, sharePub, l.state.entries)
}

// HasLog reports whether the share has a log.
func (s *Store) HasLog(share [32]byte, sharePub ed25519.PublicKey) bool {
	st, err := s.State(share, sharePub)
	return err == nil && st.Len() > 0
}

// MayWrite reports whether a record made by device short (a record's
// ModifiedBy) with counter (its own entry in the record's version vector,
// Unix seconds or above for a record made since logs exist) may be taken:
// a current rw member's may; a removed writer's only if made before its
// removal; a device the log never named only if made before the log began.
// With no log yet, everything the share key allows is taken.
func (s *Store) MayWrite(share [32]byte, short uint64, counter uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.mu.logs[share]
	if !ok || l.state.Len() == 0 {
		return true
	}
	w, ok := l.writers[short]
	switch {
	case !ok:
		// Made before the log began (by a device gone since): the share
		// key alone decided then, and still does for it.
		return counter <= uint64(max(l.state.entries[0].Time.Unix(), 0))
	case w.active:
		return w.level == ReadWrite
	default:
		return w.level == ReadWrite && counter <= uint64(max(w.removed.Unix(), 0))
	}
}

// Mounted reports whether p (share-relative, '/'-separated) lies strictly
// inside a share mounted in share: its files are the inner share's, never
// this one's.
func (s *Store) Mounted(share [32]byte, p string) (mount string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, found := s.mu.logs[share]
	if !found || len(l.state.mounts) == 0 {
		return "", false
	}
	for dir := path.Dir(p); dir != "." && dir != "/" && dir != ""; dir = path.Dir(dir) {
		if _, ok := l.state.mounts[dir]; ok {
			return dir, true
		}
	}
	return "", false
}

// NoteRefused remembers a refused change for status.
func (s *Store) NoteRefused(share [32]byte, from string, reason error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.mu.logs[share]
	if !ok {
		return
	}
	l.refused = append(l.refused, Refusal{At: now, From: from, Reason: reason.Error()})
	if len(l.refused) > maxRefused {
		l.refused = l.refused[len(l.refused)-maxRefused:]
	}
}

// Refused returns the refusals noted for the share, oldest first.
func (s *Store) Refused(share [32]byte) []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.mu.logs[share]; ok {
		return slices.Clone(l.refused)
	}
	return nil
}

// Append adds an entry this device made (or approved). A change that
// needs more owners is kept as pending instead: applied is false, and the
// error is nil.
func (s *Store) Append(share [32]byte, sharePub ed25519.PublicKey, e *Entry) (applied bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.loadLocked(share, sharePub)
	if err != nil {
		return false, err
	}
	err = l.state.Check(e)
	if errors.Is(err, ErrNeedsApproval) {
		return false, s.putPendingLocked(share, l, e)
	}
	if err != nil {
		return false, err
	}
	return true, s.commitLocked(share, l, e)
}

// commitLocked writes a checked entry and applies it.
func (s *Store) commitLocked(share [32]byte, l *shareLog, e *Entry) error {
	b := s.db.NewBatch()
	defer b.Close()
	k := binary.BigEndian.AppendUint64(prefix(share, subEntry), e.Seq)
	_ = b.Set(k, e.Encode(), nil)
	_ = b.Delete(append(prefix(share, subPending), e.hash[:]...), nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store membership entry %d: %w", e.Seq, err)
	}
	if err := l.state.Append(e); err != nil {
		return err // checked under the same lock: cannot happen
	}
	delete(l.pending, e.hash)
	// Pending changes that no longer follow the head are dead.
	for h, p := range l.pending {
		if p.Seq < uint64(l.state.Len()) {
			delete(l.pending, h)
			_ = s.db.Delete(append(prefix(share, subPending), h[:]...), pebble.NoSync)
		}
	}
	l.index()
	return nil
}

func (s *Store) putPendingLocked(share [32]byte, l *shareLog, e *Entry) error {
	if old, ok := l.pending[e.hash]; ok {
		old.merge(e)
		e = old
	} else if len(l.pending) >= maxPending {
		return fmt.Errorf("%d membership changes already wait for approval: %w", maxPending, ErrRefused)
	}
	if err := s.db.Set(append(prefix(share, subPending), e.hash[:]...), e.Encode(), pebble.Sync); err != nil {
		return fmt.Errorf("store a pending membership change: %w", err)
	}
	l.pending[e.hash] = e
	// Enough approvals now? Then it joins the log.
	if err := l.state.Check(e); err == nil {
		return s.commitLocked(share, l, e)
	}
	return nil
}

// Pending returns copies of the changes waiting for owner approvals.
func (s *Store) Pending(share [32]byte, sharePub ed25519.PublicKey) ([]*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.loadLocked(share, sharePub)
	if err != nil {
		return nil, err
	}
	var out []*Entry
	for _, e := range l.pending {
		c := *e // a copy: approvals add signatures to the kept one
		c.Sigs = slices.Clone(e.Sigs)
		out = append(out, &c)
	}
	slices.SortFunc(out, func(a, b *Entry) int { return bytes.Compare(a.hash[:], b.hash[:]) })
	return out, nil
}

// Merge takes entries a peer sent, in log order, starting anywhere. It
// returns how many joined the log. A log holding only a migrated genesis
// gives way to a peer's log when the rule in yields says so; any other
// disagreement is a fork, refused.
func (s *Store) Merge(share [32]byte, sharePub ed25519.PublicKey, raw [][]byte) (added int, err error) {
	if len(raw) > MaxEntries {
		return 0, fmt.Errorf("%d membership entries at once: %w", len(raw), ErrInvalid)
	}
	entries := make([]*Entry, 0, len(raw))
	for _, b := range raw {
		e, err := Decode(b)
		if err != nil {
			return 0, err
		}
		entries = append(entries, e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.loadLocked(share, sharePub)
	if err != nil {
		return 0, err
	}
	if len(entries) > 0 && entries[0].Seq == 0 && l.state.Len() > 0 && entries[0].hash != l.state.entries[0].hash {
		theirs, err := Replay(share, sharePub, entries)
		if err != nil {
			return 0, err
		}
		if !l.state.yields(theirs) {
			if theirs.yields(l.state) {
				return 0, nil // theirs gives way to ours when they ask us
			}
			return 0, fmt.Errorf("the peer's membership log starts from another genesis: %w", ErrFork)
		}
		if err := s.replaceLocked(share, l, theirs); err != nil {
			return 0, err
		}
		return theirs.Len(), nil
	}
	for _, e := range entries {
		if e.Seq < uint64(l.state.Len()) && l.state.entries[e.Seq].hash == e.hash {
			continue // already held
		}
		if err := l.state.Check(e); err != nil {
			return added, err
		}
		if err := s.commitLocked(share, l, e); err != nil {
			return added, err
		}
		added++
	}
	return added, nil
}

// replaceLocked swaps a migrated genesis for another log.
func (s *Store) replaceLocked(share [32]byte, l *shareLog, st *State) error {
	b := s.db.NewBatch()
	defer b.Close()
	p := prefix(share, subEntry)
	_ = b.DeleteRange(p, store.PrefixEnd(p), nil)
	for _, e := range st.entries {
		_ = b.Set(binary.BigEndian.AppendUint64(slices.Clone(p), e.Seq), e.Encode(), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store the membership log: %w", err)
	}
	l.state = st
	l.index()
	return nil
}

// MergePending takes pending changes a peer relayed: each is kept (its
// signatures added to ours) if it is valid but for approvals, and joins the
// log once it has enough.
func (s *Store) MergePending(share [32]byte, sharePub ed25519.PublicKey, raw [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, err := s.loadLocked(share, sharePub)
	if err != nil {
		return err
	}
	var first error
	for _, b := range raw {
		e, err := Decode(b)
		if err == nil {
			err = l.state.Check(e)
			switch {
			case errors.Is(err, ErrNeedsApproval):
				err = s.putPendingLocked(share, l, e)
			case err == nil:
				err = s.commitLocked(share, l, e)
			}
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// PutEpochKey keeps an epoch key this device holds.
func (s *Store) PutEpochKey(share [32]byte, epoch uint64, k EpochKey) error {
	return s.db.Set(binary.BigEndian.AppendUint64(prefix(share, subKey), epoch), k[:], pebble.Sync)
}

// EpochKeys returns every epoch key this device holds, by epoch. Old keys
// are kept: history written under them stays readable.
func (s *Store) EpochKeys(share [32]byte) (map[uint64]EpochKey, error) {
	out := map[uint64]EpochKey{}
	p := prefix(share, subKey)
	err := s.scan(p, func(k, v []byte) error {
		if len(k) == len(p)+8 && len(v) == EpochKeySize {
			out[binary.BigEndian.Uint64(k[len(p):])] = EpochKey(v)
		}
		return nil
	})
	return out, err
}

// PutPublicKey keeps a member's Ed25519 key once it is known (a device
// proves it on its own connection); it is refused unless it hashes to d.
func (s *Store) PutPublicKey(share [32]byte, d Device, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize || DeviceOf(pub) != d {
		return fmt.Errorf("public key of device %s does not match its ID: %w", short(d), ErrRefused)
	}
	return s.db.Set(append(prefix(share, subPub), d[:]...), pub, pebble.NoSync)
}

// PublicKey returns a member's Ed25519 key, if known.
func (s *Store) PublicKey(share [32]byte, d Device) (ed25519.PublicKey, bool) {
	v, closer, err := s.db.Get(append(prefix(share, subPub), d[:]...))
	if err != nil {
		return nil, false
	}
	defer closer.Close()
	if len(v) != ed25519.PublicKeySize || DeviceOf(v) != d {
		return nil, false
	}
	return slices.Clone(ed25519.PublicKey(v)), true
}

// PutInvitee remembers that the invitation whose token hashes to token
// admitted device d, so the invitation dies with d's membership.
func (s *Store) PutInvitee(share [32]byte, token string, d Device) error {
	return s.db.Set(append(prefix(share, subInvitee), token...), d[:], pebble.Sync)
}

// Invitees returns, by token hash, the devices the share's invitations
// admitted on this device.
func (s *Store) Invitees(share [32]byte) (map[string]Device, error) {
	out := map[string]Device{}
	p := prefix(share, subInvitee)
	err := s.scan(p, func(k, v []byte) error {
		if len(v) == 32 {
			out[string(k[len(p):])] = Device(v)
		}
		return nil
	})
	return out, err
}
