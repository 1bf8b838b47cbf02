//go:build unix

package transport

import "syscall"

// ReuseAddr is a net.ListenConfig Control that sets SO_REUSEADDR, so that
// several processes on one host (two daemons, a daemon and a test) bind
// the same UDP multicast port (LAN discovery's, the multicast group's);
// each gets every multicast packet.
func ReuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
