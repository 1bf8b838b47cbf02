package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// fakeClock is a settable clock for version stamps.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func openTest(t testing.TB, opts Options) (*Root, string) {
	t.Helper()
	dir := t.TempDir()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	r, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func content(b []byte) func(Writer) error {
	return func(w Writer) error { _, err := w.Write(b); return err }
}

func mustWrite(t *testing.T, r *Root, p record.Path, expect FileState, data string) FileState {
	t.Helper()
	st, err := r.WriteFile(context.Background(), p, expect, Meta{Mode: 0o644}, content([]byte(data)))
	if err != nil {
		t.Fatalf("write %q: %v", p, err)
	}
	return st
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noTemps fails the test if .blueshift/tmp holds anything; what says when.
func noTemps(t *testing.T, dir, what string) {
	t.Helper()
	if got := tmpEntries(t, dir); len(got) != 0 {
		t.Fatalf("%s: %v left in %s", what, got, tmpDir)
	}
}

// tmpEntries lists what .blueshift/tmp and its shard folders hold (not the
// shard folders themselves): it must not collect garbage.
func tmpEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		if !e.IsDir() || !isTmpShard(e.Name()) {
			names = append(names, e.Name())
			continue
		}
		in, err := os.ReadDir(filepath.Join(dir, tmpDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range in {
			names = append(names, e.Name()+"/"+f.Name())
		}
	}
	return names
}

func TestOpenCreatesMetaAndRefusesNested(t *testing.T) {
	r, dir := openTest(t, Options{})
	for _, d := range []string{tmpDir, versionsDir} {
		if fi, err := os.Lstat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Fatalf("%s not created: %v", d, err)
		}
	}
	if r.CaseInsensitive() {
		t.Log("file system is case-insensitive")
	}
	noTemps(t, dir, "after the case probe")
	inner := filepath.Join(dir, record.MetaDir, "versions", "x")
	os.MkdirAll(inner, 0o755)
	if _, err := Open(inner, Options{}); !errors.Is(err, ErrUnsafePath) || !strings.Contains(err.Error(), record.MetaDir) {
		t.Fatalf("open inside %s: got %v, want ErrUnsafePath naming it", record.MetaDir, err)
	}
}

func TestWriteFileCreateAndReplace(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)}
	r, dir := openTest(t, Options{Clock: clock.Now})
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	st, err := r.WriteFile(context.Background(), "a/b/c.txt", FileState{}, Meta{Mode: 0o640, ModTime: mtime}, content([]byte("one")))
	if err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "a", "b", "c.txt")
	if got := readFile(t, target); got != "one" {
		t.Fatalf("content %q", got)
	}
	fi, _ := os.Lstat(target)
	if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("meta: mode %v mtime %v", fi.Mode(), fi.ModTime())
	}
	if cur, _ := r.Stat("a/b/c.txt"); cur != st || !st.Exists || st.Size != 3 {
		t.Fatalf("returned state %v, Stat %v", st, cur)
	}

	// Writing where something exists but nothing was expected is a change.
	if _, err := r.WriteFile(context.Background(), "a/b/c.txt", FileState{}, Meta{Mode: 0o644}, content([]byte("x"))); !errors.Is(err, ErrChanged) {
		t.Fatalf("overwrite unexpected file: %v", err)
	}

	st2 := mustWrite(t, r, "a/b/c.txt", st, "two!")
	if got := readFile(t, target); got != "two!" || st2.Size != 4 {
		t.Fatalf("after replace %q %v", got, st2)
	}
	vs, err := r.Versions("a/b/c.txt")
	if err != nil || len(vs) != 1 {
		t.Fatalf("versions %v %v", vs, err)
	}
	if vs[0].Path != ".blueshift/versions/a/b/c~20250304-050607.txt" || !vs[0].Time.Equal(clock.now) {
		t.Fatalf("version %+v", vs[0])
	}
	if got := readFile(t, filepath.Join(dir, vs[0].Path)); got != "one" {
		t.Fatalf("version content %q", got)
	}
	noTemps(t, dir, "at the end")
}

