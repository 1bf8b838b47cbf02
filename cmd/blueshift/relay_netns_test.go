//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2ERelayedThroughPublicMemberWhenNATIsSymmetric: b's router maps
// every flow to a new random port (a symmetric NAT: nftables masquerade
// random,fully-random, its mappings cleared by bouncing its WAN link), so
// the punch p introduces fails. a and b then connect through p, the public
// member both share a share with: the connection is relayed via p, its
// TLS pinned to a's and b's device keys end to end, and a new file written
// on a arrives on b. p's relay carried at least the file's size, and a
// capture of every packet on p's link never shows the file's plaintext
// marker.
func TestE2ERelayedThroughPublicMemberWhenNATIsSymmetric(t *testing.T) {
	t.Parallel()
	w := newNATWorld(t, "bsrelay-s")
	ctx := context.Background()
	router := w.in.Homes[1].Router
	for _, args := range [][]string{
		{"flush", "chain", "ip", "bsreach_nat", "masq"},
		{"add", "rule", "ip", "bsreach_nat", "masq", "oifname", "wan0", "masquerade", "random,fully-random"},
	} {
		if out, err := netns.NFT(ctx, router, args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %v in %s: %v: %s", args, router, err, out)
		}
	}
	// Making a NAT symmetric leaves its existing mappings as they are:
	// bouncing the WAN link clears them.
	netnsMustRun(t, "ip", "-n", router, "link", "set", "wan0", "down")
	netnsMustRun(t, "ip", "-n", router, "link", "set", "wan0", "up")
	w.startAll()

	st := w.a.waitForWithin(2*reachDeadline, "a reaches b relayed via p", func(st daemon.Status) bool {
		pb, ok := peerStatus(st, w.idB)
		return ok && pb.Reach == "relayed"
	})
	pb, _ := peerStatus(st, w.idB)
	t.Logf("a reaches b as %+v", pb)
	// The connection's ID is b's: the manager keeps a relayed stream only
	// once its inner TLS proved b's pinned key (peer/relay's tests show a
	// wrong device fails it).
	if pb.Transport != "relay" || pb.Via != w.idP || pb.ViaName != w.idP[:7] || pb.ID != w.idB {
		t.Fatalf("a reaches b as %+v, want relay via p (%s)", pb, w.idP[:7])
	}
	if out := w.a.ok("status"); !strings.Contains(out, "relay relayed via "+w.idP[:7]) {
		t.Errorf("a's status does not say b is relayed via p:\n%s", out)
	}
	w.b.waitForWithin(reachDeadline, "b reaches a relayed via p", func(st daemon.Status) bool {
		pa, ok := peerStatus(st, w.idA)
		return ok && pa.Reach == "relayed" && pa.Via == w.idP && pa.ID == w.idA
	})

	// The file: random bytes with a marker every 4 KiB, none of which may
	// show on p's link.
	var tag [8]byte
	rand.Read(tag[:])
	marker := []byte("BSRELAY-PLAINTEXT-MARKER-" + hex.EncodeToString(tag[:]))
	var data []byte
	for len(data) < 512<<10 {
		chunk := make([]byte, 4096-len(marker))
		rand.Read(chunk)
		data = append(append(data, marker...), chunk...)
	}
	capture := startCapture(t, netns.Endpoint{NS: w.in.Public[0].NS}, marker)
	_, before := relayStatus(t, w.p)
	if err := os.WriteFile(filepath.Join(w.dataA, "secret.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * reachDeadline)
	for {
		got, _ := os.ReadFile(filepath.Join(w.dataB, "secret.bin"))
		if bytes.Equal(got, data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("secret.bin did not reach b through the relay\na:\n%s\nb:\n%s\np:\n%s", w.a.logText(), w.b.logText(), w.p.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	packets, captured, seen := capture()
	circuits, after := relayStatus(t, w.p)
	t.Logf("while %d bytes synced: p relayed %d bytes over %d circuits; the capture on p's link saw %d packets, %d bytes", len(data), after-before, circuits, packets, captured)
	if circuits < 1 || after-before < int64(len(data)) {
		t.Errorf("p relayed %d bytes (%d circuits) while a %d-byte file went from a to b: it did not go through p's relay", after-before, circuits, len(data))
	}
	if captured < int64(len(data)) {
		t.Errorf("the capture on p's link saw %d bytes, less than the %d-byte file: it did not capture the relayed bytes", captured, len(data))
	}
	if seen {
		t.Errorf("a packet on p's link held the file's plaintext marker")
	}
}

// relayStatus reads the relay's circuits and bytes from d's status.
func relayStatus(t *testing.T, d *device) (int, int64) {
	t.Helper()
	st, ok := d.status()
	if !ok || st.Relay == nil {
		t.Fatalf("%s's status has no relay part: %+v", d.name, st.Relay)
	}
	return st.Relay.Circuits, st.Relay.Bytes
}

// startCapture reads every packet on every interface of e's namespace (a
// raw AF_PACKET socket) until the returned stop is called, which reports
// the packets and bytes seen and whether any packet held marker.
func startCapture(t *testing.T, e netns.Endpoint, marker []byte) (stop func() (packets, bytes int64, seen bool)) {
	t.Helper()
	var fd int
	err := e.InNS(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		return err
	})
	if err != nil {
		t.Fatalf("capture in %s: %v", e.NS, err)
	}
	tv := unix.Timeval{Usec: 200_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	var done atomic.Bool
	var n, total int64
	var found bool
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1<<16)
		for !done.Load() {
			k, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || k <= 0 {
				continue
			}
			n++
			total += int64(k)
			// A marker cut between two packets is still caught by its
			// neighbours: it repeats every 4 KiB.
			if bytes.Contains(buf[:k], marker[:16]) {
				found = true
			}
		}
	})
	var once sync.Once
	stop = func() (int64, int64, bool) {
		once.Do(func() {
			done.Store(true)
			wg.Wait()
			unix.Close(fd)
		})
		return n, total, found
	}
	t.Cleanup(func() { stop() })
	return stop
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestE2EFamilyInThreeHomesInviterAway: a family of four in three homes:
// a, the inviter, with a public address (a forwarded port); b behind its
// home router; c and d behind a third router, on one LAN. Every member
// knows the others' device IDs (as after the inviter's introductions) and
// only a's address. All four connect: b to c and d punched through their
// NATs (introduced by a), c to d relayed by a (their router does not
// hairpin, so a punch between them fails). Then a goes away: b, c and d
// stay connected to each other (c and d now relayed by b, a member behind
// a NAT, over the QUIC paths b punched) and a file written on each
// reaches the other two.
func TestE2EFamilyInThreeHomesInviterAway(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end, network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if out, err := exec.Command("nft", "--version").CombinedOutput(); err != nil {
		t.Skipf("nftables unavailable: %v: %s", err, out)
	}
	ctx := context.Background()
	in, err := netns.NewInternet(ctx, fmt.Sprintf("bsrelay-f%d", os.Getpid()%100000), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.Close)
	w := &natWorld{in: in}
	a, b, c, d := newDevice(t, "a"), newDevice(t, "b"), newDevice(t, "c"), newDevice(t, "d")
	devs := []*device{a, b, c, d}
	ids := map[*device]string{}
	dirs := map[*device]string{}
	work := t.TempDir()
	for _, x := range devs {
		ids[x] = strings.TrimSpace(x.ok("id"))
		dirs[x] = filepath.Join(work, "family-"+x.name)
		if err := os.MkdirAll(dirs[x], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(dirs[a], "family.txt"), "family\n")
	a.ok("share", "add", dirs[a], "--name", "family")
	family := configuredShare(t, a.home, "family")
	aAddr := in.Public[0].IP + ":22100"
	for _, x := range devs {
		peers := map[string][]string{}
		var others []string
		for _, o := range devs {
			if o == x {
				continue
			}
			others = append(others, ids[o])
			peers[ids[o]] = nil
			if o == a {
				peers[ids[o]] = []string{aAddr}
			}
		}
		w.configure(t, x, peers, shareWith(family, dirs[x], others...))
	}
	a.startInNSPort(in.Public[0].NS, 22100)
	b.startInNSPort(in.Homes[0].Device.NS, 22100)
	c.startInNSPort(in.Homes[1].Device.NS, 22100)
	d.startInNSPort(in.Homes[1].Device.NS, 22101)
	connectedToAll := func(x *device, want ...*device) func(daemon.Status) bool {
		return func(st daemon.Status) bool {
			for _, o := range want {
				if _, ok := peerStatus(st, ids[o]); !ok {
					return false
				}
			}
			return true
		}
	}
	for _, x := range devs {
		var want []*device
		for _, o := range devs {
			if o != x {
				want = append(want, o)
			}
		}
		st := x.waitForWithin(2*reachDeadline, x.name+" connected to the three others", connectedToAll(x, want...))
		for _, o := range want {
			p, _ := peerStatus(st, ids[o])
			t.Logf("%s reaches %s: %s %s via %s", x.name, o.name, p.Transport, p.Reach, p.ViaName)
		}
	}
	for _, x := range devs {
		waitTrees(t, dirs[a], dirs[x], "first sync of "+x.name, a, x)
	}

	a.stop()
	rest := []*device{b, c, d}
	for _, x := range rest {
		var want []*device
		for _, o := range rest {
			if o != x {
				want = append(want, o)
			}
		}
		st := x.waitForWithin(2*reachDeadline, x.name+" connected to the two others without a", connectedToAll(x, want...))
		for _, o := range want {
			p, _ := peerStatus(st, ids[o])
			t.Logf("without a, %s reaches %s: %s %s via %s", x.name, o.name, p.Transport, p.Reach, p.ViaName)
			if p.Reach == "relayed" && p.Via == ids[a] {
				t.Errorf("%s reaches %s relayed via a, which is away", x.name, o.name)
			}
		}
	}
	for _, from := range rest {
		name := "from-" + from.name + ".txt"
		write(t, filepath.Join(dirs[from], name), "written on "+from.name+" while a is away\n")
		for _, to := range rest {
			if to != from {
				waitTrees(t, dirs[from], dirs[to], name+" to "+to.name, from, to)
			}
		}
	}
}

// startInNSPort starts the daemon inside network namespace ns on port
// (TCP and UDP), LAN discovery and the DHT off.
func (d *device) startInNSPort(ns string, port int) {
	d.t.Helper()
	d.startInNetns(ns, "--listen", fmt.Sprintf(":%d", port), "--no-discovery", "--no-dht", "--log-level", "debug")
}

// TestRelayFlagsUsage: a relay rate that does not parse is a usage error
// naming the flag.
func TestRelayFlagsUsage(t *testing.T) {
	t.Parallel()
	d := newDevice(t, "flags")
	for _, args := range [][]string{
		{"run", "--relay-rate", "fast"},
		{"run", "--relay-rate", "-1MiB"},
		{"run", "--relay=maybe"},
	} {
		if _, errOut, code := d.cli(args...); code != 2 || !strings.Contains(errOut, "relay") {
			t.Errorf("%v: exit %d, %q; want 2 and the flag named", args, code, errOut)
		}
	}
}
