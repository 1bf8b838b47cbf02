//go:build unix

package multicast

import "syscall"

// reuseAddr lets several processes on one host (two daemons, a daemon and a
// test) bind the multicast port; each gets every multicast packet.
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
