package index

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/index/store"
)

// Batch sizes: a scan commits after this many paths or bytes of batch,
// whichever comes first, so memory stays bounded and progress is durable.
// Its first batch holds batchPaths, each next one twice the last, up to
// maxBatchPaths: the first records reach peers early (the pusher and the
// receiver work while the scan goes on), and a large scan updates the
// tree seldom. Each update rebuilds every bucket it touches from all its
// leaves, so a batch of 2,000 of a share's 100,000 paths read half the
// tree: a touch of them all read its leaves 25 times over.
//
// A scan's batch ends at scanBatchBytes too (its records still to be sealed
// counted by estimate), before its tree nodes are added: Pebble takes a
// batch of more than half a memtable (4 MiB, index/store) as a memtable of
// its own, held until flushed, and a scan of 200,000 tiny files with
// batched signatures wrote ~8.5 MB per 8,192 paths, each batch's buffer
// grown by doubling to 16 MiB. TestScanBatchesEndAtTheirBytes.
const (
	batchPaths     = 2000
	maxBatchPaths  = 8192
	batchBytes     = 32 << 20
	scanBatchBytes = 3 << 20
)

// Share is one share of the device's index.
type Share struct {
	db      *DB
	key     share.Key
	root    string // absolute
	self    record.Device
	space   store.Space
	tree    *merkle.Tree
	canSign bool // the key is ReadWrite
	log     *slog.Logger

	write sync.Mutex // serializes Scan and Commit: the only writers of this share

	// commits holds the Commits waiting for the write lock: whichever
	// takes it first writes all of them in one batch (a group commit), so
	// the engine's parallel appliers share the tree's rewrites and one
	// batch commit instead of paying one each.
	commits struct {
		sync.Mutex
		queue []*pendingCommit // guarded by commits
	}

	views walkViews // recent versions of the tree, for peers' walks (views.go)

	proofs proofs // what scans hashed, so served blocks need no second hash (verified.go)

	recent *recent // envelopes and states read or written lately (recent.go)

	// Test hooks, called by hash workers around reading a file; nil outside
	// tests. Set before the first Scan.
	testHookBeforeOpen, testHookAfterRead func(abs string)

	subs struct {
		sync.Mutex
		next int
		fns  map[int]func(Update) // guarded by subs
	}

	// checked remembers the leaves of envelopes Check verified lately, so
	// that Commit does not verify their signatures again.
	checked struct {
		sync.Mutex
		set  map[merkle.Leaf]struct{} // guarded by checked
		ring []merkle.Leaf            // guarded by checked: set's members, oldest at next
		next int                      // guarded by checked
	}

	batch batchSigning // signing records in batches, verified roots (batchsig.go)
}

// checkedKept bounds the leaves Check remembers: more than a receiver holds
// between checking records and committing them (its puller's queue).
const checkedKept = 16384

// Entry is a stored record with its envelope.
type Entry struct {
	Envelope record.Envelope
	Record   record.Record
}

// Update is what subscribers hear after a batch is committed.
type Update struct {
	Envelopes []record.Envelope // the new envelopes, in batch order
	// Replaced holds, for each of Envelopes, the envelope it replaced at its
	// key, or nil: a peer in sync holds that one, so the new one can travel
	// as a delta against it.
	Replaced []*record.Envelope
	// Records holds, for each of Envelopes, its record, and Was that of the
	// envelope it replaced: what the writer had decoded already, so that a
	// subscriber need not decode them again (a touch of many files decoded
	// each record three times on its way out). nil where the writer did not
	// have one (a sealed record, nothing replaced); Records is nil if the
	// writer had none.
	Records, Was []*record.Record
	FromScan     bool // made by this device's scan (false: Commit)
}

func newShare(db *DB, key share.Key, root string, self record.Device, space store.Space) *Share {
	s := &Share{
		db: db, key: key, root: root, self: self, space: space,
		tree:   merkle.New(space.TreePrefix()),
		log:    db.log.With("share", shortID(key.ID())),
		recent: newRecent(),
	}
	s.canSign = key.Level() == share.ReadWrite
	s.views.now = db.opts.Now
	s.subs.fns = make(map[int]func(Update))
	s.checked.set = make(map[merkle.Leaf]struct{}, checkedKept)
	s.checked.ring = make([]merkle.Leaf, 0, checkedKept)
	s.batch.roots = record.NewRoots(rootsKept)
	return s
}

