//go:build !linux

package apply

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes every file system: there is no per-file-system call here.
func syncFS(d *os.File) error {
	unix.Sync()
	return d.Sync()
}
