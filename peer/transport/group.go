package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// GroupConn is a UDP socket bound to a multicast group's port on every
// address of the group's family (shared with other processes: ReuseAddr),
// set to send on the local link only (TTL or hop limit 1) and to hear its
// own packets (loopback, so several daemons on one host hear each other).
// LAN discovery and the multicast data group both use one per family;
// which interfaces join is theirs to decide (JoinGroup on P4 or P6).
type GroupConn struct {
	Conn  net.PacketConn
	P4    *ipv4.PacketConn // set for an IPv4 group
	P6    *ipv6.PacketConn // set for an IPv6 group
	Group *net.UDPAddr
}

// ListenGroup opens a GroupConn for group on port.
func ListenGroup(ctx context.Context, group netip.Addr, port int) (*GroupConn, error) {
	network, wildcard := "udp4", "0.0.0.0"
	if !group.Is4() {
		network, wildcard = "udp6", "::"
	}
	lc := net.ListenConfig{Control: ReuseAddr}
	c, err := lc.ListenPacket(ctx, network, net.JoinHostPort(wildcard, fmt.Sprint(port)))
	if err != nil {
		return nil, fmt.Errorf("listen on %s port %d: %w", network, port, err)
	}
	g := &GroupConn{Conn: c, Group: &net.UDPAddr{IP: group.AsSlice(), Port: port}}
	if group.Is4() {
		g.P4 = ipv4.NewPacketConn(c)
		err = errors.Join(g.P4.SetMulticastTTL(1), g.P4.SetMulticastLoopback(true))
	} else {
		g.P6 = ipv6.NewPacketConn(c)
		err = errors.Join(g.P6.SetMulticastHopLimit(1), g.P6.SetMulticastLoopback(true))
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("set multicast options on %s: %w", network, err)
	}
	return g, nil
}