// Key returns the share's key.
func (s *Share) Key() share.Key { return s.key }

// Root returns the share's folder.
func (s *Share) Root() string { return s.root }

// TreeRoot returns the Merkle root hash of the share and its record count.
func (s *Share) TreeRoot() (merkle.Hash, uint64, error) {
	h, n, err := s.tree.Root(s.db.store.Pebble())
	if err != nil {
		return h, n, fmt.Errorf("read merkle root of share %s: %w", shortID(s.key.ID()), err)
	}
	return h, n, nil
}

// Source answers Merkle node queries from the committed local tree.
func (s *Share) Source() merkle.Source { return s.tree.Source(s.db.store.Pebble()) }

// TreeView is the committed local tree frozen at one moment: later commits
// do not change what it answers. A diff that runs while the share keeps
// changing (its records applied as they are found) reads its local side
// from one, so the tree it walks stays consistent. Close releases it.
type TreeView struct {
	merkle.Source
	Root  merkle.Hash
	Count uint64
	snap  *pebble.Snapshot
}

// Close releases the view.
func (v *TreeView) Close() error { return v.snap.Close() }

// View returns the committed local tree as it is now.
func (s *Share) View() (*TreeView, error) {
	snap := s.db.store.Pebble().NewSnapshot()
	root, count, err := s.tree.Root(snap)
	if err != nil {
		snap.Close()
		return nil, fmt.Errorf("read merkle root of share %s: %w", shortID(s.key.ID()), err)
	}
	return &TreeView{Source: s.tree.Source(snap), Root: root, Count: count, snap: snap}, nil
}

// Envelope returns the stored envelope at tree key k; ok is false if there
// is none.
func (s *Share) Envelope(k merkle.Key) (env record.Envelope, ok bool, err error) {
	if env, ok, hit := s.recent.envelope(k); hit {
		return env, ok, nil
	}
	gen := s.recent.generation()
	v, closer, err := s.db.store.Pebble().Get(s.space.RecordKey(k))
	if errors.Is(err, pebble.ErrNotFound) {
		s.recent.keepEnvelope(gen, k, env, false)
		return env, false, nil
	}
	if err != nil {
		return env, false, fmt.Errorf("read record %x: %w", k[:4], err)
	}
	defer closer.Close()
	env, err = record.Open(v) // Open copies v
	if err != nil {
		return env, false, fmt.Errorf("%w: stored record %x: %w", ErrCorrupt, k[:4], err)
	}
	s.recent.keepEnvelope(gen, k, env, true)
	return env, true, nil
}

// Lookup returns the record of path p; ok is false if there is none.
func (s *Share) Lookup(p record.Path) (e Entry, ok bool, err error) {
	env, ok, err := s.Envelope(s.key.PathKey(string(p)))
	if !ok || err != nil {
		return e, ok, err
	}
	rec, err := env.Record()
	if err != nil {
		return e, false, fmt.Errorf("decode record of %q: %w", p, err)
	}
	return Entry{Envelope: env, Record: rec}, true, nil
}

// LocalState returns what the index believes path p holds on disk; ok is
// false if the index knows of nothing there.
func (s *Share) LocalState(p record.Path) (st FileState, ok bool, err error) {
	if st, ok, hit := s.recent.state(p); hit {
		return st, ok, nil
	}
	gen := s.recent.generation()
	v, closer, err := s.db.store.Pebble().Get(s.space.StateKey(string(p)))
	if errors.Is(err, pebble.ErrNotFound) {
		s.recent.keepState(gen, p, st, false)
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("read local state of %q: %w", p, err)
	}
	defer closer.Close()
	st, err = store.ParseState(v)
	if err != nil {
		return st, false, fmt.Errorf("local state of %q: %w", p, err)
	}
	s.recent.keepState(gen, p, st, true)
	st.Blocks = slices.Clone(st.Blocks) // what recent keeps is its own
	return st, true, nil
}

