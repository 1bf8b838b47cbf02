package apply

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unicode"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/stmode"
)

// maxCachedDirs bounds the directory descriptors a Root keeps open. Entries
// in use (or with cached children) are never evicted, so a burst of deep
// paths may briefly exceed it.
const maxCachedDirs = 256

// dirCache keeps descriptors of directories under the share root, so that a
// batch of files resolves each parent once instead of os.Root walking every
// component of every path for every call.
//
// Safety: a directory enters the cache only by openat(parent, name,
// O_DIRECTORY|O_NOFOLLOW) from a cached parent, so no component of its path
// was a symlink when it was opened. Every use revalidates the chain: for each
// component, fstatat(parent, name, AT_SYMLINK_NOFOLLOW) must still name a
// directory with the inode the descriptor holds. This is the same check the
// per-component Lstat made before, one syscall per component instead of a
// walk per component, and the operation that follows is relative to the very
// inode that was checked, with a single-component name that is never
// followed. A chain that no longer validates (a directory deleted, renamed,
// replaced by a symlink) is dropped and reopened from its deepest valid
// ancestor, so the symlink is then refused as before. An inode number cannot
// be reused while we hold the descriptor, so a match is the same directory.
type dirCache struct {
	root *dir // the share root; never evicted
	rf   *os.File

	mu     sync.Mutex
	byPath map[string]*dir // guarded by mu: slash path under the root
	closed bool            // guarded by mu
}

// dir is one cached directory. Fields other than refs, cached and fold are
// set before the dir is published and never change.
type dir struct {
	path     string // slash path under the root; "" for the root
	name     string // last component
	parent   *dir   // nil for the root
	fd       int
	dev, ino uint64

	refs   int     // guarded by dirCache.mu: users, cached children, 1 while cached
	cached bool    // guarded by dirCache.mu: in byPath
	fold   *folded // guarded by dirCache.mu: names by case-folded key, or nil
}

// folded is a directory's listing keyed by case-folded name, valid while the
// directory's mtime and ctime are unchanged.
type folded struct {
	names        map[string][]string
	mtime, ctime unix.Timespec
}

// newDirCache opens the share root's descriptor through fsRoot, so it is the
// same directory os.Root holds.
func newDirCache(fsRoot *os.Root) (*dirCache, error) {
	rf, err := fsRoot.Open(".")
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(rf.Fd()), &st); err != nil {
		rf.Close()
		return nil, err
	}
	root := &dir{fd: int(rf.Fd()), dev: uint64(st.Dev), ino: uint64(st.Ino), refs: 1}
	return &dirCache{root: root, rf: rf, byPath: make(map[string]*dir)}, nil
}

// close drops every cached directory and the root's descriptor: the Root is
// closing. A directory still in use closes when released.
func (c *dirCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, d := range c.byPath {
		d.cached = false
		c.unrefLocked(d)
	}
	c.byPath = nil
	return c.rf.Close()
}

// open returns the directory at slash path dir (a checked path's parent, or
// a folder under .blueshift), referenced: release it when done. Every
// component must be a real directory, not a symlink (ErrUnsafePath). With
// create, missing directories are made and a file in the way is ErrChanged;
// without, either gives missing. With caseCheck on a case-insensitive file
// system, a component matching an existing entry only by case is refused.
func (r *Root) openDir(dir string, create, caseCheck bool) (d *dir, missing bool, err error) {
	c := r.dirs
	caseCheck = caseCheck && r.caseFold
	for range 8 { // each retry drops at least one stale entry
		d, stale, err := c.lookup(dir)
		if err != nil {
			return nil, false, err
		}
		if stale != nil {
			// Everything from d up to stale hangs below the stale link.
			for e := d; ; e = e.parent {
				c.drop(e)
				if e == stale {
					break
				}
			}
			c.release(d)
			continue
		}
		if caseCheck && d.path != "" {
			// The cached chain was checked when it was opened; names may
			// have appeared since, so check each level again (cheap while
			// the directories are unchanged).
			if err := r.checkChainCase(d); err != nil {
				c.release(d)
				return nil, false, err
			}
		}
		if d.path == dir {
			return d, false, nil
		}
		return r.descend(d, dir, create, caseCheck)
	}
	return nil, false, fmt.Errorf("open directory %q: keeps changing while opened: %w", dir, ErrChanged)
}

