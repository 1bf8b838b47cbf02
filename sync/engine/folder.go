package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

const (
	inboxDepth  = 8    // record batches waiting for the puller (each up to maxPushKeys records)
	maxErrors   = 20   // most recent apply errors kept for status
	maxPushKeys = 512  // records per push message
	pushPiece   = 4096 // records a push encodes at a time
	// maxQueuedContent bounds the inline content (inline.go) of the batches
	// waiting for the puller, which then applies them at once (drain).
	maxQueuedContent = 16 << 20
)

// incoming is a record a peer sent, verified, waiting for the puller.
type incoming struct {
	env     record.Envelope
	rec     record.Record
	from    identity.DeviceID
	content []byte // the file's one block, if it came with the record (see inline.go)
	revert  bool   // put the record back over a read-only device's local edit (revert.go)
}

// scanRequest asks the puller to look at some paths, or everything.
type scanRequest struct {
	paths     []string
	full      bool
	walkAfter <-chan struct{} // index.ScanOptions.WalkAfter
}

// folder is one share on this device. Its run goroutine (the puller) is the
// only writer of the share's files and of its index records.
type folder struct {
	e    *Engine
	id   share.ID
	cfg  ShareConfig
	idx  *index.Share
	root *apply.Root
	log  *slog.Logger
	hist *history

	inbox   chan []incoming // to the puller
	scans   chan scanRequest
	retry   chan struct{} // to the puller: look at waiting records now
	taken   chan struct{} // from the puller: it took batches from inbox (room for content)
	updates chan pushItem // to the pusher; made by run
	quit    chan struct{} // closed by stop
	done    chan struct{} // closed when run returns

	act activity // transfer counters, rate limits, the file log (activity.go)
	// bases keeps versions of programs for patches (basis.go).
	bases *keptBases

	// applying holds the paths the puller changed on disk and has not yet
	// committed, which scans leave alone (applying.go).
	applying applying

	// retouched counts files whose attributes were set in place since the
	// last batch was made durable (see retouch); owned by the puller.
	retouched atomic.Int64

	mu struct {
		gosync.Mutex
		members     map[identity.DeviceID]bool        // guarded by mu
		pending     map[merkle.Key]incoming           // guarded by mu: could not be applied yet
		why         map[merkle.Key]error              // guarded by mu: why each pending record failed last (status.go)
		busy        bool                              // guarded by mu: the puller is applying
		queued      int                               // guarded by mu: records delivered, not yet applied
		coming      map[merkle.Leaf]int               // guarded by mu: the leaves of those records (a walk does not ask for them again)
		walking     int                               // guarded by mu: reconciles under way, delivering records
		inboxBytes  int64                             // guarded by mu: inline content of the batches in inbox or about to enter it
		need        map[merkle.Key][]needed           // guarded by mu: queued records whose content is lacking (status.go)
		madeDirs    map[record.Path]uint64            // guarded by mu: inodes of directories the puller made (moved.go)
		scanning    int                               // guarded by mu: scans under way (the root is still moving)
		fullScans   [2]int                            // guarded by mu: full scans started, and finished
		errors      []string                          // guarded by mu: newest last
		conflict    int                               // guarded by mu: conflict copies made
		origin      map[merkle.Leaf]identity.DeviceID // guarded by mu: who sent a record we committed
		scanned     time.Time                         // guarded by mu
		saidPulling bool                              // guarded by mu: what the last announcement said
		full        map[merkle.Key]*diskFull          // guarded by mu: records that failed for lack of space (space.go)
		reached     map[identity.DeviceID]merkle.Hash // guarded by mu: each member's last announced root (status.go)
		stopped     bool                              // guarded by mu
	}
}

