package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// startDHT starts the daemon on a fresh loopback port with the DHT on, its
// node on a fresh loopback UDP port, bootstrapping from the given nodes
// (never the public ones: a loopback daemon uses none by default, and the
// list given replaces them).
func (d *device) startDHT(bootstrap ...string) {
	d.t.Helper()
	args := []string{"--home", d.home, "run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "off", "--dht-listen", "127.0.0.1:0", "--log-level", "debug"}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	d.startArgs(bin, args...)
	d.waitFor("the DHT node runs", func(st daemon.Status) bool { return st.DHT != nil && st.DHT.Listen != "" })
}

func (d *device) dhtAddr() string {
	d.t.Helper()
	st := d.waitFor("the DHT node runs", func(st daemon.Status) bool { return st.DHT != nil })
	return st.DHT.Listen
}

// forgetAddresses empties every [[peer]] addresses list in config.toml.
func (d *device) forgetAddresses() {
	d.t.Helper()
	re := regexp.MustCompile(`(?m)^addresses = \[.*\]$`)
	d.editConfig(func(s string) string { return re.ReplaceAllString(s, "addresses = []") })
}

func peerKnown(st daemon.Status, id string) bool {
	return slices.ContainsFunc(st.Peers, func(p daemon.PeerStatus) bool { return p.ID == id })
}

// TestE2EDHTFindsPeers: two paired devices that know no address of each
// other, both on new ports, find each other through the DHT of a third
// daemon (a node only, sharing nothing) and sync again.
func TestE2EDHTFindsPeers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	r, a, b := newDevice(t, "rendezvous"), newDevice(t, "alice"), newDevice(t, "bob")
	idA, idB := strings.TrimSpace(a.ok("id")), strings.TrimSpace(b.ok("id"))
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "hello.txt"), "hello\n")
	a.ok("share", "add", fa, "--name", "stuff")

	r.startDHT()
	boot := r.dhtAddr()
	a.startDHT(boot)
	b.startDHT(boot)
	link := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	b.ok("join", link, fb)
	waitTrees(t, fa, fb, "initial sync", a, b)
	// Each learned the other's public key from its Hello.
	for _, d := range []*device{a, b} {
		d.waitFor("the peer's public key saved", func(daemon.Status) bool {
			return strings.Contains(d.readConfig(), "public_key = ")
		})
	}

	a.stop()
	b.stop()
	a.forgetAddresses()
	b.forgetAddresses()
	for _, d := range []*device{a, b} {
		if cfg := d.readConfig(); regexp.MustCompile(`127\.0\.0\.1:\d+`).MatchString(cfg) {
			t.Fatalf("%s still has an address in its configuration:\n%s", d.name, cfg)
		}
	}
	// New ports: nothing either had of the other's address is right now.
	a.startDHT(boot)
	b.startDHT(boot)
	b.waitFor("alice found through the DHT and connected", func(st daemon.Status) bool { return connectedTo(st, idA) })
	a.waitFor("bob connected", func(st daemon.Status) bool { return connectedTo(st, idB) })
	write(t, filepath.Join(fb, "found.txt"), "bob, found again\n")
	waitTrees(t, fa, fb, "sync after finding each other", a, b)
	if !strings.Contains(a.logText(), "DHT: found a peer") && !strings.Contains(b.logText(), "DHT: found a peer") {
		t.Fatalf("neither found the other in the DHT\n%s\n%s", a.logText(), b.logText())
	}
}

