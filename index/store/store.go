// Package store opens the device's one Pebble database and names every key
// in it. It knows the byte layout; the index package above it knows what the
// values mean.
//
// # Key layout
//
// All shares live in one database (DESIGN decision 8), each under a short
// per-device share number so that keys stay small. Integers are big-endian,
// so keys sort by number.
//
//	"\x00format"                                  -> Format        (marker, checked on Open)
//	"\x00next-share"                              -> no[4]         (last share number handed out)
//	'S' shareID[32]                               -> no[4]         share registry
//	's' no[4]                                     -> shareID[32]   reverse registry
//	'T' no[4] 'r' pathKey[32]                     -> envelope      a record, as its writer sealed it
//	'T' no[4] 'm' ...                             -> merkle tree   (merkle.New(Space.TreePrefix()))
//	'T' no[4] 'l' path                            -> FileState     what this device has on disk
//	'B' hash[32] no[4] pathKey[32] offset[8]      -> length[uvarint] path   block index
//
// Records and the tree are keyed by the share's keyed path hash (pathKey),
// so every member, even one that cannot read names, holds the same bytes.
// Local file state is keyed by the plain path: it never leaves the device,
// and path order lets a scan of one folder find what vanished below it with a
// prefix scan. The block index is device-wide: a prefix scan of 'B' hash
// finds every local copy of a block, whatever share or file holds it, so
// renames and copies cost no transfer; 'B' hash no[4] finds those of one
// share, which is all a peer may be served from.
//
// # Contracts
//
// A DB is safe for concurrent use (Pebble is). Writers that must stay
// consistent with each other (a share's records, tree and state) are
// serialized by the index package, not here. A database that cannot be
// opened or fails its format check reports ErrCorrupt with what to do: the
// database is a cache of the folders plus the peers, so it can be deleted and
// rebuilt without losing user data.
package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
)

// Format is the value of the format marker. A database with another marker
// was written by an incompatible version.
const Format = "blueshift-index/1"

// Key tags.
const (
	tagShare    = 'S'
	tagShareRev = 's'
	tagSpace    = 'T'
	tagBlock    = 'B'

	subRecord = 'r'
	subTree   = 'm'
	subState  = 'l'
)

var (
	keyFormat    = []byte("\x00format")
	keyNextShare = []byte("\x00next-share")
)

// ErrCorrupt marks a database that cannot be opened or read back. The
// message says what to do: delete the database folder and restart.
var ErrCorrupt = errors.New("index database corrupt")

// DB is the device's database.
type DB struct {
	pebble *pebble.DB
	dir    string
	log    *slog.Logger

	closed atomic.Bool

	mu struct {
		sync.Mutex // serializes share registration
	}
}

// Open opens (creating if needed) the database in dir.
func Open(dir string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create index folder %q: %w", dir, err)
	}
	existed := fileExists(filepath.Join(dir, "CURRENT"))
	opts := options(logger)
	pdb, err := pebble.Open(dir, opts)
	opts.Cache.Unref() // the database holds its own reference
	if err != nil {
		if existed || pebble.IsCorruptionError(err) || errors.Is(err, pebble.ErrCorruption) {
			return nil, corrupt(dir, err)
		}
		return nil, fmt.Errorf("open index database %q: %w", dir, err)
	}
	d := &DB{pebble: pdb, dir: dir, log: logger}
	if err := d.checkFormat(); err != nil {
		pdb.Close()
		return nil, err
	}
	return d, nil
}

// TablesWritten reports the bytes Pebble wrote to its tables (flushes and
// compactions) since the database was opened: over the bytes the index was
// given, its write amplification.
func (d *DB) TablesWritten() uint64 {
	t := d.pebble.Metrics().Total()
	return t.BytesFlushed + t.BytesCompacted
}

