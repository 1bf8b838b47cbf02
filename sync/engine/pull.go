package engine

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/apply"
	"github.com/blueshift-sync/blueshift/sync/delta"
	"github.com/blueshift-sync/blueshift/sync/reconcile"
)

// errMissingBlocks: some block of a file is neither local nor held by any
// connected member; the record waits and is tried again later.
var errMissingBlocks = errors.New("blocks not available from any connected device")

// errDirWaits: a deleted directory still holds paths the index tracks, whose
// own deletions are still on their way (a walk brings records in tree-key
// order, not path order); the directory's deletion waits for them.
var errDirWaits = errors.New("directory still holds synced paths; waits for their deletions")

// stagedFile is a record applied but not yet committed (see applyFiles and
// commitDirs): a small file's content written aside, a directory made but
// not yet synced, or a file whose attributes were set in place (inPlace:
// nothing to install). install puts the content in place and returns the
// state to commit, commit false when the record was applied another way
// (its directory moved) and is settled already; discard removes what was
// staged.
type stagedFile struct {
	in      incoming
	install func() (state *index.FileState, commit bool, err error)
	discard func()
	inPlace bool
	held    bool // its path is held (applying.go) until committed or settled
}

// applyOne makes the disk match one remote record, if it wins. With stage
// set, a small file's content is only staged, and a new directory made
// without an fsync: the caller installs or commits them after it has synced
// the share (see applyFiles, commitDirs). The path is held (applying.go)
// from its first change on disk until its record is committed: returned
// staged, until the caller releases it (releaseStaged).
func (f *folder) applyOne(ctx context.Context, in incoming, stage bool) (sf *stagedFile, err error) {
	p := in.rec.Path
	held := false
	hold := func() {
		if !held {
			held = true
			f.hold(p)
		}
	}
	defer func() {
		switch {
		case sf != nil && held:
			sf.held = true
		case held:
			f.release(p)
		}
	}()
	disk, err := f.root.Stat(p)
	if err != nil {
		return nil, err
	}
	st, ok, err := f.idx.LocalState(p)
	if err != nil {
		return nil, err
	}
	// A directory already there holds no content of its own: made by this
	// puller as the parent of files whose records came first (a walk
	// delivers records in key order, not path order), or by the user, it is
	// simply adopted. Recorded first as a creation here, it would be a
	// version concurrent with the sender's, and would beat the sender's
	// later deletion of the folder (delete versus edit keeps the edit),
	// bringing back an empty folder its owner renamed.
	adoptDir := !in.rec.Deleted && in.rec.Kind == record.Dir && disk.Exists && disk.Mode.IsDir()
	if !sameDisk(disk, st, ok) && !adoptDir {
		// The disk holds something the index has not seen: record it first,
		// so it is compared (and kept) like any other version.
		f.scan(ctx, scanRequest{paths: []string{string(p)}})
		if disk, err = f.root.Stat(p); err != nil {
			return nil, err
		}
		if st, ok, err = f.idx.LocalState(p); err != nil {
			return nil, err
		}
	}
	entry, has, err := f.idx.Lookup(p)
	if err != nil {
		return nil, err
	}
	var local *reconcile.Side
	if has {
		local = &reconcile.Side{Rec: entry.Record, Leaf: entry.Envelope.Leaf()}
	}
	// A losing file is set aside as a conflict copy only once the winner's
	// content is at hand: a pull that fails leaves the disk as it was.
	var setAside func() (apply.FileState, error)
	outcome := reconcile.Decide(local, reconcile.Side{Rec: in.rec, Leaf: in.env.Leaf()})
	if in.revert && has && outcome == reconcile.Keep {
		outcome = reconcile.Take // the disk's edit goes to the versions folder as it is replaced
	}
	switch outcome {
	case reconcile.Keep:
		return nil, nil
	case reconcile.TakeAfterCopy:
		if disk.Exists && !disk.Mode.IsDir() {
			setAside = func() (apply.FileState, error) { return f.setAside(ctx, in, entry.Record) }
		}
	}
	if !in.rec.Deleted {
		// Its directory was moved here while its files arrived: follow it.
		if to, ok := f.movedTo(ctx, p); ok {
			if err := f.applyMoved(ctx, in, to); !errors.Is(err, errNotMoved) {
				return nil, err
			}
		}
	}
	commit := func(state *index.FileState) error {
		f.mu.Lock()
		f.mu.origin[in.env.Leaf()] = in.from
		f.mu.Unlock()
		if state != nil && state.Kind == record.Dir {
			f.noteDir(p, state.Inode)
		}
		if err := f.idx.Commit(in.env, state); err != nil {
			return err
		}
		f.recorded(p)
		f.noteApplied(in)
		return nil
	}
	if outcome == reconcile.Take && has {
		hold()
		state, done, err := f.retouch(in, entry, disk, st, ok)
		if err != nil {
			return nil, err
		}
		if done && stage {
			return &stagedFile{in: in, inPlace: true, discard: func() {},
				install: func() (*index.FileState, bool, error) { return state, true, nil }}, nil
		}
		if done {
			return nil, commit(state)
		}
	}
	if stage && !in.rec.Deleted && in.rec.Kind == record.Dir && (!disk.Exists || disk.Mode.IsDir()) {
		// Made without an fsync each: the batch's sync makes it durable
		// before the index records it (commitDirs).
		hold()
		st, err := f.root.MkdirNoSync(p, in.meta())
		if err != nil {
			return nil, err
		}
		state := indexState(st)
		f.noteDir(p, st.Inode)
		return &stagedFile{in: in, discard: func() {},
			install: func() (*index.FileState, bool, error) { return state, true, nil }}, nil
	}
	var old *index.Entry
	if has {
		old = &entry
	}
	if stage && !in.rec.Deleted && in.rec.Kind == record.File && in.rec.Size <= smallFile && !(disk.Exists && disk.Mode.IsDir()) {
		hold() // put in place by install, committed after
		staged, err := f.stageSmall(ctx, in, old, in.meta())
		if err != nil {
			return nil, err
		}
		in.content = nil // in its temp file: not kept by install or the caller
		install := func() (*index.FileState, bool, error) {
			// Its directory may have moved while the content came.
			if to, ok := f.movedTo(ctx, p); ok && !in.rec.Deleted {
				staged.Discard()
				if err := f.applyMoved(ctx, in, to); !errors.Is(err, errNotMoved) {
					return nil, false, err
				}
				return nil, false, fmt.Errorf("put %q: its directory moved: %w", p, apply.ErrChanged) // decided again
			}
			expect, err := setAsideNow(disk, setAside)
			if err != nil {
				staged.Discard()
				return nil, false, err
			}
			st, err := staged.Install(ctx, expect)
			if err != nil {
				return nil, false, err
			}
			return indexState(st), true, nil
		}
		return &stagedFile{in: in, install: install, discard: staged.Discard}, nil
	}
	hold()
	state, err := f.materialize(ctx, in, old, disk, setAside)
	if moved := (*dirMovedError)(nil); errors.As(err, &moved) {
		if err := f.applyMoved(ctx, in, moved.to); !errors.Is(err, errNotMoved) {
			return nil, err
		}
		return nil, fmt.Errorf("put %q: %w", p, apply.ErrChanged) // decided again
	}
	if err != nil {
		return nil, err
	}
	if testHookPut != nil {
		testHookPut(f, p)
	}
	return nil, commit(state)
}

