package apply

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
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