// TracksBelow reports whether the index knows of anything on disk below
// the directory p: a path a scan found there or a peer's record put there.
func (s *Share) TracksBelow(p record.Path) (bool, error) {
	prefix := s.space.StateKey(string(p) + "/")
	it, err := s.db.store.Pebble().NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: store.PrefixEnd(prefix)})
	if err != nil {
		return false, fmt.Errorf("list local states below %q: %w", p, err)
	}
	found := it.First()
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return false, fmt.Errorf("list local states below %q: %w", p, err)
	}
	return found, nil
}

// DirWithInode returns the path at which the index last saw a directory
// with inode ino on disk; ok is false if it knows of none. It reads every
// local state of the share: for rare questions (where did a directory go).
func (s *Share) DirWithInode(ino uint64) (p record.Path, ok bool, err error) {
	if ino == 0 {
		return "", false, nil
	}
	prefix := s.space.StatePrefix()
	it, err := s.db.store.Pebble().NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: store.PrefixEnd(prefix)})
	if err != nil {
		return "", false, fmt.Errorf("find directory of inode %d: %w", ino, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		st, err := store.ParseState(it.Value())
		if err != nil || st.Kind != record.Dir || st.Inode != ino {
			continue
		}
		if path, ok := s.space.StatePath(it.Key()); ok {
			return record.Path(path), true, nil
		}
	}
	return "", false, it.Error()
}

// Forget records that this device deleted path p, which it does not hold on
// disk (a peer's content for p went to where p's directory had moved): it
// seals a tombstone newer than p's record, as a scan does for a path gone
// from disk, and subscribers hear it as they hear a scan's records. A
// path with no live record is left as it is.
func (s *Share) Forget(p record.Path) error {
	if !s.canSign {
		return fmt.Errorf("forget %q: this device may not change share %s", p, shortID(s.key.ID()))
	}
	s.write.Lock()
	defer s.write.Unlock()
	old, err := s.current(p)
	if err != nil {
		return fmt.Errorf("forget %q: %w", p, err)
	}
	if old.rec == nil || old.rec.Deleted {
		return nil
	}
	now := s.db.opts.Now()
	env, err := s.key.Seal(record.Record{
		Path: p, Kind: old.rec.Kind, ModTime: now, Deleted: true,
		Version: old.rec.Version.Update(s.self, uint64(now.Unix())), ModifiedBy: s.self,
	})
	if err != nil {
		return fmt.Errorf("seal tombstone of %q: %w", p, err)
	}
	w := s.newWriter(true)
	defer w.close()
	if err := w.put(change{path: p, pathKey: env.Key(), env: &env, oldDisk: old.diskBlocks()}); err != nil {
		return fmt.Errorf("forget %q: %w", p, err)
	}
	return w.flush()
}

// Records calls fn for every stored record of the share, in tree-key order,
// from a consistent snapshot. Sealed records (which this key cannot read)
// come with a zero Record.
func (s *Share) Records(fn func(Entry) error) error {
	p := s.space.RecordPrefix()
	snap := s.db.store.Pebble().NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: store.PrefixEnd(p)})
	if err != nil {
		return fmt.Errorf("list records: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		env, err := record.Open(it.Value())
		if err != nil {
			return fmt.Errorf("%w: stored record: %w", ErrCorrupt, err)
		}
		var rec record.Record
		if !env.Sealed() {
			if rec, err = env.Record(); err != nil {
				return fmt.Errorf("%w: stored record: %w", ErrCorrupt, err)
			}
		}
		if err := fn(Entry{Envelope: env, Record: rec}); err != nil {
			return err
		}
	}
	return it.Error()
}

// Subscribe registers fn to hear of every batch of new envelopes stored in
// the share, and returns a function that unregisters it. fn runs with the
// share's write lock held: it must be quick and must not call Scan or
// Commit.
func (s *Share) Subscribe(fn func(Update)) (cancel func()) {
	s.subs.Lock()
	defer s.subs.Unlock()
	id := s.subs.next
	s.subs.next++
	s.subs.fns[id] = fn
	return func() {
		s.subs.Lock()
		defer s.subs.Unlock()
		delete(s.subs.fns, id)
	}
}