func TestWriteFileFailureLeavesTargetAndNoGarbage(t *testing.T) {
	r, dir := openTest(t, Options{})
	orig := mustWrite(t, r, "f.txt", FileState{}, "original")
	boom := errors.New("peer went away")

	ctx, cancel := context.WithCancel(context.Background())
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	cases := []struct {
		name string
		ctx  context.Context
		fill func(Writer) error
		want error
	}{
		{"fill fails midway", context.Background(), func(w Writer) error {
			w.Write([]byte("half"))
			return boom
		}, boom},
		{"ctx cancelled midway", ctx, func(w Writer) error {
			if _, err := w.Write([]byte("half")); err != nil {
				return err
			}
			cancel()
			_, err := w.WriteAt([]byte("more"), 4)
			return err
		}, context.Canceled},
		{"ctx done before commit", done, func(Writer) error { return nil }, context.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.WriteFile(c.ctx, "f.txt", orig, Meta{Mode: 0o644}, c.fill)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if got := readFile(t, filepath.Join(dir, "f.txt")); got != "original" {
				t.Fatalf("target changed to %q", got)
			}
			if got, _ := r.Stat("f.txt"); got != orig {
				t.Fatalf("state %v, want %v", got, orig)
			}
			noTemps(t, dir, "at the end")
			if vs, _ := r.Versions("f.txt"); len(vs) != 0 {
				t.Fatalf("failed write made versions %v", vs)
			}
		})
	}
	// New file in a new directory: a failure leaves no file.
	if _, err := r.WriteFile(context.Background(), "new/g.txt", FileState{}, Meta{}, func(Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "new", "g.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("failed write left a file: %v", err)
	}
}

func TestWriteFileRefusesWhenUserChangedFile(t *testing.T) {
	cases := map[string]func(t *testing.T, path string){
		"content and size": func(t *testing.T, path string) {
			os.WriteFile(path, []byte("user edit, longer"), 0o644)
		},
		"mtime only": func(t *testing.T, path string) {
			os.Chtimes(path, time.Now(), time.Unix(1e9, 0))
		},
		"same size and mtime, new inode": func(t *testing.T, path string) {
			fi, _ := os.Lstat(path)
			tmp := path + ".user"
			os.WriteFile(tmp, []byte("USER"), 0o644)
			os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
			os.Rename(tmp, path)
		},
		"deleted": func(t *testing.T, path string) { os.Remove(path) },
		"became a directory": func(t *testing.T, path string) {
			os.Remove(path)
			os.Mkdir(path, 0o755)
		},
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			r, dir := openTest(t, Options{})
			st := mustWrite(t, r, "d/f.txt", FileState{}, "ours")
			path := filepath.Join(dir, "d", "f.txt")
			change(t, path)
			before, _ := r.Stat("d/f.txt")
			beforeData, _ := os.ReadFile(path)

			_, err := r.WriteFile(context.Background(), "d/f.txt", st, Meta{Mode: 0o644}, content([]byte("peer")))
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("got %v, want ErrChanged", err)
			}
			after, _ := r.Stat("d/f.txt")
			afterData, _ := os.ReadFile(path)
			if after != before || !bytes.Equal(beforeData, afterData) {
				t.Fatalf("user's file touched: %v -> %v", before, after)
			}
			if err := r.Remove("d/f.txt", st); !errors.Is(err, ErrChanged) {
				t.Fatalf("remove: got %v, want ErrChanged", err)
			}
			noTemps(t, dir, "at the end")
		})
	}
}

