package apply

import (
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// chmodAt sets the permissions of base in dirfd without following a
// symlink. Kernels before 6.6 have no fchmodat2: there the file is opened
// as a path (O_PATH|O_NOFOLLOW), checked to be a regular file or a
// directory, and changed through /proc/self/fd, as glibc and musl do.
func chmodAt(dirfd int, base string, perm uint32) error {
	err := unix.Fchmodat(dirfd, base, perm, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		if err != nil {
			return fmt.Errorf("set mode: %w", err)
		}
		return nil
	}
	fd, err := unix.Openat(dirfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	if t := st.Mode & unix.S_IFMT; t != unix.S_IFREG && t != unix.S_IFDIR {
		return fmt.Errorf("set mode: not a regular file or directory: %w", ErrChanged)
	}
	if err := unix.Fchmodat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), perm, 0); err != nil {
		return fmt.Errorf("set mode (through /proc/self/fd; is /proc mounted?): %w", err)
	}
	return nil
}
