package index

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"golang.org/x/sync/errgroup"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/ignore"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/store"
)

// DefaultProgressInterval is how often Scan reports progress by default.
const DefaultProgressInterval = 250 * time.Millisecond

// ScanOptions say what to scan and whom to tell.
type ScanOptions struct {
	// Paths limits the scan to these paths and everything below them (a
	// watcher's "these may have changed"). nil scans the whole share.
	Paths []record.Path
	// Progress, if set, is called from a goroutine of the scan at most once
	// per ProgressInterval, and once more at the end with Done set.
	Progress func(Progress)
	// ProgressInterval defaults to DefaultProgressInterval.
	ProgressInterval time.Duration
	// ChunkKey, if set, keys the chunker's gear table (chunk.Params.Key)
	// for the files this scan reads: shares with encrypted members
	// (index/seal.Keys.ChunkKey). Files it does not read keep their blocks.
	ChunkKey *[32]byte
	// Busy, if set, names paths another writer is changing right now (the
	// engine's puller: a file put in place whose record is not committed
	// yet). The scan neither records nor tombstones them: it would take
	// the puller's half-done work for the user's and make it a version of
	// this device, concurrent with the peer's. They are listed in
	// ScanResult.Busy, for the caller to scan again once they are done.
	Busy func(record.Path) bool
	// WalkAfter, if set, holds the walk of the folder until it is closed;
	// the stored states are read before. A caller that starts watching the
	// folder as it scans passes "the watches are in place": the reading
	// overlaps the placing, and nothing that changes on disk after the
	// watches is missed.
	WalkAfter <-chan struct{}
}

// Progress is a snapshot of a running scan. Totals grow while the walk is
// under way (WalkDone false).
type Progress struct {
	Walked     int   // paths looked at
	FilesDone  int   // files read and hashed
	FilesTotal int   // files found that must be read
	BytesDone  int64 // bytes read and hashed
	BytesTotal int64 // bytes of the files that must be read
	Rate       float64
	Elapsed    time.Duration
	WalkDone   bool
	Done       bool
}

// ScanResult says what a scan did.
type ScanResult struct {
	Walked      int     // paths looked at (not ignored)
	Hashed      int     // files read and hashed
	HashedBytes int64   // bytes read and hashed
	Records     int     // new records made, tombstones included
	Deleted     int     // tombstones made
	Errors      []error // *PathError values: paths left as they were
	// Busy lists the paths left as they were because ScanOptions.Busy
	// said another writer was changing them.
	Busy []record.Path
	// ReadOnly: the key cannot sign, so changes were recorded as local state
	// only and no records were made.
	ReadOnly bool
}

// Scan brings the share's records up to date with its folder. See the
// package documentation for what it does. It returns an error only when the
// scan as a whole failed (the folder is missing, the database failed, ctx
// ended); problems with single paths are in ScanResult.Errors.
func (s *Share) Scan(ctx context.Context, opts ScanOptions) (ScanResult, error) {
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	s.write.Lock()
	defer s.write.Unlock()

	fi, err := os.Stat(s.root)
	if err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a folder")
		}
		// Never take a missing folder (an unmounted disk) for "everything
		// was deleted".
		return ScanResult{}, fmt.Errorf("scan share folder %q: %w; check that it exists and is mounted", s.root, err)
	}
	opts.Paths = widen(opts.Paths)
	sc := &scan{
		s: s, opts: opts, now: s.db.opts.Now(), start: time.Now(),
		seen: newPathSet(),
	}
	if err := sc.loadStates(); err != nil {
		return ScanResult{}, err
	}
	if opts.WalkAfter != nil {
		select {
		case <-opts.WalkAfter:
		case <-ctx.Done():
			return ScanResult{}, fmt.Errorf("scan share folder %q: %w", s.root, ctx.Err())
		}
	}
	res, err := sc.run(ctx)
	for _, e := range res.Errors {
		s.log.Warn("scan: path skipped", "err", e)
	}
	if err != nil {
		return res, fmt.Errorf("scan share folder %q: %w", s.root, err)
	}
	s.log.Debug("scan done", "walked", res.Walked, "hashed", res.Hashed, "bytes", res.HashedBytes,
		"records", res.Records, "deleted", res.Deleted, "errors", len(res.Errors), "took", time.Since(sc.start))
	return res, nil
}

