//go:build !linux

package multicast

import "net"

// forceReadBuffer does nothing where SO_RCVBUFFORCE does not exist.
func forceReadBuffer(net.PacketConn, int) {}
