// Package index is the single source of truth of what this device has: for
// every share, the records of its paths (as signed envelopes), the share's
// Merkle tree over them, what each path holds on local disk, and a
// device-wide block index that finds any local copy of a block.
//
// # Nouns
//
// A DB is the device's one database (index/store). A Share is one shared
// folder inside it: its key (share.Key), its root folder and this device's
// short ID. Scan walks the root and turns what changed on disk into new
// records (signed alone, or in batches of up to 32 under one signature
// once SetBatchSigning allows: batchsig.go); Commit stores a record a peer
// sent once the sync engine has written it to disk. FileState is what the index believes a path holds on
// disk (size, mtime, inode, mode), checked before a file is replaced. A
// Location is where a block can be read locally: DB.Locate finds every copy
// on the device, for building a file; Share.Locate only those in one
// share's files, which is all a member of that share may be served.
//
// # What a scan does
//
// (A sparse file is read by its data ranges on Linux, SEEK_DATA/SEEK_HOLE:
// its holes are zeros to the chunker without a read.)
//
// It walks the root without following symlinks (a symlink is a record with
// a Target), skips .blueshift metadata folders at any depth, nested shares
// (folders holding their own .blueshift, unless `share remove` left
// RemovedMarker in it) and paths the .blueshiftignore files ignore
// (index/ignore). A partial scan (the watcher's paths) applies the same
// rules: those of every folder above a path, its own folder's included. A
// change to an ignore file, or inside a nested .blueshift, scans the whole
// folder it governs. A path that becomes ignored keeps its record, so peers
// keep their copies, and is no longer synced: neither its changes nor its
// deletion. Folder records carry the Unix epoch as ModTime: a
// folder's mtime changes with every entry made in it, so it is not synced,
// and equal trees give equal roots. A file whose kind, size, mtime and inode match its stored
// FileState is not opened. Changed files are chunked and hashed in parallel
// (index/chunk), one Splitter per worker. Each changed path gets a new
// record (Version = old.Update(self, now), ModifiedBy = self) sealed with
// the share key; a path that vanished gets a tombstone. Records, tree
// updates, local state and block index change together, in one Pebble batch
// per group of paths, so a crash leaves the index consistent with itself.
// A path that cannot be scanned (vanished, changed while read, unreadable,
// bad name, special file) is reported in ScanResult.Errors as a *PathError
// and left as it was; the scan goes on.
//
// A scan that hashed a file of at least 1 MiB remembers, in memory, its
// blocks and its identity then (size, mtime, inode, ctime): Share.Proves
// tells a reader of that file that a block need not be hashed again while
// the file is as the scan saw it (verified.go says why that is safe, and
// when it does not apply: files written within a second of their scan, and
// platforms without a ctime).
//
// A key that cannot sign (read-only or encrypted) makes no records: a scan
// then only updates local state and the block index (FileState.Blocks holds
// the content hashed from disk); the engine decides what to do with local
// changes in such a share. Share.LocalChanges lists them (changed, added,
// deleted against the share's records).
//
// # Concurrency
//
// DB and Share are safe for concurrent use. Scan and Commit of one share are
// serialized by the share's write lock; Commits that wait for it at the
// same time are written together in one batch, with one update of the
// tree (merkle.Tree.Apply) and one batch commit (a group commit); each
// returns once its own record is committed or refused. CommitAll writes
// many applied records at once the same way (a batch of up to half of
// maxBatchPaths each), so a receiver of a `touch` updates its tree once per
// batch, not once per file. Root, Source, Envelope, Lookup,
// LocalState, Records and Locate read committed state and may run at any
// time, concurrently with them; Envelope (so Lookup) and LocalState answer
// from the envelopes and states read or written lately when they can
// (recent.go: a flush overwrites what it committed before the write lock is
// let go, so they never answer what the database no longer holds). Subscribers are called after each committed
// batch, in commit order, with the write lock held: they must be quick and
// must not call Scan or Commit (hand the envelopes to a channel).
//
// Scan starts goroutines (walk, hash workers, progress) and waits for all of
// them before it returns.
//
// View freezes a share's tree at one moment (a Pebble snapshot) for a diff;
// WalkView keeps recent frozen versions by root so a peer's walk reads one
// version from start to end. Kept views are few and short-lived (views.go),
// let go as the database writes and when it closes: none starts a goroutine.
package index

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/index/store"
)

// FileState is what the index believes a path holds on disk.
type FileState = store.FileState

