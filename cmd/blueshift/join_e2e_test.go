package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EJoinRefusedSaysWhy: a join the inviter refuses fails on the
// joiner, with the inviter's reason, and leaves no share behind; one the
// joiner's daemon presents later shows the refusal in status. A link read
// from `invite | head -1` works: the daemon holds the invitation before the
// link is printed.
func TestE2EJoinRefusedSaysWhy(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b, c := newDevice(t, "alice"), newDevice(t, "bob"), newDevice(t, "carol")
	idB := strings.TrimSpace(b.ok("id"))
	work := t.TempDir()
	fa := filepath.Join(work, "a")
	write(t, filepath.Join(fa, "f.txt"), "alice's file\n")
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "stuff"))
	a.start()
	b.start()
	c.start()

	// The only invitation, read through a pipe closed after the link.
	out, err := exec.Command("sh", "-c", `"$0" --home "$1" invite stuff --single-use | head -1`, bin, a.home).Output()
	if err != nil {
		t.Fatalf("invite | head -1: %v", err)
	}
	single := strings.TrimSpace(string(out))
	fb := filepath.Join(work, "b")
	stdout, errOut, code := b.cli("join", single, fb)
	if code != 0 || strings.TrimSpace(stdout) != shareID || !strings.Contains(errOut, "accepted") {
		t.Fatalf("join with the link of `invite | head -1`: exit %d, stdout %q, stderr %q\nalice:\n%s", code, stdout, errOut, a.logText())
	}
	waitTrees(t, fa, fb, "first join", a, b)
	a.waitFor("bob a member", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && len(s.Members) == 1 && s.Members[0] == idB
	})

	// The single-use link again, from another device: refused, and join
	// says so with alice's reason, leaving carol's configuration as it was.
	fc := filepath.Join(work, "c")
	began := time.Now()
	_, errOut, code = c.cli("join", single, fc)
	t.Logf("join of a used single-use link: exit %d after %v: %s", code, time.Since(began).Round(time.Millisecond), strings.TrimSpace(errOut))
	if code != exitFail || !strings.Contains(errOut, "refused") || !strings.Contains(errOut, "single-use") {
		t.Fatalf("a single-use link used twice: exit %d, stderr %q", code, errOut)
	}
	st, _ := c.status()
	if _, ok := shareOf(st, shareID); ok || len(st.Peers) != 0 {
		t.Fatalf("a refused join left a share or a peer: %+v", st)
	}

	// A token alice never made, while she has another invitation open (so
	// her Admit reads the token): refused as unknown.
	other := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	l, err := daemon.ParseLink(other)
	if err != nil {
		t.Fatal(err)
	}
	rand.Read(l.Token[:])
	_, errOut, code = c.cli("join", l.String(), fc)
	if code != exitFail || !strings.Contains(errOut, "unknown or already used invitation") {
		t.Fatalf("an unknown token: exit %d, stderr %q", code, errOut)
	}

	// Joined while carol's daemon is stopped, presented after the link
	// expired (alice's copy of it is made to expire, rather than waiting):
	// status shows alice's refusal (human and JSON).
	c.stop()
	short := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	if _, errOut, code := c.cli("join", short, fc); code != 0 || !strings.Contains(errOut, "when the daemon runs") {
		t.Fatalf("join without a daemon: exit %d, stderr %q", code, errOut)
	}
	expire(t, a, short)
	c.start()
	st = c.waitFor("the refusal in status", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.Join != nil && s.Join.Refused != ""
	})
	s, _ := shareOf(st, shareID)
	if !strings.Contains(s.Join.Refused, "expired") || len(s.Errors) == 0 || !strings.Contains(strings.Join(s.Errors, "\n"), "refused") {
		t.Fatalf("status of a refused join: %+v", s)
	}
	if human := c.ok("status"); !strings.Contains(human, "refused the invitation") {
		t.Fatalf("human status does not show the refusal:\n%s", human)
	}
	if ents, _ := os.ReadDir(fc); len(ents) > 1 {
		t.Fatalf("a refused device got files: %v", ents)
	}
	// A new link for the same folder replaces the refused token.
	fresh := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	if _, errOut, code := c.cli("join", fresh, fc); code != 0 || !strings.Contains(errOut, "accepted") {
		t.Fatalf("join again with a new link: exit %d, stderr %q", code, errOut)
	}
	waitTrees(t, fa, fc, "join again", a, c)
}

// expire makes alice's invitation behind link expire a minute ago, and has
// her daemon load that.
func expire(t *testing.T, a *device, link string) {
	t.Helper()
	l, err := daemon.ParseLink(link)
	if err != nil {
		t.Fatal(err)
	}
	sum := blake3.Sum256(l.Token[:])
	hash := hex.EncodeToString(sum[:])
	err = daemon.EditConfig(a.home, func(c *config.Config) error {
		for i := range c.Invites {
			if c.Invites[i].TokenHash == hash {
				c.Invites[i].Expires = time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
				return nil
			}
		}
		return fmt.Errorf("no invitation of %s", hash)
	})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := daemon.NewClient(a.home)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestE2EInviteExpiresUsage: a non-positive --expires is a usage error.
func TestE2EInviteExpiresUsage(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "alice")
	dir := filepath.Join(t.TempDir(), "a")
	write(t, filepath.Join(dir, "f"), "data")
	a.ok("share", "add", dir)
	for _, e := range []string{"0", "-1h", "0s"} {
		if out, errOut, code := a.cli("invite", "a", "--expires", e); code != exitUsage || out != "" || !strings.Contains(errOut, "positive") {
			t.Errorf("invite --expires %s: exit %d, stdout %q, stderr %q", e, code, out, errOut)
		}
	}
}

