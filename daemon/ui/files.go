package ui

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// Files is what the conflicts, versions and needed-files pages use. Two
// implementations: apiFiles, the control API's own endpoints (the daemon's
// Handler, used whenever the daemon has one), and folderFiles, the share
// folders themselves, for a daemon without those endpoints.
type Files interface {
	Conflicts(sh daemon.ShareStatus) ([]Conflict, error)
	// Resolve ends the conflict of the copy at copyPath.
	Resolve(sh daemon.ShareStatus, copyPath string, keep Keep) error
	Versions(sh daemon.ShareStatus) ([]Version, error)
	// Restore puts back the newest version of p kept at or before at.
	Restore(sh daemon.ShareStatus, p string, at time.Time) error
	// Needed lists up to a limit of the files not in sync yet, and how
	// many there are; ErrNoList when this implementation cannot.
	Needed(sh daemon.ShareStatus) ([]NeededFile, int, error)
}

// NeededFile is one path not in sync yet, and why.
type NeededFile struct {
	Path     string `json:"path"`
	Bytes    int64  `json:"bytes"`
	Deleted  bool   `json:"deleted"`
	PeerName string `json:"peer_name"`
	Reason   string `json:"reason"`
	Error    string `json:"error"`
}

// ErrNoList: the daemon does not list needed files (no needed endpoint).
var ErrNoList = errors.New("this daemon does not list needed files, only counts them")

// Keep is which side of a conflict a resolution keeps.
type Keep string

// The sides: the file at the path, the conflict copy, or both.
const (
	KeepOriginal Keep = "original"
	KeepCopy     Keep = "copy"
	KeepBoth     Keep = "both"
)

// Conflict is one conflict copy beside the file it conflicts with.
type Conflict struct {
	Path     string // share-relative slash path of the file
	Copy     string // of the conflict copy
	Device   string // the device whose change lost, as named in the copy
	Winner   string // the device whose change is at Path, when known
	Time     time.Time
	Size     int64 // of the file; -1: gone
	CopySize int64
	ModTime  time.Time // of the file
	CopyMod  time.Time
	// Preview and CopyPreview are the start of each side when it is text
	// (at most previewBytes), for showing them side by side.
	Preview, CopyPreview string
}

// previewBytes bounds the text shown of each side of a conflict.
const previewBytes = 4 << 10

// Version is one kept copy in the versions folder.
type Version struct {
	Path    string // share-relative path of the file it was
	Stored  string // share-relative path under .blueshift/versions
	Time    time.Time
	Size    int64
	Current bool // a file is at Path now
}

// Errors of requests the pages pass on.
var (
	// ErrOutside: a path names nothing inside the share.
	ErrOutside = errors.New("path outside the share")
	// ErrNoVersion: no kept version matches.
	ErrNoVersion = errors.New("no such version")
)

const versionsDir = record.MetaDir + "/versions"

var (
	conflictRE = regexp.MustCompile(`^(.*)\.sync-conflict-(\d{8}-\d{6})-([A-Za-z0-9_-]{1,64})(\.[^.]*)?$`)
	versionRE  = regexp.MustCompile(`^(.*)~(\d{8}-\d{6})(?:-(\d+))?(\.[^.]*)?$`)
)

// badRequest is an error in what a request asks for (answered 400).
type badRequest struct{ error }

func (e badRequest) Unwrap() error { return e.error }

// isBadRequest: the request was wrong, not the daemon.
func isBadRequest(err error) bool {
	var br badRequest
	return errors.As(err, &br) || errors.Is(err, ErrOutside) || errors.Is(err, ErrNoVersion) || errors.Is(err, errRefused)
}

// folderFiles finds conflicts and versions in the share's folder and
// changes it through an os.Root (nothing it does reaches outside), keeping
// every file it replaces or removes in the versions folder first; the
// watcher then records the change like any user edit.
type folderFiles struct{ now func() time.Time }

// Needed: the share folders do not say.
func (f folderFiles) Needed(daemon.ShareStatus) ([]NeededFile, int, error) { return nil, 0, ErrNoList }

