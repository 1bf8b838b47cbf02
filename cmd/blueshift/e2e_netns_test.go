package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// lanDeadline allows for one missed announcement (LAN discovery announces
// every 30 s): a daemon that starts listening just after the other's first
// announcement hears the next one.
const lanDeadline = 90 * time.Second

// TestE2ELANDiscovery runs two real daemons in two network namespaces joined
// by a veth pair, with LAN discovery on and no address configured anywhere:
// bob joins alice's share through a link whose addresses were removed, finds
// alice by her multicast announcement, pairs with his token and syncs.
// Traffic stays inside the namespaces; they are deleted on cleanup.
func TestE2ELANDiscovery(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end, network namespaces")
	}
	nsA, nsB, ifA, ifB := vethPair(t, "bse2e", "198.18.214", false)
	for _, side := range []struct{ ns, iface string }{{nsA, ifA}, {nsB, ifB}} {
		netnsMustRun(t, "ip", "-n", side.ns, "route", "add", "224.0.0.0/4", "dev", side.iface)
	}

	// Devices are registered after the namespaces, so their daemons stop
	// (cleanups run last-first) before the namespaces go.
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idA, idB := strings.TrimSpace(a.ok("id")), strings.TrimSpace(b.ok("id"))
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "found.txt"), "found over the LAN\n")
	a.ok("share", "add", fa, "--name", "lan")
	link := strings.SplitN(a.ok("invite", "lan"), "\n", 2)[0]
	b.ok("join", link, fb)
	err := daemon.EditConfig(b.home, func(c *config.Config) error {
		p, err := c.FindPeer(idA)
		if err != nil {
			return err
		}
		p.Addresses = nil // only discovery can tell bob where alice is
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Bob first, so that he is listening when alice announces on start.
	b.startIn(nsB)
	a.startIn(nsA)
	began := time.Now()
	st := b.waitForLong("connected to alice, found by LAN discovery", func(st daemon.Status) bool { return connectedTo(st, idA) })
	t.Logf("bob found and connected to alice %v after she started", time.Since(began).Round(time.Millisecond))
	for _, p := range st.Peers {
		if p.ID == idA && !strings.HasPrefix(p.Address, "198.18.214.1:") && !strings.HasPrefix(p.Address, "[fe80::") {
			t.Fatalf("bob reached alice at %s, want her address on the veth link", p.Address)
		}
	}
	a.waitForLong("bob paired", func(st daemon.Status) bool { return connectedTo(st, idB) })
	waitTrees(t, fa, fb, "sync after discovery", a, b)
}

// startIn starts the daemon inside network namespace ns, listening on every
// address there, with LAN discovery on (as configured by init).
func (d *device) startIn(ns string) {
	d.t.Helper()
	d.startInNetns(ns, "--listen", ":22100", "--no-dht", "--log-level", "debug")
}

// waitForLong is waitFor with lanDeadline.
func (d *device) waitForLong(what string, cond func(daemon.Status) bool) daemon.Status {
	d.t.Helper()
	return d.waitForWithin(lanDeadline, what, cond)
}

// vethPair makes network namespaces NAME-a and NAME-b (NAME: prefix and the
// test process's ID) joined by a veth pair, addressed subnet.1/24 on a's
// side and subnet.2/24 on b's, lo up in both; the namespaces (and with
// them the pair) are deleted when the test ends. It skips the test where
// namespaces are unavailable, or nftables is and nft says it is needed.
// Devices registered after it stop their daemons before the namespaces go
// (cleanups run last-first).
func vethPair(t *testing.T, prefix, subnet string, nft bool) (nsA, nsB, ifA, ifB string) {
	t.Helper()
	pid := os.Getpid()
	nsA, nsB = fmt.Sprintf("%s%d-a", prefix, pid), fmt.Sprintf("%s%d-b", prefix, pid)
	ifA, ifB = fmt.Sprintf("%sa%d", prefix, pid%100000), fmt.Sprintf("%sb%d", prefix, pid%100000) // 15 bytes at most
	if out, err := exec.Command("ip", "netns", "add", nsA).CombinedOutput(); err != nil {
		t.Skipf("network namespaces unavailable (needs root or CAP_NET_ADMIN and iproute2): ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { netnsRun(t, "ip", "netns", "del", nsA) })
	netnsMustRun(t, "ip", "netns", "add", nsB)
	t.Cleanup(func() { netnsRun(t, "ip", "netns", "del", nsB) }) // deleting a namespace deletes its veth end
	if nft {
		if out, err := exec.Command("ip", "netns", "exec", nsB, "nft", "list", "tables").CombinedOutput(); err != nil {
			t.Skipf("nftables unavailable: %v: %s", err, out)
		}
	}
	netnsMustRun(t, "ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	for _, side := range []struct{ ns, iface, addr string }{{nsA, ifA, subnet + ".1/24"}, {nsB, ifB, subnet + ".2/24"}} {
		netnsMustRun(t, "ip", "-n", side.ns, "addr", "add", side.addr, "dev", side.iface)
		netnsMustRun(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
		netnsMustRun(t, "ip", "-n", side.ns, "link", "set", side.iface, "up")
	}
	return nsA, nsB, ifA, ifB
}

func netnsRun(t *testing.T, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func netnsMustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}
