package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// TestIPv6OnlyNetworkCarriesMulticast: on an IPv6-only network of three
// endpoints, datagrams endpoint 0 sends to an IPv6 group reach both others
// at once (no address set up, no DAD wait), the group counter counts each
// once at the hub, and IPv4 sent to a group the receivers joined is dropped
// by the bridge. Once the bridge drops multicast to endpoint 2
// (DropMulticast), the next datagrams reach endpoint 1 only.
func TestIPv6OnlyNetworkCarriesMulticast(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if out, err := exec.Command("nft", "--version").CombinedOutput(); err != nil {
		t.Skipf("nftables unavailable: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nw, err := NewShaped(ctx, fmt.Sprintf("bs6-nt%d", os.Getpid()%100000), 3, Link{RateMbit: 1000, IPv6Only: true})
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	if ip := netip.MustParseAddr(nw.Endpoints[1].IP); !netip.MustParsePrefix(Prefix6).Contains(ip) {
		t.Fatalf("endpoint 1 has %v; want an address in %s", ip, Prefix6)
	}
	const port = 21977
	group6 := netip.MustParseAddr("ff12::6277")
	group4 := netip.MustParseAddr("239.192.77.1")
	ctr, err := nw.NewGroupCounter(ctx, 0, "bs6ntgroup", group6)
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Close()

	var recv6, recv4 [3]net.PacketConn
	for i := 1; i < 3; i++ {
		recv6[i] = joined(t, nw.Endpoints[i], "udp6", group6, port)
		recv4[i] = joined(t, nw.Endpoints[i], "udp4", group4, port)
	}

	const n = 20
	// IPv4 first: had the bridge forwarded it, it would be there once the
	// IPv6 datagrams are.
	sendGroup(t, nw.Endpoints[0], group4, port, 1, 1)
	sendGroup(t, nw.Endpoints[0], group6, port, 1, n)
	for i := 1; i < 3; i++ {
		if k := received(t, recv6[i], 1, n, 20*time.Second); k < n-2 { // a veth may drop one
			t.Errorf("endpoint %d received %d of %d IPv6 multicast datagrams", i, k, n)
		}
		if k := received(t, recv4[i], 1, 1, 10*time.Millisecond); k != 0 {
			t.Errorf("endpoint %d received IPv4 multicast on an IPv6-only network", i)
		}
	}
	_, out, err := ctr.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// IPv6 and UDP headers: 48 B a datagram.
	if want := int64(n * (testDatagram + 48)); out != want {
		t.Errorf("the group counter counted %d B; want %d B (%d datagrams of %d B and their headers, once)", out, want, n, testDatagram)
	}

	if dropped, err := nw.DroppedIPv4(ctx); err != nil || dropped == 0 {
		t.Errorf("the bridge dropped %d B of IPv4 (%v); want the IPv4 datagram sent, and dropped", dropped, err)
	}

	if err := nw.DropMulticast(ctx, 2); err != nil {
		t.Fatal(err)
	}
	sendGroup(t, nw.Endpoints[0], group6, port, 2, n)
	if k := received(t, recv6[1], 2, n, 20*time.Second); k < n-2 {
		t.Errorf("endpoint 1 received %d of %d IPv6 multicast datagrams after endpoint 2's port stopped multicast", k, n)
	}
	// The bridge floods a datagram to every port at once: had endpoint 2
	// been sent the batch, it would have it by now.
	if k := received(t, recv6[2], 2, 1, 100*time.Millisecond); k != 0 {
		t.Errorf("endpoint 2 received %d multicast datagrams though the bridge drops multicast to it", k)
	}
}

// TestBridgesThatDropMulticast probes which settings of a Linux bridge
// (the LAN's switch or access point) carry IPv4 multicast to a port whose
// device joined the group: snooping or not, with a querier or not, they
// do; a port that floods no multicast (DropMulticast) gets none unless a
// querier makes the bridge forward the group to the ports that joined it
// (the bridge's own querier counts once its start-up delay, ~10 s, has
// passed; until then the port gets nothing).
func TestBridgesThatDropMulticast(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bridge := func(nw *Network, args ...string) {
		t.Helper()
		if _, err := run(ctx, exec.CommandContext(ctx, "ip", append([]string{"-n", nw.Hub, "link", "set", "br0", "type", "bridge"}, args...)...)); err != nil {
			t.Fatal(err)
		}
	}
	drop := func(nw *Network) {
		t.Helper()
		if err := nw.DropMulticast(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []struct {
		name    string
		set     func(*Network)
		carries bool
	}{
		{"snooping, no querier (the default)", func(*Network) {}, true},
		{"no snooping", func(nw *Network) { bridge(nw, "mcast_snooping", "0") }, true},
		{"snooping, the bridge a querier", func(nw *Network) { bridge(nw, "mcast_querier", "1") }, true},
		{"the port floods no multicast", drop, false},
		{"the port floods no multicast, no snooping", func(nw *Network) { bridge(nw, "mcast_snooping", "0"); drop(nw) }, false},
		{"the port floods no multicast, the bridge a querier", func(nw *Network) { bridge(nw, "mcast_querier", "1"); drop(nw) }, true},
	} {
		nw, err := NewShaped(ctx, fmt.Sprintf("bs6-br%d-%d", os.Getpid()%100000, i), 3, Link{RateMbit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		defer nw.Close()
		const port, n = 21978, 10
		group := netip.MustParseAddr("239.192.77.2")
		c.set(nw)
		r1, r2 := joined(t, nw.Endpoints[1], "udp4", group, port), joined(t, nw.Endpoints[2], "udp4", group, port)
		// A bridge that forwards by what it snooped waits for a querier
		// (its own starts after a delay, longer on a loaded machine, and
		// until its first query even the port that floods may get
		// nothing): send until endpoint 1 has a batch and, for the
		// settings that carry multicast, endpoint 2 some of it.
		start, k1, k := time.Now(), 0, 0
		for batch := byte(1); ; batch++ {
			sendGroup(t, nw.Endpoints[0], group, port, batch, n)
			k1 = received(t, r1, batch, n, 2*time.Second)
			// Flooded or forwarded at once: had endpoint 2 been sent
			// them, it would have them by now.
			k = received(t, r2, batch, n, 100*time.Millisecond)
			if k1 >= n-2 && (!c.carries || k > 0) || time.Since(start) > time.Minute {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Logf("%-50s %d of %d datagrams (after %v)", c.name, k, n, time.Since(start).Round(time.Millisecond))
		if k1 < n-2 {
			t.Errorf("%s: the port that floods received %d of %d within a minute", c.name, k1, n)
		}
		if c.carries && k < n-2 || !c.carries && k > 0 {
			t.Errorf("%s: endpoint 2 received %d of %d datagrams; want them carried: %v", c.name, k, n, c.carries)
		}
	}
}

// testDatagram is the size of the datagrams sendGroup sends.
const testDatagram = 1000

// sendGroup sends n datagrams to group (port) from ep's eth0, each of
// testDatagram bytes starting with batch.
func sendGroup(t *testing.T, ep Endpoint, group netip.Addr, port int, batch byte, n int) {
	t.Helper()
	var c net.PacketConn
	err := ep.InNS(func() (err error) {
		c, err = net.ListenPacket("udp", ":0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eth, err := ep.Interface("eth0")
	if err != nil {
		t.Fatal(err)
	}
	p6, p4 := ipv6.NewPacketConn(c), ipv4.NewPacketConn(c)
	p4.SetMulticastInterface(eth)
	p6.SetMulticastInterface(eth)
	p := make([]byte, testDatagram)
	p[0] = batch
	to := &net.UDPAddr{IP: group.AsSlice(), Port: port}
	for range n {
		if group.Is4() {
			_, err = p4.WriteTo(p, nil, to)
		} else {
			_, err = p6.WriteTo(p, nil, to)
		}
		if err != nil {
			t.Fatalf("send to %v from %s: %v", group, ep.NS, err)
		}
	}
}

// received reads what c receives of batch, until it has want or wait
// passes, and returns how many it read.
func received(t *testing.T, c net.PacketConn, batch byte, want int, wait time.Duration) int {
	n := 0
	buf := make([]byte, 2*testDatagram)
	c.SetReadDeadline(time.Now().Add(wait))
	for n < want {
		m, _, err := c.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Error(err)
			}
			return n
		}
		if m == testDatagram && buf[0] == batch {
			n++
		}
	}
	return n
}

// joined opens a socket in ep's namespace on port, joined to group on
// its eth0; it is closed when the test ends.
func joined(t *testing.T, ep Endpoint, network string, group netip.Addr, port int) net.PacketConn {
	t.Helper()
	var c net.PacketConn
	err := ep.InNS(func() (err error) {
		c, err = net.ListenPacket(network, fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	eth, err := ep.Interface("eth0")
	if err != nil {
		t.Fatal(err)
	}
	g := &net.UDPAddr{IP: group.AsSlice()}
	if group.Is4() {
		err = ipv4.NewPacketConn(c).JoinGroup(eth, g)
	} else {
		err = ipv6.NewPacketConn(c).JoinGroup(eth, g)
	}
	if err != nil {
		t.Fatalf("join %v in %s: %v", group, ep.NS, err)
	}
	return c
}
