//go:build !unix

package transport

import "syscall"

// ReuseAddr does nothing where SO_REUSEADDR is not the POSIX one.
func ReuseAddr(network, address string, c syscall.RawConn) error { return nil }
