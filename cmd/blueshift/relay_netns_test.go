//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
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
