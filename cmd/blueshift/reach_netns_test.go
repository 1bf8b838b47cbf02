package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// reachDeadline bounds each wait of the NAT tests: daemons built with -race
// on a shared machine, dial backoff included.
const reachDeadline = 90 * time.Second

// natWorld is the NAT test topology with its devices: p public (holding a
// small share with a and b), a and b each behind its own home router (NAT
// and firewall), sharing "data" with each other only. Nobody has an
// address for a or b: they reach p, and each other only through p's
// introduction.
type natWorld struct {
	in             *netns.Internet
	p, a, b        *device
	idP, idA, idB  string
	smallP, dataA  string
	smallA, smallB string
	dataB          string
	pCounter       *netns.Counter
}

func newNATWorld(t *testing.T, prefix string) *natWorld {
	in := newInternet(t, prefix)
	w := &natWorld{in: in}
	w.p, w.a, w.b = newDevice(t, "p"), newDevice(t, "a"), newDevice(t, "b")
	w.idP, w.idA, w.idB = strings.TrimSpace(w.p.ok("id")), strings.TrimSpace(w.a.ok("id")), strings.TrimSpace(w.b.ok("id"))
	work := t.TempDir()
	w.smallP, w.smallA, w.smallB = filepath.Join(work, "small-p"), filepath.Join(work, "small-a"), filepath.Join(work, "small-b")
	w.dataA, w.dataB = filepath.Join(work, "data-a"), filepath.Join(work, "data-b")
	for _, d := range []string{w.smallA, w.smallB, w.dataA, w.dataB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(w.smallP, "hello.txt"), "from the public member\n")
	w.p.ok("share", "add", w.smallP, "--name", "small")
	w.a.ok("share", "add", w.dataA, "--name", "data")
	small, data := configuredShare(t, w.p.home, "small"), configuredShare(t, w.a.home, "data")
	pAddr := w.in.Public[0].IP + ":22100" // both networks: QUIC first
	w.configure(t, w.p, map[string][]string{w.idA: nil, w.idB: nil}, shareWith(small, w.smallP, w.idA, w.idB))
	w.configure(t, w.a, map[string][]string{w.idP: {pAddr}, w.idB: nil}, shareWith(small, w.smallA, w.idP), shareWith(data, w.dataA, w.idB))
	w.configure(t, w.b, map[string][]string{w.idP: {pAddr}, w.idA: nil}, shareWith(small, w.smallB, w.idP), shareWith(data, w.dataB, w.idA))
	pc, err := netns.NewLinkCounter(context.Background(), w.in.Public[0].NS, "bsreach_plink")
	if err != nil {
		t.Fatal(err)
	}
	w.pCounter = pc
	return w
}

// newInternet makes the NAT tests' internet (cmd/internal/netns): one
// public network and two homes behind their routers, named after prefix
// and the test process, deleted when the test ends. It skips the test in
// -short, without root, or without nftables. Devices registered after it
// stop their daemons before the namespaces go (cleanups run last-first).
func newInternet(t *testing.T, prefix string) *netns.Internet {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end, network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if out, err := exec.Command("nft", "--version").CombinedOutput(); err != nil {
		t.Skipf("nftables unavailable: %v: %s", err, out)
	}
	in, err := netns.NewInternet(context.Background(), fmt.Sprintf("%s%d", prefix, os.Getpid()%100000), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close) // registered first: runs after the daemons stopped
	return in
}

