package vault

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Store key prefixes, each followed by the share ID.
const (
	prefixItem  = 'i' // + share + slot + pusher -> item bytes
	prefixBlock = 'b' // + share + sealed name -> sealed block bytes
	prefixGen   = 'g' // + share -> generation, 8 bytes big-endian
	prefixPush  = 'p' // + share + pusher -> its last put, Unix nanoseconds, 8 bytes big-endian
	prefixAt    = 'a' // + share + sealed name -> when the block was put or last asked about, Unix nanoseconds
)

// DefaultGrace is how long a sealed block no item names is kept (Collect):
// a push sends blocks before the items that name them, and a writer told
// a block is held leaves it out of its put, so a block must outlive the
// longest push in progress. An item that arrives after its block went is
// not kept (PutResult.Missing) and is pushed again with it.
const DefaultGrace = time.Hour

// Error classes, tested with errors.Is.
var (
	// ErrCorrupt: bytes that are not a valid sealed item, or a sealed
	// item or block that does not open.
	ErrCorrupt = errors.New("corrupt sealed data")
	// ErrBadSignature: a sealed item not signed by the device it names.
	ErrBadSignature = errors.New("sealed item signature does not verify")
	// ErrRefused: the peer may not do what it asked (not a writer of the
	// share, or an item it did not seal).
	ErrRefused = errors.New("refused by the encrypted member")
)

// Store is an encrypted member's store: sealed items and sealed blocks of
// every share it keeps, in a Pebble database of its own. It is safe for
// concurrent use.
type Store struct {
	db    *pebble.DB
	log   *slog.Logger
	clock func() time.Time
	// putMu serializes puts, so a generation counts every change once.
	putMu gosync.Mutex
	// changes counts writes to the store; stats caches Stats by share
	// while it is unchanged (Stats walks every key of the share).
	changes atomic.Uint64
	statsMu gosync.Mutex
	stats   map[share.ID]cachedStats // guarded by statsMu
}

type cachedStats struct {
	changes uint64
	st      ShareStats
}

// Open opens (creating) the store in dir.
func Open(dir string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		return nil, fmt.Errorf("open the encrypted member's store in %s: %w", dir, err)
	}
	return &Store{db: db, log: log, clock: time.Now}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// PutResult counts what a put kept: new items and blocks, and Missing,
// items left out because they name a sealed block the store does not hold
// (the pusher sends them again with their blocks).
type PutResult struct {
	Items, Blocks, Missing int
}

// Put keeps what peer from pushed for share id: each item must be signed by
// from itself, a device may(from) allows to write, and newer (Seq) than the
// one from has at its slot (else it is skipped: a replay changes nothing).
// Blocks are kept under their sealed name; an item that lists a sealed
// block neither in this put nor held is skipped and counted Missing. One
// bad item refuses the whole put, and nothing of it is kept.
func (s *Store) Put(id share.ID, from identity.DeviceID, items, blocks [][]byte, may func(identity.DeviceID) bool) (PutResult, error) {
	var res PutResult
	if !may(from) {
		return res, fmt.Errorf("put from peer %s to share %s: not a writer of the share: %w", from.Abbrev(), id.Short(), ErrRefused)
	}
	s.putMu.Lock()
	defer s.putMu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	now := binary.BigEndian.AppendUint64(nil, uint64(s.clock().UnixNano()))
	put := make(map[block.Hash]bool, len(blocks))
	for _, data := range blocks {
		n := block.Sum(data)
		put[n] = true
		if err := b.Set(atKey(id, n), now, nil); err != nil {
			return res, err
		}
		k := blockKey(id, n)
		if _, closer, err := s.db.Get(k); err == nil {
			closer.Close()
			continue
		}
		if err := b.Set(k, data, nil); err != nil {
			return res, err
		}
		res.Blocks++
	}
	for _, raw := range items {
		it, err := DecodeItem(raw)
		if err != nil {
			return PutResult{}, fmt.Errorf("put from peer %s: %w", from.Abbrev(), err)
		}
		if err := it.Verify(id); err != nil {
			return PutResult{}, fmt.Errorf("put from peer %s: %w", from.Abbrev(), err)
		}
		if it.Pusher() != from {
			return PutResult{}, fmt.Errorf("put from peer %s: sealed item %x signed by device %s: %w", from.Abbrev(), it.slot[:4], it.Pusher().Abbrev(), ErrRefused)
		}
		k := itemKey(id, it.Key())
		if old, closer, err := s.db.Get(k); err == nil {
			prev, derr := DecodeItem(old)
			closer.Close()
			if derr == nil && prev.seq >= it.seq {
				continue
			}
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return PutResult{}, fmt.Errorf("read the store: %w", err)
		}
		if ok, err := s.holdsAll(id, it, put); err != nil {
			return PutResult{}, err
		} else if !ok {
			res.Missing++
			continue
		}
		if err := b.Set(k, it.raw, nil); err != nil {
			return PutResult{}, err
		}
		res.Items++
	}
	if res.Items > 0 {
		// The next generation: past the last, and past the clock, so a store
		// made again from nothing never repeats one a reader holds.
		gen, err := s.generation(id)
		if err != nil {
			return PutResult{}, err
		}
		gen = max(gen+1, uint64(s.clock().UnixNano()))
		if err := b.Set(prefixStart(id, prefixGen), binary.BigEndian.AppendUint64(nil, gen), nil); err != nil {
			return PutResult{}, err
		}
	}
	// The pusher's last put, a replay included: it was connected and
	// up to date then (status shows it).
	if err := b.Set(pushKey(id, from), now, nil); err != nil {
		return PutResult{}, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return PutResult{}, fmt.Errorf("write the store: %w", err)
	}
	s.changes.Add(1)
	return res, nil
}