// corrupt wraps err as ErrCorrupt with the way out.
func corrupt(dir string, err error) error {
	return fmt.Errorf("%w: open %q: %v; the index is only a cache of your folders and peers: "+
		"stop blueshift, delete %q, and start it again (folders are rescanned, peers resend records)",
		ErrCorrupt, dir, err, dir)
}

func (d *DB) checkFormat() error {
	v, closer, err := d.pebble.Get(keyFormat)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		it, err := d.pebble.NewIter(nil)
		if err != nil {
			return corrupt(d.dir, err)
		}
		empty := !it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return corrupt(d.dir, err)
		}
		if !empty {
			return corrupt(d.dir, errors.New("no format marker in a non-empty database"))
		}
		if err := d.pebble.Set(keyFormat, []byte(Format), pebble.Sync); err != nil {
			return fmt.Errorf("write format marker to %q: %w", d.dir, err)
		}
		return nil
	case err != nil:
		return corrupt(d.dir, err)
	}
	defer closer.Close()
	if string(v) != Format {
		return corrupt(d.dir, fmt.Errorf("format %q, want %q", v, Format))
	}
	return nil
}

// Close flushes and closes the database. Closing twice is a no-op.
func (d *DB) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	if err := d.pebble.Close(); err != nil {
		return fmt.Errorf("close index database %q: %w", d.dir, err)
	}
	return nil
}

// Pebble returns the underlying database, for readers, batches and
// iterators built with the key functions of this package.
func (d *DB) Pebble() *pebble.DB { return d.pebble }

// Dir returns the database folder.
func (d *DB) Dir() string { return d.dir }

// Space returns the key space of share id, registering the share on first
// use. A share keeps its number for the life of the database.
func (d *DB) Space(id share.ID) (Space, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := append([]byte{tagShare}, id[:]...)
	v, closer, err := d.pebble.Get(k)
	if err == nil {
		defer closer.Close()
		if len(v) != 4 {
			return Space{}, corrupt(d.dir, fmt.Errorf("share registry entry of %x has %d bytes", id[:4], len(v)))
		}
		return Space{no: binary.BigEndian.Uint32(v), id: id}, nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return Space{}, fmt.Errorf("read share registry: %w", err)
	}
	var next uint32
	v, closer, err = d.pebble.Get(keyNextShare)
	switch {
	case err == nil:
		if len(v) != 4 {
			closer.Close()
			return Space{}, corrupt(d.dir, fmt.Errorf("share counter has %d bytes", len(v)))
		}
		next = binary.BigEndian.Uint32(v)
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return Space{}, fmt.Errorf("read share counter: %w", err)
	}
	next++
	no := binary.BigEndian.AppendUint32(nil, next)
	b := d.pebble.NewBatch()
	defer b.Close()
	_ = b.Set(keyNextShare, no, nil)
	_ = b.Set(k, no, nil)
	_ = b.Set(append([]byte{tagShareRev}, no...), id[:], nil)
	if err := b.Commit(pebble.Sync); err != nil {
		return Space{}, fmt.Errorf("register share %x: %w", id[:4], err)
	}
	return Space{no: next, id: id}, nil
}

// ShareOf returns the share ID registered under number no.
func (d *DB) ShareOf(no uint32) (share.ID, error) {
	var id share.ID
	v, closer, err := d.pebble.Get(binary.BigEndian.AppendUint32([]byte{tagShareRev}, no))
	if err != nil {
		return id, fmt.Errorf("look up share number %d: %w", no, err)
	}
	defer closer.Close()
	if len(v) != len(id) {
		return id, corrupt(d.dir, fmt.Errorf("reverse share registry entry %d has %d bytes", no, len(v)))
	}
	copy(id[:], v)
	return id, nil
}

// Space is one share's part of the key space.
type Space struct {
	no uint32
	id share.ID
}

// ID returns the share the space belongs to.
func (s Space) ID() share.ID { return s.id }

// Number returns the share's per-device number.
func (s Space) Number() uint32 { return s.no }