// retouch applies a record that changes nothing but a file's mode or mtime
// (a `touch`, a `chmod`): when the file on disk, as the index last saw it,
// already holds the record's blocks, its attributes are set in place. No
// block is fetched, nothing is rewritten, no version is kept (no content is
// replaced), and the file keeps its inode. done is false when the record
// changes more, or the disk is not what the index knows: then the file is
// pulled as usual. A user's edit since the index looked makes SetAttrs fail
// with apply.ErrChanged, and settle records the edit and decides again.
func (f *folder) retouch(in incoming, local index.Entry, disk apply.FileState, st index.FileState, known bool) (state *index.FileState, done bool, err error) {
	rec, was := in.rec, local.Record
	if rec.Deleted || rec.Kind != record.File || was.Deleted || was.Kind != record.File || !disk.Mode.IsRegular() {
		return nil, false, nil
	}
	if !known || !sameDisk(disk, st, known) {
		return nil, false, nil
	}
	// The blocks on disk: the state's own list when it has one (the file
	// differs from the record), else the record's.
	hash, blocks := st.FileHash, st.Blocks
	if hash.IsZero() {
		hash, blocks = was.FileHash, was.Blocks
	}
	if hash != rec.FileHash || st.Size != rec.Size || !slices.Equal(blocks, rec.Blocks) {
		return nil, false, nil
	}
	now, err := f.root.SetAttrs(rec.Path, disk, in.meta())
	if err != nil {
		return nil, true, err
	}
	f.retouched.Add(1)
	return indexState(now), true, nil
}

