package apply

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"

	"github.com/blueshift-sync/blueshift/index/record"
)

// maxLinkTarget bounds a symlink target (Linux PATH_MAX).
const maxLinkTarget = 4096

// Remove deletes what is at p if it is still expect: a file or symlink goes to
// the versions folder, an empty directory is removed, a non-empty one is
// refused with ErrNotEmpty. Nothing there and nothing expected is success.
func (r *Root) Remove(p record.Path, expect FileState) error {
	name, err := checkPath(p)
	if err != nil {
		return err
	}
	r.commitMu.Lock()
	err = r.removeLocked(name, expect)
	r.commitMu.Unlock()
	if err != nil {
		return fmt.Errorf("remove %q: %w", p, err)
	}
	return nil
}

func (r *Root) removeLocked(name string, expect FileState) error {
	missing, err := r.checkParents(name, false)
	if err != nil {
		return err
	}
	if missing {
		if expect.Exists {
			return fmt.Errorf("expected %s, found nothing: %w", expect, ErrChanged)
		}
		return nil
	}
	cur, err := r.expectAt(name, expect)
	if err != nil || !cur.Exists {
		return err
	}
	if cur.Mode.IsDir() {
		if err := r.fs.Remove(name); err != nil {
			if r.hasEntries(name) {
				return fmt.Errorf("%w: remove its entries first", ErrNotEmpty)
			}
			return err
		}
	} else if err := r.keepVersion(name, true); err != nil {
		return err
	}
	return r.syncDir(filepath.Dir(name))
}

// Mkdir makes the directory p (and its parents) and applies meta. An existing
// directory only gets meta; anything else there fails with ErrChanged. A
// directory it makes is durable when it returns.
func (r *Root) Mkdir(p record.Path, meta Meta) (FileState, error) {
	return r.mkdir(p, meta, true)
}

// MkdirNoSync is Mkdir without the fsync of the parent directory, which
// costs a journal commit per directory: call Sync before anything relies on
// the new directory being there after a crash (before the index records
// it). A first sync makes thousands of directories so, with one sync.
func (r *Root) MkdirNoSync(p record.Path, meta Meta) (FileState, error) {
	return r.mkdir(p, meta, false)
}