// lookup finds the deepest cached ancestor of dir (dir itself included) and
// revalidates its chain. It returns it referenced; stale, if set, is the
// topmost entry that no longer validates.
func (c *dirCache) lookup(dir string) (d *dir, stale *dir, err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, nil, os.ErrClosed
	}
	d = c.root
	for p := dir; p != ""; p = parentOf(p) {
		if e, ok := c.byPath[p]; ok {
			d = e
			break
		}
	}
	d.refs++
	c.mu.Unlock()
	for e := d; e.parent != nil; e = e.parent {
		var st unix.Stat_t
		err := fstatat(e.parent.fd, e.name, &st)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || uint64(st.Dev) != e.dev || uint64(st.Ino) != e.ino {
			stale = e
		}
	}
	return d, stale, nil
}

// descend opens the components of dir below the referenced d, caching each.
func (r *Root) descend(d *dir, dir string, create, caseCheck bool) (*dir, bool, error) {
	c := r.dirs
	rest := dir
	if d.path != "" {
		rest = dir[len(d.path)+1:]
	}
	for _, name := range strings.Split(rest, "/") {
		if caseCheck {
			if err := r.checkCaseIn(d, name); err != nil {
				c.release(d)
				return nil, false, err
			}
		}
		child, missing, err := openChild(d, name, create)
		if err == nil && missing && create && r.opts.MayMakeDir != nil {
			err = r.opts.MayMakeDir(record.Path(joinSlash(d.path, name)))
		}
		if err == nil && missing && create {
			err = mkdirat(d.fd, name)
			if err == nil {
				r.noteAdded(d, name)
				if r.opts.DirMade != nil {
					r.opts.DirMade(record.Path(joinSlash(d.path, name)))
				}
				child, missing, err = openChild(d, name, create)
			}
		}
		if err != nil || missing {
			c.release(d)
			if err != nil {
				return nil, false, fmt.Errorf("directory %q: %w", joinSlash(d.path, name), err)
			}
			return nil, true, nil
		}
		if d, err = c.insert(d, child); err != nil {
			return nil, false, err
		}
	}
	return d, false, nil
}

// openChild opens name in d as a directory, never through a symlink.
func openChild(d *dir, name string, create bool) (*dir, bool, error) {
	fd, err := openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, true, nil
	}
	if err != nil {
		// ELOOP, ENOTDIR or (BSD) EMLINK: find out what is in the way.
		var st unix.Stat_t
		if serr := fstatat(d.fd, name, &st); serr != nil {
			if errors.Is(serr, unix.ENOENT) {
				return nil, true, nil
			}
			return nil, false, err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			return nil, false, fmt.Errorf("is a symlink: %w", ErrUnsafePath)
		case unix.S_IFDIR:
			return nil, false, err
		}
		if !create {
			return nil, true, nil
		}
		return nil, false, fmt.Errorf("parent is not a directory: %w", ErrChanged)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, false, err
	}
	return &dir{path: joinSlash(d.path, name), name: name, parent: d, fd: fd, dev: uint64(st.Dev), ino: uint64(st.Ino)}, false, nil
}

// insert caches child (opened below the referenced parent) and returns it
// referenced, releasing parent. If another goroutine cached the same path
// meanwhile, that entry wins and child is closed.
func (c *dirCache) insert(parent, child *dir) (*dir, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		unix.Close(child.fd)
		c.unrefLocked(parent)
		return nil, os.ErrClosed
	}
	if e, ok := c.byPath[child.path]; ok && e.parent == parent {
		unix.Close(child.fd)
		e.refs++
		c.unrefLocked(parent)
		return e, nil
	}
	if e, ok := c.byPath[child.path]; ok {
		c.dropLocked(e)
	}
	// The parent's user reference becomes the child's reference on it.
	child.refs = 2 // the cache's and the caller's
	child.cached = true
	c.byPath[child.path] = child
	c.evictLocked()
	return child, nil
}

// evictLocked closes unused entries while the cache is over its bound.
func (c *dirCache) evictLocked() {
	for p, e := range c.byPath {
		if len(c.byPath) <= maxCachedDirs {
			return
		}
		if e.refs == 1 { // only the cache holds it: no user, no child
			delete(c.byPath, p)
			e.cached = false
			c.unrefLocked(e)
		}
	}
}

// release gives back a reference from openDir.
func (c *dirCache) release(d *dir) {
	c.mu.Lock()
	c.unrefLocked(d)
	c.mu.Unlock()
}

// drop removes d from the cache; it closes once unused.
func (c *dirCache) drop(d *dir) {
	c.mu.Lock()
	c.dropLocked(d)
	c.mu.Unlock()
}

