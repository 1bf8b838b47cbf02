//go:build unix

package index

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// inode returns the file's inode number, 0 if the platform has none.
func inode(fi fs.FileInfo) uint64 {
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t:
		return uint64(st.Ino)
	case *unix.Stat_t: // lstatAt's
		return uint64(st.Ino)
	}
	return 0
}

// openFlags are added to O_RDONLY when a file is opened for hashing: never
// follow a symlink swapped in since the walk, never block on a FIFO.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