// mkdir is Mkdir, relative to the cached descriptor of p's parent (made if
// missing), so no path is walked again: mkdirat, then mode and mtime set on
// the new entry without following a symlink.
func (r *Root) mkdir(p record.Path, meta Meta, durable bool) (FileState, error) {
	name, err := checkPath(p)
	if err != nil {
		return FileState{}, err
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	dir, base := splitDir(name)
	d, missing, err := r.openDir(dir, true, true)
	if err == nil && missing { // made and gone again: someone is busy here
		err = fmt.Errorf("directory %q: vanished while made: %w", dir, ErrChanged)
	}
	if err != nil {
		return FileState{}, fmt.Errorf("make directory %q: %w", p, err)
	}
	defer r.dirs.release(d)
	if r.caseFold {
		if err := r.checkCaseIn(d, base); err != nil {
			return FileState{}, fmt.Errorf("make directory %q: %w", p, err)
		}
	}
	cur, err := statAt(d, base)
	if err != nil {
		return FileState{}, fmt.Errorf("make directory %q: %w", p, err)
	}
	switch {
	case !cur.Exists:
		if err := mkdirat(d.fd, base); err != nil {
			return FileState{}, fmt.Errorf("make directory %q: %w", p, err)
		}
		r.noteAdded(d, base)
		if durable {
			if err := fsyncFd(d.fd); err != nil {
				return FileState{}, fmt.Errorf("make directory %q: sync its parent: %w", p, err)
			}
		}
		if cur, err = statAt(d, base); err != nil {
			return FileState{}, fmt.Errorf("make directory %q: %w", p, err)
		}
		if !cur.Mode.IsDir() {
			return FileState{}, fmt.Errorf("make directory %q: found %s: %w", p, cur, ErrChanged)
		}
	case !cur.Mode.IsDir():
		return FileState{}, fmt.Errorf("make directory %q: found %s: %w", p, cur, ErrChanged)
	}
	if perm := meta.Mode.Perm(); cur.Mode.Perm() != perm {
		if err := chmodAt(d.fd, base, uint32(perm)); err != nil {
			return FileState{}, fmt.Errorf("make directory %q: %w", p, err)
		}
	}
	if !meta.ModTime.IsZero() && !cur.ModTime.Equal(meta.ModTime) {
		t := unix.NsecToTimespec(meta.ModTime.UnixNano())
		if err := unix.UtimesNanoAt(d.fd, base, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return FileState{}, fmt.Errorf("make directory %q: set mtime: %w", p, err)
		}
	}
	st, err := statAt(d, base)
	if err != nil {
		return FileState{}, fmt.Errorf("make directory %q: %w", p, err)
	}
	if !st.Mode.IsDir() || st.Inode != cur.Inode {
		return FileState{}, fmt.Errorf("make directory %q: found %s after setting its attributes: %w", p, st, ErrChanged)
	}
	return st, nil
}

// Symlink makes p a symlink to target, replacing what is there if it is still
// expect (a replaced file or link is kept as a version). The target is stored
// verbatim and never followed; one pointing outside the share is just a link.
func (r *Root) Symlink(p record.Path, target string, expect FileState) (FileState, error) {
	name, err := checkPath(p)
	if err != nil {
		return FileState{}, err
	}
	if target == "" || len(target) > maxLinkTarget || strings.IndexByte(target, 0) >= 0 {
		return FileState{}, fmt.Errorf("symlink %q: bad target %q: %w", p, target, ErrUnsafePath)
	}
	tmpd, missing, err := r.openDir(tmpDir, false, false)
	if err == nil && missing {
		err = fs.ErrNotExist
	}
	if err != nil {
		return FileState{}, fmt.Errorf("symlink %q: %w", p, err)
	}
	defer r.dirs.release(tmpd)
	tmp := randomHex(16) + ".lnk"
	if err := unix.Symlinkat(target, tmpd.fd, tmp); err != nil {
		return FileState{}, fmt.Errorf("symlink %q: %w", p, err)
	}
	r.commitMu.Lock()
	st, kept, err := r.replaceLocked(tmpd, tmp, name, expect, true, nil)
	r.commitMu.Unlock()
	if err != nil {
		unix.Unlinkat(tmpd.fd, tmp, 0)
		return FileState{}, fmt.Errorf("symlink %q: %w", p, err)
	}
	if kept {
		r.pruneVersionsOf(name)
	}
	return st, nil
}

// Readlink returns the target of the symlink at p.
func (r *Root) Readlink(p record.Path) (string, error) {
	name, err := checkPath(p)
	if err != nil {
		return "", err
	}
	if missing, err := r.checkParents(name, false); err != nil || missing {
		return "", fmt.Errorf("read link %q: %w", p, errors.Join(err, fs.ErrNotExist))
	}
	t, err := r.fs.Readlink(name)
	if err != nil {
		return "", fmt.Errorf("read link %q: %w", p, err)
	}
	return t, nil
}

// SetMeta applies permissions and mtime to the file or directory at p. A
// symlink is left alone (Linux has no symlink modes; os.Root would follow it).
func (r *Root) SetMeta(p record.Path, meta Meta) error {
	name, err := checkPath(p)
	if err != nil {
		return err
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	missing, err := r.checkParents(name, false)
	if err == nil && missing {
		err = fs.ErrNotExist
	}
	if err == nil {
		err = r.setMetaLocked(name, meta)
	}
	if err != nil {
		return fmt.Errorf("set mode and mtime of %q: %w", p, err)
	}
	return nil
}

// SetAttrs sets the permissions and mtime of the regular file at p in place,
// if it still is expect (same inode, size and mtime): a change of metadata
// alone rewrites nothing and keeps no version, since no content is lost. It
// goes through the checked parent directory like every other operation and
// never follows a symlink. It returns what p holds after; ErrChanged if p
// is not expect, or changed size or inode while its attributes were set.
//
// What remains: a user who saves p with the same size in the microseconds
// between the check and the change gets the record's mtime on their
// content; the content itself is never touched.
func (r *Root) SetAttrs(p record.Path, expect FileState, meta Meta) (FileState, error) {
	name, err := checkPath(p)
	if err != nil {
		return FileState{}, err
	}
	// Shared with other SetAttrs, exclusive of every other mutation: no
	// rename or removal can move p or its directories meanwhile, and the
	// stripe keeps out another SetAttrs of p.
	key := name
	if r.caseFold {
		key = strings.ToLower(name) // one file, whatever the case asked
	}
	stripe := &r.attrMu[attrStripe(key)]
	r.commitMu.RLock()
	stripe.Lock()
	st, err := r.setAttrsLocked(name, expect, meta)
	stripe.Unlock()
	r.commitMu.RUnlock()
	if err != nil {
		return FileState{}, fmt.Errorf("set mode and mtime of %q: %w", p, err)
	}
	return st, nil
}

// attrStripes is the number of locks SetAttrs calls of different paths
// spread over.
const attrStripes = 64

// attrStripe returns the stripe of attrMu that guards name.
func attrStripe(name string) int {
	h := uint32(2166136261) // FNV-1a
	for i := 0; i < len(name); i++ {
		h = (h ^ uint32(name[i])) * 16777619
	}
	return int(h % attrStripes)
}

func (r *Root) setAttrsLocked(name string, expect FileState, meta Meta) (FileState, error) {
	dir, base := splitDir(name)
	d, missing, err := r.openDir(dir, false, true)
	if err != nil {
		return FileState{}, err
	}
	if missing {
		return FileState{}, fmt.Errorf("expected %s, found nothing: %w", expect, ErrChanged)
	}
	defer r.dirs.release(d)
	if r.caseFold {
		if err := r.checkCaseIn(d, base); err != nil {
			return FileState{}, err
		}
	}
	cur, err := statAt(d, base)
	if err != nil {
		return FileState{}, err
	}
	if !cur.Mode.IsRegular() || !expect.Exists || !expect.Matches(cur) {
		return FileState{}, fmt.Errorf("expected %s, found %s: %w", expect, cur, ErrChanged)
	}
	if perm := meta.Mode.Perm(); cur.Mode.Perm() != perm {
		if err := chmodAt(d.fd, base, uint32(perm)); err != nil {
			return FileState{}, err
		}
	}
	if !meta.ModTime.IsZero() && !cur.ModTime.Equal(meta.ModTime) {
		t := unix.NsecToTimespec(meta.ModTime.UnixNano())
		ts := []unix.Timespec{t, t} // atime too, as setMetaLocked does
		if err := unix.UtimesNanoAt(d.fd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return FileState{}, fmt.Errorf("set mtime: %w", err)
		}
	}
	after, err := statAt(d, base)
	if err != nil {
		return FileState{}, err
	}
	if !after.Exists || after.Inode != cur.Inode || after.Size != cur.Size || !after.Mode.IsRegular() {
		return FileState{}, fmt.Errorf("expected %s, found %s after setting its attributes: %w", cur, after, ErrChanged)
	}
	return after, nil
}

// setMetaLocked checks that name is not a symlink right before os.Root's
// Chmod and Chtimes (which follow one, though only inside the share).
func (r *Root) setMetaLocked(name string, meta Meta) error {
	cur, err := r.lstat(name)
	switch {
	case err != nil:
		return err
	case !cur.Exists:
		return fs.ErrNotExist
	case cur.Mode&fs.ModeSymlink != 0:
		return nil
	}
	if err := r.fs.Chmod(name, meta.Mode.Perm()); err != nil {
		return err
	}
	if meta.ModTime.IsZero() {
		return nil
	}
	return r.fs.Chtimes(name, meta.ModTime, meta.ModTime)
}

// Open opens the regular file at p for reading, never through a symlink:
// the engine reads local blocks from it.
func (r *Root) Open(p record.Path) (*os.File, error) {
	name, err := checkPath(p)
	if err != nil {
		return nil, err
	}
	f, err := r.openRegular(name)
	if err != nil {
		return nil, fmt.Errorf("open %q: %w", p, err)
	}
	return f, nil
}

// ReadAt reads len(b) bytes of the file at p at off: a convenience for a
// single block; hold an Open file for many.
func (r *Root) ReadAt(p record.Path, b []byte, off int64) (int, error) {
	f, err := r.Open(p)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(b, off)
	if err != nil && !(err == io.EOF && n == len(b)) {
		return n, fmt.Errorf("read %q at %d: %w", p, off, err)
	}
	return n, nil
}

func (r *Root) openRegular(name string) (*os.File, error) {
	missing, err := r.checkParents(name, false)
	if err != nil {
		return nil, err
	}
	if missing {
		return nil, fs.ErrNotExist
	}
	fi, err := r.fs.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v): %w", fi.Mode().Type(), ErrChanged)
	}
	f, err := r.fs.Open(name)
	if err != nil {
		return nil, err
	}
	// os.Root follows a final symlink: make sure we opened what Lstat saw.
	ffi, err := f.Stat()
	if err != nil || !os.SameFile(fi, ffi) {
		f.Close()
		return nil, fmt.Errorf("file replaced while opening: %w", ErrChanged)
	}
	return f, nil
}

