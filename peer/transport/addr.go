// Package transport names where a device can be reached: an Addr is a
// network kind (TCP, QUIC, or any of the two) and an IP address and port, or
// a host name to resolve when dialling.
//
// The text form is what invite links, config.toml and status show:
//
//	192.0.2.7:22100         any: QUIC first, TCP if QUIC does not answer
//	quic://192.0.2.7:22100  QUIC (UDP) only
//	tcp://192.0.2.7:22100   TCP + TLS only
//	[2001:db8::7]:22100     IPv6, any
//	host.example:22100      a name, resolved at each dial
//
// The bare host:port form is the one older versions wrote, so every address
// they saved keeps parsing, and means what it did (TCP is still tried).
// Values are immutable and comparable.
//
// ReuseAddr is the socket option every UDP multicast socket of a device
// binds with (LAN discovery's, the multicast group's), so that several
// processes on one host share the port.
package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// MaxAddrLen bounds the text form of an address a peer may send.
const MaxAddrLen = 300

// Network is how an address is dialled.
type Network uint8

const (
	// Any is an address of both networks: QUIC is tried first, TCP after a
	// short head start (happy eyeballs).
	Any Network = iota
	TCP
	QUIC
	// Relay is a stream relayed by a third device (peer/relay): the kind of
	// a relayed connection, never of an address to dial.
	Relay
)

// ErrBadAddr: an address does not parse.
var ErrBadAddr = errors.New("bad address")

func (n Network) String() string {
	switch n {
	case Any:
		return "any"
	case TCP:
		return "tcp"
	case QUIC:
		return "quic"
	case Relay:
		return "relay"
	}
	return fmt.Sprintf("network(%d)", uint8(n))
}

// Addr is one address of a device. Either AddrPort is valid, or Host names
// a host to resolve (with Port).
type Addr struct {
	Net      Network
	AddrPort netip.AddrPort // valid when the host is an IP address
	Host     string         // a host name, when AddrPort is not valid
	Port     uint16         // the port of Host
}

// From makes the address of an IP address and port.
func From(n Network, ap netip.AddrPort) Addr {
	return Addr{Net: n, AddrPort: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
}

// FromNet makes the address a net.Addr names: a *net.UDPAddr is QUIC, a
// *net.TCPAddr TCP. It reports false for any other kind.
func FromNet(a net.Addr) (Addr, bool) {
	switch a := a.(type) {
	case *net.UDPAddr:
		return From(QUIC, a.AddrPort()), true
	case *net.TCPAddr:
		return From(TCP, a.AddrPort()), true
	}
	return Addr{}, false
}

// Parse reads the text form of an address (see the package doc).
func Parse(s string) (Addr, error) {
	if len(s) > MaxAddrLen {
		return Addr{}, fmt.Errorf("address of %d bytes (at most %d): %w", len(s), MaxAddrLen, ErrBadAddr)
	}
	var a Addr
	rest := s
	if scheme, r, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "quic", "udp":
			a.Net = QUIC
		case "tcp":
			a.Net = TCP
		default:
			return Addr{}, fmt.Errorf("address %q: unknown network %q (use quic:// or tcp://, or none for both): %w", s, scheme, ErrBadAddr)
		}
		rest = r
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil {
		return Addr{}, fmt.Errorf("address %q: %v: %w", s, err, ErrBadAddr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Addr{}, fmt.Errorf("address %q: port %q is not a number from 0 to 65535: %w", s, port, ErrBadAddr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return Addr{}, fmt.Errorf("address %q: zones are not supported: %w", s, ErrBadAddr)
		}
		a.AddrPort = netip.AddrPortFrom(ip.Unmap(), uint16(p))
		return a, nil
	}
	if host == "" || strings.ContainsAny(host, " /[]%@") {
		return Addr{}, fmt.Errorf("address %q: host %q is neither an IP address nor a host name: %w", s, host, ErrBadAddr)
	}
	a.Host, a.Port = host, uint16(p)
	return a, nil
}

// String is the text form Parse reads.
func (a Addr) String() string {
	var hp string
	if a.AddrPort.IsValid() {
		hp = a.AddrPort.String()
	} else {
		hp = net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
	}
	if a.Net == Any {
		return hp
	}
	return a.Net.String() + "://" + hp
}

// HostPort is the address without its network: what net.Dial takes.
func (a Addr) HostPort() string {
	if a.AddrPort.IsValid() {
		return a.AddrPort.String()
	}
	return net.JoinHostPort(a.Host, strconv.Itoa(int(a.Port)))
}

// IsValid reports whether a names a host (the zero Addr does not).
func (a Addr) IsValid() bool { return a.AddrPort.IsValid() || a.Host != "" }

// With returns a on network n.
func (a Addr) With(n Network) Addr {
	a.Net = n
	return a
}

// Has reports whether a may be dialled on network n.
func (a Addr) Has(n Network) bool { return a.Net == Any || a.Net == n }

// IsLocal reports whether the address is on this machine or a local
// network (loopback, private or link-local ranges): a peer there is reached
// on the LAN.
func (a Addr) IsLocal() bool {
	if !a.AddrPort.IsValid() {
		return false
	}
	ip := a.AddrPort.Addr()
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast()
}

// ParseList parses each address of ss, keeping the first error.
func ParseList(ss []string) ([]Addr, error) {
	out := make([]Addr, 0, len(ss))
	for _, s := range ss {
		a, err := Parse(s)
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
	return out, nil
}
