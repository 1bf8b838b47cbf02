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
	const port, size = 21977, 1000
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
	send := func(batch byte, n int) {
		t.Helper()
		var c net.PacketConn
		err := nw.Endpoints[0].InNS(func() (err error) {
			c, err = net.ListenPacket("udp", ":0")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		eth, err := nw.Endpoints[0].Interface("eth0")
		if err != nil {
			t.Fatal(err)
		}
		p6, p4 := ipv6.NewPacketConn(c), ipv4.NewPacketConn(c)
		p4.SetMulticastInterface(eth)
		p6.SetMulticastInterface(eth)
		p := make([]byte, size)
		p[0] = batch
		// IPv4 first: had the bridge forwarded it, it would arrive first.
		if _, err := p4.WriteTo(p, nil, &net.UDPAddr{IP: group4.AsSlice(), Port: port}); err != nil {
			t.Logf("IPv4 multicast from an endpoint with no IPv4 address: %v", err)
		}
		for range n {
			if _, err := p6.WriteTo(p, nil, &net.UDPAddr{IP: group6.AsSlice(), Port: port}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// got reads what endpoint i received of batch, until it has want or
	// wait passes.
	got := func(c net.PacketConn, batch byte, want int, wait time.Duration) int {
		n := 0
		buf := make([]byte, 2*size)
		c.SetReadDeadline(time.Now().Add(wait))
		for n < want {
			m, _, err := c.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Error(err)
				}
				return n
			}
			if m == size && buf[0] == batch {
				n++
			}
		}
		return n
	}

	const n = 20
	send(1, n)
	for i := 1; i < 3; i++ {
		if k := got(recv6[i], 1, n, 20*time.Second); k < n-2 { // a veth may drop one
			t.Errorf("endpoint %d received %d of %d IPv6 multicast datagrams", i, k, n)
		}
		if k := got(recv4[i], 1, 1, 10*time.Millisecond); k != 0 {
			t.Errorf("endpoint %d received IPv4 multicast on an IPv6-only network", i)
		}
	}
	_, out, err := ctr.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// IPv6 and UDP headers: 48 B a datagram.
	if want := int64(n * (size + 48)); out != want {
		t.Errorf("the group counter counted %d B; want %d B (%d datagrams of %d B and their headers, once)", out, want, n, size)
	}

	if dropped, err := nw.DroppedIPv4(ctx); err != nil || dropped == 0 {
		t.Errorf("the bridge dropped %d B of IPv4 (%v); want the IPv4 datagram sent, and dropped", dropped, err)
	}

	if err := nw.DropMulticast(ctx, 2); err != nil {
		t.Fatal(err)
	}
	send(2, n)
	if k := got(recv6[1], 2, n, 20*time.Second); k < n-2 {
		t.Errorf("endpoint 1 received %d of %d IPv6 multicast datagrams after endpoint 2's port stopped multicast", k, n)
	}
	if k := got(recv6[2], 2, 1, 100*time.Millisecond); k != 0 {
		t.Errorf("endpoint 2 received %d multicast datagrams though the bridge drops multicast to it", k)
	}
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