// setAside moves the losing local file at in's path to its conflict name
// and returns what the path holds after.
func (f *folder) setAside(ctx context.Context, in incoming, loser record.Record) (apply.FileState, error) {
	p := in.rec.Path
	cp, err := f.root.ConflictCopy(p, f.e.deviceName(loser.ModifiedBy), loser.ModTime)
	switch {
	case errors.Is(err, fs.ErrExist):
		// The same loser was set aside already (by this device or another):
		// the file is replaced as usual, and so kept in the versions folder.
	case err != nil:
		return apply.FileState{}, fmt.Errorf("set conflicting copy aside: %w", err)
	default:
		f.noteFile(Event{Kind: FileConflict, Path: p, Copy: cp, Peer: in.from, Bytes: loser.Size})
		f.mu.Lock()
		f.mu.conflict++
		f.mu.Unlock()
		f.scan(ctx, scanRequest{paths: []string{string(cp)}})
	}
	return f.root.Stat(p)
}

// setAsideNow runs setAside, if there is a loser to set aside, and returns
// what the path holds then: disk when there is none.
func setAsideNow(disk apply.FileState, setAside func() (apply.FileState, error)) (apply.FileState, error) {
	if setAside == nil {
		return disk, nil
	}
	return setAside()
}

// materialize writes one record to disk over disk (what is there now, as
// the index knows it) and returns what it left there.
func (f *folder) materialize(ctx context.Context, in incoming, old *index.Entry, disk apply.FileState, setAside func() (apply.FileState, error)) (*index.FileState, error) {
	rec, p := in.rec, in.rec.Path
	meta := in.meta()
	if rec.Deleted || rec.Kind != record.File {
		// Nothing to fetch: the loser, if any, goes aside at once.
		var err error
		if disk, err = setAsideNow(disk, setAside); err != nil {
			return nil, err
		}
		setAside = nil
	}
	switch {
	case rec.Deleted:
		if !disk.Exists {
			return nil, nil
		}
		err := f.root.Remove(p, disk)
		if errors.Is(err, apply.ErrNotEmpty) {
			// Paths the index tracks below it were the sender's too and went
			// with the directory there: wait for their deletions, or the
			// directory would stay here, empty, once they come.
			if tracked, terr := f.idx.TracksBelow(p); terr != nil || tracked {
				return nil, fmt.Errorf("delete %q: %w", p, errors.Join(errDirWaits, terr))
			}
			// Files the peer never saw (ignored, or new here) keep it alive.
			f.log.Info("kept a deleted directory that still has content", "path", p, "peer", peerName(in.from))
			return nil, nil
		}
		return nil, err
	case rec.Kind == record.Dir:
		if disk.Exists && !disk.Mode.IsDir() {
			if err := f.root.Remove(p, disk); err != nil {
				return nil, err
			}
		}
		st, err := f.root.Mkdir(p, meta)
		return indexState(st), err
	case rec.Kind == record.Symlink:
		if disk.Exists && disk.Mode.IsDir() {
			if err := f.root.Remove(p, disk); err != nil {
				return nil, err
			}
			disk = apply.FileState{}
		}
		st, err := f.root.Symlink(p, rec.Target, disk)
		return indexState(st), err
	default:
		if disk.Exists && disk.Mode.IsDir() {
			if err := f.root.Remove(p, disk); err != nil {
				return nil, err
			}
			disk = apply.FileState{}
		}
		if old == nil || !disk.Exists || disk.Mode&fs.ModeType != 0 {
			old = nil // no usable basis on disk
		}
		st, err := f.pullFile(ctx, in, old, disk, meta, setAside)
		return indexState(st), err
	}
}

