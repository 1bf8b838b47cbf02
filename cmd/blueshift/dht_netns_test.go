package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// dhtMoveBound is the stated bound (daemon/dht.go): a device whose
// addresses change is connected to its peers again within it.
const dhtMoveBound = 60 * time.Second

// TestE2EDHTMovedDeviceFoundAgain: alice and bob in two network namespaces
// joined by a veth pair, each daemon a DHT node bootstrapping from the
// other's. Bob may not dial out (nftables drops his new connections to the
// peer port), so only alice can bring the link back. Bob's address changes
// (198.18.215.2 -> .3); he republishes, alice loses the connection, looks
// him up in the DHT and dials his new address, within dhtMoveBound.
func TestE2EDHTMovedDeviceFoundAgain(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end, network namespaces")
	}
	nsA, nsB, _, ifB := vethPair(t, "bsdht", "198.18.215", true)
	// Bob dials nobody: his new connections to the peer port are dropped.
	netnsMustRun(t, "ip", "netns", "exec", nsB, "nft", "add", "table", "inet", "bsdht")
	netnsMustRun(t, "ip", "netns", "exec", nsB, "nft", "add", "chain", "inet", "bsdht", "output",
		"{ type filter hook output priority 0 ; policy accept ; }")

	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idA, idB := strings.TrimSpace(a.ok("id")), strings.TrimSpace(b.ok("id"))
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "before.txt"), "before the move\n")
	a.ok("share", "add", fa, "--name", "moving")
	b.ok("join", strings.SplitN(a.ok("invite", "moving"), "\n", 2)[0], fb, "--wait", "0")
	err := daemon.EditConfig(b.home, func(c *config.Config) error {
		p, err := c.FindPeer(idA)
		if err != nil {
			return err
		}
		p.Addresses = []string{"198.18.215.1:22100"} // the link has the test machine's own addresses
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a.startInDHT(nsA, "198.18.215.2:22101")
	b.startInDHT(nsB, "198.18.215.1:22101")
	waitTrees(t, fa, fb, "sync before the move", a, b)
	a.waitFor("bob's key learned and his address published", func(st daemon.Status) bool {
		return strings.Contains(a.readConfig(), "public_key = ") && connectedTo(st, idB)
	})
	b.waitFor("bob published his address", func(st daemon.Status) bool {
		return st.DHT != nil && len(st.DHT.Published) > 0 && strings.HasPrefix(st.DHT.Published[0], "198.18.215.2:")
	})
	netnsMustRun(t, "ip", "netns", "exec", nsB, "nft", "add", "rule", "inet", "bsdht", "output",
		"tcp", "dport", "22100", "ct", "state", "new", "drop")

	// Bob moves.
	netnsMustRun(t, "ip", "-n", nsB, "addr", "del", "198.18.215.2/24", "dev", ifB)
	netnsMustRun(t, "ip", "-n", nsB, "addr", "add", "198.18.215.3/24", "dev", ifB)
	moved := time.Now()
	deadline := moved.Add(dhtMoveBound)
	for {
		st, ok := a.status()
		if ok && connectedToAt(st, idB, "198.18.215.3:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice did not reach bob at his new address within %s\n--- alice:\n%s\n--- bob:\n%s", dhtMoveBound, a.logText(), b.logText())
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("alice found bob at his new address %v after he moved (bound %s)", time.Since(moved).Round(time.Millisecond), dhtMoveBound)
	write(t, filepath.Join(fa, "after.txt"), "after the move\n")
	waitTrees(t, fa, fb, "sync after the move", a, b)
}

func connectedToAt(st daemon.Status, id, addrPrefix string) bool {
	for _, p := range st.Peers {
		if p.ID == id && p.Connected && strings.HasPrefix(p.Address, addrPrefix) {
			return true
		}
	}
	return false
}

// startInDHT starts the daemon inside network namespace ns, listening on
// every address there (peer port 22100, DHT 22101), with LAN discovery off
// and the DHT bootstrapping from boot only. TCP only (--no-quic): the test
// is of finding a moved device again, which a QUIC connection that keeps
// its path alive across the move would hide.
func (d *device) startInDHT(ns, boot string) {
	d.t.Helper()
	d.startInNetns(ns, "--listen", ":22100", "--no-discovery", "--no-quic", "--ui", "off", "--dht-listen", ":22101", "--bootstrap", boot, "--log-level", "debug")
}
