package main

import (
	"fmt"
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
	nsA, nsB, _, ifB := vethPair(t, "bslife", "198.18.217", true)
	const addrA, addrB = "198.18.217.1", "198.18.217.2"

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
	d.startInNetns(ns, "--no-discovery", "--no-dht", "--log-level", "debug")
}