// widen turns the paths a partial scan was given into the folders their
// change may affect. An ignore file changes what is synced in its whole
// folder, so its folder is scanned (the root's: everything); a change
// inside a nested .blueshift folder (a share added or removed there) does
// the same for the folder holding it. Paths below another one are dropped.
// nil (everything) stays nil.
func widen(paths []record.Path) []record.Path {
	if paths == nil {
		return nil
	}
	set := make(map[record.Path]struct{}, len(paths))
	for _, p := range paths {
		parts := strings.Split(string(p), "/")
		for i, name := range parts {
			if isMeta(name) {
				if i == 0 {
					p = "" // the share's own metadata: nothing to scan
				} else {
					p = record.Path(strings.Join(parts[:i], "/"))
				}
				break
			}
		}
		if p != "" && p.Base() == ignore.FileName {
			p = p.Dir()
			if p == "" {
				return nil // the root's rules changed: scan everything
			}
		}
		if p != "" {
			set[p] = struct{}{}
		}
	}
	out := make([]record.Path, 0, len(set))
	for p := range set {
		covered := false
		for a := p.Dir(); a != "" && !covered; a = a.Dir() {
			_, covered = set[a]
		}
		if !covered {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// scan is one run of Scan.
type scan struct {
	s     *Share
	opts  ScanOptions
	now   time.Time
	start time.Time

	// states holds the stored state of every path in scope, read before the
	// walk, keyed by path hash and without block lists (what deciding
	// "unchanged" needs: ~50 bytes a file); change reads the full state of
	// the few that changed. Read-only during the walk.
	states map[uint64]attrs
	scopes [][]byte // state key prefixes in scope (for the deletion pass)
	seen   pathSet  // shared by the walk's goroutines
	// matched counts the paths the walk found that have a stored state: when
	// it reaches len(states), nothing stored is gone and the deletion pass
	// need not read the states again.
	matched atomic.Int64
	// folders caches the rules of the folders a partial scan and the
	// deletion pass looked at; owned by the goroutine running walk.
	folders map[record.Path]folderRules
	// subwalks walks folders found by the walk on goroutines of their own,
	// up to cap(slots) at once (descend).
	subwalks *errgroup.Group
	slots    chan struct{}

	walked, filesTotal, filesDone atomic.Int64
	bytesTotal, bytesDone         atomic.Int64
	walkDone                      atomic.Bool
}

// attrs is the part of a stored state that decides whether a path changed:
// 32 bytes, where a FileState with its block list is ~100 and more. own
// says the state has a hash and blocks of its own (a read-only share's
// local edit); without them, the attributes are the whole state, and a
// path that changed needs no second read of it.
type attrs struct {
	size, modTime int64
	inode         uint64
	mode          uint32
	kind          record.Kind
	own           bool
}

func attrsOf(st FileState) attrs {
	return attrs{size: st.Size, modTime: st.ModTime, inode: st.Inode, mode: st.Mode, kind: st.Kind,
		own: !st.FileHash.IsZero() || len(st.Blocks) > 0}
}

// state is a FileState with the attributes alone (no hash, no blocks).
func (a attrs) state() FileState {
	return FileState{Kind: a.kind, Size: a.size, ModTime: a.modTime, Inode: a.inode, Mode: a.mode}
}

// pathSet is the set of paths a scan found on disk, kept as 64-bit hashes
// (about 20 bytes a path instead of the path itself: 1,000,000 files cost
// ~20 MB, not ~90). Two paths share a hash with odds of about n/2^64 per
// path; the cost of one would be a deletion noticed one scan late (each scan
// draws a new seed). Safe for the walk's goroutines to share.
type pathSet struct {
	seed maphash.Seed
	mu   *sync.Mutex
	m    map[uint64]struct{}
}

func newPathSet() pathSet {
	return pathSet{seed: maphash.MakeSeed(), mu: new(sync.Mutex), m: make(map[uint64]struct{})}
}

func (s pathSet) key(p record.Path) uint64 { return maphash.String(s.seed, string(p)) }

// addNew adds the path whose key is k and reports whether it was new.
func (s pathSet) addNew(k uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[k]; ok {
		return false
	}
	s.m[k] = struct{}{}
	return true
}

func (s pathSet) has(p record.Path) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[s.key(p)]
	return ok
}

// item is one path on its way from the walker through a hash worker to the
// writer.
type item struct {
	path   record.Path
	abs    string
	st     FileState  // attributes seen on disk
	old    *FileState // stored state; nil if none
	oldOwn bool       // old has blocks of its own, not read yet (attrs.own)
	target string     // symlink target
	read   bool       // the content must be read and hashed
	gone   bool       // vanished from disk: make a tombstone
	blocks []record.BlockRef
	hash   block.Hash
	err    *PathError // the path is skipped
}

// loadStates reads the stored local state of everything in the scan's
// scope: the whole share, or the given paths and what is below them.
func (sc *scan) loadStates() error {
	sp := sc.s.space
	if sc.opts.Paths == nil {
		// Sized once from the record count (which is at least the number of
		// states): a map grown step by step to 1,000,000 entries peaks at
		// twice its final size.
		_, n, err := sc.s.TreeRoot()
		if err != nil {
			return err
		}
		sc.states = make(map[uint64]attrs, n)
		sc.seen.m = make(map[uint64]struct{}, n)
		sc.scopes = [][]byte{sp.StatePrefix()}
	} else {
		sc.states = make(map[uint64]attrs)
		for _, p := range sc.opts.Paths {
			sc.scopes = append(sc.scopes, sp.StateKey(string(p)+"/"))
		}
	}
	return sc.eachState(func(p record.Path, st FileState) error {
		sc.states[sc.seen.key(p)] = attrsOf(st)
		return nil
	})
}

// eachState calls fn with the stored state of every path in the scan's
// scope, from a snapshot.
func (sc *scan) eachState(fn func(record.Path, FileState) error) error {
	sp := sc.s.space
	for _, p := range sc.opts.Paths {
		st, ok, err := sc.s.LocalState(p)
		if err != nil {
			return err
		}
		if ok {
			if err := fn(p, st); err != nil {
				return err
			}
		}
	}
	snap := sc.s.db.store.Pebble().NewSnapshot()
	defer snap.Close()
	for _, pre := range sc.scopes {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: pre, UpperBound: store.PrefixEnd(pre)})
		if err != nil {
			return fmt.Errorf("read local state: %w", err)
		}
		for it.First(); it.Valid(); it.Next() {
			p, _ := sp.StatePath(it.Key())
			st, err := store.ParseState(it.Value())
			if err == nil {
				err = fn(record.Path(p), st)
			} else {
				err = fmt.Errorf("local state of %q: %w", p, err)
			}
			if err != nil {
				it.Close()
				return err
			}
		}
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return fmt.Errorf("read local state: %w", err)
		}
	}
	return nil
}