func (s *Share) notify(u Update) {
	if len(u.Envelopes) == 0 {
		return
	}
	s.subs.Lock()
	fns := make([]func(Update), 0, len(s.subs.fns))
	for _, fn := range s.subs.fns {
		fns = append(fns, fn)
	}
	s.subs.Unlock()
	for _, fn := range fns {
		fn(u)
	}
}

// Check verifies env as Commit does (signed by the share's key, filed under
// its own path's tree key) and returns its record. A Commit of the same
// envelope soon after then skips the signature: a receiver checks each
// record as it arrives and commits it once applied, and verifying twice was
// a quarter of the CPU of taking a touch of many small files. The leaf (a
// BLAKE3 of the whole envelope) names exactly the bytes that were verified.
func (s *Share) Check(env record.Envelope) (record.Record, error) {
	rec, err := s.key.CheckWith(env, s.batch.roots)
	if err != nil {
		return rec, err
	}
	leaf := env.Leaf()
	s.checked.Lock()
	defer s.checked.Unlock()
	if _, ok := s.checked.set[leaf]; ok {
		return rec, nil
	}
	if len(s.checked.ring) < checkedKept {
		s.checked.ring = append(s.checked.ring, leaf)
	} else {
		delete(s.checked.set, s.checked.ring[s.checked.next])
		s.checked.ring[s.checked.next] = leaf
		s.checked.next = (s.checked.next + 1) % checkedKept
	}
	s.checked.set[leaf] = struct{}{}
	return rec, nil
}

// check is Check for Commit: an envelope Check verified lately is only
// decoded and checked to sit under its path's key.
func (s *Share) check(env record.Envelope) (record.Record, error) {
	if env.Sealed() || s.key.Level() < share.ReadOnly {
		return s.key.CheckWith(env, s.batch.roots)
	}
	s.checked.Lock()
	_, ok := s.checked.set[env.Leaf()]
	s.checked.Unlock()
	if !ok {
		return s.key.CheckWith(env, s.batch.roots)
	}
	rec, err := env.Record()
	if err != nil {
		return rec, err
	}
	if s.key.PathKey(string(rec.Path)) != env.Key() {
		return record.Record{}, fmt.Errorf("check record %q: filed under another path's tree key: %w", rec.Path, record.ErrCorrupt)
	}
	return rec, nil
}

// Commit stores env, a record received from a peer, once the sync engine
// has made the disk match it. local is what the engine left on disk (nil
// when it wrote nothing: a tombstone, a sealed record, or a record it only
// stores). The envelope, the tree, the local state and the block index
// change atomically. env must verify with the share's public key and sit at
// the tree key of its path. Commits made at the same time are written
// together, in one batch; each returns once its record is committed.
func (s *Share) Commit(env record.Envelope, local *FileState) error {
	c, err := s.pending(env, local)
	if err != nil {
		return err
	}
	s.commits.Lock()
	s.commits.queue = append(s.commits.queue, c)
	s.commits.Unlock()

	s.write.Lock()
	s.commits.Lock()
	group := s.commits.queue
	s.commits.queue = nil
	s.commits.Unlock()
	s.commitGroup(group) // ours, unless an earlier holder of the lock took it
	s.write.Unlock()
	<-c.done
	return c.err
}

// Applied is one record for CommitAll: a received envelope and what the
// engine left on disk for it, as for Commit.
type Applied struct {
	Envelope record.Envelope
	Local    *FileState
}