// holdsAll reports whether every sealed block it lists is in put or held.
// Called with putMu held, so Collect cannot take one in between.
func (s *Store) holdsAll(id share.ID, it Item, put map[block.Hash]bool) (bool, error) {
	ok := true
	var err error
	it.Blocks(func(n block.Hash) {
		if !ok || err != nil || put[n] {
			return
		}
		_, closer, gerr := s.db.Get(blockKey(id, n))
		switch {
		case gerr == nil:
			closer.Close()
		case errors.Is(gerr, pebble.ErrNotFound):
			ok = false
		default:
			err = fmt.Errorf("read the store: %w", gerr)
		}
	})
	return ok, err
}

// generation counts the changes to share id's items (0: none yet).
func (s *Store) generation(id share.ID) (uint64, error) {
	v, closer, err := s.db.Get(prefixStart(id, prefixGen))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the store: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, nil
	}
	return binary.BigEndian.Uint64(v), nil
}

// List answers a VaultList of share id: its items after key after (nil:
// from the first), at most limit, whether more follow, and the store's
// generation; none and Unchanged if since is that generation.
func (s *Store) List(id share.ID, after []byte, since uint64, limit int) (*wire.VaultListResponse, error) {
	gen, err := s.generation(id)
	if err != nil {
		return nil, err
	}
	if since != 0 && since == gen {
		return &wire.VaultListResponse{Generation: gen, Unchanged: true}, nil
	}
	es, more, err := s.list(id, after, limit)
	if err != nil {
		return nil, err
	}
	return &wire.VaultListResponse{Entries: es, More: more, Generation: gen}, nil
}

func (s *Store) list(id share.ID, after []byte, limit int) ([]wire.VaultEntry, bool, error) {
	lo := itemKey(id, [wire.VaultKeySize]byte{})
	if len(after) == wire.VaultKeySize {
		lo = append(itemKey(id, [wire.VaultKeySize]byte(after)), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(id, prefixItem)})
	if err != nil {
		return nil, false, err
	}
	defer it.Close()
	var out []wire.VaultEntry
	for it.First(); it.Valid(); it.Next() {
		if len(out) == limit {
			return out, true, nil
		}
		item, err := DecodeItem(it.Value())
		if err != nil {
			s.log.Warn("a stored sealed item does not decode: dropped", "share", id.Short(), "err", err)
			continue
		}
		out = append(out, wire.VaultEntry{Key: item.Key(), Seq: item.seq, Tag: item.tag, ListsBlocks: item.ListsBlocks()})
	}
	return out, false, it.Error()
}

// Get returns share id's items at keys; those not held are left out.
func (s *Store) Get(id share.ID, keys [][wire.VaultKeySize]byte) ([][]byte, error) {
	var out [][]byte
	for _, k := range keys {
		v, closer, err := s.db.Get(itemKey(id, k))
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, bytes.Clone(v))
		closer.Close()
	}
	return out, nil
}

