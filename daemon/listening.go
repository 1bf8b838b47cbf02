package daemon

import (
	"net/netip"
	"slices"
	"strings"
	gosync "sync"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Where members listen, for introductions. A member usually dialled the
// device that invited it, over TCP from a port nobody can dial back, so the
// inviter had no address of it to pass on: the members it introduced to
// each other could only find each other through the DHT, and reached each
// other through the inviter's relay meanwhile (issue 16). So each Hello
// names where its sender listens (listenCap, one capability per address,
// the addresses it publishes in the DHT), and the receiver keeps, for
// introductions, those whose IP is the one the connection comes from: an
// address it has just seen the device at, never one a member could point
// at another host. Behind a NAT the IPs differ and nothing is kept (the
// DHT, punching and relays are for that).

// listenCap in a Hello names one address ("IP:port") its sender listens at.
const listenCap = "listen="

// listenCapabilities are our Hello's listenCap capabilities: where we
// listen, at most wire.MaxIntroAddrs.
func (d *Daemon) listenCapabilities() []string {
	var out []string
	for _, a := range d.ourAddresses() {
		if a, ok := introAddr(a); ok && len(listenCap+a) <= wire.MaxCapabilityLen && len(out) < wire.MaxIntroAddrs {
			out = append(out, listenCap+a) // too long would make the Hello invalid
		}
	}
	return out
}

// learnListen keeps where c's device said it listens, the addresses at the
// IP its connection comes from; a relayed connection says nothing of where
// the device is.
func (d *Daemon) learnListen(c *conn.Conn) {
	if c.Network() == transport.Relay {
		return
	}
	from, ok := transport.FromNet(c.RemoteAddr())
	if !ok {
		return
	}
	addrs := listenAt(c.PeerHello().Capabilities, from.AddrPort.Addr())
	if d.listening.set(c.Remote(), addrs) {
		d.log.Debug("a peer said where it listens", "peer", c.Remote().Abbrev(), "addrs", addrs)
	}
}

// listenAt returns the listenCap addresses in caps whose IP is ip, at most
// wire.MaxIntroAddrs, without duplicates.
func listenAt(caps []string, ip netip.Addr) []string {
	var out []string
	for _, c := range caps {
		text, ok := strings.CutPrefix(c, listenCap)
		if !ok {
			continue
		}
		ap, err := netip.ParseAddrPort(text)
		if err != nil || ap.Port() == 0 || ap.Addr().Unmap() != ip.Unmap() {
			continue
		}
		a, ok := introAddr(ap.String())
		if ok && !slices.Contains(out, a) && len(out) < wire.MaxIntroAddrs {
			out = append(out, a)
		}
	}
	return out
}

// listenSeen remembers where each peer last said it listens (learnListen)
// until the daemon stops: each says it again on each connection. The zero
// value is ready.
type listenSeen struct {
	mu gosync.Mutex
	m  map[identity.DeviceID][]string // guarded by mu
}

// set reports whether dev's addresses changed; none forgets them.
func (l *listenSeen) set(dev identity.DeviceID, addrs []string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.Equal(l.m[dev], addrs) {
		return false
	}
	if l.m == nil {
		l.m = map[identity.DeviceID][]string{}
	}
	if len(addrs) == 0 {
		delete(l.m, dev)
	} else {
		l.m[dev] = slices.Clone(addrs)
	}
	return true
}

func (l *listenSeen) of(dev identity.DeviceID) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.m[dev])
}