func (s Space) prefix(sub byte) []byte {
	p := make([]byte, 0, 6+64)
	p = append(p, tagSpace)
	p = binary.BigEndian.AppendUint32(p, s.no)
	return append(p, sub)
}

// RecordKey is where the envelope of the record at pathKey is stored.
func (s Space) RecordKey(pathKey [32]byte) []byte {
	return append(s.prefix(subRecord), pathKey[:]...)
}

// RecordPrefix is the prefix of every record key of the share.
func (s Space) RecordPrefix() []byte { return s.prefix(subRecord) }

// TreePrefix is the prefix under which the share's Merkle tree lives.
func (s Space) TreePrefix() []byte { return s.prefix(subTree) }

// StateKey is where the local state of path is stored.
func (s Space) StateKey(path string) []byte {
	return append(s.prefix(subState), path...)
}

// StatePrefix is the prefix of every local state key of the share.
func (s Space) StatePrefix() []byte { return s.prefix(subState) }

// StatePath returns the path of a key made by StateKey.
func (s Space) StatePath(key []byte) (string, bool) {
	p := s.prefix(subState)
	if !bytes.HasPrefix(key, p) {
		return "", false
	}
	return string(key[len(p):]), true
}

// BlockKeyLen is the length of a block index key.
const BlockKeyLen = 1 + block.Size + 4 + 32 + 8

// BlockKey is the block index key saying that block h is held at offset of
// the file at pathKey in share s.
func (s Space) BlockKey(h block.Hash, pathKey [32]byte, offset int64) []byte {
	k := make([]byte, 0, BlockKeyLen)
	k = append(k, tagBlock)
	k = append(k, h[:]...)
	k = binary.BigEndian.AppendUint32(k, s.no)
	k = append(k, pathKey[:]...)
	return binary.BigEndian.AppendUint64(k, uint64(offset))
}

// BlockPrefix is the prefix of every block index key of h.
func BlockPrefix(h block.Hash) []byte { return append([]byte{tagBlock}, h[:]...) }

// BlockPrefix is the prefix of the block index keys of h in share s only:
// the copies a member of s may be served.
func (s Space) BlockPrefix(h block.Hash) []byte {
	return binary.BigEndian.AppendUint32(BlockPrefix(h), s.no)
}

// BlockValue encodes the value of a block index entry.
func BlockValue(length uint32, path string) []byte {
	v := binary.AppendUvarint(make([]byte, 0, 5+len(path)), uint64(length))
	return append(v, path...)
}

// BlockEntry is one decoded block index entry.
type BlockEntry struct {
	Share   uint32
	PathKey [32]byte
	Offset  int64
	Length  uint32
	Path    string
}

// ParseBlockEntry decodes a block index key and value.
func ParseBlockEntry(key, value []byte) (BlockEntry, error) {
	var e BlockEntry
	if len(key) != BlockKeyLen || key[0] != tagBlock {
		return e, fmt.Errorf("%w: block index key of %d bytes", ErrCorrupt, len(key))
	}
	k := key[1+block.Size:]
	e.Share = binary.BigEndian.Uint32(k)
	copy(e.PathKey[:], k[4:36])
	off := binary.BigEndian.Uint64(k[36:])
	if off > 1<<62 {
		return e, fmt.Errorf("%w: block offset %d", ErrCorrupt, off)
	}
	e.Offset = int64(off)
	n, used := binary.Uvarint(value)
	if used <= 0 || n > 1<<32-1 {
		return e, fmt.Errorf("%w: block index value", ErrCorrupt)
	}
	e.Length = uint32(n)
	e.Path = string(value[used:])
	return e, nil
}