// configuredShare returns the share named name in home's configuration.
func configuredShare(t *testing.T, home, name string) config.Share {
	t.Helper()
	c, err := config.Load(home)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range c.Shares {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no share %q in %s", name, home)
	return config.Share{}
}

func shareWith(s config.Share, path string, peers ...string) config.Share {
	n := config.NewShare(s.ID, path, s.Key)
	n.Name, n.Peers = s.Name, peers
	return n
}

// configure writes d's peers and shares (a share it has already is
// replaced).
func (w *natWorld) configure(t *testing.T, d *device, peers map[string][]string, shares ...config.Share) {
	t.Helper()
	err := daemon.EditConfig(d.home, func(c *config.Config) error {
		for id, addrs := range peers {
			if err := c.AddPeer(config.Peer{ID: id, Name: id[:7], Addresses: addrs}); err != nil {
				return err
			}
		}
		for _, s := range shares {
			c.Shares = slicesDeleteShare(c.Shares, s.ID)
			if err := c.AddShare(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func slicesDeleteShare(ss []config.Share, id string) []config.Share {
	var out []config.Share
	for _, s := range ss {
		if s.ID != id {
			out = append(out, s)
		}
	}
	return out
}

// startAll starts the three daemons in their namespaces.
func (w *natWorld) startAll() {
	w.p.startInNS(w.in.Public[0].NS)
	w.a.startInNS(w.in.Homes[0].Device.NS)
	w.b.startInNS(w.in.Homes[1].Device.NS)
}

// startInNS starts the daemon inside network namespace ns on port 22100
// (TCP and UDP), LAN discovery and the DHT off: p's introduction is what
// the NAT tests are of.
func (d *device) startInNS(ns string) {
	d.t.Helper()
	d.startInNetns(ns, "--listen", ":22100", "--no-discovery", "--no-dht", "--log-level", "debug")
}

func peerStatus(st daemon.Status, id string) (daemon.PeerStatus, bool) {
	for _, p := range st.Peers {
		if p.ID == id && p.Connected {
			return p, true
		}
	}
	return daemon.PeerStatus{}, false
}

// TestE2EPunchThroughNATs: a and b, each behind a home router that
// masquerades and lets in only replies, connect directly: p, the public
// member both reach, introduces them, both punch at once over QUIC, and a
// file of 8 MiB syncs from a to b. The bytes do not pass through p: p's
// link carries less than a tenth of the file, and a's router forwarded the
// file straight to b's router.
func TestE2EPunchThroughNATs(t *testing.T) {
	t.Parallel()
	w := newNATWorld(t, "bsreach-p")
	w.startAll()
	ctx := context.Background()
	w.a.waitForWithin(reachDeadline, "a reaches p over QUIC", func(st daemon.Status) bool {
		p, ok := peerStatus(st, w.idP)
		return ok && p.Transport == "quic" && p.Reach == "direct"
	})
	began := time.Now()
	st := w.a.waitForWithin(reachDeadline, "a connected to b, punched via p", func(st daemon.Status) bool {
		_, ok := peerStatus(st, w.idB)
		return ok
	})
	pb, _ := peerStatus(st, w.idB)
	t.Logf("a connected to b %v after reaching p: %+v", time.Since(began).Round(time.Millisecond), pb)
	if pb.Transport != "quic" || pb.Reach != "punched" || pb.Via != w.idP || !strings.HasPrefix(pb.Address, w.in.Homes[1].WAN+":") {
		t.Fatalf("a reaches b as %+v, want quic punched via p at b's router %s", pb, w.in.Homes[1].WAN)
	}
	if len(st.Reflexive) == 0 || !strings.HasPrefix(st.Reflexive[0], "quic://"+w.in.Homes[0].WAN+":") {
		t.Errorf("a's reflexive addresses %v, want its router's WAN address %s", st.Reflexive, w.in.Homes[0].WAN)
	}

	// The data: random bytes (no compression), counted from here.
	pIn0, pOut0, err := w.pCounter.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, direct0, err := w.in.Forwarded(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	const size = 8 << 20
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(filepath.Join(w.dataA, "big.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(reachDeadline)
	for {
		got, _ := os.ReadFile(filepath.Join(w.dataB, "big.bin"))
		if bytes.Equal(got, data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("big.bin did not reach b\na:\n%s\nb:\n%s", w.a.logText(), w.b.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	pIn, pOut, err := w.pCounter.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, direct, err := w.in.Forwarded(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pIn0 == 0 || pOut0 == 0 {
		t.Fatalf("p's link counter counted nothing (in %d, out %d) although a and b connected to p", pIn0, pOut0)
	}
	viaP, straight := (pIn-pIn0)+(pOut-pOut0), direct-direct0
	t.Logf("while %d bytes synced: p's link carried %d bytes (%.4f of the file), a's router forwarded %d bytes straight to the other home (%.3f of the file)",
		size, viaP, float64(viaP)/size, straight, float64(straight)/size)
	if viaP > size/10 {
		t.Errorf("p's link carried %d bytes during an %d-byte sync: the data went through p", viaP, size)
	}
	if straight < size {
		t.Errorf("a's router forwarded only %d bytes to the other home, less than the %d-byte file", straight, size)
	}
}

// TestE2ETCPFallbackWhenUDPBlocked: b's router drops all UDP. b still
// reaches p, over TCP (QUIC gets no answer, TCP follows after its head
// start), and syncs p's share; a, whose network allows UDP, reaches p over
// QUIC.
func TestE2ETCPFallbackWhenUDPBlocked(t *testing.T) {
	t.Parallel()
	w := newNATWorld(t, "bsreach-u")
	if err := w.in.BlockUDP(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	w.startAll()
	st := w.b.waitForWithin(reachDeadline, "b reaches p", func(st daemon.Status) bool {
		_, ok := peerStatus(st, w.idP)
		return ok
	})
	if p, _ := peerStatus(st, w.idP); p.Transport != "tcp" {
		t.Fatalf("b reaches p as %+v, want TCP (UDP is blocked)", p)
	}
	waitForFile(t, filepath.Join(w.smallB, "hello.txt"), "from the public member\n", w.b)
	st = w.a.waitForWithin(reachDeadline, "a reaches p", func(st daemon.Status) bool {
		_, ok := peerStatus(st, w.idP)
		return ok
	})
	if p, _ := peerStatus(st, w.idP); p.Transport != "quic" {
		t.Fatalf("a reaches p as %+v, want QUIC", p)
	}
}

func waitForFile(t *testing.T, path, want string, d *device) {
	t.Helper()
	deadline := time.Now().Add(reachDeadline)
	for {
		if got, err := os.ReadFile(path); err == nil && string(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never held %q\n%s", path, want, d.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
