package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// members returns d's `member list SHARE --json`.
func (d *device) members(ref string) daemon.MemberList {
	d.t.Helper()
	var l daemon.MemberList
	if err := json.Unmarshal([]byte(d.ok("member", "list", ref, "--json")), &l); err != nil {
		d.t.Fatalf("%s member list: %v", d.name, err)
	}
	return l
}

// waitMembers polls d's member list until cond holds.
func (d *device) waitMembers(ref, what string, cond func(daemon.MemberList) bool) daemon.MemberList {
	d.t.Helper()
	deadline := time.Now().Add(e2eDeadline)
	for {
		l := d.members(ref)
		if cond(l) {
			return l
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: waited %s for %s; last member list %+v\nlog:\n%s", d.name, e2eDeadline, what, l, d.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func memberOf(l daemon.MemberList, id string) (daemon.MemberView, bool) {
	i := slices.IndexFunc(l.Members, func(m daemon.MemberView) bool { return m.Device == id })
	if i < 0 {
		return daemon.MemberView{}, false
	}
	return l.Members[i], true
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// noFile checks, for a while, that path never appears.
func noFile(t *testing.T, path, why string) {
	t.Helper()
	for range 30 {
		if _, err := os.Lstat(path); err == nil {
			t.Fatalf("%s: %s appeared", why, path)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EMemberRemove: alice (owner), bob (rw) and rob (ro). The log
// lists all three on every member; alice removes rob: bob learns it from
// alice, neither sends rob anything written after, a new key epoch reaches
// bob and not rob, and the link rob joined with is refused to a new device.
func TestE2EMemberRemove(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b, r, n := newDevice(t, "alice"), newDevice(t, "bob"), newDevice(t, "rob"), newDevice(t, "newcomer")
	idA, idB, idR := strings.TrimSpace(a.ok("id")), strings.TrimSpace(b.ok("id")), strings.TrimSpace(r.ok("id"))
	work := t.TempDir()
	fa, fb, fr := filepath.Join(work, "a"), filepath.Join(work, "b"), filepath.Join(work, "r")
	write(t, filepath.Join(fa, "before.txt"), "written before the removal\n")
	a.ok("share", "add", fa, "--name", "family")
	a.start()
	b.start()
	r.start()
	b.ok("join", firstLine(a.ok("invite", "family")), fb)
	robLink := firstLine(a.ok("invite", "family", "--read-only"))
	r.ok("join", robLink, fr)
	waitTrees(t, fa, fb, "bob joined", a, b)
	waitTrees(t, fa, fr, "rob joined", a, r)

	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nbob:\n%s", a.logText(), b.logText())
		}
	}()
	for _, d := range []*device{a, b, r} {
		l := d.waitMembers("family", "all three in the log", func(l daemon.MemberList) bool { return len(l.Members) == 3 })
		for id, want := range map[string]string{idA: "rw", idB: "rw", idR: "ro"} {
			m, ok := memberOf(l, id)
			if !ok || m.Level != want || m.Removed {
				t.Fatalf("%s lists %s as %+v, want level %s", d.name, id, m, want)
			}
			if id != idA && m.AddedBy != idA {
				t.Errorf("%s: %s added by %s, want alice", d.name, id, m.AddedBy)
			}
		}
		if m, _ := memberOf(l, idA); !m.Owner {
			t.Errorf("%s: alice is not the owner", d.name)
		}
	}
	if human := a.ok("member", "list", "family"); !strings.Contains(human, "ro") || !strings.Contains(human, "owner") {
		t.Errorf("human member list:\n%s", human)
	}

	// Only a writer removes; rob (ro) cannot remove bob.
	if _, errOut, code := r.cli("member", "remove", "family", idB); code != exitFail || !strings.Contains(errOut, "refused") {
		t.Fatalf("a read-only member removed a writer: exit %d %s", code, errOut)
	}

	a.ok("member", "remove", "family", idR)
	b.waitMembers("family", "rob removed, relayed by alice", func(l daemon.MemberList) bool {
		m, _ := memberOf(l, idR)
		return m.Removed && l.Epoch == 1 && slices.Contains(l.EpochKeys, 1)
	})
	if l := a.members("family"); !slices.Contains(l.EpochKeys, 1) {
		t.Errorf("alice does not hold the new epoch key: %+v", l)
	}

	write(t, filepath.Join(fa, "after-alice.txt"), "alice, after\n")
	write(t, filepath.Join(fb, "after-bob.txt"), "bob, after\n")
	waitTrees(t, fa, fb, "alice and bob after the removal", a, b)
	noFile(t, filepath.Join(fr, "after-alice.txt"), "rob got alice's file written after his removal")
	noFile(t, filepath.Join(fr, "after-bob.txt"), "rob got bob's file written after his removal")
	if _, err := os.Stat(filepath.Join(fr, "before.txt")); err != nil {
		t.Errorf("rob lost what he had: %v", err)
	}
	if l := r.members("family"); slices.Contains(l.EpochKeys, 1) {
		t.Errorf("rob holds the epoch key made when he was removed: %+v", l)
	}

	// The link rob joined with is dead, for anyone.
	n.start()
	_, errOut, code := n.cli("join", robLink, filepath.Join(work, "n"))
	if code != exitFail || !strings.Contains(errOut, "revoked") {
		t.Fatalf("a new device with rob's link: exit %d, stderr %q\nalice:\n%s", code, errOut, a.logText())
	}
	// A new link does not bring rob back either.
	fresh := firstLine(a.ok("invite", "family", "--read-only"))
	r.ok("share", "remove", "family")
	_, errOut, code = r.cli("join", fresh, filepath.Join(work, "r2"))
	if code != exitFail || !strings.Contains(errOut, "removed from the share") {
		t.Fatalf("rob with a new link: exit %d, stderr %q", code, errOut)
	}
}

// TestE2EOwnersThreshold: alice and bob own the share with k = 2. Alice
// alone cannot add a writer (carol joins with her link, gets nothing, and
// the change waits); with bob's approval carol is a writer and syncs.
func TestE2EOwnersThreshold(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b, c := newDevice(t, "alice"), newDevice(t, "bob"), newDevice(t, "carol")
	idB, idC := strings.TrimSpace(b.ok("id")), strings.TrimSpace(c.ok("id"))
	work := t.TempDir()
	fa, fb, fc := filepath.Join(work, "a"), filepath.Join(work, "b"), filepath.Join(work, "c")
	write(t, filepath.Join(fa, "plan.txt"), "the plan\n")
	a.ok("share", "add", fa, "--name", "team")
	a.start()
	b.start()
	c.start()
	b.ok("join", firstLine(a.ok("invite", "team")), fb)
	waitTrees(t, fa, fb, "bob joined", a, b)
	b.waitMembers("team", "bob holds the log", func(l daemon.MemberList) bool { return len(l.Members) == 2 })

	if _, _, code := a.cli("share", "owners", "team"); code != exitUsage {
		t.Errorf("share owners without a change: exit %d, want 2", code)
	}
	a.ok("share", "owners", "team", "--add", idB, "--threshold", "2")
	b.waitMembers("team", "two owners, k = 2", func(l daemon.MemberList) bool {
		m, _ := memberOf(l, idB)
		return l.Threshold == 2 && m.Owner
	})

	c.ok("join", firstLine(a.ok("invite", "team")), fc)
	l := a.waitMembers("team", "carol's addition pending", func(l daemon.MemberList) bool { return len(l.Pending) == 1 })
	if _, ok := memberOf(l, idC); ok || len(l.Pending[0].Approvals) != 1 || l.Pending[0].Need != 2 {
		t.Fatalf("one owner's change took effect or is shown wrong: %+v", l)
	}
	noFile(t, filepath.Join(fc, "plan.txt"), "carol got files before the second owner approved")
	// Alice's approval again counts once.
	if out := a.ok("member", "approve", "team", l.Pending[0].ID); !strings.Contains(out, "1 of 2") {
		t.Errorf("alice approving her own change again: %s", out)
	}

	bl := b.waitMembers("team", "the pending change relayed to bob", func(l daemon.MemberList) bool { return len(l.Pending) == 1 })
	if out := b.ok("member", "approve", "team", bl.Pending[0].ID); !strings.Contains(out, "took effect") {
		t.Fatalf("bob's approval: %s", out)
	}
	a.waitMembers("team", "carol a writer", func(l daemon.MemberList) bool {
		m, ok := memberOf(l, idC)
		return ok && m.Level == "rw" && len(l.Pending) == 0
	})
	waitTrees(t, fa, fc, "carol syncs once approved", a, c)
	write(t, filepath.Join(fc, "carol.txt"), "carol writes\n")
	waitTrees(t, fc, fb, "carol's writes reach bob", a, b, c)
}

// TestE2EReadOnlyRevert: rob (ro) edits a file and deletes another; alice
// never sees either, rob's status lists both (JSON and human), and revert
// puts the share's version back with rob's copy in the versions folder.
func TestE2EReadOnlyRevert(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, r := newDevice(t, "alice"), newDevice(t, "rob")
	work := t.TempDir()
	fa, fr := filepath.Join(work, "a"), filepath.Join(work, "r")
	write(t, filepath.Join(fa, "recipe.txt"), "the family recipe\n")
	write(t, filepath.Join(fa, "list.txt"), "the shopping list\n")
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "home"))
	a.start()
	r.start()
	r.ok("join", firstLine(a.ok("invite", "home", "--read-only")), fr)
	waitTrees(t, fa, fr, "rob joined", a, r)

	write(t, filepath.Join(fr, "recipe.txt"), "rob's own recipe\n")
	if err := os.Remove(filepath.Join(fr, "list.txt")); err != nil {
		t.Fatal(err)
	}
	r.ok("status") // a rescan comes from the watcher; status only reads
	st := r.waitFor("rob's local changes in status", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.LocalChanges != nil && s.LocalChanges.Count == 2
	})
	s, _ := shareOf(st, shareID)
	for _, c := range s.LocalChanges.Paths {
		if want := map[string]string{"recipe.txt": "changed", "list.txt": "deleted"}[string(c.Path)]; c.What != want {
			t.Errorf("local change %s %s", c.Path, c.What)
		}
	}
	if human := r.ok("status"); !strings.Contains(human, "2 local changes, not shared") || !strings.Contains(human, "recipe.txt") {
		t.Errorf("human status:\n%s", human)
	}
	noFile(t, filepath.Join(work, "never"), "a pause while alice could see rob's edit")
	if b, _ := os.ReadFile(filepath.Join(fa, "recipe.txt")); string(b) != "the family recipe\n" {
		t.Fatalf("alice got rob's edit: %q", b)
	}
	if _, err := os.Stat(filepath.Join(fa, "list.txt")); err != nil {
		t.Fatalf("rob's deletion reached alice: %v", err)
	}

	if _, _, code := r.cli("revert"); code != exitUsage {
		t.Errorf("revert without a share: exit %d", code)
	}
	var res daemon.RevertResult
	if err := json.Unmarshal([]byte(r.ok("revert", "home", "--json")), &res); err != nil || res.Reverted != 2 {
		t.Fatalf("revert: %+v %v", res, err)
	}
	waitTrees(t, fa, fr, "rob reverted", a, r)
	versions, _ := filepath.Glob(filepath.Join(fr, ".blueshift", "versions", "recipe*"))
	found := false
	for _, v := range versions {
		b, _ := os.ReadFile(v)
		found = found || string(b) == "rob's own recipe\n"
	}
	if !found {
		t.Errorf("rob's edit is not in the versions folder: %v", versions)
	}
	r.waitFor("no local changes after revert", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.LocalChanges == nil
	})
}