// TestE2EManySharesOneConnection: shares joined while the two devices are
// connected already sync too, whoever invites, in any order.
func TestE2EManySharesOneConnection(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idA := strings.TrimSpace(a.ok("id"))
	work := t.TempDir()
	folder := func(dev, name string) string { return filepath.Join(work, dev, name) }
	for _, n := range []string{"one", "two", "four", "five"} {
		write(t, filepath.Join(folder("a", n), n+".txt"), "alice's "+n+"\n")
		a.ok("share", "add", folder("a", n), "--name", n)
	}
	write(t, filepath.Join(folder("b", "three"), "three.txt"), "bob's three\n")
	b.ok("share", "add", folder("b", "three"), "--name", "three")
	a.start()

	// Two shares joined while bob's daemon is stopped: the first token goes
	// in his Hello, the second follows on the connection.
	for _, n := range []string{"one", "five"} {
		link := strings.SplitN(a.ok("invite", n), "\n", 2)[0]
		b.ok("join", link, folder("b", n))
	}
	b.start()
	waitTrees(t, folder("a", "one"), folder("b", "one"), "share one", a, b)
	waitTrees(t, folder("a", "five"), folder("b", "five"), "share five, joined beside share one", a, b)

	join := func(inviter, joiner *device, name, into string) {
		t.Helper()
		link := strings.SplitN(inviter.ok("invite", name), "\n", 2)[0]
		began := time.Now()
		if _, errOut, code := joiner.cli("join", link, into); code != 0 || !strings.Contains(errOut, "accepted") {
			t.Fatalf("%s joins %s: exit %d, stderr %q\n%s:\n%s", joiner.name, name, code, errOut, inviter.name, inviter.logText())
		}
		t.Logf("%s joined %s while connected: accepted after %v", joiner.name, name, time.Since(began).Round(time.Millisecond))
	}
	b.waitFor("connected to alice", func(st daemon.Status) bool { return connectedTo(st, idA) })

	// Connected now: the next joins are presented on this connection. Bob
	// already has a file in the folder he joins share two into: it merges.
	write(t, filepath.Join(folder("b", "two"), "bob-before.txt"), "bob had this before joining\n")
	join(a, b, "two", folder("b", "two"))
	waitTrees(t, folder("a", "two"), folder("b", "two"), "share two, joined while connected", a, b)
	join(b, a, "three", folder("a", "three")) // the other way round
	waitTrees(t, folder("a", "three"), folder("b", "three"), "share three, bob invites alice", a, b)
	join(a, b, "four", folder("b", "four"))
	waitTrees(t, folder("a", "four"), folder("b", "four"), "share four", a, b)

	// Every share keeps syncing both ways.
	for _, n := range []string{"one", "two", "three", "four", "five"} {
		write(t, filepath.Join(folder("b", n), "from-bob.txt"), "bob writes into "+n+"\n")
		write(t, filepath.Join(folder("a", n), "from-alice.txt"), "alice writes into "+n+"\n")
	}
	for _, n := range []string{"one", "two", "three", "four", "five"} {
		waitTrees(t, folder("a", n), folder("b", n), "edits in share "+n, a, b)
	}
}

// TestE2EJoinInviterAway: with the inviter unreachable, join waits a while,
// then succeeds saying the daemon keeps trying; status shows the join
// waiting; once the inviter is back, it is accepted and the share syncs.
func TestE2EJoinInviterAway(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "f.txt"), "while you were away\n")
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "stuff"))
	a.start()
	b.start()
	st, _ := a.status()
	link := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	a.stop()

	out, errOut, code := b.cli("join", link, fb, "--wait", "2s")
	if code != 0 || strings.TrimSpace(out) != shareID || !strings.Contains(errOut, "keeps trying") || !strings.Contains(errOut, "not reachable") {
		t.Fatalf("join with the inviter away: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	bs, _ := b.status()
	s, ok := shareOf(bs, shareID)
	if !ok || s.Join == nil || s.Join.Refused != "" || !strings.Contains(strings.Join(s.Errors, "\n"), "waiting for device") {
		t.Fatalf("status of a join waiting for its inviter: %+v", s)
	}
	if human := b.ok("status"); !strings.Contains(human, "joining") {
		t.Fatalf("human status does not say joining:\n%s", human)
	}

	// Alice comes back where the link says she is.
	a.startArgs(bin, "--home", a.home, "run", "--listen", st.Listen, "--no-discovery", "--ui", "off")
	b.waitFor("the join accepted", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.Join == nil
	})
	waitTrees(t, fa, fb, "sync once the inviter is back", a, b)
}
