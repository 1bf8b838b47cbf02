package main

import (
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/multicast"
)

// TestE2EMulticastIPv6 is TestE2EMulticastBridge on an IPv6-only LAN: a
// seeder and three receivers in namespaces on a Linux bridge that
// forwards no IPv4 (each device has a unique local address and its
// link-local one), found by LAN discovery alone (no address configured),
// and a stranger that replays and forges every datagram it hears on the
// IPv6 group. 18 MiB of random data reach every receiver; what the
// seeder sent to the IPv6 group at the hub is about one copy of the
// data, its whole upload well under a copy per receiver; the receivers'
// status --json names multicast as the path; the stranger's datagrams
// were refused.
func TestE2EMulticastIPv6(t *testing.T) {
	t.Parallel()
	const receivers = 3
	ctx, nw := mcNetwork(t, "bs6-mc", receivers+2, netns.Link{RateMbit: 1000, IPv6Only: true})
	sw := newMcSwarm(t, nw, receivers, false)
	for _, r := range sw.rs {
		st, _ := r.status()
		for _, p := range st.Peers {
			if p.ID == sw.idS && !strings.HasPrefix(p.Address, "[") {
				t.Errorf("%s reached the seeder at %s on an IPv6-only LAN", r.name, p.Address)
			} else if p.ID == sw.idS {
				t.Logf("%s found the seeder at %s", r.name, p.Address)
			}
		}
	}

	ctr, err := nw.NewCrossedCounter(ctx, 0, "bs6seed")
	if err != nil {
		t.Fatal(err)
	}
	defer ctr.Close()
	grp, err := nw.NewGroupCounter(ctx, 0, "bs6group", multicast.DefaultGroup6)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()
	stopStranger := startStranger(ctx, t, nw.Endpoints[receivers+1], multicast.DefaultGroup6)

	up0, g0 := uploaded(ctx, t, ctr), uploaded(ctx, t, grp)
	const fileSize, files = 6 << 20, 3
	done := sw.release(files, fileSize)
	up1, g1 := uploaded(ctx, t, ctr), uploaded(ctx, t, grp)
	sent := stopStranger()

	data := float64(files * fileSize)
	upX, groupX := float64(up1-up0)/data, float64(g1-g0)/data
	t.Logf("over IPv6: the seeder sent %d B to %v for %d B of data (%.3fx); its link carried %d B (%.3fx); receivers done after %v",
		g1-g0, multicast.DefaultGroup6, int64(data), groupX, up1-up0, upX, done)
	st := sw.checkMulticast(sent, "ipv6")
	// Random data does not compress: the group carried each block once,
	// with its tags and parity (the datagrams: <= 1.15x, as
	// TestE2EMulticastBridge allows) and IPv6 and UDP headers (48 B a
	// datagram, 3.5%); a copy per receiver by unicast would be 3x.
	if x := float64(st.BytesSent) / data; x > 1.15 {
		t.Errorf("the seeder sent %.3fx the data in datagrams; want one copy (<= 1.15x)", x)
	}
	if groupX < 0.95 || groupX > 1.2 {
		t.Errorf("the seeder sent %.3fx the data to the IPv6 group; want one copy (0.95-1.2x)", groupX)
	}
	// The devices probe both families; the LAN drops IPv4, so the group
	// they chose is the IPv6 one.
	v4, err := nw.DroppedIPv4(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the bridge dropped %d B of IPv4 (probes, discovery)", v4)
	if v4 == 0 {
		t.Errorf("no IPv4 reached the bridge: the devices did not try the IPv4 group, so the test did not show the IPv6 one chosen over it")
	}
	if upX > 1.5 {
		t.Errorf("the seeder's link carried %.3fx the data to %d receivers; want well under a copy each (<= 1.5x)", upX, receivers)
	}
}

// TestE2EMulticastDroppedByNetwork runs a seeder and two receivers on a
// bridge that, once they are connected, drops multicast to the receivers'
// ports (as some Wi-Fi access points and switches do). The seeder's
// probes go out (counted at the hub) and reach nobody: the release
// arrives by unicast, no block from the group, and each receiver's
// status --json says why ("group failed").
func TestE2EMulticastDroppedByNetwork(t *testing.T) {
	t.Parallel()
	const receivers = 2
	ctx, nw := mcNetwork(t, "bs6-dead", receivers+1, netns.Link{RateMbit: 1000})
	sw := newMcSwarm(t, nw, receivers, true)
	for i := range receivers {
		if err := nw.DropMulticast(ctx, i+1); err != nil {
			t.Fatal(err)
		}
	}
	grp, err := nw.NewGroupCounter(ctx, 0, "bs6dead", multicast.DefaultGroup4)
	if err != nil {
		t.Fatal(err)
	}
	defer grp.Close()

	const fileSize, files = 4 << 20, 2
	done := sw.release(files, fileSize)
	probes := uploaded(ctx, t, grp)
	t.Logf("the seeder sent %d B to the group, which dropped them; receivers done by unicast after %v", probes, done)
	if probes == 0 {
		t.Errorf("the seeder sent nothing to the group: no probe to find it dead")
	}
	st, _ := sw.seeder.status()
	t.Logf("seeder multicast: %+v", st.Multicast)
	if st.Multicast.SessionsSent != 0 || st.Multicast.BlocksSent != 0 {
		t.Errorf("the seeder sent blocks to a group nobody heard: %+v", st.Multicast)
	}
	for _, r := range sw.rs {
		st, _ := r.status()
		t.Logf("%s multicast: %+v", r.name, st.Multicast)
		if st.Multicast.BlocksReceived != 0 {
			t.Errorf("%s took %d blocks from a group the network drops", r.name, st.Multicast.BlocksReceived)
		}
		if n := releasePaths(st); n != files {
			t.Errorf("%s: status --json names the path of %d release files; want %d: %+v", r.name, n, files, st.Multicast.Recent)
		}
		// A pull that asked after the other's session was decided is
		// declined ("one receiver"); the others found the group dead.
		failed := 0
		for _, p := range st.Multicast.Recent {
			if p.Via != "unicast" {
				t.Errorf("%s: status --json says %s came by %s; want unicast", r.name, p.Path, p.Via)
			}
			if p.Why == "group failed" {
				failed++
			}
		}
		if failed == 0 {
			t.Errorf("%s: status --json gives no pull that found the group dead (%q): %+v", r.name, "group failed", st.Multicast.Recent)
		}
	}
}

// releasePaths counts the release files status names a path for.
func releasePaths(st daemon.Status) int {
	n := 0
	for _, p := range st.Multicast.Recent {
		if strings.HasPrefix(string(p.Path), "release-") {
			n++
		}
	}
	return n
}
