// Package watcher turns filesystem events under a share's root into batches
// of "these paths may have changed", for the scanner to look at.
//
// Nouns: the root (a share's folder), a Batch (share-relative, slash-separated
// paths, deduplicated, or Full: rescan everything), and the Watcher that
// produces them.
//
// How: one fsnotify watch per directory, added at start and for every
// directory created later. Events are coalesced by path and flushed after
// Options.Debounce of quiet, or Options.MaxDelay after the first event of a
// busy burst, whichever comes first. A path in a batch means "this path and
// everything below it, on disk or in the index": a new directory is reported
// as itself, so files created in it before its watch landed are found by the
// scanner's walk.
//
// A missed event may delay a change, never lose it: the first batch is Full
// (sent once every watch is in place, so a caller need not scan before), the
// kernel's queue overflowing gives a Full batch, more than Options.QueueLimit
// distinct paths pending collapse into Full, and a Full batch comes every
// Options.RescanInterval. When a directory cannot be watched (the inotify
// watch limit, fs.inotify.max_user_watches, is exhausted) the watcher says so
// in the log and sends Full every Options.FallbackInterval instead.
//
// Never reported, never watched: the .blueshift/ metadata folder at the root
// and any path Options.Ignore rejects (with everything below it). A nested
// share's .blueshift folder is reported when it appears or goes (the
// scanner then looks at the folder holding it) but not watched: its temp
// files and versions are that share's business.
//
// Ownership and channels: Run's goroutine owns all state. It never blocks on
// the consumer: while a batch waits on Batches, new events keep coalescing
// (bounded by QueueLimit), so fsnotify's reader is never held up by a slow
// scanner. Batches is unbuffered and closed when Run returns; a Batch's Paths
// slice belongs to the receiver.
//
// Platforms: per-directory watches are portable, but on kqueue systems
// (macOS, BSD) fsnotify opens one descriptor per file; large shares there
// should rely on the rescan.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	// DefaultDebounce is the quiet time before a batch flushes: short,
	// because the change-to-synced target is p50 < 0.3 s.
	DefaultDebounce = 100 * time.Millisecond
	// DefaultMaxDelay bounds how long a busy burst holds a batch back.
	DefaultMaxDelay = time.Second
	// DefaultQueueLimit is how many distinct paths may pend before the
	// batch becomes Full (a full scan is then the cheaper way).
	DefaultQueueLimit = 10000
	// DefaultRescanInterval is the safety-net full rescan.
	DefaultRescanInterval = time.Hour
	// DefaultFallbackInterval is the full rescan period while some
	// directory could not be watched.
	DefaultFallbackInterval = time.Minute

	// metaDir is the share's metadata folder, never watched nor reported.
	metaDir = ".blueshift"
)

// ErrRoot means the root is not a directory the watcher can use.
var ErrRoot = errors.New("share root unusable")

// Options tune a Watcher; zero values take the defaults above.
type Options struct {
	Debounce         time.Duration
	MaxDelay         time.Duration
	QueueLimit       int
	RescanInterval   time.Duration
	FallbackInterval time.Duration
	// Ignore reports whether a share-relative slash path is to be neither
	// watched nor reported. It runs on Run's goroutine and must be cheap.
	Ignore func(rel string) bool
	// Logger gets the watcher's warnings (nil: discard).
	Logger *slog.Logger
}

// Batch is one delivery: Full, or the paths that may have changed.
type Batch struct {
	Paths []string // sorted, no path below another one listed; nil when Full
	Full  bool
}

// Watcher watches one share root. It starts fsnotify's reader goroutine in
// New; Run owns it from then on, and Close releases it when Run never ran.
type Watcher struct {
	root string // absolute, symlinks resolved
	opts Options
	log  *slog.Logger
	out  chan Batch
	ran  atomic.Bool

	fsw *fsnotify.Watcher // nil: no events at all, rescans only
	// add places one watch; a field so a test can make the kernel refuse.
	add func(path string) error

	// Owned by Run's goroutine.
	dirs     map[string]struct{} // watched directories, share-relative
	degraded bool                // some directory is not watched
	warned   bool                // the watch-limit advice was logged
}