func newFolder(e *Engine, cfg ShareConfig, idx *index.Share, root *apply.Root) *folder {
	f := &folder{
		e: e, id: cfg.Key.ID(), cfg: cfg, idx: idx, root: root,
		log:   e.log.With("share", cfg.Name),
		hist:  newHistory(historyBytes),
		inbox: make(chan []incoming, inboxDepth),
		scans: make(chan scanRequest, 64),
		retry: make(chan struct{}, 1),
		taken: make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	f.mu.pending = make(map[merkle.Key]incoming)
	f.mu.coming = make(map[merkle.Leaf]int)
	f.mu.why = make(map[merkle.Key]error)
	f.mu.need = make(map[merkle.Key][]needed)
	f.mu.origin = make(map[merkle.Leaf]identity.DeviceID)
	f.setMembers(cfg.Members)
	f.act.mu.sendLimit, f.act.mu.recvLimit = newLimiter(cfg.MaxSendRate, nil), newLimiter(cfg.MaxRecvRate, nil)
	f.bases = newKeptBases(root.Dir(), f.log)
	return f
}

func (f *folder) setMembers(ids []identity.DeviceID) {
	m := make(map[identity.DeviceID]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	f.mu.Lock()
	f.mu.members = m
	f.mu.Unlock()
	f.updateBatchSigning()
}

func (f *folder) isMember(id identity.DeviceID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.members[id]
}

// stop ends the puller and waits for it.
func (f *folder) stop() {
	f.mu.Lock()
	if !f.mu.stopped {
		f.mu.stopped = true
		close(f.quit)
	}
	f.mu.Unlock()
	<-f.done
	f.root.Close()
}

// deliver hands verified records to the puller; it blocks while the puller
// is behind (back-pressure on the peer), until ctx is done: while inbox
// holds inboxDepth batches, or maxQueuedContent bytes of inline content.
func (f *folder) deliver(ctx context.Context, batch []incoming) error {
	n := contentBytes(batch)
	for {
		f.mu.Lock()
		room := f.mu.inboxBytes == 0 || f.mu.inboxBytes+n <= maxQueuedContent
		if room {
			f.mu.inboxBytes += n
		}
		f.mu.Unlock()
		if room {
			break
		}
		select {
		case <-f.taken:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.quit:
			return fmt.Errorf("share %s: stopped", f.cfg.Name)
		}
	}
	f.countQueued(batch, +1)
	select {
	case f.inbox <- batch:
		return nil
	case <-ctx.Done():
		f.countQueued(batch, -1)
		f.tookContent(n)
		return ctx.Err()
	case <-f.quit:
		f.countQueued(batch, -1)
		f.tookContent(n)
		return fmt.Errorf("share %s: stopped", f.cfg.Name)
	}
}

// contentBytes is the inline content a batch holds.
func contentBytes(batch []incoming) int64 {
	var n int64
	for _, in := range batch {
		n += int64(len(in.content))
	}
	return n
}

// tookContent notes that n bytes of content left the inbox (taken by the
// puller, or never put in) and wakes a deliver waiting for room.
func (f *folder) tookContent(n int64) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	f.mu.inboxBytes -= n
	f.mu.Unlock()
	select {
	case f.taken <- struct{}{}:
	default:
	}
}

// countQueued tracks what peers sent and the puller has not applied yet,
// so status shows the work ahead during a long first sync (see
// countNeeded: only what this device lacks counts there), and a walk
// does not fetch it a second time (see coming).
func (f *folder) countQueued(batch []incoming, sign int) {
	f.mu.Lock()
	f.mu.queued += sign * len(batch)
	for _, in := range batch {
		l := in.env.Leaf()
		if f.mu.coming[l] += sign; f.mu.coming[l] <= 0 {
			delete(f.mu.coming, l)
		}
	}
	f.mu.Unlock()
	f.countNeeded(batch, sign)
}

// coming reports whether the record with leaf l was delivered and waits
// for the puller. A walk that starts again while the puller is behind
// (the peer's tree moved on during a first sync; the inbox holds up to
// maxQueuedContent) would otherwise ask for it again, inline content and
// all: 11% of a first sync's bytes of 20,000 small files over 100 Mbit/s
// went twice. Should the puller not manage to apply it, it waits in
// pending, as one fetched again would.
func (f *folder) coming(l merkle.Leaf) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.coming[l] > 0
}

// hasRecord reports whether the index holds record l at key k now. A walk
// compares the peer's tree with a view taken when it started; over a slow
// link it walks for seconds while the puller applies what earlier walks
// and pushes brought, which the view lacks and coming no longer counts: a
// first sync of 20,000 small files over 100 Mbit/s fetched up to 3,000
// records (and their inline content) a second time that way.
func (f *folder) hasRecord(k merkle.Key, l merkle.Leaf) bool {
	env, ok, err := f.idx.Envelope(k)
	return err == nil && ok && env.Leaf() == l
}

func (f *folder) requestScan(paths []string, full bool) {
	select {
	case f.scans <- scanRequest{paths: paths, full: full}:
	default:
		// The queue is full: a full scan covers whatever was asked.
		select {
		case f.scans <- scanRequest{full: true}:
		default:
		}
	}
}

// run is the puller: it scans, applies what peers send, and pushes what
// changes. It returns when ctx is done or the folder is stopped.
func (f *folder) run(ctx context.Context) {
	defer close(f.done)
	ctx, cancel := context.WithCancel(ctx)
	var wg gosync.WaitGroup
	defer wg.Wait()
	defer cancel() // first: ends every goroutine below, then wg.Wait
	wg.Go(func() {
		select {
		case <-f.quit:
			cancel()
		case <-ctx.Done():
		}
	})
	f.updates = make(chan pushItem, 256)
	unsubscribe := f.idx.Subscribe(func(u index.Update) {
		select {
		case f.updates <- pushItem{update: u}:
		case <-ctx.Done():
		}
	})
	defer unsubscribe()
	wg.Go(func() { f.pushLoop(ctx, f.updates) })
	wg.Go(func() { f.watchSpace(ctx) })
	wg.Go(func() { f.pruneLoop(ctx) })
	wg.Go(func() { f.bases.run(ctx, f) })

	f.scan(ctx, scanRequest{full: true, walkAfter: f.cfg.Watching})
	retry := time.NewTicker(f.e.opts.RetryEvery)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-f.inbox:
			f.tookContent(contentBytes(batch))
			batch = f.drain(batch)
			f.applyBatch(ctx, batch)
			f.summarise()
		case req := <-f.scans:
			req = f.drainScans(req)
			f.scan(ctx, req)
		case <-retry.C:
			f.retryPending(ctx)
		case <-f.retry:
			f.retryPending(ctx)
		}
	}
}

