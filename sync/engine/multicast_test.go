package engine

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/blueshift-sync/blueshift/peer/multicast"
	"github.com/blueshift-sync/blueshift/peer/transport"
)

// openMulticast opens and runs the device's multicast group on loopback,
// if it has one; done is closed once the group has stopped (after ctx).
func (d *device) openMulticast(ctx context.Context) (*multicast.Group, <-chan struct{}) {
	done := make(chan struct{})
	if d.mcast == 0 {
		close(done)
		return nil, done
	}
	g, err := multicast.Open(ctx, multicast.Options{Interfaces: []string{"lo"}, Port: d.mcast, Log: d.log})
	if err != nil {
		d.t.Skipf("no multicast on loopback here: %v", err)
	}
	go func() { defer close(done); g.Run(ctx) }()
	return g, done
}

// multicastSwarm is swarmOf with every device on one loopback group.
func multicastSwarm(t *testing.T, n, port int, files []int) ([]*device, *uploaded, int64) {
	return swarmOf(t, n, files, func(devs []*device) {
		for _, d := range devs {
			d.mcast = port
			d.restart() // reopen with the group
		}
	})
}

// TestMulticastSeederSendsOnce: one seeder, four receivers on one LAN
// group. The seeder sends each block once to the group; the receivers
// check and take them, and fetch by unicast only what did not arrive. The
// seeder's unicast upload is a small part of the data (the unicast swarm
// alone makes it ~1.2x, TestSwarmSeederUploadsOnce), and each receiver
// took most blocks from the group.
func TestMulticastSeederSendsOnce(t *testing.T) {
	devs, up, total := multicastSwarm(t, 4, 21991, []int{6 << 20, 3 << 20})
	waitConvergedFor(t, 120*time.Second, devs...)
	seeder := devs[0].e.MulticastStatus()
	t.Logf("seeder: %+v; unicast block bytes %d for %d bytes of data", seeder, up.n.Load(), total)
	if seeder.SessionsSent == 0 || seeder.BlocksSent == 0 {
		t.Fatalf("the seeder sent nothing to the group: %+v", seeder)
	}
	ratio := float64(up.n.Load()+seeder.BytesSent) / float64(total)
	t.Logf("seeder upload (unicast payload + datagrams) / data: %.2fx", ratio)
	if uni := float64(up.n.Load()) / float64(total); uni > 0.5 {
		t.Errorf("the seeder uploaded %.2fx the data by unicast beside multicast; want < 0.5x", uni)
	}
	for _, d := range devs[1:] {
		st := d.e.MulticastStatus()
		t.Logf("%s: %+v", d.name, st)
		if st.SessionsJoined == 0 || st.BlocksReceived < seeder.BlocksSent/2 {
			t.Errorf("%s took %d of %d blocks from the group; want most", d.name, st.BlocksReceived, seeder.BlocksSent)
		}
		if len(st.Recent) != 2 || st.Recent[0].Via != "multicast" || st.Recent[1].Via != "multicast" {
			t.Errorf("%s says its pulls took %+v; want both by multicast", d.name, st.Recent)
		}
		for _, p := range st.Recent {
			if p.Family != "ipv4" && p.Family != "ipv6" {
				t.Errorf("%s: a pull by multicast names the group's family %q", d.name, p.Family)
			}
		}
	}
}

// TestMulticastOneReceiverIsUnicast: with a single receiver the sender
// declines (unicast serves one as well) and the pull goes on by unicast.
func TestMulticastOneReceiverIsUnicast(t *testing.T) {
	devs, _, _ := multicastSwarm(t, 1, 21992, []int{3 << 20})
	waitConvergedFor(t, 60*time.Second, devs...)
	if st := devs[0].e.MulticastStatus(); st.SessionsSent != 0 {
		t.Errorf("a session for one receiver: %+v", st)
	}
	if st := devs[1].e.MulticastStatus(); st.Declined == 0 || len(st.Recent) != 1 || st.Recent[0].Via != "unicast" || st.Recent[0].Why != "one receiver" {
		t.Errorf("the receiver never asked for multicast, or says otherwise: %+v", st)
	}
}

// TestMulticastStrangerCannotPoison: a stranger on the group replays every
// datagram it hears and sends tampered copies. Nothing of it is taken
// (the receivers refuse it), the files arrive intact, and sync completes.
func TestMulticastStrangerCannotPoison(t *testing.T) {
	const port = 21993
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- stranger(ctx, t, port) }()
	devs, _, _ := multicastSwarm(t, 3, port, []int{4 << 20})
	waitConvergedFor(t, 120*time.Second, devs...)
	cancel()
	sent := <-done
	var refused int64
	for _, d := range devs[1:] {
		st := d.e.MulticastStatus()
		refused += st.Refused
		t.Logf("%s: %+v", d.name, st)
	}
	t.Logf("stranger sent %d datagrams; receivers refused %d", sent, refused)
	if sent == 0 {
		t.Fatal("the stranger heard nothing to forge from")
	}
	if refused == 0 {
		t.Error("no forged or replayed datagram was refused: did any reach the receivers?")
	}
}

