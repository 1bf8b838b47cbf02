package discovery

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/peer/identity"
)

// The environment of a child re-executed inside a namespace.
const (
	netnsChildEnv = "BLUESHIFT_DISCOVERY_NETNS_CHILD" // the child's key seed, hex
	netnsPeerEnv  = "BLUESHIFT_DISCOVERY_NETNS_PEER"  // the device ID to find, hex
	netnsIfaceEnv = "BLUESHIFT_DISCOVERY_NETNS_IFACE" // the interface to use
)

// TestLANNamespaces runs two real Discovery instances in two network
// namespaces joined by a veth pair, with no configured peer address, and
// checks that each finds the other over IPv4 and over IPv6 link-local.
// Traffic stays inside the namespaces; they are deleted on cleanup.
func TestLANNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("network namespaces: skipped in -short")
	}
	pid := os.Getpid()
	nsA, nsB := fmt.Sprintf("bsdisc%d-a", pid), fmt.Sprintf("bsdisc%d-b", pid)
	ifA, ifB := fmt.Sprintf("bsa%d", pid), fmt.Sprintf("bsb%d", pid)
	if out, err := exec.Command("ip", "netns", "add", nsA).CombinedOutput(); err != nil {
		t.Skipf("network namespaces unavailable (needs root or CAP_NET_ADMIN and iproute2): ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { run(t, "ip", "netns", "del", nsA) })
	mustRun(t, "ip", "netns", "add", nsB)
	t.Cleanup(func() { run(t, "ip", "netns", "del", nsB) }) // deleting a namespace deletes its veth end
	mustRun(t, "ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	for _, side := range []struct{ ns, iface, addr string }{{nsA, ifA, "198.18.213.1/24"}, {nsB, ifB, "198.18.213.2/24"}} {
		mustRun(t, "ip", "-n", side.ns, "addr", "add", side.addr, "dev", side.iface)
		mustRun(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
		mustRun(t, "ip", "-n", side.ns, "link", "set", side.iface, "up")
		mustRun(t, "ip", "-n", side.ns, "route", "add", "224.0.0.0/4", "dev", side.iface)
	}

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := testKey(0xa), testKey(0xb)
	// Cleanups run last-first: this cancel comes after the children's own
	// cleanups have stopped them gently.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	found := make(chan string, 4)
	start := func(ns, iface string, key, peer seedKey) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, self, "-test.run=^$")
		id := idOf(peer)
		cmd.Env = append(os.Environ(),
			netnsChildEnv+"="+hex.EncodeToString(ed25519.PrivateKey(key).Seed()),
			netnsPeerEnv+"="+hex.EncodeToString(id[:]),
			netnsIfaceEnv+"="+iface)
		cmd.Stderr = &testWriter{t: t, prefix: ns + ": "}
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = &lineWriter{prefix: ns + " ", lines: found}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stdin.Close() // the child's signal to stop announcing
			if err := cmd.Wait(); err != nil {
				t.Errorf("%s: child: %v", ns, err)
			}
		})
		return cmd
	}
	start(nsA, ifA, keyA, keyB)
	start(nsB, ifB, keyB, keyA)

	want := map[string]string{nsA: "198.18.213.2:22000", nsB: "198.18.213.1:22000"}
	for range 2 {
		select {
		case line := <-found:
			t.Log(line)
			ns, addrs, _ := strings.Cut(line, " ")
			if !strings.Contains(addrs, want[ns]) {
				t.Errorf("%s found %s, want IPv4 %s among them", ns, addrs, want[ns])
			}
			if !strings.Contains(addrs, "[fe80::") {
				t.Errorf("%s found %s, want an IPv6 link-local address among them", ns, addrs)
			}
		case <-ctx.Done():
			t.Fatal("the two namespaces did not find each other within a minute")
		}
	}
}

// netnsChild runs in a namespace: it announces port 22000, waits until the
// peer's announcements gave both an IPv4 and an IPv6 address, prints them,
// and keeps announcing until its stdin closes.
func netnsChild() int {
	seed, err := hex.DecodeString(os.Getenv(netnsChildEnv))
	if err != nil || len(seed) != ed25519.SeedSize {
		fmt.Fprintln(os.Stderr, "bad key seed")
		return 2
	}
	peerHex, err := hex.DecodeString(os.Getenv(netnsPeerEnv))
	if err != nil || len(peerHex) != len(identity.DeviceID{}) {
		fmt.Fprintln(os.Stderr, "bad peer ID")
		return 2
	}
	peer := identity.DeviceID(peerHex)
	d, err := New(Options{
		Key:         seedKey(ed25519.NewKeyFromSeed(seed)),
		Addresses:   []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:22000")},
		Interfaces:  []string{os.Getenv(netnsIfaceEnv)},
		Interval:    200 * time.Millisecond,
		MinInterval: 100 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	reported := false
	for {
		select {
		case err := <-done:
			fmt.Fprintln(os.Stderr, "discovery stopped:", err)
			cancel()
			return 1
		case <-stop:
			cancel()
			if err := <-done; err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, "after Run returned:", err)
				return 1
			}
			return 0
		case <-tick.C:
		}
		if reported {
			continue
		}
		var has4, has6 bool
		addrs := d.Lookup(peer)
		for _, a := range addrs {
			has4 = has4 || a.Addr().Is4()
			has6 = has6 || a.Addr().Is6()
		}
		if has4 && has6 {
			fmt.Println("FOUND", addrs)
			reported = true
		}
	}
}

func run(t *testing.T, name string, args ...string) {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// lineWriter sends the child's "FOUND ..." lines, prefixed, to a channel.
type lineWriter struct {
	prefix string
	lines  chan<- string
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		line, rest, ok := bytes.Cut(w.buf, []byte("\n"))
		if !ok {
			return len(p), nil
		}
		w.buf = rest
		if found, ok := strings.CutPrefix(string(line), "FOUND "); ok {
			select {
			case w.lines <- w.prefix + found:
			default:
			}
		}
	}
}

// testWriter sends a child's stderr to the test log.
type testWriter struct {
	t      *testing.T
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
