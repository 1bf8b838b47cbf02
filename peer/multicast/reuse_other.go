//go:build !unix

package multicast

import "syscall"

// reuseAddr does nothing where SO_REUSEADDR is not the POSIX one.
func reuseAddr(network, address string, c syscall.RawConn) error { return nil }
