//go:build unix

package engine

import "syscall"

// reuseForTest lets the test's stranger bind the group port beside the
// devices' sockets.
func reuseForTest(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
