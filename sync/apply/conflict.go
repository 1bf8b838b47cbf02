package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"time"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"

	"github.com/blueshift-sync/blueshift/index/record"
)

// maxDeviceName bounds the DEVICE part of a conflict copy's name.
const maxDeviceName = 64

// ConflictName is the name of a conflict copy of base made at when by device:
// NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICE.EXT (UTC, so every device that
// makes it spells it the same).
func ConflictName(base, device string, when time.Time) string {
	stem, ext := splitExt(base)
	return stem + ".sync-conflict-" + when.UTC().Format(stampLayout) + "-" + device + ext
}

// ConflictCopy moves the file or symlink at p aside to its conflict name in
// the same directory and returns the new path. It never overwrites: if that
// name is taken it fails with an error matching fs.ErrExist.
func (r *Root) ConflictCopy(p record.Path, device string, when time.Time) (record.Path, error) {
	name, err := checkPath(p)
	if err != nil {
		return "", err
	}
	if err := checkDevice(device); err != nil {
		return "", fmt.Errorf("conflict copy of %q: %w", p, err)
	}
	dir, base := path.Split(filepath.ToSlash(name))
	newPath := record.Path(dir + ConflictName(base, device, when))
	newName, err := checkPath(newPath)
	if err != nil {
		return "", fmt.Errorf("conflict copy of %q: %w", p, err)
	}

	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	missing, err := r.checkParents(newName, false)
	if err != nil {
		return "", fmt.Errorf("conflict copy of %q: %w", p, err)
	}
	if missing {
		return "", fmt.Errorf("conflict copy of %q: %w", p, fs.ErrNotExist)
	}
	if r.caseFold {
		if err := r.checkCase(dir, path.Base(string(newPath))); err != nil {
			return "", fmt.Errorf("conflict copy of %q: %w", p, err)
		}
	}
	cur, err := r.lstat(name)
	if err != nil {
		return "", fmt.Errorf("conflict copy of %q: %w", p, err)
	}
	switch {
	case !cur.Exists:
		return "", fmt.Errorf("conflict copy of %q: %w", p, fs.ErrNotExist)
	case cur.Mode.IsDir():
		return "", fmt.Errorf("conflict copy of %q: it is a directory: %w", p, ErrChanged)
	}
	parent, base := splitDir(name)
	d, missing, err := r.openDir(parent, false, false)
	if err == nil && missing {
		err = fs.ErrNotExist
	}
	if err != nil {
		return "", fmt.Errorf("conflict copy of %q: %w", p, err)
	}
	defer r.dirs.release(d)
	// Never over a file of that name, even one that appears meanwhile.
	err = renameNoReplace(d.fd, base, d.fd, path.Base(string(newPath)))
	if errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("conflict copy of %q: %q: %w", p, newPath, fs.ErrExist)
	}
	if err != nil {
		return "", fmt.Errorf("conflict copy of %q: %w", p, err)
	}
	if err := r.syncDir(filepath.Dir(name)); err != nil {
		return "", fmt.Errorf("conflict copy of %q: %w", p, err)
	}
	return newPath, nil
}

// checkDevice keeps a device name to letters, digits, '-' and '_'.
func checkDevice(device string) error {
	if device == "" || len(device) > maxDeviceName {
		return fmt.Errorf("device name %q: want 1 to %d characters: %w", device, maxDeviceName, ErrUnsafePath)
	}
	for _, c := range device {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("device name %q: only letters, digits, '-' and '_': %w", device, ErrUnsafePath)
		}
	}
	return nil
}

// conflictRE splits STEM.sync-conflict-YYYYMMDD-HHMMSS-DEVICE[.EXT].
var conflictRE = regexp.MustCompile(`^(.*)\.sync-conflict-(\d{8}-\d{6})-([A-Za-z0-9_-]+?)(\.[^.]*)?$`)

// ParseConflictName inverts ConflictName: the original base name, the
// device named in the copy's name and when that version was made.
func ParseConflictName(name string) (base, device string, when time.Time, ok bool) {
	m := conflictRE.FindStringSubmatch(name)
	if m == nil || m[1] == "" {
		return "", "", time.Time{}, false
	}
	t, err := time.Parse(stampLayout, m[2])
	if err != nil {
		return "", "", time.Time{}, false
	}
	return m[1] + m[4], m[3], t, true
}

