package apply

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/blueshift-sync/blueshift/index/record"
)

const (
	tmpDir      = record.MetaDir + "/tmp"
	versionsDir = record.MetaDir + "/versions"

	// DefaultVersionsKeep and DefaultVersionsDays apply when Options leaves
	// them zero. A negative value means no limit.
	DefaultVersionsKeep = 10
	DefaultVersionsDays = 30

	dirPerm  = 0o777 // before umask, like mkdir(1)
	tempPerm = 0o600 // until the final mode is applied
)

var (
	// ErrOutsideShare: the path would leave the share ("..", absolute).
	ErrOutsideShare = errors.New("path outside the share")
	// ErrUnsafePath: the path is malformed, names the metadata folder, goes
	// through a symlinked directory, or collides by case with an existing name.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrChanged: the path no longer holds what the caller expected (the user
	// changed it); nothing was written. Rescan and let it become a conflict.
	ErrChanged = errors.New("file changed since it was scanned")
	// ErrNotEmpty: a directory to remove still has entries.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrIncomplete: a Temp was committed before all its bytes were written.
	ErrIncomplete = errors.New("temp file incomplete")
)

// Options configure a Root. The zero value is usable.
type Options struct {
	VersionsKeep     int              // versions kept per path; 0: default, <0: no limit
	VersionsDays     int              // days a version is kept; 0: default, <0: no limit
	VersionsMaxBytes int64            // the versions folder's size cap, oldest removed first; 0: none
	Clock            func() time.Time // version and temp timestamps; nil: time.Now
	Logger           *slog.Logger     // nil: discard

	// MayMakeDir, if set, is asked before a missing directory above a path
	// being written is made; its error stops the write (wrap ErrChanged to
	// have the caller decide again). The engine uses it so a file arriving
	// just as the user moves its folder does not bring the old folder back.
	MayMakeDir func(p record.Path) error
	// DirMade, if set, is told of each missing directory made above a path
	// being written, once it exists. The engine leaves such a folder to
	// the peer's record of it, which may come after the file's.
	DirMade func(p record.Path)
}

// FileState is what a path holds. The zero value means "nothing there".
type FileState struct {
	Exists  bool
	Mode    fs.FileMode // type bits and permissions, as Lstat reports them
	Size    int64
	ModTime time.Time
	Inode   uint64 // 0 where the platform has none; 0 in an expectation: not compared
}

// Meta is what apply sets on a file or directory besides its content.
type Meta struct {
	Mode    fs.FileMode // permission bits (0777 mask)
	ModTime time.Time   // zero: leave as is
}

// Root is one share's folder. See the package doc for its guarantees.
type Root struct {
	dir  string // absolute path, for messages
	fs   *os.Root
	dirs *dirCache // descriptors of checked directories, for the hot paths
	opts Options
	log  *slog.Logger

	// caseFold is true when the file system ignores case; probed once at Open.
	caseFold bool

	// commitMu serializes the check-then-rename step of every mutation.
	// SetAttrs, which replaces no path, holds it shared with other
	// SetAttrs calls (a touch of many files sets them from several
	// workers at once) and takes attrMu's stripe of its path, so two of
	// them never work on one path together.
	commitMu sync.RWMutex
	attrMu   [attrStripes]sync.Mutex

	// versionBytes is the versions folder's size as the last PruneVersions
	// left it plus every version kept since (-1: not known yet), so a save
	// that takes the folder over VersionsMaxBytes prunes it at once
	// (capOnSave) instead of waiting for the next hourly prune.
	versionBytes atomic.Int64
	pruneMu      sync.Mutex // one prune at a time
}

// Open opens the share folder dir, creating .blueshift/tmp and
// .blueshift/versions if missing, and removes one-shot temps a crash left.
func Open(dir string, opts Options) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open share %q: %w", dir, err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for _, c := range strings.Split(filepath.ToSlash(abs), "/") {
		if c == record.MetaDir {
			return nil, fmt.Errorf("open share %q: it is inside another share's %s folder; pick a folder outside it: %w", dir, record.MetaDir, ErrUnsafePath)
		}
	}
	if opts.VersionsKeep == 0 {
		opts.VersionsKeep = DefaultVersionsKeep
	}
	if opts.VersionsDays == 0 {
		opts.VersionsDays = DefaultVersionsDays
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fsRoot, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("open share %q: %w", dir, err)
	}
	dirs, err := newDirCache(fsRoot)
	if err != nil {
		fsRoot.Close()
		return nil, fmt.Errorf("open share %q: %w", dir, err)
	}
	r := &Root{dir: abs, fs: fsRoot, dirs: dirs, opts: opts, log: opts.Logger}
	r.versionBytes.Store(-1)
	if err := r.initMeta(); err != nil {
		r.Close()
		return nil, fmt.Errorf("open share %q: %w", dir, err)
	}
	return r, nil
}

