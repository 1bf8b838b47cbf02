//go:build windows

package posix

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/windows"
)

// Stat_t holds the fields sync/apply reads, filled from
// GetFileInformationByHandle.
type Stat_t struct {
	Dev, Ino   uint64 // volume serial number, file index
	Mode       uint32 // S_IF* kind and permission bits
	Size       int64
	Mtim, Ctim Timespec
}

// Timespec is a time in seconds and nanoseconds since the Unix epoch.
type Timespec struct{ Sec, Nsec int64 }

// Flags with no Windows counterpart take bits syscall's O_* leave free.
const (
	AT_SYMLINK_NOFOLLOW = 0x100

	O_CLOEXEC   = syscall.O_CLOEXEC
	O_CREAT     = syscall.O_CREAT
	O_DIRECTORY = 0x1000000
	O_EXCL      = syscall.O_EXCL
	O_NOFOLLOW  = 0x2000000
	O_RDONLY    = syscall.O_RDONLY
	O_RDWR      = syscall.O_RDWR

	S_IFBLK  = 0x6000
	S_IFCHR  = 0x2000
	S_IFDIR  = 0x4000
	S_IFIFO  = 0x1000
	S_IFLNK  = 0xa000
	S_IFMT   = 0xf000
	S_IFREG  = 0x8000
	S_IFSOCK = 0xc000
	S_ISGID  = 0x400
	S_ISUID  = 0x800
	S_ISVTX  = 0x200
)

// The errno values sync/apply compares with: syscall's invented ones.
const (
	EEXIST     = syscall.EEXIST
	EINTR      = syscall.EINTR
	EMLINK     = syscall.EMLINK
	ENOENT     = syscall.ENOENT
	ENOTSUP    = syscall.ENOTSUP
	EOPNOTSUPP = syscall.EOPNOTSUPP
	EPERM      = syscall.EPERM
	eloop      = syscall.ELOOP
	enotdir    = syscall.ENOTDIR
)

func Close(fd int) error { return errno(windows.CloseHandle(windows.Handle(fd))) }

func Fsync(fd int) error { return errno(windows.FlushFileBuffers(windows.Handle(fd))) }

// Sync has nothing to do: every file and folder is flushed on its own.
func Sync() {}

func NsecToTimespec(nsec int64) Timespec { return Timespec{Sec: nsec / 1e9, Nsec: nsec % 1e9} }

func Fstat(fd int, st *Stat_t) error {
	var fi windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(windows.Handle(fd), &fi); err != nil {
		return errno(err)
	}
	*st = Stat_t{
		Dev:  uint64(fi.VolumeSerialNumber),
		Ino:  uint64(fi.FileIndexHigh)<<32 | uint64(fi.FileIndexLow),
		Size: int64(fi.FileSizeHigh)<<32 | int64(fi.FileSizeLow),
		Mtim: NsecToTimespec(fi.LastWriteTime.Nanoseconds()),
		Ctim: NsecToTimespec(fi.CreationTime.Nanoseconds()),
		Mode: 0o666,
	}
	a := fi.FileAttributes
	switch {
	case a&windows.FILE_ATTRIBUTE_REPARSE_POINT != 0:
		st.Mode = S_IFLNK | 0o777
	case a&windows.FILE_ATTRIBUTE_DIRECTORY != 0:
		st.Mode = S_IFDIR | 0o777
	default:
		st.Mode |= S_IFREG
	}
	if a&windows.FILE_ATTRIBUTE_READONLY != 0 {
		st.Mode &^= 0o222
	}
	return nil
}

func Fstatat(dirfd int, name string, st *Stat_t, flags int) error {
	p, err := at(dirfd, name)
	if err != nil {
		return err
	}
	h, err := open(p, windows.FILE_READ_ATTRIBUTES, windows.OPEN_EXISTING, true, flags&AT_SYMLINK_NOFOLLOW != 0)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(h)
	return Fstat(int(h), st)
}

func Openat(dirfd int, name string, flags int, mode uint32) (int, error) {
	p, err := at(dirfd, name)
	if err != nil {
		return -1, err
	}
	if flags&(O_NOFOLLOW|O_DIRECTORY) != 0 {
		if fi, err := os.Lstat(p); err == nil {
			switch {
			case fi.Mode()&fs.ModeSymlink != 0:
				return -1, eloop
			case flags&O_DIRECTORY != 0 && !fi.IsDir():
				return -1, enotdir
			}
		}
	}
	access := uint32(windows.GENERIC_READ)
	if flags&(syscall.O_WRONLY|syscall.O_RDWR) != 0 {
		access |= windows.GENERIC_WRITE
	}
	disp := uint32(windows.OPEN_EXISTING)
	switch {
	case flags&(O_CREAT|O_EXCL) == O_CREAT|O_EXCL:
		disp = windows.CREATE_NEW
	case flags&O_CREAT != 0:
		disp = windows.OPEN_ALWAYS
	}
	h, err := open(p, access, disp, flags&O_DIRECTORY != 0, flags&O_NOFOLLOW != 0)
	return int(h), err
}