// TestE2EMeshInviterAway: A invites B, C and D; A introduces them to each
// other; A stops; a file written on B reaches C and D, and one on D
// reaches B and C.
func TestE2EMeshInviterAway(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "a")
	others := []*device{newDevice(t, "b"), newDevice(t, "c"), newDevice(t, "d")}
	work := t.TempDir()
	fa := filepath.Join(work, "a")
	write(t, filepath.Join(fa, "family.txt"), "family\n")
	a.ok("share", "add", fa, "--name", "family")
	a.startDHT()
	boot := a.dhtAddr()
	ids := map[*device]string{}
	dirs := map[*device]string{}
	for _, d := range others {
		ids[d] = strings.TrimSpace(d.ok("id"))
		dirs[d] = filepath.Join(work, d.name)
		d.startDHT(boot)
		link := strings.SplitN(a.ok("invite", "family"), "\n", 2)[0]
		d.ok("join", link, dirs[d])
	}
	for _, d := range others {
		waitTrees(t, fa, dirs[d], "initial sync of "+d.name, a, d)
	}
	// Introduced: each of B, C, D is connected to the two others directly
	// (on loopback every member can dial every other: a connection relayed
	// by A is a defect).
	for _, d := range others {
		d.waitForWithin(meshDeadline, "connected to every other member directly", func(st daemon.Status) bool {
			for _, o := range others {
				if o != d && !directTo(st, ids[o]) {
					return false
				}
			}
			return true
		})
	}
	a.stop()
	b, c, d := others[0], others[1], others[2]
	write(t, filepath.Join(dirs[b], "from-b.txt"), "written on b while a is away\n")
	waitTrees(t, dirs[b], dirs[c], "b to c without a", b, c)
	waitTrees(t, dirs[b], dirs[d], "b to d without a", b, d)
	write(t, filepath.Join(dirs[d], "from-d.txt"), "written on d\n")
	waitTrees(t, dirs[d], dirs[b], "d to b without a", d, b)
	waitTrees(t, dirs[d], dirs[c], "d to c without a", d, c)
	// C restarts while A is still away: it finds B and D again (DHT).
	c.stop()
	write(t, filepath.Join(dirs[b], "while-c-away.txt"), "c catches up\n")
	c.startDHT(b.dhtAddr())
	waitTrees(t, dirs[b], dirs[c], "c catches up without a", b, c)
}

// TestE2EReadOnlyMembersIntroduced: members that joined read-only are
// introduced to each other by the writer that invited them, and connect.
func TestE2EReadOnlyMembersIntroduced(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b, c := newDevice(t, "a"), newDevice(t, "b"), newDevice(t, "c")
	idB, idC := strings.TrimSpace(b.ok("id")), strings.TrimSpace(c.ok("id"))
	work := t.TempDir()
	fa := filepath.Join(work, "a")
	write(t, filepath.Join(fa, "x.txt"), "x\n")
	a.ok("share", "add", fa, "--name", "s")
	a.startDHT()
	boot := a.dhtAddr()
	b.startDHT(boot)
	c.startDHT(boot)
	b.ok("join", strings.SplitN(a.ok("invite", "s", "--read-only"), "\n", 2)[0], filepath.Join(work, "b"))
	c.ok("join", strings.SplitN(a.ok("invite", "s", "--read-only"), "\n", 2)[0], filepath.Join(work, "c"))
	b.waitFor("c introduced by a", func(st daemon.Status) bool { return peerKnown(st, idC) })
	c.waitFor("b introduced by a, and connected", func(st daemon.Status) bool { return connectedTo(st, idB) })
}

// meshDeadline bounds how long introduced members take to connect directly:
// a relayed connection is dialled again every minute (peer/relayed.go).
const meshDeadline = 4 * time.Minute

// directTo reports whether st shows a connection to id that no relay
// carries.
func directTo(st daemon.Status, id string) bool {
	return slices.ContainsFunc(st.Peers, func(p daemon.PeerStatus) bool {
		return p.ID == id && p.Connected && p.Reach != "" && p.Reach != "relayed"
	})
}

func (d *device) readConfig() string {
	d.t.Helper()
	b, err := os.ReadFile(filepath.Join(d.home, "config.toml"))
	if err != nil {
		d.t.Fatal(err)
	}
	return string(b)
}