// Blocks says which of share id's sealed blocks named are held (a bit
// each) and, with data, returns their bytes. A block whose bytes no longer
// hash to its name (the disk changed it) is dropped, never served. Asked
// without data (a writer about to leave held blocks out of its put), the
// held blocks' time is set to now, so Collect keeps them for its grace
// while the put that needs them is on its way.
func (s *Store) Blocks(id share.ID, names [][wire.VaultNameSize]byte, data bool) (held []byte, out [][]byte, err error) {
	if !data {
		// Held answered and the time set at once: no Collect in between.
		s.putMu.Lock()
		defer s.putMu.Unlock()
	}
	held = make([]byte, (len(names)+7)/8)
	size := 0
	var touched [][]byte
	for i, n := range names {
		k := blockKey(id, n)
		v, closer, err := s.db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if !data {
			closer.Close()
			held[i/8] |= 1 << (i % 8)
			touched = append(touched, atKey(id, n))
			continue
		}
		b := bytes.Clone(v)
		closer.Close()
		if block.Sum(b) != block.Hash(n) {
			s.log.Warn("a stored sealed block no longer matches its name: dropped", "share", id.Short(), "block", fmt.Sprintf("%x", n[:4]))
			_ = s.db.Delete(k, pebble.Sync)
			s.changes.Add(1)
			continue
		}
		if len(out) == wire.MaxVaultBlocks || size+len(b) > wire.VaultBatchBytes {
			break // the asker asks again for the rest
		}
		held[i/8] |= 1 << (i % 8)
		out = append(out, b)
		size += len(b)
	}
	if len(touched) > 0 {
		b := s.db.NewBatch()
		defer b.Close()
		now := binary.BigEndian.AppendUint64(nil, uint64(s.clock().UnixNano()))
		for _, k := range touched {
			if err := b.Set(k, now, nil); err != nil {
				return nil, nil, err
			}
		}
		if err := b.Commit(pebble.NoSync); err != nil {
			return nil, nil, fmt.Errorf("write the store: %w", err)
		}
	}
	return held, out, nil
}

// CollectResult is what a Collect did: the sealed blocks it deleted and
// their bytes, and Unlisted, the items of version 1 the share holds (they
// do not list their blocks: while one is kept, nothing is collected).
type CollectResult struct {
	Blocks   int
	Bytes    int64
	Unlisted int
}

// Collect deletes share id's sealed blocks that no item it keeps lists and
// that were put, or asked about by a pusher, more than grace ago. A block
// kept from before block times were recorded gets the time of this call.
// It collects nothing while an item of version 1 is kept.
func (s *Store) Collect(id share.ID, grace time.Duration) (CollectResult, error) {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	var res CollectResult
	live := map[block.Hash]bool{}
	err := s.scan(id, prefixItem, func(_, v []byte) {
		it, err := DecodeItem(v)
		switch {
		case err != nil:
		case !it.ListsBlocks():
			res.Unlisted++
		default:
			it.Blocks(func(n block.Hash) { live[n] = true })
		}
	})
	if err != nil || res.Unlisted > 0 {
		return res, err
	}
	now := s.clock()
	at := map[block.Hash]time.Time{}
	err = s.scan(id, prefixAt, func(k, v []byte) {
		if len(k) == 32 && len(v) == 8 {
			at[block.Hash(k)] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
		}
	})
	if err != nil {
		return res, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	stamp := binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano()))
	err = s.scan(id, prefixBlock, func(k, v []byte) {
		if len(k) != 32 {
			return
		}
		n := block.Hash(k)
		t, timed := at[n]
		delete(at, n)
		switch {
		case live[n]:
		case !timed:
			_ = b.Set(atKey(id, n), stamp, nil)
		case now.Sub(t) >= grace:
			_ = b.Delete(blockKey(id, n), nil)
			_ = b.Delete(atKey(id, n), nil)
			res.Blocks++
			res.Bytes += int64(len(v))
		}
	})
	if err != nil {
		return res, err
	}
	for n := range at { // times of blocks no longer held
		_ = b.Delete(atKey(id, n), nil)
	}
	if b.Empty() {
		return res, nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return res, fmt.Errorf("collect sealed blocks of share %s: %w", id.Short(), err)
	}
	s.changes.Add(1)
	return res, nil
}

// scan calls f with the key (less the prefix and share) and value of each
// of share id's keys under prefix p. The slices are valid during f only.
func (s *Store) scan(id share.ID, p byte, f func(k, v []byte)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixStart(id, p), UpperBound: prefixEnd(id, p)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		f(it.Key()[1+len(id):], it.Value())
	}
	if err := it.Error(); err != nil {
		it.Close()
		return err
	}
	return it.Close()
}

