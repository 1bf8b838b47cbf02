package watcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// patience bounds how long a test waits for a batch it is owed; it is a
// deadline against hanging, not a timing assertion.
const patience = 20 * time.Second

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start runs a watcher on root and returns once its first (Full) batch has
// arrived, i.e. once every watch is in place. Cleanup stops it and checks
// that Run returned and closed Batches.
func start(t *testing.T, root string, opts Options) *Watcher {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	w, err := New(root, opts)
	if err != nil {
		t.Fatal(err)
	}
	return run(t, w)
}

func run(t *testing.T, w *Watcher) *Watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
		for range w.Batches() { // drains, and ends only if Run closed it
		}
	})
	select {
	case b := <-w.Batches():
		if !b.Full {
			t.Fatalf("first batch %+v, want Full", b)
		}
	case <-time.After(patience):
		t.Fatal("no first batch")
	}
	return w
}

// collector gathers batches until every wanted path is covered (the path, an
// ancestor of it, or a Full batch).
type collector struct {
	batches []Batch
	seen    map[string]bool
	full    int
}

func (c *collector) covers(p string) bool {
	if c.full > 0 {
		return true
	}
	for a := p; ; {
		if c.seen[a] {
			return true
		}
		i := strings.LastIndexByte(a, '/')
		if i < 0 {
			return false
		}
		a = a[:i]
	}
}

func collect(t *testing.T, w *Watcher, want ...string) *collector {
	t.Helper()
	c := &collector{seen: map[string]bool{}}
	deadline := time.After(patience)
	for {
		missing := slices.DeleteFunc(slices.Clone(want), c.covers)
		if len(missing) == 0 {
			return c
		}
		select {
		case b := <-w.Batches():
			c.batches = append(c.batches, b)
			if b.Full {
				c.full++
			}
			for _, p := range b.Paths {
				c.seen[p] = true
			}
		case <-deadline:
			t.Fatalf("not reported: %v (got %d batches: %v)", missing, len(c.batches), c.batches)
		}
	}
}

