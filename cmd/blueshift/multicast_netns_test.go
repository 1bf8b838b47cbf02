package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/multicast"
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
	defer cancel()
	const receivers = 4
	nw, err := netns.NewShaped(ctx, fmt.Sprintf("bsmc-%d", os.Getpid()%100000), receivers+2, netns.Link{RateMbit: 1000})
	if err != nil {
		t.Skipf("network namespaces unavailable: %v", err)
	}
	t.Cleanup(nw.Close)
	seederEP, strangerEP := nw.Endpoints[0], nw.Endpoints[receivers+1]

	// Devices after the namespaces: their daemons stop before the
	// namespaces go (cleanups run last-first).
	work := t.TempDir()
	src := filepath.Join(work, "src")
	write(t, filepath.Join(src, "hello.txt"), "a share many devices follow\n")
	seeder := newDevice(t, "seeder")
	idS := strings.TrimSpace(seeder.ok("id"))
	seeder.ok("share", "add", src, "--name", "release")
	var rs []*device
	var dsts []string
	for i := range receivers {
		r := newDevice(t, fmt.Sprintf("r%d", i+1))
		link := strings.SplitN(seeder.ok("invite", "release"), "\n", 2)[0]
		dst := filepath.Join(work, r.name)
		r.ok("join", link, dst)
		err := daemon.EditConfig(r.home, func(c *config.Config) error {
			p, err := c.FindPeer(idS)
			if err != nil {
				return err
			}
			p.Addresses = []string{seederEP.IP + ":22100"}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		rs, dsts = append(rs, r), append(dsts, dst)
	}
	seeder.startIn(seederEP.NS)
	for i, r := range rs {
		r.startIn(nw.Endpoints[i+1].NS)
	}
	for i, r := range rs {
		r.waitForLong("connected to the seeder", func(st daemon.Status) bool { return connectedTo(st, idS) })
		waitTrees(t, src, dsts[i], "the first file", seeder, r)
	}
	// The receivers meet each other (introductions, discovery); unicast
	// repairs come from them first. Multicast needs only the seeder.
	deadline := time.Now().Add(lanDeadline)
	for _, r := range rs {
		for {
			st, ok := r.status()
			n := 0
			for _, p := range st.Peers {
				if p.Connected {
					n++
				}
			}
			if ok && n == receivers || time.Now().After(deadline) {
				t.Logf("%s connected to %d devices", r.name, n)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

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
	ctr, err := netns.NewLinkCounter(ctx, seederEP.NS, "bsmcseed")
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Close()

	sctx, stopStranger := context.WithCancel(ctx)
	var sent int
	var sg sync.WaitGroup
	sg.Go(func() { sent = forgeOnGroup(sctx, t, strangerEP) })
	defer func() { stopStranger(); sg.Wait() }()

	_, up0, err := ctr.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const fileSize, files = 6 << 20, 3
	staging := filepath.Join(work, "staging")
	rnd := rand.NewChaCha8([32]byte{42})
	for i := range files {
		data := make([]byte, fileSize)
		rnd.Read(data)
		write(t, filepath.Join(staging, fmt.Sprintf("release-%d.bin", i)), string(data))
	}
	t0 := time.Now()
	for i := range files {
		name := fmt.Sprintf("release-%d.bin", i)
		if err := os.Rename(filepath.Join(staging, name), filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	done := make([]time.Duration, receivers)
	for left := receivers; left > 0; {
		for i, dst := range dsts {
			if done[i] == 0 && holdsAll(dst, files, fileSize) {
				done[i] = time.Since(t0)
				left--
			}
		}
		if time.Since(t0) > e2eDeadline {
			t.Fatalf("receivers not done after %s: %v", e2eDeadline, done)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i, dst := range dsts {
		waitTrees(t, src, dst, "the release", seeder, rs[i])
	}
	_, up1, err := ctr.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopStranger()
	sg.Wait()

	data := float64(files * fileSize)
	ratio := float64(up1-up0) / data
	var others time.Duration
	for _, d := range done[:receivers-1] {
		others = max(others, d)
	}
	t.Logf("seeder link upload %d bytes for %d bytes of data: %.3fx; completion %v (the one with 1%% loss last); %.2fx the slowest other",
		up1-up0, int64(data), ratio, done, float64(done[receivers-1])/float64(others))
	st, _ := seeder.status()
	t.Logf("seeder multicast: %+v", st.Multicast)
	if st.Multicast.SessionsSent == 0 || st.Multicast.BlocksSent == 0 {
		t.Errorf("the seeder sent nothing to the group: %+v\n%s", st.Multicast, seeder.logText())
	}
	var refused int64
	for _, r := range rs {
		st, _ := r.status()
		t.Logf("%s multicast: %+v", r.name, st.Multicast)
		refused += st.Multicast.Refused
		if st.Multicast.BlocksReceived == 0 {
			t.Errorf("%s took no block from the group", r.name)
		}
		for _, p := range st.Multicast.Recent {
			if p.Via != "multicast" {
				t.Errorf("%s: status --json says %s came by %s (%s)", r.name, p.Path, p.Via, p.Why)
			}
		}
	}
	t.Logf("the stranger sent %d datagrams; the receivers refused %d", sent, refused)
	if sent == 0 || refused == 0 {
		t.Errorf("the stranger's datagrams (%d sent) never reached a receiver to be refused (%d)", sent, refused)
	}
	// One copy in datagrams is ~1.05x the data (UDP and AEAD overhead);
	// a copy per receiver would be 4x. On the link, the lossy receiver's
	// repairs come on top by unicast (from the seeder or the swarm: more
	// on a loaded machine), and so do TLS and the records: far below a
	// copy per receiver. The 1.1x target is the bench's row (make bench,
	// scenario 5), measured without race-built daemons and other tests.
	if sentX := float64(st.Multicast.BytesSent) / data; sentX > 1.15 {
		t.Errorf("the seeder sent %.3fx the data to the group; want one copy (<= 1.15x)", sentX)
	}
	if ratio > 1.5 {
		t.Errorf("the seeder's link carried %.3fx the data to %d receivers; want well under a copy each (<= 1.5x)", ratio, receivers)
	}
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

// forgeOnGroup is the stranger: from inside its namespace it joins the
// group on its link and sends back each datagram it hears, alternately as
// it was (a replay) and with its sealed body changed (a forgery under the
// session's ID). It returns how many it sent once ctx ends.
func forgeOnGroup(ctx context.Context, t *testing.T, ep netns.Endpoint) int {
	var listen, out net.PacketConn
	group := &net.UDPAddr{IP: multicast.DefaultGroup4.AsSlice(), Port: multicast.DefaultPort}
	err := ep.InNS(func() error {
		var err error
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
			return serr
		}}
		if listen, err = lc.ListenPacket(ctx, "udp4", group.String()); err != nil {
			return err
		}
		out, err = net.ListenPacket("udp4", ep.IP+":0")
		return err
	})
	if err != nil {
		t.Errorf("stranger: %v", err)
		return 0
	}
	defer out.Close()
	eth, err := ifaceIn(ep)
	if err != nil {
		listen.Close()
		t.Errorf("stranger: %v", err)
		return 0
	}
	if err := ipv4.NewPacketConn(listen).JoinGroup(eth, group); err != nil {
		listen.Close()
		t.Errorf("stranger: join the group: %v", err)
		return 0
	}
	po := ipv4.NewPacketConn(out)
	po.SetMulticastInterface(eth)
	po.SetMulticastTTL(1)
	stop := context.AfterFunc(ctx, func() { listen.Close() })
	defer stop()
	buf := make([]byte, 2048)
	sent := 0
	for {
		n, from, err := listen.ReadFrom(buf)
		if err != nil {
			return sent
		}
		if ua, ok := from.(*net.UDPAddr); ok && ua.IP.String() == ep.IP {
			continue // its own
		}
		pkt := bytes.Clone(buf[:n])
		if sent%2 == 1 {
			pkt[n-20] ^= 0xff
		}
		if _, err := po.WriteTo(pkt, nil, group); err == nil {
			sent++
		}
	}
}

// ifaceIn returns the endpoint's link (eth0) as seen inside its namespace.
func ifaceIn(ep netns.Endpoint) (*net.Interface, error) {
	var ifi *net.Interface
	err := ep.InNS(func() (err error) {
		ifi, err = net.InterfaceByName("eth0")
		return err
	})
	return ifi, err
}