// Close releases the share folder.
func (r *Root) Close() error { return errors.Join(r.dirs.close(), r.fs.Close()) }

// Dir returns the absolute path of the share folder.
func (r *Root) Dir() string { return r.dir }

// CaseInsensitive reports whether the share's file system ignores case.
func (r *Root) CaseInsensitive() bool { return r.caseFold }

// Stat returns what p holds now, never following a symlink. A missing path or
// a missing parent gives FileState{} and no error.
func (r *Root) Stat(p record.Path) (FileState, error) {
	name, err := checkPath(p)
	if err != nil {
		return FileState{}, err
	}
	dir, base := splitDir(name)
	d, missing, err := r.openDir(dir, false, true)
	if err != nil || missing {
		return FileState{}, err
	}
	defer r.dirs.release(d)
	if r.caseFold {
		if err := r.checkCaseIn(d, base); err != nil {
			return FileState{}, err
		}
	}
	return statAt(d, base)
}

// initMeta creates the metadata folders, refusing symlinks there, removes
// stale one-shot temps and probes case sensitivity.
func (r *Root) initMeta() error {
	dirs := []string{record.MetaDir, tmpDir, versionsDir}
	for i := range tmpShards {
		dirs = append(dirs, tmpShardDir(i))
	}
	for _, d := range dirs {
		err := r.fs.Mkdir(d, dirPerm)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", d, err)
		}
		fi, err := r.fs.Lstat(d)
		if err != nil {
			return fmt.Errorf("check %s: %w", d, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (a symlink?); remove it: %w", d, ErrUnsafePath)
		}
	}
	if err := r.removeStaleTemps(); err != nil {
		return err
	}
	fold, err := r.probeCase()
	if err != nil {
		return err
	}
	r.caseFold = fold
	return nil
}

// tmpShards is how many subfolders of tmpDir the one-shot temps of
// written and staged files are spread over, by the first hex digit of
// their random names (tmpShard). Every create of a temp, and every rename
// of one into place, takes its folder's lock in the kernel, and waiters
// spin on it: with the sixteen workers that stage a first sync's small
// files creating in one folder while a rename moves one out, perf showed
// 27-32% of all CPU in rwsem_spin_on_owner (lock_two_directories,
// path_openat), and a first sync of 50,000 files once spent 35 of its 48
// CPU-seconds in openat. Over sixteen folders the spinning is gone (the
// same creates and renames: 1.2-1.3x less CPU a file); what is left is
// ext4 finding a free inode past recently deleted ones.
const tmpShards = 16

// tmpShardDir is the i-th subfolder of tmpDir for one-shot temps.
func tmpShardDir(i int) string { return tmpDir + "/" + hexDigits[i:i+1] }

// tmpShard is the subfolder of tmpDir that holds the temp named base (a
// name randomHex begins).
func tmpShard(base string) string { return tmpDir + "/" + base[:1] }

// isTmpShard reports whether name, an entry of tmpDir, is one of its
// subfolders for one-shot temps.
func isTmpShard(name string) bool {
	return len(name) == 1 && strings.Contains(hexDigits[:tmpShards], name)
}

const hexDigits = "0123456789abcdef"

// probeCase creates a lower-case file in tmp and looks it up in upper case.
func (r *Root) probeCase() (bool, error) {
	lower := tmpDir + "/casecheck-" + randomHex(8)
	upper := tmpDir + "/" + strings.ToUpper(lower[len(tmpDir)+1:])
	f, err := r.fs.OpenFile(lower, os.O_CREATE|os.O_EXCL|os.O_WRONLY, tempPerm)
	if err != nil {
		return false, fmt.Errorf("probe case sensitivity: %w", err)
	}
	f.Close()
	defer r.fs.Remove(lower)
	_, err = r.fs.Lstat(upper)
	return err == nil, nil
}