func write(t testing.TB, root, rel, data string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestChangesAreReported(t *testing.T) {
	root := t.TempDir()
	write(t, root, "d/old.txt", "x")
	w := start(t, root, Options{})

	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"create", func() { write(t, root, "a.txt", "a") }, []string{"a.txt"}},
		{"modify", func() { write(t, root, "d/old.txt", "changed") }, []string{"d/old.txt"}},
		{"rename", func() {
			if err := os.Rename(filepath.Join(root, "a.txt"), filepath.Join(root, "d", "b.txt")); err != nil {
				t.Fatal(err)
			}
		}, []string{"a.txt", "d/b.txt"}},
		{"delete", func() {
			if err := os.Remove(filepath.Join(root, "d", "b.txt")); err != nil {
				t.Fatal(err)
			}
		}, []string{"d/b.txt"}},
		{"chmod", func() {
			if err := os.Chmod(filepath.Join(root, "d", "old.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"d/old.txt"}},
	}
	for _, s := range steps {
		s.do()
		c := collect(t, w, s.want...)
		if c.full > 0 {
			t.Errorf("%s: got a Full batch, want paths: %v", s.name, c.batches)
		}
	}
}

func TestNewNestedDirectoriesAreWatched(t *testing.T) {
	root := t.TempDir()
	w := start(t, root, Options{})
	// Created faster than any watch can land: the new top directory covers it.
	write(t, root, "n1/n2/n3/f", "f")
	collect(t, w, "n1/n2/n3/f")
	write(t, root, "n1/n2/n3/g", "g")
	collect(t, w, "n1/n2/n3/g")
	// By now every create has been handled: this one must come from the
	// watch on n3 itself, named exactly.
	write(t, root, "n1/n2/n3/h", "h")
	c := collect(t, w, "n1/n2/n3/h")
	if !c.seen["n1/n2/n3/h"] {
		t.Errorf("deep file reported as %v, want n1/n2/n3/h itself", c.batches)
	}
	// A renamed directory is watched under its new name, not its old one.
	if err := os.Rename(filepath.Join(root, "n1"), filepath.Join(root, "m1")); err != nil {
		t.Fatal(err)
	}
	collect(t, w, "n1", "m1")
	write(t, root, "m1/n2/n3/i", "i")
	c = collect(t, w, "m1/n2/n3/i")
	for p := range c.seen {
		if strings.HasPrefix(p, "n1/") {
			t.Errorf("event reported under the old name: %q", p)
		}
	}
}

func TestBurstCoalesces(t *testing.T) {
	const n = 10000
	root := fastDir(t)
	write(t, root, "burst/.keep", "")
	w := start(t, root, Options{})
	want := make([]string, n)
	for i := range want {
		want[i] = "burst/f" + strconv.Itoa(i)
		write(t, root, want[i], "x")
	}
	c := collect(t, w, want...)
	t.Logf("%d events in %d batches (%d full)", n, len(c.batches), c.full)
	if len(c.batches) > 20 {
		t.Errorf("%d file creations became %d batches, want a few", n, len(c.batches))
	}
}

func TestQueueLimitBecomesFull(t *testing.T) {
	root := t.TempDir()
	w := start(t, root, Options{QueueLimit: 10, Debounce: 200 * time.Millisecond, MaxDelay: 5 * time.Second})
	var want []string
	for i := 0; i < 100; i++ {
		want = append(want, "f"+strconv.Itoa(i))
		write(t, root, want[i], "x")
	}
	c := collect(t, w, want...)
	if c.full == 0 {
		t.Errorf("100 paths with QueueLimit 10 gave no Full batch: %v", c.batches)
	}
	for _, b := range c.batches {
		if len(b.Paths) > 10 {
			t.Errorf("batch of %d paths exceeds QueueLimit", len(b.Paths))
		}
	}
}

// TestKernelOverflow makes the kernel's inotify queue really overflow: the
// Ignore hook holds Run's goroutine, so fsnotify's reader stalls, while more
// files are created than fs.inotify.max_queued_events holds.
func TestKernelOverflow(t *testing.T) {
	limit := readInt(t, "/proc/sys/fs/inotify/max_queued_events")
	if limit > 50000 {
		t.Skipf("max_queued_events is %d: too many files to create for a test", limit)
	}
	root := fastDir(t)
	blocked, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var logs syncBuffer
	w := start(t, root, Options{
		QueueLimit: 1 << 20, // so only the kernel's overflow can make a Full
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
		Ignore: func(rel string) bool {
			if rel == "block" {
				once.Do(func() { close(blocked); <-release })
			}
			return false
		},
	})
	write(t, root, "block", "")
	<-blocked
	// fsnotify's reader is stuck sending an event it already read, so it
	// reads no more: the kernel queue takes limit events, then overflows.
	n := limit + 512
	for i := 0; i < n; i++ {
		f, err := os.Create(filepath.Join(root, "o"+strconv.Itoa(i)))
		if err != nil {
			close(release)
			t.Fatal(err)
		}
		f.Close()
	}
	close(release)
	c := &collector{seen: map[string]bool{}}
	// The overflow comes after every event queued before it has been taken,
	// which under -race on a busy machine can take longer than patience.
	deadline := time.After(5 * patience)
	for c.full == 0 {
		select {
		case b := <-w.Batches():
			if b.Full {
				c.full++
			}
		case <-deadline:
			t.Fatalf("no Full batch after %d events into a queue of %d", n, limit)
		}
	}
	if !strings.Contains(logs.String(), "overflowed") {
		t.Errorf("the Full batch was not from the kernel overflow; log:\n%s", logs.String())
	}
}

func TestMetadataAndIgnoredNeverReported(t *testing.T) {
	root := t.TempDir()
	write(t, root, ".blueshift/versions/old", "v")
	w := start(t, root, Options{Ignore: func(rel string) bool {
		return rel == "skip" || strings.HasSuffix(rel, ".tmp")
	}})
	write(t, root, ".blueshift/tmp/partial", "p")
	write(t, root, ".blueshift/versions/old", "v2")
	write(t, root, "skip/inner/x", "x")
	write(t, root, "a.tmp", "t")
	write(t, root, "marker", "m") // after all the rest
	c := collect(t, w, "marker")
	for p := range c.seen {
		if p != "marker" {
			t.Errorf("reported %q", p)
		}
	}
	if _, watched := w.dirs[".blueshift"]; watched {
		// Read after the batch: Run has handled every earlier event by now,
		// and the map is not written while no event arrives.
		t.Error(".blueshift is watched")
	}
}

func TestPeriodicRescan(t *testing.T) {
	w := start(t, t.TempDir(), Options{RescanInterval: 20 * time.Millisecond})
	for i := 0; i < 3; i++ {
		select {
		case b := <-w.Batches():
			if !b.Full {
				t.Errorf("batch %+v, want Full", b)
			}
		case <-time.After(patience):
			t.Fatal("no periodic rescan")
		}
	}
}

// TestWatchLimitFallsBackToRescans has the kernel refuse watches with
// ENOSPC, as inotify_add_watch does at fs.inotify.max_user_watches.
func TestWatchLimitFallsBackToRescans(t *testing.T) {
	root := t.TempDir()
	write(t, root, "sub/x", "x")
	var logs syncBuffer
	w, err := New(root, Options{FallbackInterval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	real := w.add
	var raised atomic.Bool
	w.add = func(path string) error {
		if path == w.root || raised.Load() {
			return real(path)
		}
		return fmt.Errorf("add watch %q: %w", path, syscall.ENOSPC)
	}
	run(t, w)
	for i := 0; i < 2; i++ {
		select {
		case b := <-w.Batches():
			if !b.Full {
				t.Errorf("batch %+v, want Full", b)
			}
		case <-time.After(patience):
			t.Fatal("no fallback rescan")
		}
	}
	if !strings.Contains(logs.String(), "fs.inotify.max_user_watches") {
		t.Errorf("log does not say what to do:\n%s", logs.String())
	}
	// The limit is raised: the next fallback rescan watches sub/ again, and
	// a change there is reported by its path.
	raised.Store(true)
	for !strings.Contains(logs.String(), "watching every directory again") {
		select {
		case <-w.Batches():
		case <-time.After(patience):
			t.Fatalf("watches not retried; log:\n%s", logs.String())
		}
	}
	write(t, root, "sub/y", "y")
	deadline := time.After(patience)
	for named := false; !named; { // the retry's own Full may come first
		select {
		case b := <-w.Batches():
			named = slices.Contains(b.Paths, "sub/y")
		case <-deadline:
			t.Fatal("after recovery, sub/y not reported by name")
		}
	}
}

func TestRunStopsAndCloses(t *testing.T) {
	w, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if _, open := <-w.Batches(); open {
		t.Error("Batches still open")
	}
	if err := w.Run(context.Background()); err == nil {
		t.Error("second Run accepted")
	}
	// Close without Run releases fsnotify's goroutine (goleak checks).
	w2, err := New(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNewRejectsBadRoot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	write(t, filepath.Dir(file), "f", "")
	for _, root := range []string{file, filepath.Join(file, "missing")} {
		if _, err := New(root, Options{}); !errors.Is(err, ErrRoot) {
			t.Errorf("New(%q) = %v, want ErrRoot", root, err)
		}
	}
}

func TestCompact(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"a"}, []string{"a"}},
		{[]string{"a/b", "a", "ab", "a/b/c"}, []string{"a", "ab"}},
		{[]string{"c/d/e", "c/d", "c/x"}, []string{"c/d", "c/x"}},
		{[]string{"x/y/z", "x/y2"}, []string{"x/y/z", "x/y2"}},
	}
	for _, tt := range tests {
		set := map[string]struct{}{}
		for _, p := range tt.in {
			set[p] = struct{}{}
		}
		if got := compact(set); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("compact(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// fastDir is a temporary directory on tmpfs when there is one: creating
// files there is about 50 times faster than on a virtual disk, and the
// overflow test creates tens of thousands.
func fastDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "watcher-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func readInt(t *testing.T, path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	return n
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A nested share's .blueshift folder is reported when it appears (the
// scanner looks at the folder holding it) but never watched: the inner
// share's temp files and versions make no batches for the share around it.
func TestNestedMetadataNotWatched(t *testing.T) {
	root := t.TempDir()
	write(t, root, "old/.blueshift/versions/v", "v")
	w := start(t, root, Options{})
	write(t, root, "old/.blueshift/tmp/partial", "p")
	write(t, root, "new/.blueshift/tmp/t", "t")
	c := collect(t, w, "new")
	write(t, root, "new/.blueshift/versions/x", "x")
	write(t, root, "marker", "m") // after all the rest
	c2 := collect(t, w, "marker")
	for p := range c.seen {
		if strings.Contains(p, ".blueshift/") {
			t.Errorf("reported %q inside a metadata folder", p)
		}
	}
	for p := range c2.seen {
		if p != "marker" {
			t.Errorf("reported %q", p)
		}
	}
	for d := range w.dirs {
		if strings.HasSuffix(d, ".blueshift") || strings.Contains(d, ".blueshift/") {
			t.Errorf("%q is watched", d)
		}
	}
}
