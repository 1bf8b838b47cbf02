package apply

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"

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
	t, err := r.createTemp()
	if err != nil {
		return FileState{}, fmt.Errorf("write %q: create temp: %w", p, err)
	}
	if err := fill(ctxWriter{ctx: ctx, f: t.f}); err != nil {
		t.remove()
		return FileState{}, fmt.Errorf("write %q: fill: %w", p, err)
	}
	st, err := r.install(ctx, t, name, expect, meta)
	if err != nil {
		t.remove()
		return FileState{}, fmt.Errorf("write %q: %w", p, err)
	}
	return st, nil
}

// install makes the complete temp t the file at name: fsync, mode, mtime,
// then the locked commit, and the directory fsynced. t's file is closed in
// every case; on success t is released, on failure the caller removes or
// keeps it.
func (r *Root) install(ctx context.Context, t *tempFile, name string, expect FileState, meta Meta) (FileState, error) {
	made, err := t.finish(meta, true)
	if err != nil {
		return FileState{}, err
	}
	if err := ctx.Err(); err != nil {
		return FileState{}, err
	}
	r.commitMu.Lock()
	st, kept, err := r.replaceLocked(t.d, t.base, name, expect, true, &made)
	r.commitMu.Unlock()
	if err != nil {
		return FileState{}, err
	}
	t.release()
	if kept {
		r.pruneVersionsOf(name)
	}
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
	name string    // checked path under the root
	tmp  *tempFile // file closed; the tmp directory held until Install or Discard
	st   FileState // of the temp, which the rename keeps
}

// Stage writes new content for p into a temp, with meta applied, and does
// not sync it. On error nothing is left behind.
func (r *Root) Stage(ctx context.Context, p record.Path, meta Meta, fill func(w Writer) error) (*Staged, error) {
	name, err := checkPath(p)
	if err != nil {
		return nil, err
	}
	t, err := r.createTemp()
	if err != nil {
		return nil, fmt.Errorf("stage %q: create temp: %w", p, err)
	}
	err = fill(ctxWriter{ctx: ctx, f: t.f})
	var st FileState
	if err == nil {
		st, err = t.finish(meta, false)
	}
	if err != nil {
		t.remove()
		return nil, fmt.Errorf("stage %q: %w", p, err)
	}
	return &Staged{r: r, p: p, name: name, tmp: t, st: st}, nil
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
	st, kept, err := r.replaceLocked(s.tmp.d, s.tmp.base, s.name, expect, false, &s.st)
	r.commitMu.Unlock()
	if err != nil {
		s.Discard()
		return FileState{}, fmt.Errorf("write %q: %w", s.p, err)
	}
	s.tmp.release()
	if kept {
		r.pruneVersionsOf(s.name)
	}
	return st, nil
}

// Discard removes staged content that will not be installed.
func (s *Staged) Discard() { s.tmp.remove() }

// Sync makes everything written under the share's file system durable:
// staged temps, renames, versions. It is one syncfs(2) on Linux.
func (r *Root) Sync() error {
	if err := syncFS(r.dirs.rf); err != nil {
		return fmt.Errorf("sync share %s: %w", r.dir, err)
	}
	return nil
}

