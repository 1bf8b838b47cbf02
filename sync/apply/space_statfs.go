//go:build linux || darwin || freebsd

package apply

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// FreeSpace returns the bytes an unprivileged writer may still use on the
// file system that holds the share, or an error when it is not known.
func (r *Root) FreeSpace() (int64, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(r.dirs.rf.Fd()), &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", r.dir, err)
	}
	if st.Blocks == 0 {
		// Some FUSE and network file systems report nothing: unknown, not full.
		return 0, fmt.Errorf("free space of %s: the file system does not report its size: %w", r.dir, errors.ErrUnsupported)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// IsNoSpace reports whether err is a write that failed because the file
// system (or the user's quota on it) is full.
func IsNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}