func (sc *scan) run(ctx context.Context) (ScanResult, error) {
	var res ScanResult
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan *item, 256)
	out := make(chan *item, 256)
	done := make(chan struct{})

	g.Go(func() error {
		defer close(work)
		err := sc.walk(gctx, work)
		sc.walkDone.Store(true)
		return err
	})
	var workers sync.WaitGroup
	for range sc.s.db.opts.Workers {
		workers.Add(1)
		g.Go(func() error {
			defer workers.Done()
			return sc.hashWorker(gctx, work, out)
		})
	}
	g.Go(func() error {
		workers.Wait()
		close(out)
		return nil
	})
	g.Go(func() error {
		defer close(done)
		return sc.writeAll(gctx, out, &res)
	})
	if sc.opts.Progress != nil {
		g.Go(func() error {
			t := time.NewTicker(sc.opts.ProgressInterval)
			defer t.Stop()
			for {
				select {
				case <-done:
					return nil
				case <-t.C:
					sc.opts.Progress(sc.progress(false))
				}
			}
		})
	}
	err := g.Wait()
	res.Walked = int(sc.walked.Load())
	if sc.opts.Progress != nil && err == nil {
		sc.opts.Progress(sc.progress(true))
	}
	return res, err
}

func (sc *scan) progress(done bool) Progress {
	el := time.Since(sc.start)
	p := Progress{
		Walked:     int(sc.walked.Load()),
		FilesDone:  int(sc.filesDone.Load()),
		FilesTotal: int(sc.filesTotal.Load()),
		BytesDone:  sc.bytesDone.Load(),
		BytesTotal: sc.bytesTotal.Load(),
		Elapsed:    el,
		WalkDone:   sc.walkDone.Load(),
		Done:       done,
	}
	if s := el.Seconds(); s > 0 {
		p.Rate = float64(p.BytesDone) / s
	}
	return p
}

