//go:build !(linux || darwin || freebsd)

package apply

import (
	"errors"
	"fmt"
	"syscall"
)

// FreeSpace is not known here: callers retry on a timer instead.
func (r *Root) FreeSpace() (int64, error) {
	return 0, fmt.Errorf("free space of %s: %w", r.dir, errors.ErrUnsupported)
}

// IsNoSpace reports whether err is a write that failed because the file
// system is full.
func IsNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