func Mkdirat(dirfd int, name string, mode uint32) error {
	p, err := at(dirfd, name)
	if err != nil {
		return err
	}
	return errno(os.Mkdir(p, fs.FileMode(mode)))
}

func Linkat(olddirfd int, oldname string, newdirfd int, newname string, flags int) error {
	o, n, err := at2(olddirfd, oldname, newdirfd, newname)
	if err != nil {
		return err
	}
	return errno(os.Link(o, n))
}

// Renameat replaces newname, as on unix (MoveFileEx with
// MOVEFILE_REPLACE_EXISTING).
func Renameat(olddirfd int, oldname string, newdirfd int, newname string) error {
	o, n, err := at2(olddirfd, oldname, newdirfd, newname)
	if err != nil {
		return err
	}
	return errno(os.Rename(o, n))
}

func Symlinkat(target string, dirfd int, name string) error {
	p, err := at(dirfd, name)
	if err != nil {
		return err
	}
	return errno(os.Symlink(target, p))
}

func Unlinkat(dirfd int, name string, flags int) error {
	p, err := at(dirfd, name)
	if err != nil {
		return err
	}
	return errno(os.Remove(p))
}

func UtimesNanoAt(dirfd int, name string, ts []Timespec, flags int) error {
	p, err := at(dirfd, name)
	if err != nil {
		return err
	}
	if len(ts) != 2 {
		return syscall.EINVAL
	}
	return errno(os.Chtimes(p, time.Unix(ts[0].Sec, ts[0].Nsec), time.Unix(ts[1].Sec, ts[1].Nsec)))
}

// Fchmodat sets the mode of name in dirfd: on Windows only the write bit
// means anything (the read-only attribute). A symlink is never followed.
func Fchmodat(dirfd int, name string, mode uint32, flags int) error {
	p, err := at(dirfd, name)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(p); err != nil {
		return errno(err)
	} else if fi.Mode()&fs.ModeSymlink != 0 {
		return syscall.ELOOP
	}
	return errno(os.Chmod(p, fs.FileMode(mode)&fs.ModePerm))
}

// at is the path of name in the directory open at dirfd.
func at(dirfd int, name string) (string, error) {
	dir, err := pathOf(windows.Handle(dirfd))
	if err != nil {
		return "", err
	}
	if name == "." {
		return dir, nil
	}
	return filepath.Join(dir, filepath.FromSlash(name)), nil
}

func at2(olddirfd int, oldname string, newdirfd int, newname string) (string, string, error) {
	o, err := at(olddirfd, oldname)
	if err != nil {
		return "", "", err
	}
	n, err := at(newdirfd, newname)
	return o, n, err
}

// pathOf returns the path of an open handle, without the \\?\ prefix when
// it names a drive.
func pathOf(h windows.Handle) (string, error) {
	buf := make([]uint16, windows.MAX_LONG_PATH)
	n, err := windows.GetFinalPathNameByHandle(h, &buf[0], uint32(len(buf)), 0)
	if err != nil {
		return "", errno(err)
	}
	if int(n) > len(buf) {
		return "", syscall.ENAMETOOLONG
	}
	p := windows.UTF16ToString(buf[:n])
	if strings.HasPrefix(p, `\\?\`) && len(p) >= 6 && p[5] == ':' {
		p = p[4:]
	}
	return p, nil
}

// open opens p with CreateFile; a folder needs backup semantics, and
// nofollow opens a reparse point itself instead of its target.
func open(p string, access, disp uint32, dir, nofollow bool) (windows.Handle, error) {
	name, err := windows.UTF16PtrFromString(p)
	if err != nil {
		return windows.InvalidHandle, syscall.EINVAL
	}
	attrs := uint32(windows.FILE_ATTRIBUTE_NORMAL | windows.FILE_FLAG_BACKUP_SEMANTICS)
	if nofollow {
		attrs |= windows.FILE_FLAG_OPEN_REPARSE_POINT
	}
	_ = dir // backup semantics open files and folders alike
	share := uint32(windows.FILE_SHARE_READ | windows.FILE_SHARE_WRITE | windows.FILE_SHARE_DELETE)
	h, err := windows.CreateFile(name, access, share, nil, disp, attrs, 0)
	if err != nil {
		return windows.InvalidHandle, errno(err)
	}
	return h, nil
}

// errno maps a Windows error to the errno value sync/apply compares with.
func errno(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return ENOENT
	case errors.Is(err, fs.ErrExist):
		return EEXIST
	case errors.Is(err, windows.ERROR_NOT_SUPPORTED), errors.Is(err, windows.ERROR_INVALID_FUNCTION):
		return ENOTSUP
	case errors.Is(err, windows.ERROR_TOO_MANY_LINKS):
		return EMLINK
	case errors.Is(err, fs.ErrPermission):
		return EPERM
	}
	return err
}