// New prepares a watcher for root. Watches are placed by Run.
func New(root string, opts Options) (*Watcher, error) {
	abs, err := filepath.Abs(root)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("watch %q: %w: %w", root, ErrRoot, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("watch %q: %w: not a directory", root, ErrRoot)
	}
	opts.Debounce = orDefault(opts.Debounce, DefaultDebounce)
	opts.MaxDelay = max(orDefault(opts.MaxDelay, DefaultMaxDelay), opts.Debounce)
	opts.RescanInterval = orDefault(opts.RescanInterval, DefaultRescanInterval)
	opts.FallbackInterval = min(orDefault(opts.FallbackInterval, DefaultFallbackInterval), opts.RescanInterval)
	if opts.QueueLimit <= 0 {
		opts.QueueLimit = DefaultQueueLimit
	}
	w := &Watcher{
		root: abs,
		opts: opts,
		log:  opts.Logger,
		out:  make(chan Batch),
		dirs: map[string]struct{}{},
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.fsw, err = fsnotify.NewWatcher()
	if err != nil {
		// Too many inotify instances (fs.inotify.max_user_instances):
		// keep working on rescans alone.
		w.log.Warn("filesystem events unavailable; changes will be found by periodic rescans",
			"path", abs, "every", opts.FallbackInterval, "err", err)
		w.degraded = true
	} else {
		w.add = w.fsw.Add
	}
	return w, nil
}

// Batches is where Run delivers; it is closed when Run returns.
func (w *Watcher) Batches() <-chan Batch { return w.out }

// Close releases the event source of a watcher whose Run never ran. Run
// releases it itself.
func (w *Watcher) Close() error {
	if w.ran.Swap(true) {
		return nil
	}
	close(w.out)
	if w.fsw != nil {
		return w.fsw.Close()
	}
	return nil
}

// Run watches until ctx is done, then releases everything, closes Batches
// and returns nil. It may run once.
func (w *Watcher) Run(ctx context.Context) error {
	if w.ran.Swap(true) {
		return errors.New("watcher: Run called twice or after Close")
	}
	defer close(w.out)
	var events chan fsnotify.Event
	var errs chan error
	if w.fsw != nil {
		defer w.fsw.Close()
		events, errs = w.fsw.Events, w.fsw.Errors
	}

	w.watchTree(ctx, "")
	pending := newQueue(w.opts.QueueLimit)
	ready := &Batch{Full: true} // the first batch: all watches are in place

	flush := time.NewTimer(time.Hour)
	flush.Stop() // armed by the first event
	rescan := time.NewTimer(w.rescanEvery())
	defer flush.Stop()
	defer rescan.Stop()

	for {
		var out chan Batch
		var batch Batch
		if ready != nil {
			out, batch = w.out, *ready
		}
		select {
		case <-ctx.Done():
			return nil
		case out <- batch:
			ready = nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			wasEmpty := pending.empty()
			w.handle(ctx, ev, pending)
			if wasEmpty && !pending.empty() {
				flush.Reset(w.opts.Debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				w.log.Info("filesystem event queue overflowed; rescanning everything", "path", w.root)
			} else {
				w.log.Warn("filesystem events", "path", w.root, "err", err)
			}
			pending.setFull()
			flush.Reset(0)
		case now := <-flush.C:
			if pending.empty() {
				continue
			}
			if wait := pending.due(w.opts.Debounce, w.opts.MaxDelay).Sub(now); wait > 0 {
				flush.Reset(wait)
				continue
			}
			ready = merge(ready, pending.take(), w.opts.QueueLimit)
		case <-rescan.C:
			if w.degraded && w.fsw != nil {
				w.retryWatches(ctx)
			}
			ready = &Batch{Full: true}
			pending.reset()
			rescan.Reset(w.rescanEvery())
		}
	}
}

// handle records one event, and keeps the set of watches in step with the
// tree: new directories are watched, removed or renamed ones forgotten.
func (w *Watcher) handle(ctx context.Context, ev fsnotify.Event, q *queue) {
	rel, ok := w.rel(ev.Name)
	if !ok {
		return
	}
	if rel == "" {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			w.log.Warn("share root removed or renamed; watching stopped, rescans continue", "path", w.root)
			w.degraded = true
			w.unwatchTree("")
			q.setFull()
		}
		return
	}
	if w.ignored(rel) {
		return
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		w.unwatchTree(rel)
	}
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(ev.Name); err == nil && fi.IsDir() {
			w.watchTree(ctx, rel)
		}
	}
	q.add(rel)
}

// watchTree places a watch on rel and every directory below it.
func (w *Watcher) watchTree(ctx context.Context, rel string) {
	if w.fsw == nil {
		return
	}
	start := filepath.Join(w.root, filepath.FromSlash(rel))
	filepath.WalkDir(start, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return filepath.SkipAll
		}
		if err != nil || !d.IsDir() {
			return nil // vanished or unreadable: the scanner reports it
		}
		r, _ := w.rel(path)
		if r != "" && (w.ignored(r) || isMeta(d.Name())) {
			return filepath.SkipDir
		}
		if _, ok := w.dirs[r]; ok {
			return nil
		}
		switch err := w.add(path); {
		case err == nil:
			w.dirs[r] = struct{}{}
		case errors.Is(err, syscall.ENOSPC):
			w.degraded = true
			if !w.warned {
				w.warned = true
				w.log.Warn("inotify watch limit reached: changes in this share will be found by a full rescan "+
					"instead of at once; raise the limit with `sysctl -w fs.inotify.max_user_watches=1048576` "+
					"(persist it in /etc/sysctl.d/)", "path", w.root, "rescan_every", w.opts.FallbackInterval)
			}
			return filepath.SkipAll
		case errors.Is(err, fs.ErrNotExist):
			return filepath.SkipDir
		default:
			w.degraded = true
			w.log.Warn("cannot watch directory; its changes will be found by rescans", "path", path, "err", err)
			return filepath.SkipDir
		}
		return nil
	})
}

