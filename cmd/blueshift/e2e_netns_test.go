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
	pid := os.Getpid()
	nsA, nsB := fmt.Sprintf("bse2e%d-a", pid), fmt.Sprintf("bse2e%d-b", pid)
	ifA, ifB := fmt.Sprintf("bsea%d", pid), fmt.Sprintf("bseb%d", pid)
	if out, err := exec.Command("ip", "netns", "add", nsA).CombinedOutput(); err != nil {
		t.Skipf("network namespaces unavailable (needs root or CAP_NET_ADMIN and iproute2): ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { netnsRun(t, "ip", "netns", "del", nsA) })
	netnsMustRun(t, "ip", "netns", "add", nsB)
	t.Cleanup(func() { netnsRun(t, "ip", "netns", "del", nsB) }) // deleting a namespace deletes its veth end
	netnsMustRun(t, "ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	for _, side := range []struct{ ns, iface, addr string }{{nsA, ifA, "198.18.214.1/24"}, {nsB, ifB, "198.18.214.2/24"}} {
		netnsMustRun(t, "ip", "-n", side.ns, "addr", "add", side.addr, "dev", side.iface)
		netnsMustRun(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
		netnsMustRun(t, "ip", "-n", side.ns, "link", "set", side.iface, "up")
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
	d.cmd = exec.Command("ip", "netns", "exec", ns, bin, "--home", d.home, "run", "--listen", ":22100", "--no-dht", "--log-level", "debug")
	d.log = &syncWriter{}
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }() // ip netns exec execs the daemon: SIGTERM reaches it
	d.waitFor("the daemon answers", func(st daemon.Status) bool { return st.Listen != "" })
}

// waitForLong is waitFor with lanDeadline.
func (d *device) waitForLong(what string, cond func(daemon.Status) bool) daemon.Status {
	d.t.Helper()
	deadline := time.Now().Add(lanDeadline)
	for {
		st, ok := d.status()
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: waited %s for %s; last status %+v\nlog:\n%s", d.name, lanDeadline, what, st, d.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
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