// drain collects whatever else is already waiting, so one pass orders
// creations before deletions across all of it (renames reuse local blocks).
func (f *folder) drain(batch []incoming) []incoming {
	for len(batch) < 10000 {
		select {
		case more := <-f.inbox:
			f.tookContent(contentBytes(more))
			batch = append(batch, more...)
		default:
			return batch
		}
	}
	return batch
}

func (f *folder) drainScans(req scanRequest) scanRequest {
	for {
		select {
		case more := <-f.scans:
			req.full = req.full || more.full
			req.paths = append(req.paths, more.paths...)
		default:
			return req
		}
	}
}

// scan brings the index up to date with the disk.
func (f *folder) scan(ctx context.Context, req scanRequest) {
	opts := index.ScanOptions{Busy: f.applying.busy, WalkAfter: req.walkAfter}
	if f.cfg.ChunkKey != nil {
		opts.ChunkKey = f.cfg.ChunkKey()
	}
	if !req.full {
		for _, p := range req.paths {
			rp, err := record.ParsePath(p)
			if err != nil {
				f.noteError(fmt.Errorf("rescan %q: %w", p, err))
				continue
			}
			opts.Paths = append(opts.Paths, rp)
		}
		if len(opts.Paths) == 0 {
			return
		}
	}
	// The pusher ends the scan's part of pulling (see pushLoop), once it
	// has pushed the scan's records: an announcement of the root they make
	// must not overtake them.
	f.mu.Lock()
	f.mu.scanning++
	if req.full {
		f.mu.fullScans[0]++
		defer func() {
			f.mu.Lock()
			f.mu.fullScans[1]++
			f.mu.Unlock()
		}()
	}
	f.mu.Unlock()
	f.tellPusher(ctx, pushItem{scan: +1})
	defer f.tellPusher(ctx, pushItem{scan: -1})
	res, err := f.idx.Scan(ctx, opts)
	if err != nil {
		if ctx.Err() == nil {
			f.noteError(fmt.Errorf("scan %s: %w", f.cfg.Path, err))
		}
		return
	}
	for _, pe := range res.Errors {
		f.noteError(pe)
	}
	f.mu.Lock()
	f.mu.scanned = f.e.clock()
	f.mu.Unlock()
}

// applyBatch makes the disk match a batch of remote records: directories
// and links first, parents before children; then files, several at once;
// then deletions, children before parents, so a moved file is rebuilt from
// its old copy before that goes. New directories are made without a sync
// each, and committed together once one sync has made them durable
// (commitDirs), before any file below them is fetched.
func (f *folder) applyBatch(ctx context.Context, batch []incoming) {
	f.setBusy(true)
	defer f.setBusy(false)
	before, _, _ := f.idx.TreeRoot()
	var dirs, files, deletions [][]incoming
	groups := byPath(batch)
	// The groups hold copies of the batch's records: the contents that
	// came with them are let go from there as each file is staged.
	for i := range batch {
		batch[i].content = nil
	}
	for _, group := range groups {
		switch rec := group[0].rec; {
		case rec.Deleted:
			deletions = append(deletions, group)
		case rec.Kind == record.File:
			files = append(files, group)
		default:
			dirs = append(dirs, group)
		}
	}
	var staged []*stagedFile
	for _, g := range dirs {
		if len(g) > 1 {
			f.applyGroup(ctx, g)
			continue
		}
		sf, err := f.applyOne(ctx, g[0], true)
		if err == nil && sf != nil {
			staged = append(staged, sf)
			continue
		}
		f.settle(ctx, g[0], err)
	}
	f.commitDirs(ctx, staged)
	// A part at a time, whose records and states the index reads together
	// first and keeps in memory while they are applied and committed.
	for len(files) > 0 {
		part, n := files, 0
		for i, g := range files {
			if n += len(g); n > index.PrefetchMax && i > 0 {
				part = files[:i]
				break
			}
		}
		files = files[len(part):]
		f.prefetch(slices.Concat(part...))
		f.applyFiles(ctx, part)
	}
	slices.Reverse(deletions)
	for _, g := range deletions {
		f.applyGroup(ctx, g)
	}
	if f.retouched.Swap(0) > 0 {
		// Attributes set in place are made durable before the index that
		// records them: else a crash could leave the index ahead of the disk.
		if err := f.root.Sync(); err != nil {
			f.noteError(err)
		}
	}
	if err := f.e.db.Sync(); err != nil {
		f.noteError(err)
	}
	// Announce a new root, and the end of pulling even if this last batch
	// changed nothing: peers wait for it before walking our tree.
	if after, _, _ := f.idx.TreeRoot(); after != before {
		f.announceAll()
	} else {
		f.announceIfDonePulling()
		f.answerSenders(batch)
	}
}