// Conflicts lists the conflict copies in the share, newest first.
func (f folderFiles) Conflicts(sh daemon.ShareStatus) ([]Conflict, error) {
	dir := sh.Path
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open share folder %s: %w", dir, err)
	}
	defer root.Close()
	var out []Conflict
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a folder that vanished or cannot be read: skip it
		}
		if d.IsDir() {
			if p == record.MetaDir {
				return fs.SkipDir
			}
			if _, err := root.Lstat(filepath.Join(filepath.FromSlash(p), record.MetaDir)); p != "." && err == nil {
				return fs.SkipDir // a nested share's own
			}
			return nil
		}
		m := conflictRE.FindStringSubmatch(d.Name())
		if m == nil {
			return nil
		}
		t, err := time.Parse("20060102-150405", m[2])
		if err != nil {
			return nil
		}
		c := Conflict{Path: path.Join(path.Dir(p), m[1]+m[4]), Copy: p, Device: m[3], Time: t, Size: -1}
		if fi, err := d.Info(); err == nil {
			c.CopySize, c.CopyMod = fi.Size(), fi.ModTime()
		}
		if fi, err := root.Lstat(filepath.FromSlash(c.Path)); err == nil {
			c.Size, c.ModTime = fi.Size(), fi.ModTime()
		}
		out = append(out, c)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, err
}

// Resolve ends the conflict of the copy at copyPath: KeepOriginal moves
// the copy to the versions folder, KeepCopy keeps the file in the versions
// folder and puts the copy in its place, KeepBoth renames the copy to
// "NAME (DEVICE).EXT" so it no longer looks like a conflict.
func (f folderFiles) Resolve(sh daemon.ShareStatus, copyPath string, keep Keep) error {
	dir := sh.Path
	name, err := sharePath(copyPath)
	if err != nil {
		return err
	}
	m := conflictRE.FindStringSubmatch(path.Base(name))
	if m == nil {
		return badRequest{fmt.Errorf("resolve %q: not a conflict copy (NAME.sync-conflict-DATE-TIME-DEVICE.EXT)", copyPath)}
	}
	orig := path.Join(path.Dir(name), m[1]+m[4])
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("open share folder %s: %w", dir, err)
	}
	defer root.Close()
	if fi, err := root.Lstat(filepath.FromSlash(name)); err != nil || !fi.Mode().IsRegular() {
		return badRequest{fmt.Errorf("resolve %q: no conflict copy there any more (reload the page)", copyPath)}
	}
	switch keep {
	case KeepOriginal:
		return f.keepVersion(root, name, orig, true)
	case KeepCopy:
		if _, err := root.Lstat(filepath.FromSlash(orig)); err == nil {
			if err := f.keepVersion(root, orig, orig, false); err != nil {
				return err
			}
		}
		if err := root.Rename(filepath.FromSlash(name), filepath.FromSlash(orig)); err != nil {
			return fmt.Errorf("resolve %q: put the copy at %q: %w", copyPath, orig, err)
		}
		return nil
	case KeepBoth:
		to := path.Join(path.Dir(name), m[1]+" ("+m[3]+")"+m[4])
		if _, err := root.Lstat(filepath.FromSlash(to)); err == nil {
			return fmt.Errorf("resolve %q: %q exists already: rename one of them by hand", copyPath, to)
		}
		if err := root.Rename(filepath.FromSlash(name), filepath.FromSlash(to)); err != nil {
			return fmt.Errorf("resolve %q: rename to %q: %w", copyPath, to, err)
		}
		return nil
	}
	return badRequest{fmt.Errorf("resolve %q: keep %q: say original, copy or both", copyPath, keep)}
}

// Versions lists every kept version in the share, newest first.
func (f folderFiles) Versions(sh daemon.ShareStatus) ([]Version, error) {
	dir := sh.Path
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open share folder %s: %w", dir, err)
	}
	defer root.Close()
	var out []Version
	err = fs.WalkDir(root.FS(), versionsDir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == versionsDir {
			return fs.SkipAll
		}
		if err != nil || d.IsDir() {
			return nil
		}
		m := versionRE.FindStringSubmatch(d.Name())
		if m == nil {
			return nil
		}
		t, err := time.Parse("20060102-150405", m[2])
		if err != nil {
			return nil
		}
		rel := strings.TrimPrefix(path.Dir(p), versionsDir)
		v := Version{Path: strings.TrimPrefix(path.Join(rel, m[1]+m[4]), "/"), Stored: p, Time: t}
		if fi, err := d.Info(); err == nil {
			v.Size = fi.Size()
		}
		out = append(out, v)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out, err
}

