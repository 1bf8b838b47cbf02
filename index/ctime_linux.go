package index

import (
	"io/fs"
	"syscall"

	"golang.org/x/sys/unix"
)

// ctimeOf returns the file's status-change time in nanoseconds: the kernel
// sets it on every write, and no user call can set it back.
func ctimeOf(fi fs.FileInfo) (int64, bool) {
	switch st := fi.Sys().(type) {
	case *syscall.Stat_t:
		return st.Ctim.Nano(), true
	case *unix.Stat_t: // lstatAt's
		return st.Ctim.Nano(), true
	}
	return 0, false
}
