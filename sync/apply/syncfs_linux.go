package apply

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the whole file system that holds d, in one call.
func syncFS(d *os.File) error { return unix.Syncfs(int(d.Fd())) }