// ShareStats is what the store keeps of one share: its sealed items and
// blocks, their bytes, the generation readers list against, and each
// pusher's items and last put.
type ShareStats struct {
	Items      int
	ItemBytes  int64
	Blocks     int
	BlockBytes int64
	Generation uint64
	Pushers    []PusherStats // by device ID
}

// PusherStats is one pusher's part of a share in the store.
type PusherStats struct {
	Device   identity.DeviceID
	Items    int       // items at slots this pusher filled last
	LastPush time.Time // its last put here (zero: none kept, e.g. pushed before this was recorded)
}

// Stats returns what the store keeps of share id. It walks the share's
// keys once per change to the store, and answers from a cache between.
func (s *Store) Stats(id share.ID) (ShareStats, error) {
	ch := s.changes.Load()
	s.statsMu.Lock()
	if c, ok := s.stats[id]; ok && c.changes == ch {
		s.statsMu.Unlock()
		return c.st, nil
	}
	s.statsMu.Unlock()
	var st ShareStats
	pushers := map[identity.DeviceID]*PusherStats{}
	pusher := func(d identity.DeviceID) *PusherStats {
		p := pushers[d]
		if p == nil {
			p = &PusherStats{Device: d}
			pushers[d] = p
		}
		return p
	}
	for _, p := range []byte{prefixItem, prefixBlock, prefixPush} {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixStart(id, p), UpperBound: prefixEnd(id, p)})
		if err != nil {
			return ShareStats{}, err
		}
		for it.First(); it.Valid(); it.Next() {
			k := it.Key()[1+len(id):]
			switch p {
			case prefixItem:
				st.Items++
				st.ItemBytes += int64(len(it.Value()))
				if len(k) == wire.VaultKeySize {
					pusher(identity.DeviceID(k[32:])).Items++
				}
			case prefixBlock:
				st.Blocks++
				st.BlockBytes += int64(len(it.Value()))
			case prefixPush:
				if v := it.Value(); len(k) == len(identity.DeviceID{}) && len(v) == 8 {
					pusher(identity.DeviceID(k)).LastPush = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
				}
			}
		}
		if err := it.Close(); err != nil {
			return ShareStats{}, err
		}
	}
	gen, err := s.generation(id)
	if err != nil {
		return ShareStats{}, err
	}
	st.Generation = gen
	for _, p := range pushers {
		st.Pushers = append(st.Pushers, *p)
	}
	slices.SortFunc(st.Pushers, func(a, b PusherStats) int { return bytes.Compare(a.Device[:], b.Device[:]) })
	s.statsMu.Lock()
	if s.stats == nil {
		s.stats = map[share.ID]cachedStats{}
	}
	s.stats[id] = cachedStats{changes: ch, st: st}
	s.statsMu.Unlock()
	return st, nil
}

// Drop forgets everything of share id (the share left this device).
func (s *Store) Drop(id share.ID) error {
	defer s.changes.Add(1)
	for _, p := range []byte{prefixItem, prefixBlock, prefixPush, prefixAt} {
		if err := s.db.DeleteRange(prefixStart(id, p), prefixEnd(id, p), pebble.Sync); err != nil {
			return fmt.Errorf("drop share %s from the store: %w", id.Short(), err)
		}
	}
	return nil
}

func prefixStart(id share.ID, p byte) []byte { return append([]byte{p}, id[:]...) }

func prefixEnd(id share.ID, p byte) []byte {
	k := prefixStart(id, p)
	for i := len(k) - 1; i >= 0; i-- {
		if k[i] != 0xff {
			k[i]++
			return k[:i+1]
		}
	}
	return nil
}

func itemKey(id share.ID, k [wire.VaultKeySize]byte) []byte {
	return append(prefixStart(id, prefixItem), k[:]...)
}

func pushKey(id share.ID, d identity.DeviceID) []byte {
	return append(prefixStart(id, prefixPush), d[:]...)
}

func blockKey(id share.ID, n [32]byte) []byte {
	return append(prefixStart(id, prefixBlock), n[:]...)
}

func atKey(id share.ID, n [32]byte) []byte {
	return append(prefixStart(id, prefixAt), n[:]...)
}

// quietPebble keeps Pebble's own chatter out of the logs.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
