//go:build unix

package index

import (
	"io/fs"
	"syscall"
)

// inode returns the file's inode number, 0 if the platform has none.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// openFlags are added to O_RDONLY when a file is opened for hashing: never
// follow a symlink swapped in since the walk, never block on a FIFO.
const openFlags = syscall.O_NOFOLLOW | syscall.O_NONBLOCK
