package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/multicast"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// TestE2EMulticastBridge runs a seeder and four receivers as real daemons,
// each in its own network namespace, joined by a Linux bridge (multicast
// crosses it), with LAN discovery and multicast on (the defaults). A
// stranger in a sixth namespace on the same bridge listens to the group
// and sends back every datagram it hears, replayed or tampered with; one
// receiver's link drops 1% of the multicast datagrams (nftables). Once
// every device shares the folder, 18 MiB of random data arrives at the
// seeder. Every receiver ends with the seeder's files; the seeder's link
// carries little more than one copy of the data (nftables counts its
// output); the receivers refused the stranger's datagrams and took the
// seeder's blocks from the group.
func TestE2EMulticastBridge(t *testing.T) {
	t.Parallel()
	const receivers = 4
	ctx, nw := mcNetwork(t, "bsmc-", receivers+2, netns.Link{RateMbit: 1000})
	strangerEP := nw.Endpoints[receivers+1]
	sw := newMcSwarm(t, nw, receivers, true)
	rs := sw.rs

	lossy := nw.Endpoints[receivers]
	drop := exec.Command("ip", "netns", "exec", lossy.NS, "nft", "-f", "-")
	drop.Stdin = strings.NewReader(fmt.Sprintf(`table inet bsmcloss {
  chain in {
    type filter hook input priority -20; policy accept;
    udp dport %d numgen random mod 100 < 1 counter drop
  }
}
`, multicast.DefaultPort))
	if out, err := drop.CombinedOutput(); err != nil {
		t.Fatalf("nft (1%% loss on %s): %v: %s", rs[receivers-1].name, err, out)
	}
	ctr, err := netns.NewLinkCounter(ctx, nw.Endpoints[0].NS, "bsmcseed")
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Close()

	stopStranger := startStranger(ctx, t, strangerEP, multicast.DefaultGroup4)
	up0 := uploaded(ctx, t, ctr)
	const fileSize, files = 6 << 20, 3
	done := sw.release(files, fileSize)
	up1 := uploaded(ctx, t, ctr)
	sent := stopStranger()

	data := float64(files * fileSize)
	ratio := float64(up1-up0) / data
	var others time.Duration
	for _, d := range done[:receivers-1] {
		others = max(others, d)
	}
	t.Logf("seeder link upload %d bytes for %d bytes of data: %.3fx; completion %v (the one with 1%% loss last); %.2fx the slowest other",
		up1-up0, int64(data), ratio, done, float64(done[receivers-1])/float64(others))
	st := sw.checkMulticast(sent, "")
	// One copy in datagrams is ~1.05x the data (UDP and AEAD overhead);
	// a copy per receiver would be 4x. On the link, the lossy receiver's
	// repairs come on top by unicast (from the seeder or the swarm: more
	// on a loaded machine), and so do TLS and the records: far below a
	// copy per receiver. The 1.1x target is the bench's row (make bench,
	// scenario 5), measured without race-built daemons and other tests.
	if sentX := float64(st.BytesSent) / data; sentX > 1.15 {
		t.Errorf("the seeder sent %.3fx the data to the group; want one copy (<= 1.15x)", sentX)
	}
	if ratio > 1.5 {
		t.Errorf("the seeder's link carried %.3fx the data to %d receivers; want well under a copy each (<= 1.5x)", ratio, receivers)
	}
}

// mcNetwork skips the test where the namespace tests cannot run (short,
// not root, no nftables), else returns the test's context and a shaped
// network of n namespaces named prefix and the PID, deleted when the test
// ends.
func mcNetwork(t *testing.T, prefix string, n int, link netns.Link) (context.Context, *netns.Network) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end, network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft (nftables) not installed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	nw, err := netns.NewShaped(ctx, fmt.Sprintf("%s%d", prefix, os.Getpid()%100000), n, link)
	if err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	t.Cleanup(nw.Close)
	return ctx, nw
}

// mcSwarm is a seeder (endpoint 0 of nw) and n receivers (endpoints 1
// to n) as real daemons with LAN discovery and multicast on (the
// defaults), sharing "release": each receiver joined by an invitation.
type mcSwarm struct {
	t      *testing.T
	work   string
	src    string // the seeder's folder
	seeder *device
	idS    string
	rs     []*device
	dsts   []string // the receivers' folders
}