// answerSenders announces the share to the peers whose records made up a
// batch that left the tree as it was: a peer that pushed them waits for our
// next announcement before it walks us (Session.pushedLately), and none
// would come.
func (f *folder) answerSenders(batch []incoming) {
	answered := make(map[identity.DeviceID]bool)
	for _, in := range batch {
		if answered[in.from] {
			continue
		}
		answered[in.from] = true
		if s := f.e.session(in.from); s != nil && f.isMember(in.from) {
			s.announce(f)
		}
	}
}

// prefetch has the index read the records and local states of a batch's
// paths together, which applying reads one path at a time.
func (f *folder) prefetch(batch []incoming) {
	keys := make([]merkle.Key, len(batch))
	paths := make([]record.Path, len(batch))
	for i, in := range batch {
		keys[i], paths[i] = in.env.Key(), in.rec.Path
	}
	if err := f.idx.Prefetch(keys, paths); err != nil {
		f.log.Debug("read records and states of a batch", "err", err) // read one by one when applied
	}
}

// byPath groups a batch by path, in path order, keeping arrival order
// within a path (each is decided against the one applied before it).
func byPath(batch []incoming) [][]incoming {
	idx := make(map[record.Path]int)
	var groups [][]incoming
	for _, in := range batch {
		i, ok := idx[in.rec.Path]
		if !ok {
			i = len(groups)
			idx[in.rec.Path] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], in)
	}
	slices.SortFunc(groups, func(a, b []incoming) int {
		return strings.Compare(string(a[0].rec.Path), string(b[0].rec.Path))
	})
	return groups
}

// contentAsksAhead is how many content asks (askContent) applyFiles keeps
// in flight ahead of the chunk its workers are taking.
const contentAsksAhead = 2

// applyFiles applies file records, several at once. A path with a single
// record and a small file is staged rather than written: the batch's
// content is then made durable with one sync, installed, and the renames
// made durable with one more, instead of two syncs per file. Those, and
// files whose attributes were set in place (a `touch`), are then committed
// to the index together (commitAll).
func (f *folder) applyFiles(ctx context.Context, groups [][]incoming) {
	var mu gosync.Mutex
	var staged []*stagedFile
	var wg gosync.WaitGroup
	work := make(chan []incoming)
	for range min(f.e.opts.Parallel, max(len(groups), 1)) {
		wg.Go(func() {
			for g := range work {
				if len(g) > 1 {
					f.applyGroup(ctx, g)
					continue
				}
				sf, err := f.applyOne(ctx, g[0], true)
				if err == nil && sf != nil {
					// Staged: its content is in its temp file now, and
					// no longer held until the whole part is installed.
					g[0].content = nil
					mu.Lock()
					staged = append(staged, sf)
					mu.Unlock()
					continue
				}
				f.settle(ctx, g[0], err)
			}
		})
	}
	// The content of small new files that came without it is asked for in
	// bulk (askContent), ahead of the workers: while one chunk is handed
	// out, the next two are asked for at once (contentAsksAhead), so the
	// link carries one answer while the sender reads the files of the
	// next and the request crosses the link. One ask at a time left the
	// link idle for a round trip and the sender's reading in every answer
	// (a first sync of 20,000 small files over 100 Mbit/s used ~70% of it).
	// At most contentAsksAhead+1 chunks' content (each up to
	// responseInline) is held at once.
	chunks := make(chan chan [][]incoming, contentAsksAhead-1)
	wg.Go(func() {
		defer close(chunks)
		for c := range slices.Chunk(groups, maxKeysPerAsk) {
			asked := make(chan [][]incoming, 1)
			chunks <- asked // in order; waits while enough are ahead
			wg.Go(func() {
				f.askContent(ctx, c)
				asked <- c
			})
		}
	})
	for asked := range chunks {
		for _, g := range <-asked {
			work <- g
		}
	}
	close(work)
	wg.Wait()
	if len(staged) == 0 {
		return
	}
	slices.SortFunc(staged, func(a, b *stagedFile) int { return strings.Compare(string(a.in.rec.Path), string(b.in.rec.Path)) })
	var err error
	content := slices.ContainsFunc(staged, func(sf *stagedFile) bool { return !sf.inPlace })
	if content {
		err = f.root.Sync()
	}
	defer f.releaseStaged(staged)
	done := make([]*stagedFile, 0, len(staged))
	states := make([]*index.FileState, 0, len(staged))
	for _, sf := range staged {
		if err != nil && !sf.inPlace {
			sf.discard()
			f.releaseStaged([]*stagedFile{sf})
			f.settle(ctx, sf.in, err) // nothing installed: not durable
			continue
		}
		st, commit, ierr := sf.install()
		if ierr != nil || !commit {
			f.releaseStaged([]*stagedFile{sf})
			f.settle(ctx, sf.in, ierr)
			continue
		}
		done, states = append(done, sf), append(states, st)
	}
	if content {
		if err := f.root.Sync(); err != nil {
			f.noteError(err)
		}
	}
	f.commitAll(ctx, done, states)
}