// Conflict is one conflict copy in a share and the path it is a copy of.
type Conflict struct {
	Path   record.Path // the original: the version that won
	Copy   record.Path // the losing version, set aside
	Device string      // the device named in Copy's name: who made the losing version
	Time   time.Time   // when the losing version was made (its mtime, as named)
}

// Conflicts lists the conflict copies in the share, sorted by copy path.
// Nested shares' folders (those holding a .blueshift folder) and the
// metadata folder are not searched.
func (r *Root) Conflicts(ctx context.Context) ([]Conflict, error) {
	var out []Conflict
	err := fs.WalkDir(r.fs.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // a folder we cannot read holds nothing we can list
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p == record.MetaDir {
				return fs.SkipDir
			}
			if p != "." {
				if _, err := r.fs.Lstat(filepath.FromSlash(p + "/" + record.MetaDir)); err == nil {
					return fs.SkipDir // a nested share's own
				}
			}
			return nil
		}
		base, dev, when, ok := ParseConflictName(d.Name())
		if !ok {
			return nil
		}
		dir := path.Dir(p)
		orig := base
		if dir != "." {
			orig = dir + "/" + base
		}
		out = append(out, Conflict{Path: record.Path(orig), Copy: record.Path(p), Device: dev, Time: when})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list conflict copies: %w", err)
	}
	return out, nil
}

// ResolveKeep says which version a resolved conflict keeps at the path.
type ResolveKeep int

const (
	KeepOriginal ResolveKeep = iota // the version at the path; the copy goes to the versions folder
	KeepCopy                        // the copy's content replaces the path's (which is versioned); the copy goes
	KeepBoth                        // both stay, the copy under a name that is no conflict copy's
)

// Resolve ends conflict c: see ResolveKeep. Nothing is lost: whatever is
// replaced or removed goes to the versions folder first. It returns the
// paths it changed (for the index to look at again).
func (r *Root) Resolve(ctx context.Context, c Conflict, keep ResolveKeep) ([]record.Path, error) {
	if base, _, _, ok := ParseConflictName(path.Base(string(c.Copy))); !ok || path.Join(path.Dir(string(c.Copy)), base) != string(c.Path) {
		return nil, fmt.Errorf("resolve %q: %q is not its conflict copy: %w", c.Path, c.Copy, ErrUnsafePath)
	}
	cp, err := r.Stat(c.Copy)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", c.Path, err)
	}
	if !cp.Exists || !cp.Mode.IsRegular() {
		return nil, fmt.Errorf("resolve %q: no conflict copy %q (resolved already?): %w", c.Path, c.Copy, fs.ErrNotExist)
	}
	target := c.Path
	switch keep {
	case KeepOriginal:
		if err := r.Remove(c.Copy, cp); err != nil {
			return nil, fmt.Errorf("resolve %q: remove the copy: %w", c.Path, err)
		}
		return []record.Path{c.Copy}, nil
	case KeepBoth:
		stem, ext := splitExt(path.Base(string(c.Path)))
		dir := path.Dir(string(c.Path))
		for n := 1; ; n++ {
			name := fmt.Sprintf("%s (%s)%s", stem, c.Device, ext)
			if n > 1 {
				name = fmt.Sprintf("%s (%s %d)%s", stem, c.Device, n, ext)
			}
			target = record.Path(path.Join(dir, name))
			st, err := r.Stat(target)
			if err != nil {
				return nil, fmt.Errorf("resolve %q: %w", c.Path, err)
			}
			if !st.Exists {
				break
			}
			if n >= maxSameSecond {
				return nil, fmt.Errorf("resolve %q: every name for the kept copy is taken", c.Path)
			}
		}
	}
	cur, err := r.Stat(target)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", c.Path, err)
	}
	if cur.Exists && cur.Mode.IsDir() {
		return nil, fmt.Errorf("resolve %q: a folder is there: %w", target, ErrChanged)
	}
	src, err := r.Open(c.Copy)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", c.Path, err)
	}
	defer src.Close()
	_, err = r.WriteFile(ctx, target, cur, Meta{Mode: cp.Mode.Perm(), ModTime: cp.ModTime}, func(w Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", c.Path, err)
	}
	if err := r.Remove(c.Copy, cp); err != nil {
		return []record.Path{target}, fmt.Errorf("resolve %q: remove the copy: %w", c.Path, err)
	}
	return []record.Path{target, c.Copy}, nil
}