// Options configure a DB.
type Options struct {
	// Logger receives the index's log lines; nil discards them.
	Logger *slog.Logger
	// Now is the clock used for version counters and tombstone times;
	// nil means time.Now.
	Now func() time.Time
	// Workers is the number of files hashed at once; 0 means GOMAXPROCS.
	Workers int
}

// DB is the device's index.
type DB struct {
	store *store.DB
	opts  Options
	log   *slog.Logger

	mu struct {
		sync.Mutex
		shares map[share.ID]*Share // guarded by mu
	}
}

// Open opens the index database in dir, creating it if needed.
func Open(dir string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	st, err := store.Open(dir, opts.Logger)
	if err != nil {
		return nil, err
	}
	db := &DB{store: st, opts: opts, log: opts.Logger}
	db.mu.shares = make(map[share.ID]*Share)
	return db, nil
}

// Sync makes every committed write durable (Commit does not wait for the
// disk; the engine calls Sync once per batch it applied).
func (db *DB) Sync() error {
	if err := db.store.Pebble().LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync index: %w", err)
	}
	return nil
}

// TablesWritten reports the bytes the database wrote to its tables, by
// flushes and compactions, since it was opened (benchmarks report them:
// what an index write costs the disk beyond the write).
func (db *DB) TablesWritten() uint64 { return db.store.TablesWritten() }

// Close closes the database. Shares must not be used afterwards.
func (db *DB) Close() error {
	db.eachShare((*Share).closeViews)
	return db.store.Close()
}

// expireViews lets go of the shares' views of their trees kept past their
// age (see walkViews): each pins data the database's writes replace.
func (db *DB) expireViews() { db.eachShare((*Share).expireViews) }

func (db *DB) eachShare(fn func(*Share)) {
	db.mu.Lock()
	shares := make([]*Share, 0, len(db.mu.shares))
	for _, s := range db.mu.shares {
		shares = append(shares, s)
	}
	db.mu.Unlock()
	for _, s := range shares {
		fn(s)
	}
}

// Share opens the share of key rooted at folder root, for device self.
// Asking twice for the same share returns the same *Share; asking with
// another root is an error.
func (db *DB) Share(key share.Key, root string, self record.Device) (*Share, error) {
	if key.Level() == 0 {
		return nil, errors.New("open share: the zero share key")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open share folder %q: %w", root, err)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if s, ok := db.mu.shares[key.ID()]; ok {
		if s.root != abs {
			return nil, fmt.Errorf("open share %s at %q: already open at %q", shortID(key.ID()), abs, s.root)
		}
		return s, nil
	}
	space, err := db.store.Space(key.ID())
	if err != nil {
		return nil, err
	}
	s := newShare(db, key, abs, self, space)
	db.mu.shares[key.ID()] = s
	return s, nil
}

// Location is one local copy of a block.
type Location struct {
	Share   share.ID
	Path    record.Path
	PathKey merkle.Key
	Offset  int64
	Length  uint32
}

// Locate returns where block h can be read on this device, in the files of
// every share: for building a file, where any local copy will do. Locations
// are what the index last saw: the file may have changed since, so a reader
// must check the bytes against h.
func (db *DB) Locate(h block.Hash) ([]Location, error) {
	return db.locate(h, store.BlockPrefix(h))
}

// Locate returns where block h can be read in this share's files only:
// what may be served to a member of this share, who need be a member of no
// other. The bytes must be checked against h, as with DB.Locate.
func (s *Share) Locate(h block.Hash) ([]Location, error) {
	return s.db.locate(h, s.space.BlockPrefix(h))
}

// locate lists the block index entries of h under prefix p.
func (db *DB) locate(h block.Hash, p []byte) ([]Location, error) {
	it, err := db.store.Pebble().NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: store.PrefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("locate block %s: %w", h.Short(), err)
	}
	defer it.Close()
	var out []Location
	ids := map[uint32]share.ID{}
	for it.First(); it.Valid(); it.Next() {
		e, err := store.ParseBlockEntry(it.Key(), it.Value())
		if err != nil {
			return nil, fmt.Errorf("locate block %s: %w", h.Short(), err)
		}
		id, ok := ids[e.Share]
		if !ok {
			if id, err = db.store.ShareOf(e.Share); err != nil {
				return nil, fmt.Errorf("locate block %s: %w", h.Short(), err)
			}
			ids[e.Share] = id
		}
		out = append(out, Location{Share: id, Path: record.Path(e.Path), PathKey: merkle.Key(e.PathKey), Offset: e.Offset, Length: e.Length})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("locate block %s: %w", h.Short(), err)
	}
	return out, nil
}

func shortID(id share.ID) string { return fmt.Sprintf("%x", id[:4]) }