// replaceLocked renames the prepared entry srcBase in src (a file or symlink
// in the tmp folder) over name after checking parents and expect and keeping
// the old entry as a version. made, if known, is the entry's state, which the
// rename keeps; otherwise name is stat'ed after. kept reports that a version
// was made.
func (r *Root) replaceLocked(src *dir, srcBase, name string, expect FileState, durable bool, made *FileState) (st FileState, kept bool, err error) {
	dir, base := splitDir(name)
	d, missing, err := r.openDir(dir, true, true)
	if err != nil {
		return FileState{}, false, err
	}
	if missing { // made and gone again: someone is busy here
		return FileState{}, false, fmt.Errorf("directory %q: vanished while made: %w", dir, ErrChanged)
	}
	defer r.dirs.release(d)
	if r.caseFold {
		if err := r.checkCaseIn(d, base); err != nil {
			return FileState{}, false, err
		}
	}
	cur, err := statAt(d, base)
	if err != nil {
		return FileState{}, false, err
	}
	if !expect.Matches(cur) {
		return FileState{}, false, fmt.Errorf("%q: expected %s, found %s: %w", slashPath(name), expect, cur, ErrChanged)
	}
	if cur.Exists && cur.Mode.IsDir() {
		return FileState{}, false, fmt.Errorf("%q is a directory; remove it first: %w", slashPath(name), ErrChanged)
	}
	if kept, err = r.putInPlace(src, srcBase, d, base, cur); err != nil {
		return FileState{}, kept, err
	}
	r.noteAdded(d, base)
	if durable {
		if err := fsyncFd(d.fd); err != nil {
			return FileState{}, kept, fmt.Errorf("sync directory %q: %w", dir, err)
		}
	}
	if made != nil {
		return *made, kept, nil
	}
	st, err = statAt(d, base)
	return st, kept, err
}

// putInPlace renames srcBase in src to base in d, where cur was found a
// moment ago, so that whatever a user puts at base meanwhile is never
// replaced unseen. Nothing there: the rename refuses to replace (ErrChanged
// if something appeared). A file there: a hard link keeps it as a version,
// then the two entries are swapped atomically and the one swapped out is
// checked; if it is not cur (saved over between the check and the swap), it
// is swapped back and ErrChanged returned. kept reports that a version was
// made. Where the file system has neither, it is a plain rename after the
// check, as before.
func (r *Root) putInPlace(src *dir, srcBase string, d *dir, base string, cur FileState) (kept bool, err error) {
	slash := joinSlash(d.path, base)
	if cur.Exists {
		linked, err := r.keepVersionIn(d, base, false)
		if errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("%q: removed while it was replaced: %w", slash, ErrChanged)
		}
		if err != nil {
			return false, err
		}
		kept = true
		if linked {
			return true, r.swapChecked(src, srcBase, d, base, cur)
		}
		// Moved, not linked (no hard links here): base is empty now.
	}
	err = renameNoReplace(src.fd, srcBase, d.fd, base)
	if errors.Is(err, unix.EEXIST) {
		return kept, fmt.Errorf("%q: created by someone else while it was written: %w", slash, ErrChanged)
	}
	if err != nil {
		return kept, fmt.Errorf("rename temp into place: %w", err)
	}
	return kept, nil
}

// swapChecked swaps srcBase in src with base in d, which a version already
// holds, and checks that what it swapped out is cur.
func (r *Root) swapChecked(src *dir, srcBase string, d *dir, base string, cur FileState) error {
	slash := joinSlash(d.path, base)
	err := exchange(src.fd, srcBase, d.fd, base)
	if errors.Is(err, errNoExchange) {
		err = unix.Renameat(src.fd, srcBase, d.fd, base)
	}
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%q: removed while it was replaced: %w", slash, ErrChanged)
	}
	if err != nil {
		return fmt.Errorf("rename temp into place: %w", err)
	}
	old, err := statAt(src, srcBase)
	if err == nil && !old.Exists {
		return nil // a plain rename: nothing was swapped out
	}
	if err == nil && cur.Matches(old) && old.Inode != 0 {
		// The version is another name of this very file.
		if err := unix.Unlinkat(src.fd, srcBase, 0); err != nil {
			r.log.Warn("remove swapped-out file from tmp", "path", slash, "tmp", joinSlash(src.path, srcBase), "err", err)
		}
		return nil
	}
	// Changed between the check and the swap: give it back.
	if err := exchange(src.fd, srcBase, d.fd, base); err != nil {
		// It cannot go back: keep it as a version rather than lose it.
		_, verr := r.keepVersionFrom(src, srcBase, d, base, true)
		if verr == nil {
			return fmt.Errorf("%q changed while it was replaced; it is kept in the versions folder: %w", slash, ErrChanged)
		}
		// Not even that: keep it in tmp under a name no cleanup removes.
		keep := joinSlash(src.path, srcBase+".keep")
		rerr := unix.Renameat(src.fd, srcBase, src.fd, srcBase+".keep")
		if rerr != nil {
			keep = joinSlash(src.path, srcBase)
		}
		r.log.Error("a file changed while it was replaced and could not be put back or kept as a version",
			"path", slash, "kept", keep, "err", verr, "rename_err", rerr)
		return fmt.Errorf("%q changed while it was replaced and could not be put back (%v); it is kept as %s: %w", slash, verr, keep, ErrChanged)
	}
	return fmt.Errorf("%q: changed while it was replaced (put back): %w", slash, ErrChanged)
}

