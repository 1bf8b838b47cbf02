// Package stmode turns the st_mode of a raw stat into the fs.FileMode that
// package os gives for the same file. The scan (index, fstatat relative to
// an open folder) and the writer (sync/apply, every call relative to an
// open directory) stat without os, and must agree with os.Lstat to the bit.
package stmode

import "io/fs"

// The POSIX file type and mode bits: the same values on every system with
// stat(2), and in sync/apply's emulation of it on Windows.
const (
	typeMask = 0o170000
	block    = 0o060000
	char     = 0o020000
	dir      = 0o040000
	fifo     = 0o010000
	symlink  = 0o120000
	socket   = 0o140000
	setuid   = 0o4000
	setgid   = 0o2000
	sticky   = 0o1000
)

// FileMode is the fs.FileMode of a file whose st_mode is mode.
func FileMode(mode uint32) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	switch mode & typeMask {
	case block:
		m |= fs.ModeDevice
	case char:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case dir:
		m |= fs.ModeDir
	case fifo:
		m |= fs.ModeNamedPipe
	case symlink:
		m |= fs.ModeSymlink
	case socket:
		m |= fs.ModeSocket
	}
	if mode&setgid != 0 {
		m |= fs.ModeSetgid
	}
	if mode&setuid != 0 {
		m |= fs.ModeSetuid
	}
	if mode&sticky != 0 {
		m |= fs.ModeSticky
	}
	return m
}
