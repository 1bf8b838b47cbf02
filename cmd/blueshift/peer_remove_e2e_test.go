package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

func refusedBy(st daemon.Status, id string) bool {
	return slices.ContainsFunc(st.Refused, func(r daemon.Refused) bool { return r.ID == id })
}

// TestE2EPeerRemoveIntroduced: `peer remove` removes a device a member
// introduced (it is in no config.toml): B forgets C, closes its
// connection and turns C away, also after B restarts while the inviter is
// away (C is still in the share's membership log, which alone does not
// bring it back); the output says C stays a member and how to take it
// out; `peer add` takes it back. On C, `peer remove` of the inviter (paired in config.toml, and in
// the log) says the same, and on B with no daemon running too.
func TestE2EPeerRemoveIntroduced(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b, c := newDevice(t, "a"), newDevice(t, "b"), newDevice(t, "c")
	idA, idB, idC := strings.TrimSpace(a.ok("id")), strings.TrimSpace(b.ok("id")), strings.TrimSpace(c.ok("id"))
	work := t.TempDir()
	fa, fb, fc := filepath.Join(work, "a"), filepath.Join(work, "b"), filepath.Join(work, "c")
	write(t, filepath.Join(fa, "family.txt"), "family\n")
	a.ok("share", "add", fa, "--name", "family")
	a.startDHT()
	boot := a.dhtAddr()
	b.startDHT(boot)
	b.ok("join", strings.SplitN(a.ok("invite", "family"), "\n", 2)[0], fb)
	c.startDHT(boot)
	c.ok("join", strings.SplitN(a.ok("invite", "family"), "\n", 2)[0], fc)
	waitTrees(t, fa, fb, "initial sync of b", a, b)
	waitTrees(t, fa, fc, "initial sync of c", a, c)
	b.waitForWithin(meshDeadline, "c introduced and connected", func(st daemon.Status) bool { return directTo(st, idC) })
	cfgB := b.readConfig()

	var e daemon.PeerEntry
	if err := json.Unmarshal([]byte(b.ok("peer", "remove", idC, "--json")), &e); err != nil {
		t.Fatal(err)
	}
	if e.ID != idC || !slices.Equal(e.Member, []string{"family"}) || !strings.Contains(e.Note, "member remove") {
		t.Fatalf("peer remove --json: %+v; want c, a member of family still, and how to remove it", e)
	}
	b.waitFor("c disconnected and turned away", func(st daemon.Status) bool {
		return !connectedTo(st, idC) && !peerKnown(st, idC) && refusedBy(st, idC)
	})
	if out := b.ok("peer", "list"); strings.Contains(out, idC) {
		t.Fatalf("peer list after peer remove: %q", out)
	}
	if now := b.readConfig(); now != cfgB {
		t.Fatalf("b's config.toml changed:\n%s\nwas:\n%s", now, cfgB)
	}

	// The inviter away (it would introduce C again), B restarts: the log
	// still names C, and C stays removed.
	a.stop()
	b.stop()
	b.startDHT(c.dhtAddr())
	b.waitForWithin(meshDeadline, "c turned away after a restart", func(st daemon.Status) bool { return refusedBy(st, idC) })
	if st, _ := b.status(); connectedTo(st, idC) || peerKnown(st, idC) {
		t.Fatalf("c is back after b restarted: %+v", st.Peers)
	}

	// `peer add` takes the removal back: the log makes C a peer of the
	// share again, and what C writes reaches B.
	stC, _ := c.status()
	b.ok("peer", "add", idC, "--addr", stC.Listen)
	write(t, filepath.Join(fc, "back.txt"), "c is back\n")
	waitTrees(t, fc, fb, "c's file after peer add", b, c)

	// A device paired in config.toml that the log names too: the plain
	// output says the same.
	out := c.ok("peer", "remove", idA)
	if !strings.Contains(out, "removed device "+idA) || !strings.Contains(out, "member remove") || !strings.Contains(out, "family") {
		t.Fatalf("peer remove of the inviter: %q", out)
	}
	if cfg := c.readConfig(); strings.Contains(cfg, idA) {
		t.Fatalf("c's config.toml still names a:\n%s", cfg)
	}
	if out := c.ok("peer", "list"); strings.Contains(out, idA) || !strings.Contains(out, idB) {
		t.Fatalf("c's peer list after removing a: %q", out)
	}

	// With no daemon running, the same: the next start does not make a
	// peer of A again from the log.
	b.stop()
	out = b.ok("peer", "remove", idA)
	if !strings.Contains(out, "removed device "+idA) || !strings.Contains(out, "member remove") {
		t.Fatalf("peer remove with no daemon: %q", out)
	}
	b.startDHT(c.dhtAddr())
	if st, _ := b.status(); peerKnown(st, idA) {
		t.Fatalf("a is a peer again after b restarted: %+v", st.Peers)
	}
	if out := b.ok("peer", "list"); strings.Contains(out, idA) {
		t.Fatalf("b's peer list after removing a with no daemon: %q", out)
	}

	// And `peer add` with no daemon running takes it back: A is a peer of
	// the share again after the restart (it is in the log).
	b.stop()
	b.ok("peer", "add", idA)
	b.startDHT(c.dhtAddr())
	b.waitFor("a a peer of the share again", func(st daemon.Status) bool {
		return len(st.Shares) == 1 && slices.Contains(st.Shares[0].Members, idA)
	})
}