func TestRemove(t *testing.T) {
	r, dir := openTest(t, Options{})
	st := mustWrite(t, r, "d/f.txt", FileState{}, "data")
	if err := r.Remove("d/f.txt", st); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d", "f.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("file still there")
	}
	vs, _ := r.Versions("d/f.txt")
	if len(vs) != 1 || readFile(t, filepath.Join(dir, vs[0].Path)) != "data" {
		t.Fatalf("deleted file not kept: %v", vs)
	}
	// Nothing there, nothing expected: done. Missing parent too.
	if err := r.Remove("d/f.txt", FileState{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove("nope/f.txt", FileState{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove("nope/f.txt", st); !errors.Is(err, ErrChanged) {
		t.Fatalf("expected file in missing dir: %v", err)
	}

	// Symlink: removed itself, kept as a version, target untouched.
	mustWrite(t, r, "target.txt", FileState{}, "t")
	ls, err := r.Symlink("d/link", "../target.txt", FileState{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Remove("d/link", ls); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "target.txt")) != "t" {
		t.Fatal("link target touched")
	}

	// Directories: empty removed, non-empty refused.
	mustWrite(t, r, "full/x", FileState{}, "x")
	full, _ := r.Stat("full")
	if err := r.Remove("full", full); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("non-empty dir: %v", err)
	}
	dst, _ := r.Stat("d")
	if err := r.Remove("d", dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "d")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("empty dir still there")
	}
}

func TestMkdirAndSetMeta(t *testing.T) {
	for _, c := range []struct {
		name  string
		mkdir func(r *Root, p record.Path, m Meta) (FileState, error)
	}{
		{"Mkdir", (*Root).Mkdir},
		{"MkdirNoSync", (*Root).MkdirNoSync},
	} {
		t.Run(c.name, func(t *testing.T) { testMkdirAndSetMeta(t, c.mkdir) })
	}
}

func testMkdirAndSetMeta(t *testing.T, mkdir func(r *Root, p record.Path, m Meta) (FileState, error)) {
	r, dir := openTest(t, Options{})
	mtime := time.Date(2021, 6, 7, 8, 9, 10, 0, time.UTC)
	st, err := mkdir(r, "x/y/z", Meta{Mode: 0o750, ModTime: mtime})
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(filepath.Join(dir, "x", "y", "z"))
	if !fi.IsDir() || fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(mtime) || !st.Mode.IsDir() {
		t.Fatalf("dir %v %v", fi.Mode(), fi.ModTime())
	}
	if want := stateOf(fi); !st.Matches(want) || st.Inode != want.Inode || st.Mode != want.Mode {
		t.Fatalf("returned %s, the disk holds %s", st, want)
	}
	// Again: only meta.
	if st, err = mkdir(r, "x/y/z", Meta{Mode: 0o700, ModTime: mtime.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Lstat(filepath.Join(dir, "x", "y", "z"))
	if fi.Mode().Perm() != 0o700 || !fi.ModTime().Equal(mtime.Add(time.Hour)) || st.Mode.Perm() != 0o700 {
		t.Fatalf("dir made again: %v %v", fi.Mode(), fi.ModTime())
	}
	// A symlink where the directory goes is not followed or replaced.
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "x", "ln")); err != nil {
		t.Fatal(err)
	}
	if _, err := mkdir(r, "x/ln", Meta{Mode: 0o700}); !errors.Is(err, ErrChanged) {
		t.Fatalf("mkdir over a symlink: %v", err)
	}
	fst := mustWrite(t, r, "x/f", FileState{}, "f")
	if _, err := mkdir(r, "x/f", Meta{Mode: 0o755}); !errors.Is(err, ErrChanged) {
		t.Fatalf("mkdir over file: %v", err)
	}
	if err := r.SetMeta("x/f", Meta{Mode: 0o600, ModTime: mtime}); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Lstat(filepath.Join(dir, "x", "f"))
	if fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("file meta %v %v", fi.Mode(), fi.ModTime())
	}
	_ = fst
	if err := r.SetMeta("x/missing", Meta{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	// SetMeta on a symlink leaves the link's target alone.
	if _, err := r.Symlink("x/l", "f", FileState{}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetMeta("x/l", Meta{Mode: 0o777, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	fi, _ = os.Lstat(filepath.Join(dir, "x", "f"))
	if fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(mtime) {
		t.Fatalf("SetMeta followed a symlink: %v %v", fi.Mode(), fi.ModTime())
	}
}

func TestSymlinkNeverFollowed(t *testing.T) {
	r, dir := openTest(t, Options{})
	outside := t.TempDir()
	st, err := r.Symlink("l", outside+"/secret", FileState{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "l")); got != outside+"/secret" || st.Mode&fs.ModeSymlink == 0 {
		t.Fatalf("link %q %v", got, st)
	}
	if got, err := r.Readlink("l"); err != nil || got != outside+"/secret" {
		t.Fatalf("Readlink %q %v", got, err)
	}
	// Writing to the link's own path replaces the link, never writes through.
	if _, err := r.WriteFile(context.Background(), "l", st, Meta{Mode: 0o644}, content([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(outside); len(es) != 0 {
		t.Fatalf("wrote through link: %v", es)
	}
	if vs, _ := r.Versions("l"); len(vs) != 1 {
		t.Fatalf("replaced link not kept: %v", vs)
	}
	// A file replaced by a link is kept too; Open refuses a link.
	fst, _ := r.Stat("l")
	if _, err := r.Symlink("l", "elsewhere", fst); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open("l"); err == nil {
		t.Fatal("Open followed a symlink")
	}
	if vs, _ := r.Versions("l"); len(vs) != 2 {
		t.Fatalf("versions %v", vs)
	}
	if _, err := r.Symlink("bad", "a\x00b", FileState{}); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("NUL target: %v", err)
	}
	noTemps(t, dir, "at the end")
}

func TestOpenAndReadAt(t *testing.T) {
	r, _ := openTest(t, Options{})
	mustWrite(t, r, "a/f", FileState{}, "0123456789")
	b := make([]byte, 4)
	if n, err := r.ReadAt("a/f", b, 6); err != nil || n != 4 || string(b) != "6789" {
		t.Fatalf("ReadAt %d %q %v", n, b, err)
	}
	if _, err := r.ReadAt("a/f", b, 8); err == nil {
		t.Fatal("short read not reported")
	}
	if _, err := r.Open("a/missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if _, err := r.Open("a"); err == nil {
		t.Fatal("opened a directory as a file")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestStagedInstall(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mtime := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	fill := func(s string) func(Writer) error {
		return func(w Writer) error { _, err := w.Write([]byte(s)); return err }
	}
	ctx := context.Background()
	a, err := r.Stage(ctx, "d/a.txt", Meta{Mode: 0o640, ModTime: mtime}, fill("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Stage(ctx, "b.txt", Meta{Mode: 0o644}, fill("beta"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d/a.txt")); !os.IsNotExist(err) {
		t.Fatalf("staged content visible before Install: %v", err)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	st, err := a.Install(ctx, FileState{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "d/a.txt")); string(got) != "alpha" || st.Mode.Perm() != 0o640 || !st.ModTime.Equal(mtime) {
		t.Fatalf("installed %q, state %v", got, st)
	}
	// b's path gained a file meanwhile: the user's file wins, nothing is lost.
	if err := os.WriteFile(filepath.Join(dir, "b.txt"), []byte("user"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Install(ctx, FileState{}); !errors.Is(err, ErrChanged) {
		t.Fatalf("install over a new user file: %v, want ErrChanged", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b.txt")); string(got) != "user" {
		t.Fatalf("user's file replaced: %q", got)
	}
	if err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	noTemps(t, dir, "after a refused install")
}

// Staged temps are spread over tmpDir's shard folders (tmpShards), not
// made in one folder whose lock every create would wait on, and none is
// left once discarded.
func TestStagedTempsSpreadOverShards(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var staged []*Staged
	for i := range 64 {
		s, err := r.Stage(context.Background(), record.Path(fmt.Sprintf("f%02d", i)), Meta{Mode: 0o644}, func(w Writer) error {
			_, err := w.Write([]byte("x"))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		staged = append(staged, s)
	}
	shards := map[string]bool{}
	for _, name := range tmpEntries(t, dir) {
		shard, file, ok := strings.Cut(name, "/")
		if !ok || !isTmpShard(shard) || tmpShard(file) != tmpDir+"/"+shard {
			t.Fatalf("temp %s is not in its shard folder", name)
		}
		shards[shard] = true
	}
	if len(shards) < 2 {
		t.Fatalf("64 temps in %d shard folders", len(shards))
	}
	for _, s := range staged {
		s.Discard()
	}
	noTemps(t, dir, "after Discard")
}
