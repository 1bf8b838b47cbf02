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
	st, err := r.replaceLocked(tmp, name, expect)
	r.commitMu.Unlock()
	if err != nil {
		return FileState{}, err
	}
	r.pruneVersionsOf(name)
	return st, nil
}

// replaceLocked renames the prepared entry tmp (file or symlink) over name
// after checking parents and expect and keeping the old entry as a version.
func (r *Root) replaceLocked(tmp, name string, expect FileState) (FileState, error) {
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
	if err := r.syncDir(filepath.Dir(name)); err != nil {
		return FileState{}, err
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
