package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// TestSetAttrs: mode and mtime change in place; the inode, the content and
// the versions folder stay as they were.
func TestSetAttrs(t *testing.T) {
	r, dir := openTest(t, Options{})
	p := filepath.Join(dir, "a", "f.txt")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := r.Stat("a/f.txt")
	if err != nil {
		t.Fatal(err)
	}
	when := time.Unix(1_700_000_000, 123456789)
	after, err := r.SetAttrs("a/f.txt", before, Meta{Mode: 0o600, ModTime: when})
	if err != nil {
		t.Fatal(err)
	}
	if after.Inode != before.Inode || after.Mode.Perm() != 0o600 || !after.ModTime.Equal(when) || after.Size != before.Size {
		t.Fatalf("after SetAttrs: %s (before %s)", after, before)
	}
	if got, _ := r.Stat("a/f.txt"); got != after {
		t.Fatalf("SetAttrs returned %s, the disk holds %s", after, got)
	}
	if got, _ := os.ReadFile(p); string(got) != "content" {
		t.Fatalf("content changed: %q", got)
	}
	if vs, err := r.Versions("a/f.txt"); err != nil || len(vs) != 0 {
		t.Fatalf("versions kept: %v %v", vs, err)
	}
}

// TestSetAttrsRefuses: a file that is not what the caller expects (edited,
// replaced, gone, a directory, a symlink) is left alone with ErrChanged,
// and a symlink's target is never changed.
func TestSetAttrsRefuses(t *testing.T) {
	r, dir := openTest(t, Options{})
	write := func(name, data string) FileState {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := r.Stat(record.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	outside := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(outside, []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}
	meta := Meta{Mode: 0o777, ModTime: time.Unix(1_600_000_000, 0)}
	later := time.Now().Add(time.Hour)

	cases := []struct {
		name   string
		expect func(p string) FileState // what the caller believes is at p
		change func(p string)           // what happens at p before SetAttrs
	}{
		{"edited", func(p string) FileState { return write(p, "one") }, func(p string) { write(p, "two!") }},
		{"touched", func(p string) FileState { return write(p, "one") }, func(p string) {
			os.Chtimes(filepath.Join(dir, p), later, later)
		}},
		{"replaced", func(p string) FileState { return write(p, "one") }, func(p string) {
			os.Rename(filepath.Join(dir, p), filepath.Join(dir, p+".old"))
			write(p, "one")
		}},
		{"gone", func(p string) FileState { return write(p, "one") }, func(p string) { os.Remove(filepath.Join(dir, p)) }},
		{"symlink", func(p string) FileState { return write(p, "one") }, func(p string) {
			os.Remove(filepath.Join(dir, p))
			os.Symlink(outside, filepath.Join(dir, p))
		}},
		{"directory", func(p string) FileState {
			os.Mkdir(filepath.Join(dir, p), 0o755)
			st, _ := r.Stat(record.Path(p))
			return st
		}, func(string) {}},
		{"unexpected", func(p string) FileState { write(p, "one"); return FileState{} }, func(string) {}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expect := c.expect(c.name)
			c.change(c.name)
			_, err := r.SetAttrs(record.Path(c.name), expect, meta)
			if !errors.Is(err, ErrChanged) {
				t.Fatalf("got %v, want ErrChanged", err)
			}
			if fi, err := os.Lstat(filepath.Join(dir, c.name)); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm() == meta.Mode {
				t.Fatalf("mode set anyway: %v", fi.Mode())
			}
		})
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o644 || fi.ModTime().Equal(meta.ModTime) {
		t.Fatalf("the symlink's target outside the share changed: %v %v", fi.Mode(), err)
	}
}

// TestSetAttrsConcurrent: SetAttrs of many paths from many goroutines at
// once (as the engine's workers apply a touch) sets every file as asked;
// calls on one path with the same expectation still go one at a time, so
// exactly one wins and the others find the file changed; and a replacement
// racing SetAttrs of the same path leaves exactly one of them done.
func TestSetAttrsConcurrent(t *testing.T) {
	r, dir := openTest(t, Options{})
	const files = 200
	paths := make([]record.Path, files)
	states := make([]FileState, files)
	for i := range paths {
		paths[i] = record.Path(fmt.Sprintf("d%d/f%03d", i%4, i))
		full := filepath.Join(dir, filepath.FromSlash(string(paths[i])))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(paths[i]), 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := r.Stat(paths[i])
		if err != nil {
			t.Fatal(err)
		}
		states[i] = st
	}
	when := func(i int) time.Time { return time.Unix(1_700_000_000+int64(i), 0) }

	t.Run("many paths", func(t *testing.T) {
		var wg sync.WaitGroup
		for w := range 16 {
			wg.Go(func() {
				for i := w; i < files; i += 16 {
					mode := fs.FileMode(0o600 + i%2*0o040)
					after, err := r.SetAttrs(paths[i], states[i], Meta{Mode: mode, ModTime: when(i)})
					if err != nil {
						t.Errorf("%s: %v", paths[i], err)
						continue
					}
					if after.Inode != states[i].Inode || after.Mode.Perm() != mode || !after.ModTime.Equal(when(i)) {
						t.Errorf("%s: after SetAttrs %s", paths[i], after)
					}
					states[i] = after
				}
			})
		}
		wg.Wait()
		for i, p := range paths {
			if got, err := r.Stat(p); err != nil || got != states[i] {
				t.Fatalf("%s holds %s (%v), SetAttrs returned %s", p, got, err, states[i])
			}
		}
	})

	t.Run("one path", func(t *testing.T) {
		for i := range 100 {
			var wg sync.WaitGroup
			var won atomic.Int32
			expect := states[i]
			for w := range 8 {
				wg.Go(func() {
					after, err := r.SetAttrs(paths[i], expect, Meta{Mode: 0o644, ModTime: when(1000 + 10*i + w)})
					switch {
					case err == nil:
						won.Add(1)
						states[i] = after
					case !errors.Is(err, ErrChanged):
						t.Errorf("%s: %v", paths[i], err)
					}
				})
			}
			wg.Wait()
			if n := won.Load(); n != 1 {
				t.Fatalf("%s: %d of 8 SetAttrs with one expectation succeeded, want 1", paths[i], n)
			}
		}
	})

	t.Run("against a replacement", func(t *testing.T) {
		for i := 100; i < 120; i++ {
			var wg sync.WaitGroup
			var won atomic.Int32
			expect := states[i]
			wg.Go(func() {
				if _, err := r.SetAttrs(paths[i], expect, Meta{Mode: 0o644, ModTime: when(5000 + i)}); err == nil {
					won.Add(1)
				} else if !errors.Is(err, ErrChanged) {
					t.Errorf("SetAttrs %s: %v", paths[i], err)
				}
			})
			wg.Go(func() {
				_, err := r.WriteFile(context.Background(), paths[i], expect, Meta{Mode: 0o644, ModTime: when(9000 + i)},
					func(w Writer) error { _, err := w.Write([]byte("new content")); return err })
				if err == nil {
					won.Add(1)
				} else if !errors.Is(err, ErrChanged) {
					t.Errorf("WriteFile %s: %v", paths[i], err)
				}
			})
			wg.Wait()
			if n := won.Load(); n != 1 {
				t.Fatalf("%s: %d of SetAttrs and a replacement with one expectation succeeded, want 1", paths[i], n)
			}
		}
	})
}
