package index

import (
	"io/fs"
	"syscall"
)

// ctimeOf returns the file's status-change time in nanoseconds: the kernel
// sets it on every write, and no user call can set it back.
func ctimeOf(fi fs.FileInfo) (int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Ctim.Nano(), true
}