// PruneTemps removes temp files (partial pulls included) not written for
// maxAge, so abandoned pulls do not fill the disk.
func (r *Root) PruneTemps(maxAge time.Duration) error {
	cutoff := r.opts.Clock().Add(-maxAge)
	return r.removeTemps(func(e fs.FileInfo) bool { return e.ModTime().Before(cutoff) })
}

// removeStaleTemps removes one-shot temps: after a restart nobody owns them.
func (r *Root) removeStaleTemps() error {
	return r.removeTemps(func(e fs.FileInfo) bool {
		n := e.Name()
		return strings.HasSuffix(n, ".tmp") || strings.HasSuffix(n, ".lnk") ||
			strings.HasSuffix(n, ".new") || strings.HasPrefix(n, "casecheck-")
	})
}

func (r *Root) removeTemps(match func(fs.FileInfo) bool) error {
	return r.removeTempsIn(tmpDir, match)
}

// removeTempsIn removes the files of dir that match, and, in tmpDir, those
// of its shard subfolders (tmpShards).
func (r *Root) removeTempsIn(dir string, match func(fs.FileInfo) bool) error {
	d, err := r.fs.Open(dir)
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	defer d.Close()
	entries, err := d.Readdir(-1)
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			if dir == tmpDir && isTmpShard(e.Name()) {
				if err := r.removeTempsIn(dir+"/"+e.Name(), match); err != nil {
					return err
				}
			}
			continue
		}
		if !match(e) {
			continue
		}
		if err := r.fs.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clean %s: %w", dir, err)
		}
	}
	return nil
}

func (r *Root) hasEntries(name string) bool {
	d, err := r.fs.Open(name)
	if err != nil {
		return false
	}
	defer d.Close()
	names, _ := d.Readdirnames(1)
	return len(names) > 0
}