// stranger listens on the group (it can, being on the LAN) and sends back
// each datagram twice: once as it was (a replay) and once with its body
// changed (a forgery under the session's ID). It returns how many it sent.
func stranger(ctx context.Context, t *testing.T, port int) int {
	c, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Error(err)
		return 0
	}
	group := &net.UDPAddr{IP: multicast.DefaultGroup4.AsSlice(), Port: port}
	listen, err := (&net.ListenConfig{Control: transport.ReuseAddr}).ListenPacket(ctx, "udp4", group.String())
	if err != nil {
		t.Error(err)
		return 0
	}
	defer listen.Close()
	p := ipv4.NewPacketConn(listen)
	if err := p.JoinGroup(lo, group); err != nil {
		t.Error(err)
		return 0
	}
	out := ipv4.NewPacketConn(c)
	out.SetMulticastInterface(lo)
	out.SetMulticastLoopback(true)
	stop := context.AfterFunc(ctx, func() { listen.Close() })
	defer stop()
	buf := make([]byte, 2048)
	sent := 0
	for {
		n, _, err := listen.ReadFrom(buf)
		if err != nil {
			return sent
		}
		pkt := bytes.Clone(buf[:n])
		if sent%2 == 0 {
			out.WriteTo(pkt, nil, group) // replay
		} else {
			pkt[n-20] ^= 0xff // tamper with the sealed body
			out.WriteTo(pkt, nil, group)
		}
		sent++
		if sent > 20000 {
			return sent
		}
	}
}

// TestMulticastGroupThatDoesNotWork: the receivers listen where the
// seeder's datagrams never arrive (as on a switch or Wi-Fi that drops
// multicast). The probe finds it out, the session is called off, and the
// file comes by unicast; status says why.
func TestMulticastGroupThatDoesNotWork(t *testing.T) {
	devs, _, _ := swarmOf(t, 2, []int{3 << 20}, func(devs []*device) {
		for i, d := range devs {
			d.mcast = 21994
			if i > 0 {
				d.mcast = 21995 // not the seeder's port: its probes never arrive
			}
			d.restart()
		}
	})
	waitConvergedFor(t, 60*time.Second, devs...)
	if st := devs[0].e.MulticastStatus(); st.SessionsSent != 0 || st.BlocksSent != 0 {
		t.Errorf("the seeder sent to a group nobody heard: %+v", st)
	}
	for _, d := range devs[1:] {
		st := d.e.MulticastStatus()
		if len(st.Recent) != 1 || st.Recent[0].Via != "unicast" || st.Recent[0].Why != "group failed" {
			t.Errorf("%s: %+v; want its pull by unicast, the group failed", d.name, st)
		}
	}
}

// TestMulticastShareOff: receivers whose share has multicast off never ask
// for it, though their engines have a group: the files come by unicast.
func TestMulticastShareOff(t *testing.T) {
	devs, _, _ := swarmOf(t, 2, []int{3 << 20}, func(devs []*device) {
		for i, d := range devs {
			d.mcast = 21997
			d.noMulticast = i > 0
			d.restart()
		}
	})
	waitConvergedFor(t, 60*time.Second, devs...)
	if st := devs[0].e.MulticastStatus(); st.SessionsSent != 0 {
		t.Errorf("a session for receivers whose share is off: %+v", st)
	}
	for _, d := range devs[1:] {
		st := d.e.MulticastStatus()
		if len(st.Recent) != 1 || st.Recent[0].Why != "share off" || st.SessionsJoined != 0 {
			t.Errorf("%s: %+v; want its pull by unicast, the share off", d.name, st)
		}
	}
}

// TestMulticastSenderWithout: receivers with a group pull from a seeder
// whose Hello does not offer multicast (an older build, or multicast off
// there): they never ask it, and sync as before. The first receiver to
// pull pulls from the seeder; the other may pull from it or from that
// receiver (a swarm), which offers multicast but has one receiver only.
func TestMulticastSenderWithout(t *testing.T) {
	devs, up, _ := swarmOf(t, 2, []int{3 << 20}, func(devs []*device) {
		for _, d := range devs[1:] {
			d.mcast = 21998
			d.restart()
		}
	})
	waitConvergedFor(t, 60*time.Second, devs...)
	if up.n.Load() == 0 {
		t.Fatal("the seeder served nothing by unicast")
	}
	fromSeeder := 0
	for _, d := range devs[1:] {
		st := d.e.MulticastStatus()
		if len(st.Recent) == 0 || st.Recent[0].Via != "unicast" || st.SessionsJoined != 0 {
			t.Errorf("%s: %+v; want its pull by unicast", d.name, st)
			continue
		}
		switch st.Recent[0].Why {
		case "no multicast at the sender":
			fromSeeder++
		case "one receiver":
		default:
			t.Errorf("%s: pulled by unicast because %q; want no multicast at the sender (or one receiver, from the other receiver)", d.name, st.Recent[0].Why)
		}
	}
	if fromSeeder == 0 {
		t.Error("no receiver pulled from the seeder for want of multicast there")
	}
}