// tempFile is a one-shot temp in .blueshift/tmp (createTemp: in one of its
// tmpShards subfolders), created and named relative to its directory's
// descriptor, which it holds until released.
type tempFile struct {
	r    *Root
	d    *dir     // its folder under .blueshift/tmp; nil once released
	base string   // name in d
	f    *os.File // nil once closed
}

// createTemp makes a fresh, empty temp file.
func (r *Root) createTemp() (*tempFile, error) {
	base := randomHex(16) + ".tmp"
	shard := tmpShard(base)
	d, missing, err := r.openDir(shard, false, false)
	if err == nil && missing {
		err = fmt.Errorf("%s is missing; restart to recreate it: %w", shard, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	fd, err := openat(d.fd, base, unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, tempPerm)
	if err != nil {
		r.dirs.release(d)
		return nil, err
	}
	return &tempFile{r: r, d: d, base: base, f: os.NewFile(uintptr(fd), shard+"/"+base)}, nil
}

// heldTemp wraps an open file already in the tmp folder (a Temp's part).
func (r *Root) heldTemp(f *os.File, name string) (*tempFile, error) {
	d, missing, err := r.openDir(tmpDir, false, false)
	if err == nil && missing {
		err = fs.ErrNotExist
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &tempFile{r: r, d: d, base: filepath.Base(name), f: f}, nil
}

// finish applies meta to the complete temp (and fsyncs it if durable),
// closes it and returns its state. Mode goes through the descriptor and the
// mtime through the tmp directory's, so no path is walked again.
func (t *tempFile) finish(meta Meta, durable bool) (FileState, error) {
	f := t.f
	t.f = nil
	var err error
	if durable {
		if err = f.Sync(); err != nil {
			err = fmt.Errorf("sync temp: %w", err)
		}
	}
	if err == nil {
		if err = f.Chmod(meta.Mode.Perm()); err != nil {
			err = fmt.Errorf("set mode: %w", err)
		}
	}
	if err == nil && !meta.ModTime.IsZero() {
		ts := []unix.Timespec{unix.NsecToTimespec(meta.ModTime.UnixNano()), unix.NsecToTimespec(meta.ModTime.UnixNano())}
		if err = unix.UtimesNanoAt(t.d.fd, t.base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			err = fmt.Errorf("set mtime: %w", err)
		}
	}
	var st unix.Stat_t
	if err == nil {
		if err = unix.Fstat(int(f.Fd()), &st); err != nil {
			err = fmt.Errorf("stat temp: %w", err)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close temp: %w", cerr)
	}
	if err != nil {
		return FileState{}, err
	}
	return stateOfStat(&st), nil
}

// remove closes and deletes the temp and releases the tmp directory.
func (t *tempFile) remove() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	if t.d != nil {
		unix.Unlinkat(t.d.fd, t.base, 0)
	}
	t.release()
}

// release lets go of the tmp directory once the temp is installed (or
// handed back to a Temp).
func (t *tempFile) release() {
	if t.d != nil {
		t.r.dirs.release(t.d)
		t.d = nil
	}
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