// commitDirs makes the directories a batch made durable, with one sync,
// and records them in the index: before the batch's files are fetched, so
// that a directory the user moves meanwhile is known to the scan that finds
// it moved (moved.go).
func (f *folder) commitDirs(ctx context.Context, staged []*stagedFile) {
	if len(staged) == 0 {
		return
	}
	defer f.releaseStaged(staged)
	if err := f.root.Sync(); err != nil {
		f.releaseStaged(staged)
		for _, sf := range staged {
			f.settle(ctx, sf.in, err) // not durable: not recorded
		}
		return
	}
	states := make([]*index.FileState, len(staged))
	for i, sf := range staged {
		states[i], _, _ = sf.install()
	}
	f.commitAll(ctx, staged, states)
}

// commitAll records applied files in the index together (one update of the
// tree per batch of them, not one per file) and settles each.
func (f *folder) commitAll(ctx context.Context, done []*stagedFile, states []*index.FileState) {
	if len(done) == 0 {
		return
	}
	recs := make([]index.Applied, len(done))
	f.mu.Lock()
	for i, sf := range done {
		f.mu.origin[sf.in.env.Leaf()] = sf.in.from // not pushed back to its sender
		recs[i] = index.Applied{Envelope: sf.in.env, Local: states[i]}
	}
	f.mu.Unlock()
	errs := f.idx.CommitAll(recs)
	f.releaseStaged(done)
	for i, sf := range done {
		if errs[i] == nil {
			f.recorded(sf.in.rec.Path)
			f.noteApplied(sf.in)
		}
		f.settle(ctx, sf.in, errs[i])
	}
}

// applyGroup applies the records of one path in order.
func (f *folder) applyGroup(ctx context.Context, group []incoming) {
	for _, in := range group {
		_, err := f.applyOne(ctx, in, false)
		f.settle(ctx, in, err)
	}
}

// settle records how applying one record ended: done, refused for good
// (a path no retry makes writable), or still needed: it stays pending,
// counted in status, and is tried again when blocks arrive, the user's
// change is indexed (then the record is decided again), space returns
// (watchSpace), or at the next retry tick.
func (f *folder) settle(ctx context.Context, in incoming, err error) {
	defer f.countQueued([]incoming{in}, -1)
	if errors.Is(err, apply.ErrChanged) && ctx.Err() == nil {
		f.scan(ctx, scanRequest{paths: []string{string(in.rec.Path)}})
		_, err = f.applyOne(ctx, in, false)
	}
	var full *diskFull
	if err != nil && apply.IsNoSpace(err) && ctx.Err() == nil {
		full = f.noSpace(in)
	}
	key := in.env.Key()
	f.mu.Lock()
	delete(f.mu.why, key)
	switch {
	case err == nil:
		delete(f.mu.pending, key)
	case errors.Is(err, apply.ErrUnsafePath) || errors.Is(err, apply.ErrOutsideShare):
		delete(f.mu.pending, key)
	default:
		f.mu.pending[key] = in
		f.mu.why[key] = err
		f.log.Debug("record waits", "path", in.rec.Path, "peer", peerName(in.from), "err", err)
	}
	paused, resumed := f.settleSpaceLocked(key, full, err == nil)
	f.mu.Unlock()
	switch {
	case paused:
		f.log.Warn("disk full: pulling paused until space is freed", "path", in.rec.Path,
			"need", full.need, "free", full.free, "err", err)
	case resumed:
		f.log.Info("disk space available again: pulling resumed", "path", in.rec.Path)
	}
	if full != nil {
		return // status shows it while it lasts
	}
	if err != nil && !errors.Is(err, errMissingBlocks) && !errors.Is(err, errDirWaits) && ctx.Err() == nil {
		f.noteError(fmt.Errorf("apply %q from %s: %w", in.rec.Path, peerName(in.from), err))
	}
}

// retryPending tries again the records that could not be applied. A record
// whose sender now announces our very root is dropped instead: the sender
// has moved on from it (what it holds now, we hold too), so its blocks may
// never come back. Should it still be wanted, the next differing root
// brings it again by reconciliation.
func (f *folder) retryPending(ctx context.Context) {
	moved := make(map[identity.DeviceID]bool)
	for _, s := range f.connectedMembers() {
		if s.rootsAgree(f) {
			moved[s.id] = true
		}
	}
	f.mu.Lock()
	batch := make([]incoming, 0, len(f.mu.pending))
	for k, in := range f.mu.pending {
		if moved[in.from] {
			f.log.Debug("dropped a record its sender moved on from", "path", in.rec.Path, "peer", peerName(in.from))
			delete(f.mu.pending, k)
			continue
		}
		batch = append(batch, in)
	}
	f.mu.Unlock()
	f.makeRoom()
	if len(batch) > 0 {
		f.countQueued(batch, +1) // applyBatch counts them out again
		f.applyBatch(ctx, batch)
	}
}

// senderMovedOn tells the puller that peer now announces our root: records
// still waiting that it sent can go now (see retryPending), not at the
// next retry tick.
func (f *folder) senderMovedOn(peer identity.DeviceID) {
	f.mu.Lock()
	waiting := false
	for _, in := range f.mu.pending {
		if in.from == peer {
			waiting = true
			break
		}
	}
	f.mu.Unlock()
	if waiting {
		select {
		case f.retry <- struct{}{}:
		default:
		}
	}
}

