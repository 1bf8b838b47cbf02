// Package posix is the handful of POSIX calls sync/apply is built on
// (openat, fstatat, renameat, linkat, ...: every write relative to an open
// directory, so a path swapped for a symlink cannot redirect it), under the
// names golang.org/x/sys/unix gives them.
//
// On unix systems each name is golang.org/x/sys/unix's own: the same
// types, constants and calls, so behaviour there is exactly unix's. On
// Windows the calls are emulated: a descriptor is a Windows handle, and an
// *at call works on the path of its directory's handle (no symlink is
// followed at the last component, but a parent swapped meanwhile is not
// detected as it is on unix); errors are mapped to the unix errno values
// sync/apply compares with. Other systems are not supported.
package posix