// PrefixEnd returns the first key after every key with prefix p, for
// iterator upper bounds.
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// blockCacheSize is what Pebble's block cache keeps of the index's blocks
// per device. A touch of every file of a share looks up each path's
// record, state and tree nodes in key order that is random on disk, so
// without a cache most lookups miss and read the block again. What it
// costs is resident memory that Go's collector does not see: at 32 MiB a
// touch of 100,000 files read blocks for 1.1 CPU-s instead of 4.1, but
// the device's peak RSS rose by a third (445 -> 593 MB) for a touch/first
// ratio of 0.51 against 0.53; 16 MiB keeps the hot tree nodes and most of
// a batch's records for half that memory.
const blockCacheSize = 16 << 20

// memTableSize is the size of each of Pebble's memtables. Pebble keeps
// two resident, the one filling and a flushed one for reuse: at 16 MiB
// they were a fifth of each daemon's peak RSS in a first sync of 200,000
// tiny files (scenario 7: 8 MiB ones took ~15-20 MB off each daemon), whose
// scans commit batches of at most ~3 MiB (index: scanBatchBytes), below the
// 4 MiB past which Pebble takes a batch as a memtable of its own.
const memTableSize = 8 << 20

// cacheSize is the cache Pebble is given. Pebble counts its memtables
// against the block cache: the one being filled and one kept for reuse
// each reserve their size, and a queued one too while it is flushed. A
// cache of blockCacheSize alone was all reserved and kept no block at all
// (BlockCache.Count 0, every read of a touch of 20,000 files went to the
// file; TestBlockCacheKeepsBlocks), so the two memtables come on top.
const cacheSize = blockCacheSize + 2*memTableSize

// l0CompactionThreshold is Pebble's L0CompactionThreshold: L0 is compacted
// into the level below once it holds half this many sublevels (Pebble's
// default, 4, is two). An index's keys are hashes, so every table flushed
// to L0 overlaps the whole of the level below, and each compaction of L0
// rewrites all of it. A touch of 50,000 files wrote 420-480 MB of tables
// on the two devices at Pebble's default, 260-325 MB at 8 and 180-265 MB
// at 16 (BenchmarkTouch, touch-index-MB-written; the first sync 265-310
// against 190-220 MB at 8), its CPU the same within the noise: 8 keeps
// lookups to at most four more tables in L0, each behind a bloom filter.
const l0CompactionThreshold = 8

// options are the Pebble settings for a device index: point lookups of
// records and state dominate, so every level has a bloom filter, and blocks
// are small (4 KiB) and not compressed: what is stored is mostly hashes and
// signatures, which do not compress, and every lookup that missed the block
// cache read and snappy-decoded a whole block for one record (with 32 KiB
// blocks, a third of the CPU of taking a touch of 20,000 files; 4 KiB
// uncompressed blocks took that touch from ~19.7 to ~14.2 CPU seconds
// without a larger cache, so with no more memory). Memtables are
// memTableSize, and L0 is compacted at l0CompactionThreshold.
func options(logger *slog.Logger) *pebble.Options {
	o := &pebble.Options{
		FormatMajorVersion:    pebble.FormatNewest,
		MemTableSize:          memTableSize,
		L0CompactionThreshold: l0CompactionThreshold,
		// Writes stall at three times as many sublevels, as Pebble's
		// defaults have it (12 for 4).
		L0StopWritesThreshold: 3 * l0CompactionThreshold,
		Cache:                 pebble.NewCache(cacheSize),
		Logger:                pebbleLogger{logger.With("part", "pebble")},
		BytesPerSync:          1 << 20,
		// The plain FS: Pebble's default wraps it in a disk-health checker
		// whose goroutine outlives a failed Open (it only logs slow writes).
		FS: vfs.Default,
	}
	o.Levels = make([]pebble.LevelOptions, 7)
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].BlockSize = 4 << 10
		o.Levels[i].Compression = pebble.NoCompression
	}
	return o.EnsureDefaults()
}

// pebbleLogger sends Pebble's log lines to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...))
}

// Fatalf is called by Pebble on a broken invariant it cannot survive; Pebble
// expects the process to stop, so it does, after saying why.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error("index database failed; delete the index folder to rebuild it", "err", msg)
	panic("pebble: " + msg)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