// CommitAll stores records received from peers that the engine has
// applied, as one Commit each would, and returns each one's error (nil:
// committed). They are written in as few batches as they fit, so the tree
// is updated once per batch, not once per record: a receiver taking a
// `touch` of many files committed them one at a time (its appliers seldom
// overlapped enough to share a group) and rewrote the tree's upper nodes
// for each.
func (s *Share) CommitAll(recs []Applied) []error {
	errs := make([]error, len(recs))
	group := make([]*pendingCommit, 0, len(recs))
	at := make([]int, 0, len(recs))
	for i, a := range recs {
		c, err := s.pending(a.Envelope, a.Local)
		if err != nil {
			errs[i] = err
			continue
		}
		group, at = append(group, c), append(at, i)
	}
	if len(group) == 0 {
		return errs
	}
	s.write.Lock()
	s.commitGroup(group)
	s.write.Unlock()
	for j, c := range group {
		<-c.done
		errs[at[j]] = c.err
	}
	return errs
}

// pending checks env as Commit does and makes its queue entry.
func (s *Share) pending(env record.Envelope, local *FileState) (*pendingCommit, error) {
	k := env.Key()
	rec, err := s.check(env)
	if err != nil {
		return nil, fmt.Errorf("commit record %x: %w", k[:4], err)
	}
	if local != nil && (env.Sealed() || s.key.Level() < share.ReadOnly) {
		return nil, fmt.Errorf("commit record %x: local state given for a record this key cannot read", k[:4])
	}
	return &pendingCommit{env: env, rec: rec, local: local, done: make(chan struct{})}, nil
}

// pendingCommit is one Commit waiting in the queue.
type pendingCommit struct {
	env   record.Envelope
	rec   record.Record // env's, checked
	local *FileState
	err   error         // set before done is closed
	done  chan struct{} // closed once the record is committed or failed
}

// commitGroup writes queued commits in as few batches as it can and tells
// each how it ended. The write lock is held.
func (s *Share) commitGroup(group []*pendingCommit) {
	if len(group) == 0 {
		return
	}
	w := s.newWriter(false)
	defer w.close()
	var batch []*pendingCommit // written into w's batch, not yet committed
	keys := make(map[merkle.Key]struct{}, len(group))
	// end commits the batch, or drops it, and tells its commits.
	end := func(err error) {
		if err == nil {
			err = w.flush()
		}
		if err != nil {
			w.discard() // none of it is committed
		}
		for _, c := range batch {
			c.err = err
			close(c.done)
		}
		batch = batch[:0]
		clear(keys)
	}
	for _, c := range group {
		if len(batch) >= maxBatchPaths/2 || w.b.Len() >= batchBytes/2 {
			// Ended here, before the writer's own flush (at its limit
			// or batchBytes) would commit part of it unbeknown to end.
			end(nil)
		}
		k := c.env.Key()
		if _, ok := keys[k]; ok {
			// What a path holds is read from committed state: a second
			// record of one path waits for the first to be committed.
			end(nil)
		}
		wrote, err := s.commitLocked(w, c)
		switch {
		case err == nil:
			keys[k] = struct{}{}
			batch = append(batch, c)
		case !wrote: // refused before writing: the others go on
			c.err = err
			close(c.done)
		default: // the batch holds part of c: drop it all
			batch = append(batch, c)
			end(err)
		}
	}
	end(nil)
}

// commitLocked writes c into w; wrote reports whether it wrote anything
// before it failed.
func (s *Share) commitLocked(w *writer, c *pendingCommit) (wrote bool, err error) {
	env, rec, k := c.env, c.rec, c.env.Key()
	if env.Sealed() || s.key.Level() < share.ReadOnly {
		if err := w.putEnvelope(env, nil, nil, nil); err != nil {
			return true, fmt.Errorf("commit record %x: %w", k[:4], err)
		}
		return true, nil
	}
	old, err := s.current(rec.Path)
	if err != nil {
		return false, fmt.Errorf("commit record of %q: %w", rec.Path, err)
	}
	var st *FileState
	switch {
	case rec.Deleted:
		st = nil
	case c.local != nil:
		l := *c.local
		l.FileHash, l.Blocks = [32]byte{}, nil // the record describes the content
		st = &l
	case old.state != nil:
		// The disk did not change: its blocks are no longer the record's,
		// so the state keeps its own list.
		l := *old.state
		l.FileHash, l.Blocks = old.diskHash(), old.diskBlocks()
		st = &l
	}
	ch := change{path: rec.Path, pathKey: k, env: &env, rec: &rec, oldEnv: old.env, oldRec: old.rec, state: st, oldDisk: old.diskBlocks()}
	ch.newDisk = diskBlocks(st, &rec)
	if err := w.put(ch); err != nil {
		return true, fmt.Errorf("commit record of %q: %w", rec.Path, err)
	}
	return true, nil
}

