//go:build !linux

package apply

import (
	"fmt"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"
)

// chmodAt sets the permissions of base in dirfd without following a
// symlink (fchmodat honours AT_SYMLINK_NOFOLLOW outside Linux).
func chmodAt(dirfd int, base string, perm uint32) error {
	if err := unix.Fchmodat(dirfd, base, perm, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mode: %w", err)
	}
	return nil
}