// pulling reports whether records from peers are queued and not yet
// applied, or a reconcile is still finding more, or a scan is still
// recording local changes: in each case the root is still moving, and
// announcements say so (see Session.maybeWant), so a peer waits for the
// next one instead of walking a tree that changes under it. A peer that
// walked a scanning device's tree fetched each record before the push that
// would have brought it as a delta, and then that push too: a touch of
// 20,000 files cost 412 bytes per file, not 180. Pushes a session took in
// and has not handed over yet count too: a puller that outran the checking
// of the next push said it was done between two, and the pusher, hearing a
// root short of its own, walked it and fetched back what it had pushed.
func (f *folder) pulling() bool {
	f.mu.Lock()
	busy := f.mu.queued > 0 || f.mu.walking > 0 || f.mu.scanning > 0
	f.mu.Unlock()
	return busy || slices.ContainsFunc(f.connectedMembers(), func(s *Session) bool { return s.receiving(f.id) })
}

// walk notes a reconcile starting; the returned func notes its end and, if
// that ends the pulling the last announcement told of, announces again.
func (f *folder) walk() (done func()) {
	f.mu.Lock()
	f.mu.walking++
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.mu.walking--
		f.mu.Unlock()
		f.announceIfDonePulling()
	}
}

// announceIfDonePulling announces our state if the last announcement said
// we were pulling and we no longer are: peers wait for that before walking
// our tree.
func (f *folder) announceIfDonePulling() {
	if f.saidPulling() && !f.pulling() {
		f.announceAll()
	}
}

// announced notes what an announcement said of pulling.
func (f *folder) announced(pulling bool) {
	f.mu.Lock()
	f.mu.saidPulling = pulling
	f.mu.Unlock()
}

// saidPulling reports what the last announcement said of pulling.
func (f *folder) saidPulling() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.saidPulling
}

func (f *folder) setBusy(b bool) {
	f.mu.Lock()
	f.mu.busy = b
	f.mu.Unlock()
}

// noteError logs err and keeps it for status. An error already kept (a
// record that fails the same way at every retry) moves to the end, logged
// once.
func (f *folder) noteError(err error) {
	msg := err.Error()
	f.mu.Lock()
	i := slices.Index(f.mu.errors, msg)
	if i >= 0 {
		f.mu.errors = slices.Delete(f.mu.errors, i, i+1)
	}
	f.mu.errors = append(f.mu.errors, msg)
	if len(f.mu.errors) > maxErrors {
		f.mu.errors = f.mu.errors[len(f.mu.errors)-maxErrors:]
	}
	f.mu.Unlock()
	if i < 0 {
		f.log.Warn("sync problem", "err", err)
	}
}

// scanDone ends a scan's part of pulling, once its records are pushed: the
// root may be announced as settled.
func (f *folder) scanDone() {
	f.mu.Lock()
	f.mu.scanning--
	idle := f.mu.scanning == 0
	f.mu.Unlock()
	f.announceIfDonePulling()
	if idle {
		// A walk put off because our scan was moving our root (see
		// Session.run) may go now, not when its retry timer says.
		for _, s := range f.connectedMembers() {
			s.maybeWant(f)
		}
	}
}

// scanningNow reports whether a scan is under way or its records are not
// all pushed yet.
func (f *folder) scanningNow() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.scanning > 0
}

// tellPusher hands the pusher an item unless the folder is stopping.
func (f *folder) tellPusher(ctx context.Context, it pushItem) {
	select {
	case f.updates <- it:
	case <-ctx.Done():
	}
}

// pushItem is what the pusher hears: a committed update, or the start
// (+1) or end (-1) of a scan.
type pushItem struct {
	update index.Update
	scan   int
}

// holdFor and holdMax bound how long, and how many, records of a running
// scan wait to be pushed. The first scan of 200,000 tiny files held ~40,000
// records for each 2 s (~35 MB live, a fifth of the seeder's peak heap);
// at 2,048 a scan's batch (~3,000 of them) goes out as it is committed.
const (
	holdFor = 2 * time.Second
	holdMax = 2048
)