// newMcSwarm starts the devices and returns once every receiver is
// connected to the seeder and holds the first file, and has met the other
// receivers (or lanDeadline passed: multicast needs only the seeder).
// With tell, each receiver is told the seeder's address; without, LAN
// discovery alone finds it (the receivers start first, to hear the
// seeder's first announcement).
func newMcSwarm(t *testing.T, nw *netns.Network, n int, tell bool) *mcSwarm {
	// Devices after the namespaces: their daemons stop before the
	// namespaces go (cleanups run last-first).
	sw := &mcSwarm{t: t, work: t.TempDir()}
	sw.src = filepath.Join(sw.work, "src")
	write(t, filepath.Join(sw.src, "hello.txt"), "a share many devices follow\n")
	sw.seeder = newDevice(t, "seeder")
	sw.idS = strings.TrimSpace(sw.seeder.ok("id"))
	sw.seeder.ok("share", "add", sw.src, "--name", "release")
	for i := range n {
		r := newDevice(t, fmt.Sprintf("r%d", i+1))
		link := strings.SplitN(sw.seeder.ok("invite", "release"), "\n", 2)[0]
		dst := filepath.Join(sw.work, r.name)
		r.ok("join", link, dst)
		err := daemon.EditConfig(r.home, func(c *config.Config) error {
			p, err := c.FindPeer(sw.idS)
			if err != nil {
				return err
			}
			p.Addresses = nil // the invitation's are the root namespace's
			if tell {
				p.Addresses = []string{net.JoinHostPort(nw.Endpoints[0].IP, "22100")}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		sw.rs, sw.dsts = append(sw.rs, r), append(sw.dsts, dst)
	}
	if tell {
		sw.seeder.startIn(nw.Endpoints[0].NS)
	}
	for i, r := range sw.rs {
		r.startIn(nw.Endpoints[i+1].NS)
	}
	if !tell {
		sw.seeder.startIn(nw.Endpoints[0].NS)
	}
	for i, r := range sw.rs {
		r.waitForLong("connected to the seeder", func(st daemon.Status) bool { return connectedTo(st, sw.idS) })
		waitTrees(t, sw.src, sw.dsts[i], "the first file", sw.seeder, r)
	}
	// The receivers meet each other (introductions, discovery); unicast
	// repairs come from them first. Multicast needs only the seeder.
	deadline := time.Now().Add(lanDeadline)
	for _, r := range sw.rs {
		for {
			st, ok := r.status()
			k := 0
			for _, p := range st.Peers {
				if p.Connected {
					k++
				}
			}
			if ok && k == n || time.Now().After(deadline) {
				t.Logf("%s connected to %d devices", r.name, k)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return sw
}

// release puts files of size bytes of random data in the seeder's folder
// at once (renamed in from a staging folder), waits until every receiver
// holds them all, and returns when each did, from the rename.
func (sw *mcSwarm) release(files, size int) []time.Duration {
	t := sw.t
	staging := filepath.Join(sw.work, "staging")
	rnd := rand.NewChaCha8([32]byte{42})
	for i := range files {
		data := make([]byte, size)
		rnd.Read(data)
		write(t, filepath.Join(staging, fmt.Sprintf("release-%d.bin", i)), string(data))
	}
	t0 := time.Now()
	for i := range files {
		name := fmt.Sprintf("release-%d.bin", i)
		if err := os.Rename(filepath.Join(staging, name), filepath.Join(sw.src, name)); err != nil {
			t.Fatal(err)
		}
	}
	done := make([]time.Duration, len(sw.rs))
	for left := len(sw.rs); left > 0; {
		for i, dst := range sw.dsts {
			if done[i] == 0 && holdsAll(dst, files, size) {
				done[i] = time.Since(t0)
				left--
			}
		}
		if time.Since(t0) > e2eDeadline {
			t.Fatalf("receivers not done after %s: %v", e2eDeadline, done)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, dst := range sw.dsts {
		waitTrees(t, sw.src, dst, "the release", sw.seeder, sw.rs[i])
	}
	return done
}

// checkMulticast checks that the seeder sent to the group, that every
// receiver took blocks from it and its status --json names multicast as
// the path of every large file, and that the receivers refused some of
// the stranger's sent datagrams. family, if not "", is the family status
// must name for the group ("ipv4", "ipv6"). It returns the seeder's
// counters.
func (sw *mcSwarm) checkMulticast(sent int, family string) engine.MulticastStats {
	t := sw.t
	st, _ := sw.seeder.status()
	t.Logf("seeder multicast: %+v", st.Multicast)
	if st.Multicast.SessionsSent == 0 || st.Multicast.BlocksSent == 0 {
		t.Errorf("the seeder sent nothing to the group: %+v\n%s", st.Multicast, sw.seeder.logText())
	}
	var refused int64
	for _, r := range sw.rs {
		st, _ := r.status()
		t.Logf("%s multicast: %+v", r.name, st.Multicast)
		refused += st.Multicast.Refused
		if st.Multicast.BlocksReceived == 0 {
			t.Errorf("%s took no block from the group", r.name)
		}
		if len(st.Multicast.Recent) == 0 {
			t.Errorf("%s: status --json names no path for the release", r.name)
		}
		for _, p := range st.Multicast.Recent {
			if p.Via != "multicast" {
				t.Errorf("%s: status --json says %s came by %s (%s)", r.name, p.Path, p.Via, p.Why)
			}
			if family != "" && p.Family != family {
				t.Errorf("%s: status --json says %s came from the %q group; want %q", r.name, p.Path, p.Family, family)
			}
		}
	}
	t.Logf("the stranger sent %d datagrams; the receivers refused %d", sent, refused)
	if sent == 0 || refused == 0 {
		t.Errorf("the stranger's datagrams (%d sent) never reached a receiver to be refused (%d)", sent, refused)
	}
	return st.Multicast
}

// uploaded returns what a counter counted out (upload) so far.
func uploaded(ctx context.Context, t *testing.T, c interface {
	Read(context.Context) (in, out int64, err error)
}) int64 {
	t.Helper()
	_, out, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// holdsAll reports whether dir holds the n release files at full size
// (a pulled file appears only once complete).
func holdsAll(dir string, n, size int) bool {
	for i := range n {
		fi, err := os.Stat(filepath.Join(dir, fmt.Sprintf("release-%d.bin", i)))
		if err != nil || fi.Size() != int64(size) {
			return false
		}
	}
	return true
}

// startStranger runs forgeOnGroup until the function it returns is
// called (or the test ends); that returns how many datagrams it sent.
func startStranger(ctx context.Context, t *testing.T, ep netns.Endpoint, group netip.Addr) func() int {
	ctx, cancel := context.WithCancel(ctx)
	var sent int
	var wg sync.WaitGroup
	wg.Go(func() { sent = forgeOnGroup(ctx, t, ep, group) })
	stop := func() int { cancel(); wg.Wait(); return sent }
	t.Cleanup(func() { stop() })
	return stop
}

// forgeOnGroup is the stranger: from inside its namespace it joins the
// group (multicast's of group's family) on its link and sends back each
// datagram it hears, alternately as it was (a replay) and with its sealed
// body changed (a forgery under the session's ID). It returns how many it
// sent once ctx ends.
func forgeOnGroup(ctx context.Context, t *testing.T, ep netns.Endpoint, groupIP netip.Addr) int {
	var listen, out net.PacketConn
	network := "udp4"
	if groupIP.Is6() {
		network = "udp6"
	}
	group := &net.UDPAddr{IP: groupIP.AsSlice(), Port: multicast.DefaultPort}
	err := ep.InNS(func() error {
		var err error
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
			return serr
		}}
		// An IPv6 link-local group cannot be bound without a zone: the
		// port alone, on a namespace where nothing else listens.
		bind := group.String()
		if groupIP.Is6() {
			bind = fmt.Sprintf("[::]:%d", multicast.DefaultPort)
		}
		if listen, err = lc.ListenPacket(ctx, network, bind); err != nil {
			return err
		}
		out, err = net.ListenPacket(network, net.JoinHostPort(ep.IP, "0"))
		return err
	})
	if err != nil {
		t.Errorf("stranger: %v", err)
		return 0
	}
	defer out.Close()
	eth, err := ep.Interface("eth0")
	if err != nil {
		listen.Close()
		t.Errorf("stranger: %v", err)
		return 0
	}
	// Its own datagrams do not loop back to it.
	var send func([]byte) error
	if groupIP.Is4() {
		err = ipv4.NewPacketConn(listen).JoinGroup(eth, group)
		po := ipv4.NewPacketConn(out)
		po.SetMulticastInterface(eth)
		po.SetMulticastTTL(1)
		po.SetMulticastLoopback(false)
		send = func(p []byte) error { _, err := po.WriteTo(p, nil, group); return err }
	} else {
		err = ipv6.NewPacketConn(listen).JoinGroup(eth, group)
		po := ipv6.NewPacketConn(out)
		po.SetMulticastInterface(eth)
		po.SetMulticastHopLimit(1)
		po.SetMulticastLoopback(false)
		send = func(p []byte) error { _, err := po.WriteTo(p, nil, group); return err }
	}
	if err != nil {
		listen.Close()
		t.Errorf("stranger: join the group: %v", err)
		return 0
	}
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
		if sent%2 == 1 {
			pkt[n-20] ^= 0xff
		}
		if send(pkt) == nil {
			sent++
		}
	}
}