// current is what the index holds for one path.
type current struct {
	rec   *record.Record   // nil: no record
	env   *record.Envelope // rec's envelope
	state *FileState       // nil: no local state
}

func (s *Share) current(p record.Path) (current, error) {
	var c current
	e, ok, err := s.Lookup(p)
	if err != nil {
		return c, err
	}
	if ok {
		c.rec, c.env = &e.Record, &e.Envelope
	}
	st, ok, err := s.LocalState(p)
	if err != nil {
		return c, err
	}
	if ok {
		c.state = &st
	}
	return c, nil
}

func (c current) diskBlocks() []record.BlockRef { return diskBlocks(c.state, c.rec) }

func (c current) diskHash() [32]byte {
	if c.state == nil {
		return [32]byte{}
	}
	if !c.state.FileHash.IsZero() {
		return c.state.FileHash
	}
	if c.rec != nil && !c.rec.Deleted {
		return c.rec.FileHash
	}
	return [32]byte{}
}

// diskBlocks returns the blocks the block index holds for a path with state
// st and record rec: the state's own list when it has one (FileHash set),
// else the record's.
func diskBlocks(st *FileState, rec *record.Record) []record.BlockRef {
	switch {
	case st == nil || st.Kind != record.File:
		return nil
	case !st.FileHash.IsZero():
		return st.Blocks
	case rec != nil && !rec.Deleted && rec.Kind == record.File:
		return rec.Blocks
	}
	return nil
}

// change is one path's update, written by a writer.
type change struct {
	path    record.Path
	pathKey merkle.Key
	env     *record.Envelope // new envelope; nil: the record stays (or seal)
	rec     *record.Record   // env's record, if at hand
	seal    *record.Record   // a record the writer seals with others of its batch (scan)
	oldEnv  *record.Envelope // the envelope env replaces, if any
	oldRec  *record.Record   // oldEnv's record, if at hand
	state   *FileState       // new local state; nil: none (deleted)
	oldDisk []record.BlockRef
	newDisk []record.BlockRef
}

// writer groups changes into Pebble batches and tells subscribers of each
// committed one. It is used with the share's write lock held.
type writer struct {
	s            *Share
	fromScan     bool
	b            *pebble.Batch
	envs         []record.Envelope
	replaced     []*record.Envelope // per envs
	recs         []*record.Record   // per envs: their records, if at hand (Update.Records)
	was          []*record.Record   // per envs: replaced's records, if at hand
	tree         []merkle.Update    // per envs: applied to the tree once, at flush
	states       []pathState        // the local states written, for recent
	paths        int
	limit        int      // paths to a batch: the next flush comes at this many
	maxBytes     int      // the batch's bytes at which it is flushed
	lastLen      int      // the bytes of the last batch a scan committed: the next one's buffer
	sealing      []change // changes whose record is sealed with the next ones (batchsig.go)
	sealingBytes int      // their envelopes' estimated bytes (sealedSize)
}

func (s *Share) newWriter(fromScan bool) *writer {
	w := &writer{s: s, fromScan: fromScan, limit: maxBatchPaths, maxBytes: batchBytes}
	if fromScan {
		w.limit, w.maxBytes = batchPaths, scanBatchBytes
	}
	w.b = w.newBatch()
	return w
}

// newBatch starts a batch. A scan's is as large as its last one from the
// start (an eighth more), so its buffer is allocated once, not grown by
// doubling through every size below it.
func (w *writer) newBatch() *pebble.Batch {
	if w.lastLen > 0 {
		return w.s.db.store.Pebble().NewIndexedBatchWithSize(w.lastLen + w.lastLen/8)
	}
	return w.s.db.store.Pebble().NewIndexedBatch()
}