// pushLoop sends what the index commits to every connected member: new
// local records as soon as they exist, and records taken from one peer on
// to the others (so a read-only device relays what it cannot sign). The
// records of one scan that make or delete paths go out together when it
// ends, creations before deletions: a rename's new path and old path's
// tombstone arrive in one batch, so the receiver rebuilds from its old copy
// before removing it, and the new record travels as a delta against the old
// one. A scan that runs longer than holdFor, or makes more than holdMax
// paths, sends what it held so far: its creations still reach the receiver
// before the deletions its last pass finds, only without the delta. A new
// record of a file that stays a file at its path (a touch, a
// chmod, an edit) is no part of a rename and goes at once, a batch of the
// scan at a time: the receiver applies them while the scan goes on, where
// a touch of 20,000 files had it wait for the whole scan and then the whole
// push before it applied the first.
func (f *folder) pushLoop(ctx context.Context, items <-chan pushItem) {
	var held []outgoing
	scanning := 0
	flush := time.NewTimer(holdFor)
	flush.Stop()
	sendHeld := func() {
		flush.Stop()
		f.push(ctx, held, true)
		held = nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			sendHeld()
		case it := <-items:
			switch {
			case it.scan != 0:
				scanning += it.scan
				if scanning == 0 && len(held) > 0 {
					sendHeld()
				}
				if it.scan < 0 {
					f.scanDone()
				}
			case !it.update.FromScan:
				f.push(ctx, outgoingOf(it.update), false)
			case scanning > 0:
				now, later := splitInPlace(outgoingOf(it.update))
				f.push(ctx, now, true)
				if len(later) > 0 && len(held) == 0 {
					flush.Reset(holdFor)
				}
				if held == nil {
					held = later // splitInPlace's own: no copy
				} else {
					held = append(held, later...)
				}
				if len(held) >= holdMax {
					sendHeld()
				}
			default:
				f.push(ctx, outgoingOf(it.update), true)
			}
		}
	}
}

// outgoing is an envelope to push and the one it replaced here, if any,
// with their records when the index handed them over (nil: decoded when
// needed).
type outgoing struct {
	env      record.Envelope
	replaced *record.Envelope
	rec, was *record.Record
}

func outgoingOf(u index.Update) []outgoing {
	out := make([]outgoing, len(u.Envelopes))
	for i, env := range u.Envelopes {
		out[i].env = env
		if i < len(u.Replaced) {
			out[i].replaced = u.Replaced[i]
		}
		if i < len(u.Records) {
			out[i].rec = u.Records[i]
		}
		if i < len(u.Was) && out[i].replaced != nil {
			out[i].was = u.Was[i]
		}
	}
	return out
}

// record returns the record of o's envelope.
func (o *outgoing) record() (record.Record, error) {
	if o.rec != nil {
		return *o.rec, nil
	}
	r, err := o.env.Record()
	if err == nil {
		o.rec = &r
	}
	return r, err
}

// inPlace reports whether o changes a file that stays a file at its path
// (a touch, a chmod, an edit), as the index's records say: no part of a
// rename.
func (o outgoing) inPlace() bool {
	return o.replaced != nil && o.rec != nil && o.was != nil &&
		!o.rec.Deleted && o.rec.Kind == record.File && !o.was.Deleted && o.was.Kind == record.File
}

// splitInPlace separates the records of a scan that may go at once (see
// pushLoop) from those held until the scan ends.
func splitInPlace(items []outgoing) (now, later []outgoing) {
	n := 0
	for _, it := range items {
		if it.inPlace() {
			n++
		}
	}
	switch n {
	case 0: // a first scan's: every record is new
		return nil, items
	case len(items): // a touch's
		return items, nil
	}
	now, later = make([]outgoing, 0, n), make([]outgoing, 0, len(items)-n)
	for _, it := range items {
		if it.inPlace() {
			now = append(now, it)
		} else {
			later = append(later, it)
		}
	}
	return now, later
}

