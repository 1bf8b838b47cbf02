package apply

import (
	"errors"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames oldName in oldDir to newName in newDir only if
// newName does not exist, atomically; it fails with EEXIST otherwise.
func renameNoReplace(oldDir int, oldName string, newDir int, newName string) error {
	err := unix.Renameat2(oldDir, oldName, newDir, newName, unix.RENAME_NOREPLACE)
	if unsupported(err) {
		return linkNoReplace(oldDir, oldName, newDir, newName)
	}
	return err
}

// exchange swaps two existing entries atomically. errNoExchange means the
// file system cannot.
func exchange(aDir int, aName string, bDir int, bName string) error {
	err := unix.Renameat2(aDir, aName, bDir, bName, unix.RENAME_EXCHANGE)
	if unsupported(err) {
		return errNoExchange
	}
	return err
}

// unsupported: the kernel or the file system lacks renameat2's flags.
func unsupported(err error) bool {
	return errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP)
}
