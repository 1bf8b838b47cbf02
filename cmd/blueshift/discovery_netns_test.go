package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/discovery"
)

// TestE2EDiscoveryStaysOnItsInterfaces runs daemons in a network namespace
// that has a veth pair besides loopback, and counts with nftables the
// discovery packets (UDP to the discovery port) and IGMP reports leaving
// through each interface. A daemon bound to loopback (--discovery-
// interfaces lo) announces on lo and sends nothing through the veth; one
// bound to the veth does send there, which shows the counter sees them.
func TestE2EDiscoveryStaysOnItsInterfaces(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end, network namespaces")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft (nftables) not installed")
	}
	pid := os.Getpid()
	ns := fmt.Sprintf("bsjoins-ns%d", pid)
	veth, vpeer := fmt.Sprintf("bsjoins%da", pid%1000000), fmt.Sprintf("bsjoins%db", pid%1000000)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("network namespaces unavailable (needs root or CAP_NET_ADMIN and iproute2): ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { netnsRun(t, "ip", "netns", "del", ns) }) // takes the veth pair with it
	netnsMustRun(t, "ip", "-n", ns, "link", "add", veth, "type", "veth", "peer", "name", vpeer)
	netnsMustRun(t, "ip", "-n", ns, "addr", "add", "198.18.215.1/24", "dev", veth)
	for _, ifc := range []string{"lo", veth, vpeer} {
		netnsMustRun(t, "ip", "-n", ns, "link", "set", ifc, "up")
	}
	netnsMustRun(t, "ip", "-n", ns, "link", "set", "lo", "multicast", "on")
	netnsMustRun(t, "ip", "-n", ns, "route", "add", "224.0.0.0/4", "dev", veth)
	rules := fmt.Sprintf(`table inet bsjoins {
	chain out {
		type filter hook output priority 0; policy accept;
		oifname "lo" udp dport %[1]d counter comment "disc-lo"
		oifname "%[2]s" udp dport %[1]d counter comment "disc-veth"
		oifname "%[2]s" meta l4proto igmp counter comment "igmp-veth"
	}
}
`, discovery.DefaultPort, veth)
	nft := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(rules)
	if out, err := nft.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
	count := func(comment string) int {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "bsjoins", "out").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list: %v: %s", err, out)
		}
		m := regexp.MustCompile(`packets (\d+) bytes \d+ comment "` + comment + `"`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no counter %q in:\n%s", comment, out)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}

	// Bound to loopback: it announces (on lo), and nothing leaves by the veth.
	lo := newDevice(t, "loopback-only")
	lo.startInNetns(ns, "--listen", "0.0.0.0:0", "--no-dht", "--log-level", "debug", "--discovery-interfaces", "lo")
	lo.waitFor("an announcement on lo", func(daemon.Status) bool { return count("disc-lo") > 0 })
	lo.stop() // ends its round: whatever it was going to send is sent
	if n, g := count("disc-veth"), count("igmp-veth"); n != 0 || g != 0 {
		t.Fatalf("a daemon bound to lo sent %d discovery packets and %d IGMP reports through %s\n%s", n, g, veth, lo.logText())
	}

	// The same config key works as the flag does; bound to the veth, the
	// announcements go out there (the counters see what they must).
	ve := newDevice(t, "veth-bound")
	ve.editConfig(func(c string) string {
		return strings.Replace(c, "interfaces = []", fmt.Sprintf("interfaces = [%q]", veth), 1)
	})
	ve.startInNetns(ns, "--listen", "0.0.0.0:0", "--no-dht", "--log-level", "debug")
	ve.waitFor("an announcement through the veth", func(daemon.Status) bool { return count("disc-veth") > 0 })
	ve.stop()
	if !strings.Contains(ve.logText(), "LAN discovery on the chosen interfaces only") {
		t.Fatalf("[discovery] interfaces not applied:\n%s", ve.logText())
	}
}

// editConfig rewrites the device's config.toml through edit.
func (d *device) editConfig(edit func(string) string) {
	d.t.Helper()
	path := filepath.Join(d.home, "config.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		d.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(edit(string(b))), 0o600); err != nil {
		d.t.Fatal(err)
	}
}
