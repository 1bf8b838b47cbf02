//go:build linux

package multicast

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// forceReadBuffer asks for an n-byte receive buffer past net.core.rmem_max
// (SO_RCVBUFFORCE), which a daemon with CAP_NET_ADMIN may; others keep
// what SetReadBuffer got. A bigger buffer rides out a reader that stalls
// (a disk write) without dropping datagrams.
func forceReadBuffer(c net.PacketConn, n int) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n) // EPERM without the capability: best effort
	})
}
