//go:build unix

package posix

import "golang.org/x/sys/unix"

type (
	Stat_t   = unix.Stat_t
	Timespec = unix.Timespec
)

const (
	AT_SYMLINK_NOFOLLOW = unix.AT_SYMLINK_NOFOLLOW

	O_CLOEXEC   = unix.O_CLOEXEC
	O_CREAT     = unix.O_CREAT
	O_DIRECTORY = unix.O_DIRECTORY
	O_EXCL      = unix.O_EXCL
	O_NOFOLLOW  = unix.O_NOFOLLOW
	O_RDONLY    = unix.O_RDONLY
	O_RDWR      = unix.O_RDWR

	S_IFBLK  = unix.S_IFBLK
	S_IFCHR  = unix.S_IFCHR
	S_IFDIR  = unix.S_IFDIR
	S_IFIFO  = unix.S_IFIFO
	S_IFLNK  = unix.S_IFLNK
	S_IFMT   = unix.S_IFMT
	S_IFSOCK = unix.S_IFSOCK
	S_ISGID  = unix.S_ISGID
	S_ISUID  = unix.S_ISUID
	S_ISVTX  = unix.S_ISVTX

	EEXIST     = unix.EEXIST
	EINTR      = unix.EINTR
	EMLINK     = unix.EMLINK
	ENOENT     = unix.ENOENT
	ENOTSUP    = unix.ENOTSUP
	EOPNOTSUPP = unix.EOPNOTSUPP
	EPERM      = unix.EPERM
)

func Close(fd int) error             { return unix.Close(fd) }
func Fstat(fd int, st *Stat_t) error { return unix.Fstat(fd, st) }
func Fsync(fd int) error             { return unix.Fsync(fd) }
func Fchmodat(dirfd int, name string, mode uint32, flags int) error {
	return unix.Fchmodat(dirfd, name, mode, flags)
}
func Mkdirat(dirfd int, name string, mode uint32) error {
	return unix.Mkdirat(dirfd, name, mode)
}
func NsecToTimespec(nsec int64) Timespec { return unix.NsecToTimespec(nsec) }
func Sync()                              { unix.Sync() }

func Fstatat(dirfd int, name string, st *Stat_t, flags int) error {
	return unix.Fstatat(dirfd, name, st, flags)
}

func Linkat(olddirfd int, oldname string, newdirfd int, newname string, flags int) error {
	return unix.Linkat(olddirfd, oldname, newdirfd, newname, flags)
}

func Openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	return unix.Openat(dirfd, name, flags, mode)
}

func Renameat(olddirfd int, oldname string, newdirfd int, newname string) error {
	return unix.Renameat(olddirfd, oldname, newdirfd, newname)
}

func Symlinkat(target string, dirfd int, name string) error {
	return unix.Symlinkat(target, dirfd, name)
}

func Unlinkat(dirfd int, name string, flags int) error { return unix.Unlinkat(dirfd, name, flags) }

func UtimesNanoAt(dirfd int, name string, ts []Timespec, flags int) error {
	return unix.UtimesNanoAt(dirfd, name, ts, flags)
}
