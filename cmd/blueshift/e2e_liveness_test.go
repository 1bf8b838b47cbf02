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

// The keepalive bound is 15 s (peer/conn's default timeout); cutDeadline
// allows well over twice that on a loaded machine, yet fails the 60 s of
// silence the daemon used to take. Redialling waits at most the daemon's
// dial backoff (30 s) plus one dial attempt (10 s): backDeadline.
const (
	cutDeadline  = 40 * time.Second
	backDeadline = 90 * time.Second
)

// TestE2ESilentLinkIsNoticedAndHealed runs two real daemons in two network
// namespaces joined by a veth pair, paired and in sync, then drops every
// packet between them with an nftables rule (no FIN, no reset: a cut cable):
// both must show the other disconnected (keepalive), and when the rule goes
// they must reconnect on their own and sync a new file. Everything stays
// inside the namespaces, which are deleted at the end.
func TestE2ESilentLinkIsNoticedAndHealed(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end, network namespaces")
	}
	pid := os.Getpid()
	nsA, nsB := fmt.Sprintf("bslife%d-a", pid), fmt.Sprintf("bslife%d-b", pid)
	ifA, ifB := fmt.Sprintf("bslifa%d", pid%1000000), fmt.Sprintf("bslifb%d", pid%1000000)
	if out, err := exec.Command("ip", "netns", "add", nsA).CombinedOutput(); err != nil {
		t.Skipf("network namespaces unavailable (needs root or CAP_NET_ADMIN and iproute2): ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { netnsRun(t, "ip", "netns", "del", nsA) })
	netnsMustRun(t, "ip", "netns", "add", nsB)
	t.Cleanup(func() { netnsRun(t, "ip", "netns", "del", nsB) })
	if out, err := exec.Command("ip", "netns", "exec", nsB, "nft", "list", "tables").CombinedOutput(); err != nil {
		t.Skipf("nftables unavailable: %v: %s", err, out)
	}
	netnsMustRun(t, "ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	const addrA, addrB = "198.18.217.1", "198.18.217.2"
	for _, side := range []struct{ ns, iface, addr string }{{nsA, ifA, addrA + "/24"}, {nsB, ifB, addrB + "/24"}} {
		netnsMustRun(t, "ip", "-n", side.ns, "addr", "add", side.addr, "dev", side.iface)
		netnsMustRun(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
		netnsMustRun(t, "ip", "-n", side.ns, "link", "set", side.iface, "up")
	}

	// Devices after the namespaces: their daemons stop first.
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idA, idB := strings.TrimSpace(a.ok("id")), strings.TrimSpace(b.ok("id"))
	for _, d := range []struct {
		dev  *device
		addr string
	}{{a, addrA}, {b, addrB}} {
		err := daemon.EditConfig(d.dev.home, func(c *config.Config) error {
			c.Device.Listen = d.addr + ":22100"
			c.Device.Announce = []string{d.addr + ":22100"}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "before.txt"), "before the cut\n")
	a.ok("share", "add", fa, "--name", "life")
	a.startInQuiet(nsA)
	b.startInQuiet(nsB)
	link := strings.SplitN(a.ok("invite", "life"), "\n", 2)[0]
	b.ok("join", link, fb)
	waitTrees(t, fa, fb, "initial sync", a, b)
	a.waitFor("bob connected", func(st daemon.Status) bool { return connectedTo(st, idB) })
	b.waitFor("alice connected", func(st daemon.Status) bool { return connectedTo(st, idA) })

	// Cut: bob's side drops every packet, both ways.
	netnsMustRun(t, "ip", "netns", "exec", nsB, "nft", "add", "table", "inet", "bslife")
	t.Cleanup(func() { exec.Command("ip", "netns", "exec", nsB, "nft", "delete", "table", "inet", "bslife").Run() })
	for _, hook := range []string{"input", "output"} {
		netnsMustRun(t, "ip", "netns", "exec", nsB, "nft", "add", "chain", "inet", "bslife", hook,
			fmt.Sprintf("{ type filter hook %s priority 0 ; policy accept ; }", hook))
		dir := "iifname"
		if hook == "output" {
			dir = "oifname"
		}
		netnsMustRun(t, "ip", "netns", "exec", nsB, "nft", "add", "rule", "inet", "bslife", hook, dir, ifB, "drop")
	}
	cut := time.Now()
	disconnected := func(peer string) func(daemon.Status) bool {
		return func(st daemon.Status) bool { return !connectedTo(st, peer) }
	}
	b.waitForWithin(cutDeadline, "alice shown disconnected after the cut", disconnected(idA))
	tookB := time.Since(cut)
	a.waitForWithin(cutDeadline, "bob shown disconnected after the cut", disconnected(idB))
	tookA := time.Since(cut)
	t.Logf("silent link noticed: by bob %v, by alice %v after the cut (bound: 15 s keepalive timeout)",
		tookB.Round(100*time.Millisecond), tookA.Round(100*time.Millisecond))

	// Heal: the rule goes; they reconnect by themselves and sync again.
	netnsMustRun(t, "ip", "netns", "exec", nsB, "nft", "delete", "table", "inet", "bslife")
	healed := time.Now()
	b.waitForWithin(backDeadline, "alice connected again", func(st daemon.Status) bool { return connectedTo(st, idA) })
	a.waitForWithin(backDeadline, "bob connected again", func(st daemon.Status) bool { return connectedTo(st, idB) })
	t.Logf("reconnected %v after the link came back", time.Since(healed).Round(100*time.Millisecond))
	write(t, filepath.Join(fa, "after.txt"), "after the link came back\n")
	waitTrees(t, fa, fb, "sync after the link came back", a, b)
}

// startInQuiet starts the daemon inside network namespace ns with LAN
// discovery off: it listens where its configuration says.
func (d *device) startInQuiet(ns string) {
	d.t.Helper()
	d.cmd = exec.Command("ip", "netns", "exec", ns, bin, "--home", d.home, "run", "--no-discovery", "--no-dht", "--log-level", "debug")
	d.log = &syncWriter{}
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }() // ip netns exec execs the daemon: SIGTERM reaches it
	d.waitFor("the daemon answers", func(st daemon.Status) bool { return st.Listen != "" })
}

// waitForWithin is waitFor with its own deadline.
func (d *device) waitForWithin(limit time.Duration, what string, cond func(daemon.Status) bool) daemon.Status {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, ok := d.status()
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: waited %s for %s; last status %+v\nlog:\n%s", d.name, limit, what, st, d.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
