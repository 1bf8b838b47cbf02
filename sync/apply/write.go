package apply

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/blueshift-sync/blueshift/index/record"
)

// Writer is what WriteFile's fill writes the new content to: the temp file,
// sequentially or at offsets. Every call fails once ctx is done.
type Writer interface {
	io.Writer
	io.WriterAt
}

// WriteFile writes new content for p. fill writes it into a fresh temp file
// under .blueshift/tmp; then the temp is fsynced, given meta, and, if p still
// holds expect (Exists false: p must not exist), the old file is kept as a
// version and the temp renamed over p, parents created as needed, and the
// directory fsynced. It returns the state of the new file for the index.
//
// On any failure, a fill error, ctx done, or ErrChanged, p is untouched and
// the temp is removed.
func (r *Root) WriteFile(ctx context.Context, p record.Path, expect FileState, meta Meta, fill func(w Writer) error) (FileState, error) {
	name, err := checkPath(p)
	if err != nil {
		return FileState{}, err
	}
	tmp := filepath.FromSlash(tmpDir + "/" + randomHex(16) + ".tmp")
	f, err := r.fs.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, tempPerm)
	if err != nil {
		return FileState{}, fmt.Errorf("write %q: create temp: %w", p, err)
	}
	installed := false
	defer func() {
		if !installed {
			f.Close()
			r.fs.Remove(tmp)
		}
	}()
	if err := fill(ctxWriter{ctx: ctx, f: f}); err != nil {
		return FileState{}, fmt.Errorf("write %q: fill: %w", p, err)
	}
	st, err := r.install(ctx, f, tmp, name, expect, meta)
	if err != nil {
		return FileState{}, fmt.Errorf("write %q: %w", p, err)
	}
	installed = true
	return st, nil
}

// install makes the complete temp file f (at tmp) the file at name: fsync,
// mode via the open descriptor, mtime on the temp (rename keeps it), then the
// locked commit. f is closed in every case.
func (r *Root) install(ctx context.Context, f *os.File, tmp, name string, expect FileState, meta Meta) (FileState, error) {
	if err := f.Sync(); err != nil {
		f.Close()
		return FileState{}, fmt.Errorf("sync temp: %w", err)
	}
	if err := f.Chmod(meta.Mode.Perm()); err != nil {
		f.Close()
		return FileState{}, fmt.Errorf("set mode: %w", err)
	}
	if err := f.Close(); err != nil {
		return FileState{}, fmt.Errorf("close temp: %w", err)
	}
	if !meta.ModTime.IsZero() {
		if err := r.fs.Chtimes(tmp, meta.ModTime, meta.ModTime); err != nil {
			return FileState{}, fmt.Errorf("set mtime: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return FileState{}, err
	}

	r.commitMu.Lock()
	st, err := r.replaceLocked(tmp, name, expect, true)
	r.commitMu.Unlock()
	if err != nil {
		return FileState{}, err
	}
	r.pruneVersionsOf(name)
	return st, nil
}

// Staged is new content for a path, written to a temp under .blueshift/tmp
// but neither synced nor installed. It is how many small files are written
// with two syncs in all instead of two each: Stage them, Sync once (every
// staged byte is then durable), Install each, Sync once more (every rename
// is then durable). A crash at any point leaves each real path holding its
// old content or its complete new content, never a partial file.
type Staged struct {
	r    *Root
	p    record.Path
	name string // checked path under the root
	tmp  string
}

// Stage writes new content for p into a temp, with meta applied, and does
// not sync it. On error nothing is left behind.
func (r *Root) Stage(ctx context.Context, p record.Path, meta Meta, fill func(w Writer) error) (*Staged, error) {
	name, err := checkPath(p)
	if err != nil {
		return nil, err
	}
	tmp := filepath.FromSlash(tmpDir + "/" + randomHex(16) + ".tmp")
	f, err := r.fs.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_RDWR, tempPerm)
	if err != nil {
		return nil, fmt.Errorf("stage %q: create temp: %w", p, err)
	}
	err = fill(ctxWriter{ctx: ctx, f: f})
	if err == nil {
		err = f.Chmod(meta.Mode.Perm())
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !meta.ModTime.IsZero() {
		err = r.fs.Chtimes(tmp, meta.ModTime, meta.ModTime)
	}
	if err != nil {
		r.fs.Remove(tmp)
		return nil, fmt.Errorf("stage %q: %w", p, err)
	}
	return &Staged{r: r, p: p, name: name, tmp: tmp}, nil
}

// Install puts staged content at its path if the path still holds expect,
// keeping the old file as a version, like WriteFile; it does not sync the
// directory: call Root.Sync after installing a batch. Sync must have run
// between Stage and Install. On error the staged temp is removed.
func (s *Staged) Install(ctx context.Context, expect FileState) (FileState, error) {
	r := s.r
	if err := ctx.Err(); err != nil {
		s.Discard()
		return FileState{}, err
	}
	r.commitMu.Lock()
	st, err := r.replaceLocked(s.tmp, s.name, expect, false)
	r.commitMu.Unlock()
	if err != nil {
		s.Discard()
		return FileState{}, fmt.Errorf("write %q: %w", s.p, err)
	}
	r.pruneVersionsOf(s.name)
	return st, nil
}

// Discard removes staged content that will not be installed.
func (s *Staged) Discard() { s.r.fs.Remove(s.tmp) }

// Sync makes everything written under the share's file system durable:
// staged temps, renames, versions. It is one syncfs(2) on Linux.
func (r *Root) Sync() error {
	d, err := r.fs.Open(".")
	if err != nil {
		return fmt.Errorf("sync share %s: %w", r.dir, err)
	}
	defer d.Close()
	if err := syncFS(d); err != nil {
		return fmt.Errorf("sync share %s: %w", r.dir, err)
	}
	return nil
}

// replaceLocked renames the prepared entry tmp (file or symlink) over name
// after checking parents and expect and keeping the old entry as a version.
func (r *Root) replaceLocked(tmp, name string, expect FileState, durable bool) (FileState, error) {
	if _, err := r.checkParents(name, true); err != nil {
		return FileState{}, err
	}
	cur, err := r.expectAt(name, expect)
	if err != nil {
		return FileState{}, err
	}
	if cur.Exists {
		if cur.Mode.IsDir() {
			return FileState{}, fmt.Errorf("%q is a directory; remove it first: %w", filepath.ToSlash(name), ErrChanged)
		}
		// A hard link keeps the old file in versions while the rename
		// below replaces it atomically: p is never missing.
		if err := r.keepVersion(name, false); err != nil {
			return FileState{}, err
		}
	}
	if err := r.fs.Rename(tmp, name); err != nil {
		return FileState{}, fmt.Errorf("rename temp into place: %w", err)
	}
	if durable {
		if err := r.syncDir(filepath.Dir(name)); err != nil {
			return FileState{}, err
		}
	}
	return r.lstat(name)
}

// ctxWriter is the temp file as fill sees it.
type ctxWriter struct {
	ctx context.Context
	f   *os.File
}

func (w ctxWriter) Write(b []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.Write(b)
}

func (w ctxWriter) WriteAt(b []byte, off int64) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	return w.f.WriteAt(b, off)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand doc)
	return hex.EncodeToString(b)
}