// walk visits the scope and sends every path that needs work, then a
// tombstone item for every stored path that is gone from disk.
func (sc *scan) walk(ctx context.Context, work chan<- *item) error {
	sendOn := func(ctx context.Context) func(*item) error {
		return func(it *item) error {
			select {
			case work <- it:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx) // gctx ends when g.Wait returns
	sc.subwalks, sc.slots = g, make(chan struct{}, subwalkers)
	g.Go(func() error {
		send := sendOn(gctx)
		if sc.opts.Paths == nil {
			return sc.walkDir(gctx, "", sc.s.root, nil, send)
		}
		for _, p := range sc.opts.Paths {
			if err := sc.walkPath(gctx, p, send); err != nil {
				return err
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if sc.matched.Load() == int64(len(sc.states)) {
		return nil // every stored path was found: none is gone
	}
	send := sendOn(ctx)
	var gone []record.Path
	err := sc.eachState(func(p record.Path, _ FileState) error {
		if !sc.seen.has(p) && sc.vanished(p) {
			gone = append(gone, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// A path the rules ignore now is no longer synced, its deletion
	// included: peers keep their copies.
	kept := gone[:0]
	for _, p := range gone {
		ign, err := sc.ignored(p, sc.states[sc.seen.key(p)].kind, send)
		if err != nil {
			return err
		}
		if !ign {
			kept = append(kept, p)
		}
	}
	gone = kept
	slices.Sort(gone)
	for _, p := range gone {
		a := sc.states[sc.seen.key(p)]
		old := a.state()
		if err := send(&item{path: p, old: &old, oldOwn: a.own, gone: true}); err != nil {
			return err
		}
	}
	return nil
}

// vanished reports whether path p is gone from disk. A path that exists
// but was not walked (now ignored, unreadable, in a nested share) is not:
// its record stays, so peers keep their copies.
func (sc *scan) vanished(p record.Path) bool {
	_, err := os.Lstat(filepath.Join(sc.s.root, p.OS()))
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// walkPath visits one path given to a partial scan and what is below it,
// under the same rules a full scan applies to it: those of every folder
// above it, its own folder's included.
func (sc *scan) walkPath(ctx context.Context, p record.Path, send func(*item) error) error {
	f, err := sc.folder(p.Dir(), send)
	if err != nil || f.skip != "" || isMeta(p.Base()) {
		return err
	}
	abs := filepath.Join(sc.s.root, p.OS())
	info, err := os.Lstat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil // gone: the tombstone pass sees to it
		}
		return send(&item{path: p, err: pathErr(string(p), ErrUnreadable, err, "check its permissions")})
	}
	if f.rules.Ignored(string(p), info.IsDir()) {
		return nil
	}
	return sc.visit(ctx, p, abs, info, f.rules, send)
}

// folderRules is what a scan knows of one folder: the ignore rules in force
// inside it, or why nothing inside it is scanned.
type folderRules struct {
	rules *ignore.Rules
	skip  string // "" (scanned) or why not: skipIgnored, skipNested, ...
}

const (
	skipIgnored   = "ignored"          // the folder or one above it is ignored
	skipNested    = "in another share" // a nested share or a metadata folder
	skipNotFolder = "not a folder"     // a file or a symlink where a folder was
	skipNoRules   = "unreadable rules" // its ignore file cannot be read
)

// folder returns the rules in force inside folder dir ("" for the root),
// reading the ignore file of dir and of every folder above it once per scan.
// A partial scan and the deletion pass use it; the full walk carries the
// rules down as it goes. Called from the walker goroutine only.
func (sc *scan) folder(dir record.Path, send func(*item) error) (folderRules, error) {
	if f, ok := sc.folders[dir]; ok {
		return f, nil
	}
	var f folderRules
	abs := filepath.Join(sc.s.root, dir.OS())
	if dir != "" {
		up, err := sc.folder(dir.Dir(), send)
		if err != nil {
			return f, err
		}
		fi, err := os.Lstat(abs)
		switch {
		case up.skip != "":
			f.skip = up.skip
		case err == nil && !fi.IsDir():
			f.skip = skipNotFolder // a symlink is synced as a link, never followed
		case isMeta(dir.Base()) || isNestedShare(abs):
			f.skip = skipNested
		case up.rules.Ignored(string(dir), true):
			f.skip = skipIgnored
		}
		f.rules = up.rules
	}
	if f.skip == "" {
		r, perr := loadRules(abs, dir, f.rules)
		if perr != nil {
			f.skip = skipNoRules // as walkDir does
			if err := send(&item{path: dir, err: perr}); err != nil {
				return f, err
			}
		}
		f.rules = r
	}
	if sc.folders == nil {
		sc.folders = map[record.Path]folderRules{}
	}
	sc.folders[dir] = f
	return f, nil
}

// ignored reports whether the rules in force now leave path p (of kind k)
// alone. A path they ignore is no longer synced: not its changes, not its
// deletion.
func (sc *scan) ignored(p record.Path, k record.Kind, send func(*item) error) (bool, error) {
	f, err := sc.folder(p.Dir(), send)
	if err != nil {
		return false, err
	}
	return f.skip == skipIgnored || f.rules.Ignored(string(p), k == record.Dir), nil
}

// subwalkers is how many folders are walked at once besides the walk's
// own goroutine. A rescan of unchanged files is almost all lstat and
// getdents: system calls that run in parallel on every core, and that wait
// on the disk when its metadata is not cached (more in flight help there).
const subwalkers = 3

// descend walks folder p on a goroutine of its own when one is free, else
// on the caller's. The order in which paths reach the hash workers does not
// matter: they are reordered there anyway.
func (sc *scan) descend(ctx context.Context, p record.Path, abs string, rules *ignore.Rules, send func(*item) error) error {
	select {
	case sc.slots <- struct{}{}:
		sc.subwalks.Go(func() error {
			defer func() { <-sc.slots }()
			return sc.walkDir(ctx, p, abs, rules, send)
		})
		return nil
	default:
		return sc.walkDir(ctx, p, abs, rules, send)
	}
}

// walkDir reads folder dir (abs on disk), whose rules above it are parent,
// and visits its entries.
func (sc *scan) walkDir(ctx context.Context, dir record.Path, abs string, parent *ignore.Rules, send func(*item) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d, ents, err := openDir(abs)
	if err != nil {
		return send(&item{path: dir, err: pathErr(string(dir), ErrUnreadable, err,
			"check its permissions; what is below it keeps its records until it can be read")})
	}
	subs, rules, err := sc.visitFiles(ctx, d, dir, abs, ents, parent, send)
	d.Close()
	if err != nil {
		return err
	}
	// Folders last, with this one closed: a deep tree holds no descriptor
	// per level.
	for _, sub := range subs {
		if err := sc.visit(ctx, sub.p, filepath.Join(abs, sub.info.Name()), sub.info, rules, send); err != nil {
			return err
		}
	}
	return nil
}

// openDir opens folder abs and reads its entries, sorted by name.
func openDir(abs string) (*os.File, []fs.DirEntry, error) {
	d, err := os.Open(abs)
	if err != nil {
		return nil, nil, err
	}
	ents, err := d.ReadDir(-1)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return d, ents, nil
}

// subfolder is a folder walkDir found, to visit once its parent is closed.
type subfolder struct {
	p    record.Path
	info fs.FileInfo
}

// visitFiles visits the entries ents of the open folder dir (d, abs on
// disk), whose rules above it are parent, except folders: it returns
// those, and the rules in force in dir. No rules: nothing to visit below.
func (sc *scan) visitFiles(ctx context.Context, d *os.File, dir record.Path, abs string, ents []fs.DirEntry, parent *ignore.Rules, send func(*item) error) ([]subfolder, *ignore.Rules, error) {
	if dir != "" && hasMeta(ents) && isNestedShare(abs) {
		sc.s.log.Debug("scan: skipping a nested share", "path", dir)
		return nil, nil, nil
	}
	rules, perr := loadRules(abs, dir, parent)
	if perr != nil {
		// Never sync a folder without its rules: what they would ignore
		// could be exactly what must not leave the device.
		return nil, nil, send(&item{path: dir, err: perr})
	}
	var subs []subfolder
	for _, e := range ents {
		name := e.Name()
		if isMeta(name) {
			continue // a share's metadata, never synced (sync/apply refuses to write one)
		}
		p, err := record.Join(dir, name)
		if err != nil {
			shown := name
			if dir != "" {
				shown = string(dir) + "/" + name
			}
			if err := send(&item{path: record.Path(shown), err: pathErr(shown, ErrBadName, err,
				"rename it: names must be valid UTF-8 without backslashes, at most 255 bytes, paths at most 4096")}); err != nil {
				return nil, nil, err
			}
			continue
		}
		info, err := lstatAt(d, name)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // gone since ReadDir
			}
			if err := send(&item{path: p, err: pathErr(string(p), ErrUnreadable, err, "check its permissions")}); err != nil {
				return nil, nil, err
			}
			sc.found(sc.seen.key(p))
			continue
		}
		if rules.Ignored(string(p), info.IsDir()) {
			continue
		}
		if info.IsDir() {
			subs = append(subs, subfolder{p: p, info: info})
			continue
		}
		if err := sc.visit(ctx, p, filepath.Join(abs, name), info, rules, send); err != nil {
			return nil, nil, err
		}
	}
	return subs, rules, nil
}

// visit handles one path found on disk.
func (sc *scan) visit(ctx context.Context, p record.Path, abs string, info fs.FileInfo, rules *ignore.Rules, send func(*item) error) error {
	a, known, isNew := sc.found(sc.seen.key(p))
	if !isNew {
		return nil // a partial scan named it twice
	}
	sc.walked.Add(1)
	st := stateOf(info)
	same := known && a.state().Same(st)
	unchanged := same && a.mode == st.Mode
	m := info.Mode()
	switch { // unchanged: no item made, a file not opened
	case m.IsRegular() && unchanged, m&fs.ModeSymlink != 0 && same:
		return nil
	case m.IsDir() && unchanged:
		return sc.descend(ctx, p, abs, rules, send)
	}
	it := &item{path: p, abs: abs, st: st}
	if known {
		old := a.state()
		it.old, it.oldOwn = &old, a.own
	}
	switch {
	case m.IsRegular():
		if !same {
			it.read = true
			sc.filesTotal.Add(1)
			sc.bytesTotal.Add(it.st.Size)
		}
	case m.IsDir():
		if err := send(it); err != nil {
			return err
		}
		return sc.descend(ctx, p, abs, rules, send)
	case m&fs.ModeSymlink != 0:
		target, err := os.Readlink(abs)
		if err != nil {
			it.err = pathErr(string(p), ErrUnreadable, err, "check the link")
		}
		it.target = target
	default:
		it.err = pathErr(string(p), ErrUnsupported, fmt.Errorf("%v", m.Type()),
			"FIFOs, sockets and devices are not synced; list it in .blueshiftignore to silence this")
	}
	return send(it)
}

// found records that the walk found the path whose key is k, and returns
// its stored attributes if it has any, and whether it is new to this scan.
func (sc *scan) found(k uint64) (a attrs, known, isNew bool) {
	if !sc.seen.addNew(k) {
		return a, false, false
	}
	a, known = sc.states[k]
	if known {
		sc.matched.Add(1)
	}
	return a, known, true
}

// stateOf returns the disk attributes of info. A folder's size and mtime
// change with its entries, so they are not part of its state.
func stateOf(info fs.FileInfo) FileState {
	st := FileState{Inode: inode(info), Mode: uint32(info.Mode().Perm())}
	switch m := info.Mode(); {
	case m.IsDir():
		st.Kind = record.Dir
	case m&fs.ModeSymlink != 0:
		st.Kind, st.Mode = record.Symlink, 0
		st.Size, st.ModTime = info.Size(), info.ModTime().UnixNano()
	default:
		st.Kind = record.File
		st.Size, st.ModTime = info.Size(), info.ModTime().UnixNano()
	}
	return st
}

func hasMeta(ents []fs.DirEntry) bool {
	for _, e := range ents {
		if e.Name() == record.MetaDir && e.IsDir() {
			return true
		}
	}
	return false
}

// isNestedShare reports whether folder abs is the root of another share: it
// holds a .blueshift folder that `share remove` did not mark as left behind.
func isNestedShare(abs string) bool {
	fi, err := os.Lstat(filepath.Join(abs, record.MetaDir))
	if err != nil || !fi.IsDir() {
		return false
	}
	_, err = os.Lstat(filepath.Join(abs, record.MetaDir, RemovedMarker))
	return err != nil
}

// isMeta reports whether a name is a share's metadata folder, at any depth.
// It matches as sync/apply does (case-folded), so nothing is announced that
// no receiver would write.
func isMeta(name string) bool { return strings.EqualFold(name, record.MetaDir) }

const hintNoRules = "check its permissions; its folder is not synced until its rules can be read"

// loadRules returns the rules in force in folder dir: parent's, plus its own
// ignore file if it has one.
func loadRules(abs string, dir record.Path, parent *ignore.Rules) (*ignore.Rules, *PathError) {
	f, err := os.OpenFile(filepath.Join(abs, ignore.FileName), os.O_RDONLY|openFlags, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return parent, nil
	}
	p := string(dir) + "/" + ignore.FileName
	if dir == "" {
		p = ignore.FileName
	}
	if err != nil {
		return parent, pathErr(p, ErrUnreadable, err, hintNoRules)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, ignore.MaxFileSize+1))
	if err != nil {
		return parent, pathErr(p, ErrUnreadable, err, hintNoRules)
	}
	if len(b) > ignore.MaxFileSize {
		return parent, pathErr(p, ErrUnreadable, fmt.Errorf("larger than %d bytes", ignore.MaxFileSize),
			"shorten it; its folder is not synced until then")
	}
	return parent.Child(string(dir), b), nil
}

// hashWorker reads and hashes the files that need it, and passes every item
// on to the writer.
func (sc *scan) hashWorker(ctx context.Context, work <-chan *item, out chan<- *item) error {
	params := chunk.DefaultParams()
	params.Key = sc.opts.ChunkKey
	sp, err := chunk.NewSplitter(params)
	if err != nil {
		return err
	}
	for it := range work {
		if it.read && it.err == nil {
			sc.hashFile(ctx, sp, it)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		select {
		case out <- it:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

const hintBusy = "it is being written; the next scan picks it up"

// hashFile chunks and hashes one file, checking that it did not change
// while it was read.
func (sc *scan) hashFile(ctx context.Context, sp *chunk.Splitter, it *item) {
	p := string(it.path)
	if h := sc.s.testHookBeforeOpen; h != nil {
		h(it.abs)
	}
	f, err := os.OpenFile(it.abs, os.O_RDONLY|openFlags, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			it.err = pathErr(p, ErrVanished, nil, "the next scan records it as deleted")
		case errors.Is(err, syscall.ELOOP):
			it.err = pathErr(p, ErrChanged, errors.New("replaced by a symlink"), hintBusy)
		default:
			it.err = pathErr(p, ErrUnreadable, err, "check its permissions")
		}
		return
	}
	defer f.Close()
	started := time.Now() // the real clock: it is compared with the file system's timestamps
	fi, err := f.Stat()
	if err != nil {
		it.err = pathErr(p, ErrUnreadable, err, "check its permissions")
		return
	}
	if !fi.Mode().IsRegular() {
		it.err = pathErr(p, ErrChanged, fmt.Errorf("now a %v", fi.Mode().Type()), hintBusy)
		return
	}
	before := stateOf(fi) // what is read, even if it changed since the walk
	var chunks []chunk.Chunk
	var n int64
	err = sp.Split(ctx, sparseReader(f, before.Size), func(c chunk.Chunk, _ []byte) error {
		chunks = append(chunks, c)
		n += int64(c.Length)
		sc.bytesDone.Add(int64(c.Length))
		return nil
	})
	if err != nil {
		it.err = pathErr(p, ErrUnreadable, err, "check the disk")
		return
	}
	if h := sc.s.testHookAfterRead; h != nil {
		h(it.abs)
	}
	fi2, err := os.Lstat(it.abs)
	if err != nil {
		it.err = pathErr(p, ErrVanished, err, "the next scan records it as deleted")
		return
	}
	if after := stateOf(fi2); !after.Same(before) || n != before.Size {
		it.err = pathErr(p, ErrChanged, nil, hintBusy)
		return
	}
	sc.filesDone.Add(1)
	it.st = before
	it.blocks = make([]record.BlockRef, len(chunks))
	for i, c := range chunks {
		it.blocks[i] = record.BlockRef{Hash: c.Hash, Size: uint32(c.Length)}
	}
	it.hash = chunk.FileHash(chunks)
	sc.s.proofs.note(it.path, fi, started, it.blocks)
}

// writeWindow bounds the items the writer takes at once, so that their
// records are read together (Share.envelopes): what the hash workers have
// ready, up to this many.
const writeWindow = 512

// writeAll turns items into changes and writes them in batches.
func (sc *scan) writeAll(ctx context.Context, in <-chan *item, res *ScanResult) error {
	w := sc.s.newWriter(true)
	defer w.close()
	window := make([]*item, 0, writeWindow)
	keys := make([]merkle.Key, 0, writeWindow)
	for it := range in {
		window = append(window[:0], it)
	ready:
		for len(window) < writeWindow {
			select {
			case it, ok := <-in:
				if !ok {
					break ready
				}
				window = append(window, it)
			default:
				break ready
			}
		}
		keys = keys[:0]
		for _, it := range window {
			if it.err == nil {
				keys = append(keys, sc.s.key.PathKey(string(it.path)))
			}
		}
		envs, found, err := sc.s.envelopes(keys)
		if err != nil {
			return err
		}
		j := 0
		for _, it := range window {
			if it.err != nil {
				res.Errors = append(res.Errors, it.err)
				continue
			}
			if it.read {
				res.Hashed++
				res.HashedBytes += it.st.Size
			}
			pk, env, ok := keys[j], envs[j], found[j]
			j++
			if sc.opts.Busy != nil && sc.opts.Busy(it.path) {
				res.Busy = append(res.Busy, it.path)
				continue
			}
			c, err := sc.change(it, pk, env, ok, res)
			if err != nil {
				return err
			}
			if err := w.put(c); err != nil {
				return fmt.Errorf("write %q: %w", it.path, err)
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return w.flush()
}

// change decides what the index stores for one item at tree key pk, whose
// stored envelope is env (if found).
func (sc *scan) change(it *item, pk merkle.Key, env record.Envelope, found bool, res *ScanResult) (change, error) {
	s := sc.s
	cur := current{}
	switch {
	case it.old != nil && !it.oldOwn: // the attributes are the whole state
		st := *it.old
		cur.state = &st
	case it.old != nil: // the walk kept only the attributes: read it all
		st, ok, err := s.LocalState(it.path)
		if err != nil {
			return change{}, err
		}
		if ok {
			cur.state = &st
		}
	}
	if found {
		rec, err := env.Record()
		if err != nil {
			return change{}, fmt.Errorf("decode record of %q: %w", it.path, err)
		}
		cur.rec, cur.env = &rec, &env
	}
	c := change{path: it.path, pathKey: pk, oldEnv: cur.env, oldRec: cur.rec, oldDisk: cur.diskBlocks()}
	live := cur.rec != nil && !cur.rec.Deleted

	if it.gone {
		if !live {
			return c, nil // only local state to drop
		}
		if !s.canSign {
			res.ReadOnly = true
			return c, nil
		}
		tomb := record.Record{
			Path: it.path, Kind: cur.rec.Kind, ModTime: sc.now, Deleted: true,
			Version: cur.rec.Version.Update(s.self, uint64(sc.now.Unix())), ModifiedBy: s.self,
		}
		c.seal = &tomb // sealed by the writer, with the others of its batch
		res.Records++
		res.Deleted++
		return c, nil
	}

	st := it.st
	r := record.Record{Path: it.path, Kind: st.Kind, Mode: st.Mode, ModTime: time.Unix(0, st.ModTime).UTC(), ModifiedBy: s.self}
	switch st.Kind {
	case record.File:
		r.Size = st.Size
		if it.read {
			r.Blocks, r.FileHash = it.blocks, it.hash
		} else { // only the mode changed: the content is what it was
			r.Blocks, r.FileHash = cur.diskBlocks(), cur.diskHash()
		}
	case record.Dir:
		// A folder's mtime changes with every entry made or removed in it,
		// so it is not synced: every folder record says the Unix epoch.
		r.ModTime = time.Unix(0, 0).UTC()
	case record.Symlink:
		r.Target = it.target
	}
	if live && sameRecord(*cur.rec, r) {
		// The disk matches the record (an inode or mtime-only change of a
		// folder, a rewrite with the same bytes and time).
		c.state = &st
		c.newDisk = diskBlocks(&st, cur.rec)
		return c, nil
	}
	if !s.canSign {
		res.ReadOnly = true
		if st.Kind == record.File {
			st.Blocks, st.FileHash = r.Blocks, r.FileHash
		}
		c.state = &st
		c.newDisk = diskBlocks(&st, nil)
		return c, nil
	}
	var old record.Vector
	if cur.rec != nil {
		old = cur.rec.Version
	}
	r.Version = old.Update(s.self, uint64(sc.now.Unix()))
	c.seal = &r
	c.state = &st
	c.newDisk = diskBlocks(&st, &r)
	res.Records++
	return c, nil
}

// sameRecord reports whether a live stored record already says what r says.
func sameRecord(old, r record.Record) bool {
	if old.Kind != r.Kind || old.Mode != r.Mode {
		return false
	}
	switch r.Kind {
	case record.File:
		return old.Size == r.Size && old.FileHash == r.FileHash && old.ModTime.Equal(r.ModTime)
	case record.Symlink:
		return old.Target == r.Target
	}
	return true
}
