//go:build !linux

package apply

import (
	"os"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"
)

// syncFS flushes every file system: there is no per-file-system call here.
func syncFS(d *os.File) error {
	unix.Sync()
	return d.Sync()
}
