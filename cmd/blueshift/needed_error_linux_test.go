package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2ELsNeededError: a file alice adds cannot be written on bob, as
// the folder it goes in is immutable there (chattr +i: even root cannot
// add to it, so the test does not depend on who runs it). `ls-needed`
// lists the file with the reason "error" and the error's text, in text
// and --json, as does `status --needed`; once the folder is writable
// again the file arrives and the list empties.
func TestE2ELsNeededError(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "locked", "old.txt"), "here before\n")
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "home"))
	a.start()
	b.start()
	b.ok("join", firstLine(a.ok("invite", "home")), fb)
	waitTrees(t, fa, fb, "bob joined", a, b)

	locked := filepath.Join(fb, "locked")
	unlock := immutable(t, locked)
	write(t, filepath.Join(fa, "locked", "new.txt"), "cannot land on bob\n")

	var n daemon.Needed
	deadline := time.Now().Add(e2eDeadline)
	for {
		n = daemon.Needed{}
		if err := json.Unmarshal([]byte(b.ok("ls-needed", "home", "--json")), &n); err != nil {
			t.Fatal(err)
		}
		if len(n.Files) == 1 && n.Files[0].Reason == "error" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ls-needed --json on bob never showed locked/new.txt with an error: %+v\n%s", n, b.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	f := n.Files[0]
	if n.Share != shareID || n.Total != 1 || f.Path != "locked/new.txt" || f.Deleted ||
		f.Bytes != int64(len("cannot land on bob\n")) || f.PeerName != "alice" ||
		!strings.Contains(f.Error, "operation not permitted") {
		t.Fatalf("ls-needed --json on bob: %+v", n)
	}
	t.Logf("the error bob shows: %s", f.Error)

	out := b.ok("ls-needed", "home")
	if !strings.Contains(out, "PATH") || !strings.Contains(out, "WHY") {
		t.Fatalf("ls-needed on bob has no header:\n%s", out)
	}
	line := lineWith(out, "locked/new.txt")
	if !strings.Contains(line, "alice") || !strings.Contains(line, "error: "+f.Error) {
		t.Fatalf("ls-needed on bob, the line of locked/new.txt is %q:\n%s", line, out)
	}
	out = b.ok("status", "--needed")
	if _, list, ok := strings.Cut(out, "needed in home:"); !ok || !strings.Contains(lineWith(list, "locked/new.txt"), "error: "+f.Error) {
		t.Fatalf("status --needed on bob:\n%s", out)
	}
	if st, _ := b.status(); func() bool { s, ok := shareOf(st, shareID); return !ok || s.InSync }() {
		t.Fatalf("bob's share is in sync with a file it could not write: %+v", st)
	}

	// Writable again: the next retry brings the file, nothing is needed.
	unlock()
	waitTrees(t, fa, fb, "the folder is writable again", a, b)
	b.waitFor("nothing needed on bob", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.InSync
	})
	n = daemon.Needed{}
	if err := json.Unmarshal([]byte(b.ok("ls-needed", "home", "--json")), &n); err != nil || n.Total != 0 {
		t.Fatalf("ls-needed --json on bob once in sync: %+v (%v)", n, err)
	}
}

// immutable makes dir immutable (chattr +i) until the returned func or the
// test's cleanup undoes it; it skips the test where the file system or
// the user cannot.
func immutable(t *testing.T, dir string) (undo func()) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v: %s (needs root and a file system with attributes)", dir, err, out)
	}
	done := false
	undo = func() {
		if done {
			return
		}
		done = true
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", dir, err, out)
		}
	}
	t.Cleanup(undo) // registered after t.TempDir: runs before its removal
	return undo
}

// lineWith is the first line of out holding s, or "".
func lineWith(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}