// retryWatches tries again to watch every directory: the watch limit may
// have been raised, or the root may be back.
func (w *Watcher) retryWatches(ctx context.Context) {
	if fi, err := os.Stat(w.root); err != nil || !fi.IsDir() {
		return // still gone: stay degraded
	}
	w.degraded = false
	w.watchTree(ctx, "")
	if !w.degraded {
		w.log.Info("watching every directory again", "path", w.root)
	}
}

// unwatchTree forgets the watches on rel and below: a renamed directory's
// watches would otherwise report events under its old name.
func (w *Watcher) unwatchTree(rel string) {
	if _, ok := w.dirs[rel]; !ok {
		return
	}
	for d := range w.dirs {
		if d == rel || rel == "" || strings.HasPrefix(d, rel+"/") {
			_ = w.fsw.Remove(filepath.Join(w.root, filepath.FromSlash(d))) // often gone already
			delete(w.dirs, d)
		}
	}
}

func (w *Watcher) rescanEvery() time.Duration {
	if w.degraded {
		return w.opts.FallbackInterval
	}
	return w.opts.RescanInterval
}

// rel is name relative to the root, slash-separated; "" is the root itself.
func (w *Watcher) rel(name string) (string, bool) {
	if name == w.root {
		return "", true
	}
	r, ok := strings.CutPrefix(name, w.root+string(filepath.Separator))
	if !ok || r == "" {
		return "", false
	}
	return filepath.ToSlash(r), true
}

// isMeta reports whether name is a share's metadata folder (case-folded,
// as the index and sync/apply match it).
func isMeta(name string) bool { return strings.EqualFold(name, metaDir) }

func (w *Watcher) ignored(rel string) bool {
	if rel == metaDir || strings.HasPrefix(rel, metaDir+"/") {
		return true
	}
	return w.opts.Ignore != nil && w.opts.Ignore(rel)
}

// queue coalesces the paths of events since the last flush.
type queue struct {
	limit       int
	paths       map[string]struct{}
	full        bool
	first, last time.Time
}

func newQueue(limit int) *queue { return &queue{limit: limit, paths: map[string]struct{}{}} }

func (q *queue) empty() bool { return !q.full && len(q.paths) == 0 }

func (q *queue) add(rel string) {
	now := time.Now()
	if q.empty() {
		q.first = now
	}
	q.last = now
	if q.full {
		return
	}
	q.paths[rel] = struct{}{}
	if len(q.paths) > q.limit {
		q.setFull()
	}
}

func (q *queue) setFull() {
	if q.empty() {
		q.first = time.Now()
	}
	q.full = true
	q.last = time.Now()
	clear(q.paths)
}

// due is when the pending batch flushes: after the debounce's quiet time,
// or at the latest maxDelay after its first event.
func (q *queue) due(debounce, maxDelay time.Duration) time.Time {
	if q.full {
		return q.first // nothing to coalesce into a full rescan
	}
	return minTime(q.last.Add(debounce), q.first.Add(maxDelay))
}

func (q *queue) take() Batch {
	defer q.reset()
	if q.full {
		return Batch{Full: true}
	}
	return Batch{Paths: compact(q.paths)}
}

func (q *queue) reset() {
	q.full = false
	clear(q.paths)
}

// merge adds b to a batch still waiting for its receiver.
func merge(ready *Batch, b Batch, limit int) *Batch {
	if ready == nil {
		return &b
	}
	if ready.Full || b.Full {
		return &Batch{Full: true}
	}
	set := make(map[string]struct{}, len(ready.Paths)+len(b.Paths))
	for _, p := range ready.Paths {
		set[p] = struct{}{}
	}
	for _, p := range b.Paths {
		set[p] = struct{}{}
	}
	if len(set) > limit {
		return &Batch{Full: true}
	}
	return &Batch{Paths: compact(set)}
}

// compact sorts the set and drops every path below another one in it (a
// path covers its subtree).
func compact(set map[string]struct{}) []string {
	out := make([]string, 0, len(set))
	for p := range set {
		covered := false
		for a := p; !covered; {
			i := strings.LastIndexByte(a, '/')
			if i < 0 {
				break
			}
			a = a[:i]
			_, covered = set[a]
		}
		if !covered {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