// push sends envelopes to every connected member. Each travels as a delta
// against the envelope it replaced here, which a peer in sync holds: a
// `touch` of a small file then costs a hundred-odd bytes, not its whole
// record and content. A peer that no longer holds the base asks for the
// record in full.
func (f *folder) push(ctx context.Context, items []outgoing, fromScan bool) {
	if len(items) == 0 {
		return
	}
	items = creationsFirst(items)
	prevs := make([]*record.Envelope, len(items))
	for i, it := range items {
		if it.replaced != nil {
			// What this device held last, which a peer in sync holds: kept
			// in the history too, so a peer that missed this push and asks
			// for the record still gets a delta.
			f.hist.put(*it.replaced)
		}
		prevs[i] = f.hist.put(it.env)
		if it.replaced != nil {
			prevs[i] = it.replaced
		}
	}
	peers := f.connectedMembers()
	pack := pushPacking(peers)
	inline := f.newInliner(pack, pushInline)
	for i, it := range items {
		switch {
		case prevs[i] == nil:
		case prevs[i] == it.replaced && it.was != nil:
			inline.holds(*it.was)
		default:
			if rec, err := prevs[i].Record(); err == nil {
				inline.holds(rec)
			}
		}
	}
	trim := slices.ContainsFunc(peers, (*Session).speaksBatchSig)
	whole := slices.ContainsFunc(peers, func(s *Session) bool { return !s.speaksBatchSig() })
	renames := renameBases{replaced: prevs}
	// Encoded a piece at a time: the first scan of 200,000 files held
	// ~50 MB of encoded records at once here, most of them then dropped by
	// a send queue already full (the peer fetches those by reconciling).
	for lo := 0; lo < len(items); lo += pushPiece {
		hi := min(lo+pushPiece, len(items))
		data := make([]wire.RecordData, 0, hi-lo)
		origins := make([]identity.DeviceID, 0, hi-lo)
		var envs []record.Envelope // per data: the envelope, when a record may go trimmed
		if trim {
			envs = make([]record.Envelope, 0, hi-lo)
		}
		var wholes []wire.RecordData
		for i := lo; i < hi; i++ {
			it := &items[i]
			env, base := it.env, prevs[i]
			f.mu.Lock()
			origin := f.mu.origin[env.Leaf()]
			delete(f.mu.origin, env.Leaf())
			f.mu.Unlock()
			if !slices.ContainsFunc(peers, func(s *Session) bool { return s.id != origin }) {
				continue // taken from the only peer connected: nobody to tell
			}
			if base == nil {
				base = renames.of(env)
			}
			var rd wire.RecordData
			trimmed := false
			if trim {
				rd, trimmed = f.e.codec.encodeTrimmedFor(env, base, pack)
				envs = append(envs, env)
			} else {
				rd = f.e.codec.encodeRecordFor(env, base, pack)
			}
			baseLive := base != nil && (base == it.replaced && it.was != nil && liveFileRecord(*it.was) || liveFile(*base))
			if rec, err := it.record(); err == nil && !baseLive {
				inline.add(&rd, env, rec) // new at this path: peers lack its content too
			}
			if whole && trim {
				w := rd
				if trimmed {
					w = f.e.codec.encodeRecordFor(env, base, pack)
					w.ContentEncoding, w.Content = rd.ContentEncoding, rd.Content
				}
				wholes = append(wholes, w)
			}
			data = append(data, rd)
			origins = append(origins, origin)
		}
		for _, s := range peers {
			from, batched := data, trim && s.speaksBatchSig()
			if trim && !batched {
				from = wholes
			}
			// The queue only reads what it is given: every peer shares the
			// piece, but one that sent some of its records gets a copy
			// without them.
			out, outEnvs := from, []record.Envelope(nil)
			if batched {
				outEnvs = envs
			}
			if slices.Contains(origins, s.id) {
				out, outEnvs = nil, nil
				for i, rd := range from {
					if origins[i] != s.id {
						out = append(out, rd)
						if batched {
							outEnvs = append(outEnvs, envs[i])
						}
					}
				}
			}
			if len(out) > 0 {
				s.pushed(f)
				s.push(f, out, outEnvs) // queued: a slow peer holds up no other
			}
		}
	}
	if fromScan {
		// The puller announces once per applied batch; announcing each of
		// its commits would show peers half-applied roots to reconcile with.
		f.announceAll()
	}
}

// creationsFirst orders envelopes so that tombstones come last.
func creationsFirst(items []outgoing) []outgoing {
	out := make([]outgoing, 0, len(items))
	var dead []outgoing
	for _, it := range items {
		if r, err := it.record(); err == nil && r.Deleted {
			dead = append(dead, it)
			continue
		}
		out = append(out, it)
	}
	return append(out, dead...)
}

// liveFile reports whether env records a file that exists: a receiver that
// holds it holds content at that path.
func liveFile(env record.Envelope) bool {
	r, err := env.Record()
	return err == nil && liveFileRecord(r)
}

func liveFileRecord(r record.Record) bool { return !r.Deleted && r.Kind == record.File }

// announceAll tells every connected member this share's current root.
func (f *folder) announceAll() {
	for _, s := range f.e.sessions() {
		if f.isMember(s.id) {
			s.announce(f)
		}
	}
}

// connectedMembers returns the sessions of members connected now.
func (f *folder) connectedMembers() []*Session {
	var out []*Session
	for _, s := range f.e.sessions() {
		if f.isMember(s.id) {
			out = append(out, s)
		}
	}
	return out
}

// waitIdle waits until the puller has nothing queued and is not applying,
// or until limit passes; it reports whether the folder went idle (false if
// ctx ended first).
func (f *folder) waitIdle(ctx context.Context, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		f.mu.Lock()
		busy := f.mu.busy
		f.mu.Unlock()
		if !busy && len(f.inbox) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return true // reconcile anyway: a stuck puller must not block it forever
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// renameBases finds, among the envelopes a push replaced, one for the same
// content as a new path's file: the receiver holds it, so a rename or move
// costs a delta of the record, not its whole block list. The replaced
// records are read once, when a new file first asks (a renamed folder of
// 10,000 files read each of them for each file).
type renameBases struct {
	replaced []*record.Envelope
	byHash   map[block.Hash][]renameBase // nil: not read yet
}

type renameBase struct {
	env  *record.Envelope
	path record.Path
}

func (r *renameBases) of(env record.Envelope) *record.Envelope {
	rec, err := env.Record()
	if err != nil || rec.Deleted || rec.Kind != record.File || len(rec.Blocks) < 2 {
		return nil
	}
	if r.byHash == nil {
		r.byHash = make(map[block.Hash][]renameBase)
		for _, old := range r.replaced {
			if old == nil {
				continue
			}
			if o, err := old.Record(); err == nil {
				r.byHash[o.FileHash] = append(r.byHash[o.FileHash], renameBase{old, o.Path})
			}
		}
	}
	for _, b := range r.byHash[rec.FileHash] {
		if b.path != rec.Path {
			return b.env
		}
	}
	return nil
}