// pullFile builds a file's content in a resumable temp and installs it.
// Blocks already in the temp (an earlier, interrupted pull) are kept.
// setAside, if set, runs once the content is complete, before installing.
func (f *folder) pullFile(ctx context.Context, in incoming, old *index.Entry, disk apply.FileState, meta apply.Meta, setAside func() (apply.FileState, error)) (apply.FileState, error) {
	rec := in.rec
	if rec.Size <= smallFile {
		return f.pullSmall(ctx, in, old, disk, meta, setAside)
	}
	t, err := f.root.OpenSparseTemp(rec.Path, rec.FileHash, rec.Size, dataBytes(rec))
	if err != nil {
		return apply.FileState{}, err
	}
	bases := newBasis(f, old)
	hashes := make([]block.Hash, len(rec.Blocks))
	for i, b := range rec.Blocks {
		hashes[i] = b.Hash
	}
	if held, err := f.e.db.Holds(hashes); err == nil {
		bases.held = held // blocks not listed here are not looked up one by one
	}
	defer f.e.temps.forget(t, hashes)
	swarm, complete := f.beginPull(rec), false
	defer func() { swarm.end(complete) }()
	g, gctx := errgroup.WithContext(ctx)
	var missing atomic.Int64
	offs := make([]int64, len(rec.Blocks))
	var off int64
	var left []int
	for i, b := range rec.Blocks {
		offs[i] = off
		if block.IsZeros(b.Hash, b.Size) {
			// A hole (or zeros): not fetched, not written; it stays a hole.
			if err := t.Hole(off, int64(b.Size)); err != nil {
				t.Close()
				return apply.FileState{}, err
			}
			swarm.got(i)
		} else if t.Has(off, int64(b.Size)) || t.Salvage(off, int64(b.Size), func(d []byte) bool { return block.Sum(d) == b.Hash }) {
			f.e.temps.add(f.id, b.Hash, t, off, b.Size) // arrived before a restart (or a kill: checked)
			swarm.got(i)
		} else {
			left = append(left, i)
		}
		off += int64(b.Size)
	}
	left = f.multicastPull(ctx, in, t, offs, left, swarm) // LAN multicast first (multicast.go)
	// Then patches against the version the index holds (patch.go).
	left = f.patchPull(ctx, in, bases, t, offs, left, swarm)
	// Blocks are picked when a slot frees, so the pick sees the newest
	// Haves of the peers pulling the same file (swarm.go). A fixed set of
	// workers fetches them: a goroutine per block grew a fresh stack for
	// each (hashing and decoding go deep), a cost per block of its own.
	pick, slots := f.newPicker(rec, in.from, left), make(chan struct{}, f.e.opts.Parallel)
	work := make(chan int)
	for range min(f.e.opts.Parallel, len(left)) {
		g.Go(func() error {
			for i := range work {
				got, err := f.fetchInto(gctx, t, in.from, rec.Blocks[i], pick.at(i), offs[i], bases)
				<-slots
				if err != nil {
					return err
				}
				if !got {
					missing.Add(1)
					continue
				}
				swarm.got(i)
			}
			return nil
		})
	}
	for {
		select {
		case slots <- struct{}{}:
		case <-gctx.Done():
		}
		if gctx.Err() != nil {
			break // stopping (or a block failed): the temp keeps what arrived
		}
		i, ok := pick.next(gctx)
		if !ok {
			break
		}
		select {
		case work <- i:
		case <-gctx.Done():
		}
	}
	close(work)
	if err := g.Wait(); err != nil {
		t.Close()
		return apply.FileState{}, err
	}
	if err := ctx.Err(); err != nil {
		t.Close()
		return apply.FileState{}, err
	}
	if n := missing.Load(); n > 0 {
		t.Close() // keeps what arrived for the next try
		return apply.FileState{}, fmt.Errorf("pull %q: %w (%d of %d missing)", rec.Path, errMissingBlocks, n, len(rec.Blocks))
	}
	if err := f.dirMoved(ctx, rec.Path); err != nil {
		t.Close()
		return apply.FileState{}, err
	}
	if disk, err = setAsideNow(disk, setAside); err != nil {
		t.Close()
		return apply.FileState{}, err
	}
	st, err := f.root.Commit(ctx, t, disk, meta)
	complete = err == nil
	return st, err
}