func TestDHTFlagsUsage(t *testing.T) {
	t.Parallel()
	d := newDevice(t, "flags")
	for _, args := range [][]string{
		{"run", "--bootstrap", "nope"},
		{"run", "--bootstrap", ":6881"},
		{"run", "--bootstrap", "127.0.0.1:0"},
		{"run", "--dht-listen", "nope"},
	} {
		if _, errOut, code := d.cli(args...); code != 2 || !strings.Contains(errOut, "--") {
			t.Errorf("%v: exit %d, %q; want 2 and the flag named", args, code, errOut)
		}
	}
}

// TestE2ENoPublicDHT: the guard of every test here. With TestMain's
// $BLUESHIFT_NO_PUBLIC_DHT, a daemon that listens beyond loopback and is
// given no bootstrap (it would ask the public routers) does not start,
// whether run by `run` or by `send` with no daemon running, and says to
// pass --no-dht. It fails before its DHT node exists: nothing is sent.
func TestE2ENoPublicDHT(t *testing.T) {
	t.Parallel()
	d := newDevice(t, "guard")
	src := filepath.Join(t.TempDir(), "f.txt")
	write(t, src, "not sent\n")
	for _, args := range [][]string{
		{"run", "--listen", "0.0.0.0:0", "--no-discovery", "--no-quic", "--ui", "off"},
		{"send", src, "--listen", "0.0.0.0:0", "--no-discovery", "--no-quic"},
	} {
		if _, errOut, code := d.cli(args...); code != 1 || !strings.Contains(errOut, "public routers") || !strings.Contains(errOut, "--no-dht") {
			t.Errorf("%v: exit %d, %q; want 1 and the public routers refused", args, code, errOut)
		}
	}
}

// startDHTAt is startDHT with the daemon and its DHT node on loopback
// address ip (127.0.0.2, ...): its connections to devices on 127.0.0.1
// come from 127.0.0.1 over TCP, so those devices see it come from an IP
// it does not listen at.
func (d *device) startDHTAt(ip string, bootstrap ...string) {
	d.t.Helper()
	args := []string{"--home", d.home, "run", "--listen", ip + ":0", "--no-discovery", "--ui", "off", "--dht-listen", ip + ":0", "--log-level", "debug"}
	for _, b := range bootstrap {
		args = append(args, "--bootstrap", b)
	}
	d.startArgs(bin, args...)
	d.waitFor("the DHT node runs", func(st daemon.Status) bool { return st.DHT != nil && st.DHT.Listen != "" })
}

// TestE2EMeshMembersFoundInDHT: B and C listen where A, which invited
// them, cannot see them come from (A's introductions carry no address of
// them); they may first be connected through A's relay, and find each
// other in the DHT all the same and connect directly: a device reached
// through a relay is still looked up.
func TestE2EMeshMembersFoundInDHT(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b, c := newDevice(t, "a"), newDevice(t, "b"), newDevice(t, "c")
	idB, idC := strings.TrimSpace(b.ok("id")), strings.TrimSpace(c.ok("id"))
	work := t.TempDir()
	fa := filepath.Join(work, "a")
	write(t, filepath.Join(fa, "family.txt"), "family\n")
	a.ok("share", "add", fa, "--name", "family")
	a.startDHT()
	boot := a.dhtAddr()
	b.startDHTAt("127.0.0.2", boot)
	c.startDHTAt("127.0.0.3", boot)
	b.ok("join", strings.SplitN(a.ok("invite", "family"), "\n", 2)[0], filepath.Join(work, "b"))
	c.ok("join", strings.SplitN(a.ok("invite", "family"), "\n", 2)[0], filepath.Join(work, "c"))
	b.waitForWithin(meshDeadline, "c connected directly", func(st daemon.Status) bool { return directTo(st, idC) })
	c.waitForWithin(meshDeadline, "b connected directly", func(st daemon.Status) bool { return directTo(st, idB) })
}