// checkPath validates p again (the caller's record.Path should already be
// valid) and returns it in the form os.Root takes.
func checkPath(p record.Path) (string, error) {
	s := string(p)
	bad := func(why string, class error) (string, error) {
		return "", fmt.Errorf("path %q: %s: %w", s, why, class)
	}
	switch {
	case s == "":
		return bad("empty", ErrUnsafePath)
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, `\`) || filepath.IsAbs(s) || filepath.VolumeName(s) != "":
		return bad("absolute", ErrOutsideShare)
	case strings.IndexByte(s, 0) >= 0:
		return bad("contains NUL", ErrUnsafePath)
	case !utf8.ValidString(s):
		return bad("invalid UTF-8", ErrUnsafePath)
	}
	for _, c := range strings.Split(s, "/") {
		switch {
		case c == "..":
			return bad(`has a ".." component`, ErrOutsideShare)
		case c == "" || c == ".":
			return bad("has an empty or \".\" component", ErrUnsafePath)
		case strings.EqualFold(c, record.MetaDir):
			return bad("names the "+record.MetaDir+" metadata folder", ErrUnsafePath)
		case runtime.GOOS == "windows" && strings.ContainsAny(c, `\:`):
			return bad(`has "\" or ":" inside a name`, ErrUnsafePath)
		}
	}
	return filepath.FromSlash(s), nil
}

// checkParents checks that every directory above name is a real directory
// (not a symlink) and, on a case-insensitive file system, that no component
// matches an existing entry only by case. With create, missing directories are
// made; without, missing reports that a parent does not exist.
func (r *Root) checkParents(name string, create bool) (missing bool, err error) {
	dir, base := splitDir(name)
	d, missing, err := r.openDir(dir, create, true)
	if err != nil || missing {
		return missing, err
	}
	defer r.dirs.release(d)
	if r.caseFold {
		return false, r.checkCaseIn(d, base)
	}
	return false, nil
}

// checkCase refuses elem if dir (a slash path) holds an entry equal to it but
// for case.
func (r *Root) checkCase(dir, elem string) error {
	d, missing, err := r.openDir(strings.TrimSuffix(dir, "/"), false, false)
	if err != nil || missing {
		return err
	}
	defer r.dirs.release(d)
	return r.checkCaseIn(d, elem)
}

// lstat returns the state at name, never following a symlink.
func (r *Root) lstat(name string) (FileState, error) {
	fi, err := r.fs.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return FileState{}, nil
	}
	if err != nil {
		return FileState{}, fmt.Errorf("stat %q: %w", name, err)
	}
	return stateOf(fi), nil
}

// slashPath is a checked name in slash form, as the directory cache keys it.
func slashPath(name string) string { return filepath.ToSlash(name) }

func stateOf(fi fs.FileInfo) FileState {
	return FileState{Exists: true, Mode: fi.Mode(), Size: fi.Size(), ModTime: fi.ModTime(), Inode: inode(fi)}
}

// Matches reports whether cur is what s expects: same existence, same type,
// and for files and symlinks same size, mtime and (when both know it) inode.
// A directory matches by type and inode alone: its size and mtime change with
// its entries.
func (s FileState) Matches(cur FileState) bool {
	if !s.Exists || !cur.Exists {
		return s.Exists == cur.Exists
	}
	if s.Mode.Type() != cur.Mode.Type() {
		return false
	}
	if s.Inode != 0 && cur.Inode != 0 && s.Inode != cur.Inode {
		return false
	}
	if s.Mode.IsDir() {
		return true
	}
	return s.Size == cur.Size && s.ModTime.Equal(cur.ModTime)
}

// expectAt compares the state at name with expect.
func (r *Root) expectAt(name string, expect FileState) (FileState, error) {
	cur, err := r.lstat(name)
	if err != nil {
		return cur, err
	}
	if !expect.Matches(cur) {
		return cur, fmt.Errorf("%q: expected %s, found %s: %w", filepath.ToSlash(name), expect, cur, ErrChanged)
	}
	return cur, nil
}

// String describes a state for error messages.
func (s FileState) String() string {
	if !s.Exists {
		return "nothing"
	}
	return fmt.Sprintf("%v size %d mtime %s inode %d", s.Mode, s.Size, s.ModTime.UTC().Format(time.RFC3339Nano), s.Inode)
}

// syncDir fsyncs a directory so a rename or create in it is durable.
func (r *Root) syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
	d, err := r.fs.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("sync directory %q: %w", dir, err)
	}
	return nil
}