// Restore copies the newest version of p kept at or before at (zero: the
// newest) back to p; a file there now is kept in the versions folder first.
func (f folderFiles) Restore(sh daemon.ShareStatus, p string, at time.Time) error {
	target, err := sharePath(p)
	if err != nil {
		return err
	}
	if target == record.MetaDir || strings.HasPrefix(target, record.MetaDir+"/") {
		return fmt.Errorf("restore %q: it is in the share's own %s folder, which holds no user files: %w", p, record.MetaDir, ErrOutside)
	}
	all, err := f.Versions(sh)
	if err != nil {
		return fmt.Errorf("restore %q: %w", p, err)
	}
	var stored string
	for _, v := range all { // newest first
		if v.Path == target && (at.IsZero() || !v.Time.After(at)) {
			stored = v.Stored
			break
		}
	}
	if stored == "" {
		return fmt.Errorf("restore %q: %w kept then: pruned or removed; reload the page and pick another", p, ErrNoVersion)
	}
	root, err := os.OpenRoot(sh.Path)
	if err != nil {
		return fmt.Errorf("open share folder %s: %w", sh.Path, err)
	}
	defer root.Close()
	src, err := root.Open(filepath.FromSlash(stored))
	if err != nil {
		return fmt.Errorf("restore %q: %w", target, err)
	}
	defer src.Close()
	if err := root.MkdirAll(filepath.FromSlash(path.Dir(target)), 0o755); err != nil {
		return fmt.Errorf("restore %q: %w", target, err)
	}
	if err := root.MkdirAll(filepath.FromSlash(path.Join(record.MetaDir, "tmp")), 0o755); err != nil {
		return fmt.Errorf("restore %q: %w", target, err)
	}
	tmp := path.Join(record.MetaDir, "tmp", fmt.Sprintf("restore-%d.tmp", f.now().UnixNano()))
	dst, err := root.OpenFile(filepath.FromSlash(tmp), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("restore %q: %w", target, err)
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if _, serr := root.Lstat(filepath.FromSlash(target)); serr == nil {
			err = f.keepVersion(root, target, target, false)
		}
	}
	if err == nil {
		err = root.Rename(filepath.FromSlash(tmp), filepath.FromSlash(target))
	}
	if err != nil {
		root.Remove(filepath.FromSlash(tmp))
		return fmt.Errorf("restore %q: %w", target, err)
	}
	return nil
}

// keepVersion puts the file at name into the versions folder as a version
// of as (moved, or hard-linked when it stays where it is).
func (f folderFiles) keepVersion(root *os.Root, name, as string, move bool) error {
	vdir := path.Join(versionsDir, path.Dir(as))
	if err := root.MkdirAll(filepath.FromSlash(vdir), 0o755); err != nil {
		return fmt.Errorf("keep a version of %q: %w", as, err)
	}
	base := apply.VersionName(path.Base(as), f.now())
	stem, ext := path.Base(as), path.Ext(as)
	if ext == stem || ext == "." {
		ext = ""
	}
	stem = strings.TrimSuffix(stem, ext) + "~" + f.now().UTC().Format("20060102-150405")
	for n := 1; n < 1000; n++ {
		v := path.Join(vdir, base)
		if n > 1 {
			v = path.Join(vdir, fmt.Sprintf("%s-%d%s", stem, n, ext))
		}
		if _, err := root.Lstat(filepath.FromSlash(v)); err == nil {
			continue
		}
		var err error
		if move {
			err = root.Rename(filepath.FromSlash(name), filepath.FromSlash(v))
		} else if err = root.Link(filepath.FromSlash(name), filepath.FromSlash(v)); err != nil {
			err = copyIn(root, name, v)
		}
		if err != nil {
			return fmt.Errorf("keep a version of %q: %w", as, err)
		}
		return nil
	}
	return fmt.Errorf("keep a version of %q: too many this second", as)
}

// preview is the start of the regular file at p when it is UTF-8 text.
func preview(root *os.Root, p string) string {
	if fi, err := root.Lstat(filepath.FromSlash(p)); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	f, err := root.Open(filepath.FromSlash(p))
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, previewBytes)
	n, _ := io.ReadFull(f, b)
	b = b[:n]
	for i := 0; i < utf8.UTFMax && n == previewBytes && !utf8.Valid(b); i++ {
		b = b[:len(b)-1] // a character cut at the end
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return ""
	}
	return string(b)
}

func copyIn(root *os.Root, from, to string) error {
	src, err := root.Open(filepath.FromSlash(from))
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := root.OpenFile(filepath.FromSlash(to), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	return err
}

// sharePath checks a share-relative slash path from a request: no
// absolute path, no "..", nothing that leaves the share.
func sharePath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q is outside the share: name a file by its path inside the share: %w", p, ErrOutside)
	}
	c := path.Clean(p)
	if c != p || c == "." || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("path %q is outside the share: name a file by its path inside the share: %w", p, ErrOutside)
	}
	return c, nil
}