// fetchInto gets block b of the file being pulled into temp t at offset
// off and notes it written. got is false, with no error, for a block no
// connected member holds: the pull goes on with the others.
func (f *folder) fetchInto(ctx context.Context, t *apply.Temp, from identity.DeviceID, b record.BlockRef, at blockAt, off int64, bases *basis) (got bool, err error) {
	data, release, err := f.e.getBlock(ctx, f, from, b, at, off, bases)
	if errors.Is(err, errMissingBlocks) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	_, err = t.WriteAt(data, off)
	release()
	if err != nil {
		return false, err
	}
	f.e.temps.add(f.id, b.Hash, t, off, b.Size)
	return true, nil
}

// smallFile is the size up to which a file is fetched in one go, without a
// resumable temp: an interrupted pull of it costs little to redo.
const smallFile = 1 << 20

// pullSmall fetches a small file's blocks in order into a plain temp.
func (f *folder) pullSmall(ctx context.Context, in incoming, old *index.Entry, disk apply.FileState, meta apply.Meta, setAside func() (apply.FileState, error)) (apply.FileState, error) {
	blocks, err := f.fetchAll(ctx, in, old)
	if err != nil {
		return apply.FileState{}, err
	}
	if err := f.dirMoved(ctx, in.rec.Path); err != nil {
		return apply.FileState{}, err
	}
	if disk, err = setAsideNow(disk, setAside); err != nil {
		return apply.FileState{}, err
	}
	return f.root.WriteFile(ctx, in.rec.Path, disk, meta, writeBlocks(blocks))
}

// stageSmall fetches a small file's blocks and stages them (see applyFiles).
func (f *folder) stageSmall(ctx context.Context, in incoming, old *index.Entry, meta apply.Meta) (*apply.Staged, error) {
	blocks, err := f.fetchAll(ctx, in, old)
	if err != nil {
		return nil, err
	}
	return f.root.Stage(ctx, in.rec.Path, meta, writeBlocks(blocks))
}

// fetchAll gets every block of a small file, in order.
func (f *folder) fetchAll(ctx context.Context, in incoming, old *index.Entry) ([][]byte, error) {
	if in.content != nil {
		return [][]byte{in.content}, nil // came with the record, checked
	}
	bases := newBasis(f, old)
	blocks := make([][]byte, len(in.rec.Blocks))
	var off int64
	for i, b := range in.rec.Blocks {
		data, release, err := f.e.getBlock(ctx, f, in.from, b, blockAt{key: fileKey{f.id, in.rec.FileHash}, n: len(in.rec.Blocks), i: i}, off, bases)
		if err != nil {
			return nil, fmt.Errorf("pull %q: %w", in.rec.Path, err)
		}
		blocks[i] = bytes.Clone(data) // kept past the release of a frame buffer
		release()
		off += int64(b.Size)
	}
	return blocks, nil
}