// putEnvelope writes env, whose record is rec (nil: not at hand), in place
// of replaced, whose record is was.
func (w *writer) putEnvelope(env record.Envelope, rec *record.Record, replaced *record.Envelope, was *record.Record) error {
	if err := w.b.Set(w.s.space.RecordKey(env.Key()), env.Bytes(), nil); err != nil {
		return err
	}
	w.tree = append(w.tree, merkle.Update{Key: env.Key(), Leaf: env.Leaf()})
	w.envs = append(w.envs, env)
	w.replaced = append(w.replaced, replaced)
	if replaced == nil {
		was = nil
	}
	w.recs, w.was = append(w.recs, rec), append(w.was, was)
	return nil
}

func (w *writer) put(c change) error {
	if c.env != nil {
		if err := w.putEnvelope(*c.env, c.rec, c.oldEnv, c.oldRec); err != nil {
			return err
		}
	}
	if c.seal != nil {
		if err := w.toSeal(c); err != nil {
			return err
		}
	}
	sp := w.s.space
	if !sameBlocks(c.oldDisk, c.newDisk) {
		var off int64
		for _, br := range c.oldDisk {
			if err := w.b.Delete(sp.BlockKey(br.Hash, c.pathKey, off), nil); err != nil {
				return err
			}
			off += int64(br.Size)
		}
		off = 0
		for _, br := range c.newDisk {
			if err := w.b.Set(sp.BlockKey(br.Hash, c.pathKey, off), store.BlockValue(br.Size, string(c.path)), nil); err != nil {
				return err
			}
			off += int64(br.Size)
		}
	}
	var err error
	w.states = append(w.states, pathState{path: c.path, state: c.state})
	if c.state != nil {
		err = w.b.Set(sp.StateKey(string(c.path)), store.AppendState(nil, *c.state), nil)
	} else {
		err = w.b.Delete(sp.StateKey(string(c.path)), nil)
	}
	if err != nil {
		return err
	}
	w.paths++
	if w.paths >= w.limit || w.b.Len()+w.sealingBytes >= w.maxBytes {
		w.limit = min(2*w.limit, maxBatchPaths)
		return w.flush()
	}
	return nil
}

// flush commits the batch and starts a new one.
func (w *writer) flush() error {
	if err := w.sealAll(); err != nil {
		return err
	}
	if w.b.Empty() {
		return nil
	}
	// A scan's batch is made durable at once; a Commit of a record the
	// engine already wrote to disk is made durable by DB.Sync, once per
	// batch of files: losing it in a crash costs a rescan, never data.
	opt := pebble.Sync
	if !w.fromScan {
		opt = pebble.NoSync
	}
	// One update of the tree per batch: each node on the changed paths is
	// rewritten once, not once per record below it.
	if err := w.s.tree.Apply(w.b, w.tree); err != nil {
		return fmt.Errorf("update tree: %w", err)
	}
	if err := w.b.Commit(opt); err != nil {
		return fmt.Errorf("write index batch: %w", err)
	}
	w.s.recent.wrote(w.envs, w.states) // before anyone may read what the batch replaced
	if w.fromScan {
		w.lastLen = w.b.Len()
	}
	w.b.Close()
	w.b = w.newBatch()
	w.s.db.expireViews() // kept views pin what this batch replaced
	u := Update{Envelopes: w.envs, Replaced: w.replaced, Records: w.recs, Was: w.was, FromScan: w.fromScan}
	w.envs, w.replaced, w.recs, w.was, w.tree, w.states, w.paths = nil, nil, nil, nil, w.tree[:0], w.states[:0], 0
	w.s.notify(u)
	return nil
}

func (w *writer) close() { w.b.Close() }

// discard drops what the batch holds and starts a new one.
func (w *writer) discard() {
	w.b.Close()
	w.b = w.newBatch()
	w.envs, w.replaced, w.recs, w.was, w.tree, w.states, w.paths, w.sealing = nil, nil, nil, nil, w.tree[:0], w.states[:0], 0, nil
	w.sealingBytes = 0
}

func sameBlocks(a, b []record.BlockRef) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Size != b[i].Size || !bytes.Equal(a[i].Hash[:], b[i].Hash[:]) {
			return false
		}
	}
	return true
}