func (c *dirCache) dropLocked(d *dir) {
	if d.cached {
		delete(c.byPath, d.path)
		d.cached = false
		c.unrefLocked(d)
	}
}

func (c *dirCache) unrefLocked(d *dir) {
	for d != nil && d.parent != nil { // the root is never closed here
		d.refs--
		if d.refs > 0 {
			return
		}
		unix.Close(d.fd)
		d = d.parent
	}
}

// checkChainCase checks every component of d's path against its parent's
// listing.
func (r *Root) checkChainCase(d *dir) error {
	for e := d; e.parent != nil; e = e.parent {
		if err := r.checkCaseIn(e.parent, e.name); err != nil {
			return err
		}
	}
	return nil
}

// checkCaseIn refuses elem if d holds an entry equal to it but for case. The
// listing is kept while d's mtime and ctime are unchanged, so a batch lists
// each directory once; our own additions update it (noteAdded).
func (r *Root) checkCaseIn(d *dir, elem string) error {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return fmt.Errorf("list %q: %w", d.path, err)
	}
	c := r.dirs
	c.mu.Lock()
	f := d.fold
	c.mu.Unlock()
	if f == nil || f.mtime != st.Mtim || f.ctime != st.Ctim {
		names, err := readDirNames(d.fd)
		if err != nil {
			return fmt.Errorf("list %q: %w", d.path, err)
		}
		f = &folded{names: make(map[string][]string, len(names)), mtime: st.Mtim, ctime: st.Ctim}
		for _, n := range names {
			k := foldKey(n)
			f.names[k] = append(f.names[k], n)
		}
		c.mu.Lock()
		d.fold = f
		c.mu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range f.names[foldKey(elem)] {
		if n != elem {
			return fmt.Errorf("%q in %q collides with existing %q on this case-insensitive file system: %w", elem, d.path, n, ErrUnsafePath)
		}
	}
	return nil
}

// noteAdded records that we made name in d, keeping d's listing current
// without listing it again.
func (r *Root) noteAdded(d *dir, name string) {
	if !r.caseFold {
		return
	}
	var st unix.Stat_t
	err := unix.Fstat(d.fd, &st)
	c := r.dirs
	c.mu.Lock()
	defer c.mu.Unlock()
	f := d.fold
	if f == nil {
		return
	}
	if err != nil {
		d.fold = nil
		return
	}
	k := foldKey(name)
	if !contains(f.names[k], name) {
		f.names[k] = append(f.names[k], name)
	}
	f.mtime, f.ctime = st.Mtim, st.Ctim
}

// statAt returns what name in d holds, never following a symlink.
func statAt(d *dir, name string) (FileState, error) {
	var st unix.Stat_t
	err := fstatat(d.fd, name, &st)
	if errors.Is(err, unix.ENOENT) {
		return FileState{}, nil
	}
	if err != nil {
		return FileState{}, fmt.Errorf("stat %q: %w", joinSlash(d.path, name), err)
	}
	return stateOfStat(&st), nil
}

// stateOfStat is stateOf for a raw stat, with the mode bits os.Lstat gives.
func stateOfStat(st *unix.Stat_t) FileState {
	m := stmode.FileMode(uint32(st.Mode))
	return FileState{
		Exists:  true,
		Mode:    m,
		Size:    st.Size,
		ModTime: time.Unix(int64(st.Mtim.Sec), int64(st.Mtim.Nsec)),
		Inode:   uint64(st.Ino),
	}
}

// splitDir splits a checked path into its parent directory (slash form, ""
// for the root) and its last component.
func splitDir(name string) (dir, base string) {
	dir, base = path.Split(slashPath(name))
	return strings.TrimSuffix(dir, "/"), base
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

func joinSlash(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// foldKey maps names that strings.EqualFold considers equal to one key: each
// rune becomes the smallest rune of its simple case-folding orbit.
func foldKey(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// readDirNames lists the directory open at fd without disturbing fd's offset.
func readDirNames(fd int) ([]string, error) {
	lfd, err := openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(lfd), ".")
	defer f.Close()
	return f.Readdirnames(-1)
}

// The raw calls, retried on EINTR like the os package does.

func openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func fstatat(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if err != unix.EINTR {
			return err
		}
	}
}

func mkdirat(dirfd int, name string) error {
	err := unix.Mkdirat(dirfd, name, dirPerm)
	if err == unix.EEXIST {
		return nil // made meanwhile; the open that follows checks what it is
	}
	return err
}

func fsyncFd(fd int) error {
	for {
		err := unix.Fsync(fd)
		if err != unix.EINTR {
			return err
		}
	}
}
