package apply

import (
	"errors"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"
)

// errNoExchange: the file system cannot swap two entries atomically.
var errNoExchange = errors.New("atomic exchange not supported")

// linkNoReplace is renameNoReplace by hard link and unlink, which fails
// with EEXIST if newName exists. Where there are no hard links either, it
// falls back to a plain rename: newName was checked a moment before.
func linkNoReplace(oldDir int, oldName string, newDir int, newName string) error {
	err := unix.Linkat(oldDir, oldName, newDir, newName, 0)
	switch {
	case err == nil:
		return unix.Unlinkat(oldDir, oldName, 0)
	case errors.Is(err, unix.EEXIST):
		return err
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EMLINK):
		return unix.Renameat(oldDir, oldName, newDir, newName)
	}
	return err
}