func writeBlocks(blocks [][]byte) func(apply.Writer) error {
	return func(w apply.Writer) error {
		for _, b := range blocks {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	}
}

// meta is what a record sets on disk besides content.
func (in incoming) meta() apply.Meta {
	return apply.Meta{Mode: fs.FileMode(in.rec.Mode) & fs.ModePerm, ModTime: in.rec.ModTime}
}

// getBlock returns block b (at offset off of the file being built from a
// record that peer from sent; block at of its file): from a local copy if
// any may be used (see readFor), else from a connected member (sources).
// A block that came raw is the received frame's own buffer, not a copy:
// the caller calls release once it has written data (and keeps no part of
// it), which gives the buffer back for the next frame (wire.Reader).
func (e *Engine) getBlock(ctx context.Context, f *folder, from identity.DeviceID, b record.BlockRef, at blockAt, off int64, bases *basis) (data []byte, release func(), err error) {
	if data, ok := f.readLocal(from, b, bases); ok {
		return data, noRelease, nil
	}
	var sig []byte
	basisData := bases.covering(off, b.Size)
	if len(basisData) >= minDeltaBasis {
		s := delta.Signature(basisData, delta.WindowFor(len(basisData)))
		sig, _ = s.MarshalBinary()
	}
	peers := f.connectedMembers()
	// Spread blocks across peers and helpers by offset (swarm).
	helpers := e.helpersOf(f.id)
	slot := int(uint64(off/int64(max(b.Size, 1))) % uint64(max(len(peers)+len(helpers), 1)))
	askedHelpers := slot >= len(peers) || len(peers) == 0
	if askedHelpers {
		if data, ok := e.fromHelpers(ctx, f, helpers, slot-len(peers), b); ok {
			return data, noRelease, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, noRelease, err
		}
	}
	if len(peers) == 0 {
		data, err = e.fromVault(ctx, f, from, b)
		return data, noRelease, err
	}
	start := slot % len(peers)
	for _, s := range sources(slices.Concat(peers[start:], peers[:start]), at) {
		if err := f.waitRecv(ctx, int(b.Size)); err != nil {
			return nil, noRelease, err
		}
		resp, err := s.conn().Request(ctx, &wire.BlockRequest{Share: f.id, Hash: b.Hash, Size: b.Size, Signature: sig})
		if err != nil {
			if ctx.Err() != nil {
				return nil, noRelease, ctx.Err()
			}
			continue
		}
		br, ok := resp.(*wire.BlockResponse)
		if !ok {
			at.refuted(s)
			continue // NotFound or another refusal: ask the next one
		}
		s.countIn(len(br.Data))
		f.act.recv.Add(int64(len(br.Data)))
		data, err := e.codec.decodeBlock(br, b.Hash, b.Size, basisData)
		if err != nil {
			br.Release()
			s.kill(fmt.Errorf("%w: %v", ErrPeerMisbehaved, err))
			continue
		}
		at.servedBy(s)
		if br.Encoding != wire.BlockRaw {
			br.Release() // data was decoded into a buffer of its own
			return data, noRelease, nil
		}
		return data, br.Release, nil
	}
	if !askedHelpers {
		// Read again: they may have been given while the peers were asked
		// (a receive's ticket arrives once its pull is under way).
		if data, ok := e.fromHelpers(ctx, f, e.helpersOf(f.id), 0, b); ok {
			return data, noRelease, nil
		}
	}
	data, err = e.fromVault(ctx, f, from, b)
	return data, noRelease, err
}

func noRelease() {}

// readFor finds block h for a file of f built from a record that peer from
// sent: in f's files and pull temps, or in those of another share of this
// device that from is a member of too (renames and copies across shares cost
// no transfer). A copy in a share the sender may not read is never used: a
// hash is no proof of holding the content, and a writer of f who learnt the
// hash of another share's block could otherwise have this device copy that
// block into f, where every member of f reads it (and this device serves it).
// The bytes are checked against h (a file may have changed since indexed).
func (f *folder) readFor(from identity.DeviceID, h block.Hash, size uint32) ([]byte, bool) {
	return f.e.readBlock(h, size, f.e.db.Locate, f.mayUseFor(from))
}

// mayUseFor says which shares' copies a file of f built from peer from's
// record may use: f's own, and those of shares from is a member of too.
func (f *folder) mayUseFor(from identity.DeviceID) func(share.ID) bool {
	return func(id share.ID) bool {
		if id == f.id {
			return true
		}
		g := f.e.folder(id)
		return g != nil && g.isMember(from)
	}
}

// readLocal is readFor, but a block the index did not list when the pull
// began (bases.held) is looked for in pull temps only: on a first sync
// there is no local copy to find, and a lookup per block costs more than
// the whole file's one (index.DB.Holds).
func (f *folder) readLocal(from identity.DeviceID, b record.BlockRef, bases *basis) ([]byte, bool) {
	if bases.held == nil || bases.held[b.Hash] {
		return f.readFor(from, b.Hash, b.Size)
	}
	return f.e.temps.read(f.mayUseFor(from), b.Hash, b.Size)
}

// readShared finds block h in the files and pull temps of f only: all that
// a peer asking about f may be served, for it need be a member of no other
// share of this device, and a hash is no proof of holding the block.
func (f *folder) readShared(h block.Hash, size uint32) ([]byte, bool) {
	return f.readSharedInto(h, size, nil)
}

// readSharedInto is readShared reading into buf (of size bytes, or nil: a
// new one) where it can; the block returned may be buf or another buffer.
func (f *folder) readSharedInto(h block.Hash, size uint32, buf []byte) ([]byte, bool) {
	// A copy the last scan hashed is found without a lookup in Pebble.
	if l, ok := f.idx.Proven(h, size); ok {
		if buf == nil {
			buf = make([]byte, size)
		}
		if f.readChecked(l, buf, h) {
			return buf, true
		}
	}
	return f.e.readBlock(h, size, f.idx.Locate, func(id share.ID) bool { return id == f.id })
}

// readBlock reads block h from a local file (found by locate) or pull temp
// of a share that may be used, checked against h.
func (e *Engine) readBlock(h block.Hash, size uint32, locate func(block.Hash) ([]index.Location, error), may func(share.ID) bool) ([]byte, bool) {
	locs, err := locate(h)
	if err != nil || len(locs) == 0 {
		return e.temps.read(may, h, size)
	}
	buf := make([]byte, size)
	for _, l := range locs {
		if l.Length != size || !may(l.Share) {
			continue
		}
		g := e.folder(l.Share)
		if g == nil {
			continue
		}
		if g.readChecked(l, buf, h) {
			return buf, true
		}
	}
	return e.temps.read(may, h, size)
}

// readChecked reads the block at l into buf and reports whether it is
// block h: without hashing it again when the share's last scan hashed the
// file and the open file is still as that scan saw it, before and after
// the read (see index.Share.Proves); else by hashing what was read.
func (g *folder) readChecked(l index.Location, buf []byte, h block.Hash) bool {
	file, err := g.root.Open(l.Path)
	if err != nil {
		return false
	}
	defer file.Close()
	before, err := file.Stat()
	if err != nil {
		return false
	}
	if n, err := file.ReadAt(buf, l.Offset); n != len(buf) || (err != nil && !errors.Is(err, io.EOF)) {
		return false
	}
	if g.idx.Proves(l.Path, before, l.Offset, l.Length, h) {
		if after, err := file.Stat(); err == nil && index.SameFile(before, after) {
			return true
		}
	}
	return block.Sum(buf) == h
}

// basis finds, for a block of the new version of a file, the block of the
// old version (still on disk) that covered the same offset: the best guess
// at what an edit inside a large block started from.
type basis struct {
	f      *folder
	path   record.Path
	starts []int64 // start offset of each old block
	blocks []record.BlockRef
	// held, if set, lists the blocks of the new version the index held
	// anywhere when the pull began (see readLocal); nil: unknown.
	held map[block.Hash]bool
}

func newBasis(f *folder, old *index.Entry) *basis {
	if old == nil || old.Record.Deleted || old.Record.Kind != record.File {
		return &basis{f: f}
	}
	b := &basis{f: f, path: old.Record.Path, blocks: old.Record.Blocks}
	var off int64
	for _, bl := range b.blocks {
		b.starts = append(b.starts, off)
		off += int64(bl.Size)
	}
	return b
}

// covering returns the old blocks overlapping [off, off+size), read from
// disk, checked and joined, or nil: when an edit moves chunk boundaries, a
// new block may span two old ones, and a delta against both stays small.
// At most maxBasisBlocks old blocks are joined.
func (b *basis) covering(off int64, size uint32) []byte {
	if len(b.blocks) == 0 {
		return nil
	}
	first := sort.Search(len(b.starts), func(i int) bool { return b.starts[i] > off }) - 1
	first = max(first, 0)
	var out []byte
	end := off + int64(size)
	for i := first; i < len(b.blocks) && i < first+maxBasisBlocks && b.starts[i] < end; i++ {
		bl := b.blocks[i]
		// A neighbour that overlaps by a sliver costs more signature than
		// it saves: join only the block at off and real overlaps.
		if i > first && min(end, b.starts[i]+int64(bl.Size))-b.starts[i] < int64(size)/4 {
			break
		}
		buf := make([]byte, bl.Size)
		n, err := b.f.root.ReadAt(b.path, buf, b.starts[i])
		if err != nil || n != len(buf) || block.Sum(buf) != bl.Hash {
			return nil
		}
		out = append(out, buf...)
	}
	return out
}

// maxBasisBlocks bounds the basis of one delta (and the signature sent).
const maxBasisBlocks = 3

// indexState turns what apply left on disk into what the index records.
func indexState(st apply.FileState) *index.FileState {
	if !st.Exists {
		return nil
	}
	return &index.FileState{
		Kind:    kindOf(st.Mode),
		Size:    st.Size,
		ModTime: st.ModTime.UnixNano(),
		Inode:   st.Inode,
		Mode:    uint32(st.Mode.Perm()),
	}
}

func kindOf(m fs.FileMode) record.Kind {
	switch {
	case m.IsDir():
		return record.Dir
	case m&fs.ModeSymlink != 0:
		return record.Symlink
	}
	return record.File
}

// sameDisk reports whether the disk still holds what the index last saw.
func sameDisk(disk apply.FileState, st index.FileState, known bool) bool {
	if !disk.Exists || !known {
		return disk.Exists == known
	}
	if kindOf(disk.Mode) != st.Kind {
		return false
	}
	if st.Kind == record.Dir {
		return true
	}
	if uint32(disk.Mode.Perm()) != st.Mode && st.Kind == record.File {
		return false
	}
	return disk.Size == st.Size && disk.ModTime.UnixNano() == st.ModTime &&
		(disk.Inode == 0 || st.Inode == 0 || disk.Inode == st.Inode)
}

// deviceName is how a conflict copy names the device whose change lost:
// the first 7 characters of its ID in base32, like the ID's first group.
func deviceName(d record.Device) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(d))
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])[:7]
}

// peerName is a device's short name for log lines and messages.
func peerName(id identity.DeviceID) string { return id.Abbrev() }
