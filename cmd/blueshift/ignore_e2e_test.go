package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// pair starts two devices, shares folder fa of a as "stuff" and joins it
// on b at fb. It returns the share ID.
func pair(t *testing.T, a, b *device, fa, fb string) string {
	t.Helper()
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "stuff"))
	a.start()
	b.start()
	link := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	b.ok("join", link, fb)
	return shareID
}

// records waits until share id on d is in sync and has n records (live
// and deleted), and fails if it settles at another count.
func records(d *device, id string, n uint64) {
	d.t.Helper()
	d.waitFor("the share in sync with its records counted", func(st daemon.Status) bool {
		s, ok := shareOf(st, id)
		return ok && s.InSync && s.Records == n
	})
}

func waitFile(t *testing.T, path, want string, devs ...*device) {
	t.Helper()
	deadline := time.Now().Add(e2eDeadline)
	for {
		if data, err := os.ReadFile(path); err == nil && string(data) == want {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, d := range devs {
				logs.WriteString("--- " + d.name + " log:\n" + d.logText() + "\n")
			}
			t.Fatalf("%s did not arrive with %q within %s\n%s", path, want, e2eDeadline, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func mustNotExist(t *testing.T, path, why string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Fatalf("%s exists: %s", path, why)
	}
}

// Issue 13, hole 4: a *.tmp rule at the share root applies to files made
// while the daemon runs (the watcher's partial scans), in new folders too,
// and an ignore file edited while running takes effect at once.
func TestE2EIgnoreRulesWhileRunning(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, ".blueshiftignore"), "*.tmp\n")
	write(t, filepath.Join(fa, "old.txt"), "old")
	write(t, filepath.Join(fa, "notes.log"), "log")
	id := pair(t, a, b, fa, fb)
	waitTrees(t, fa, fb, "initial sync", a, b)
	records(a, id, 3)

	// Made after the start, in the same moment as files that do sync.
	write(t, filepath.Join(fa, "foo.tmp"), "scratch")
	write(t, filepath.Join(fa, "bar.txt"), "bar")
	write(t, filepath.Join(fa, "newdir/x.tmp"), "scratch")
	write(t, filepath.Join(fa, "newdir/y.txt"), "y")
	waitFile(t, filepath.Join(fb, "bar.txt"), "bar", a, b)
	waitFile(t, filepath.Join(fb, "newdir/y.txt"), "y", a, b)
	// bar.txt, newdir, newdir/y.txt: three records more, none for a .tmp.
	records(a, id, 6)
	records(b, id, 6)
	mustNotExist(t, filepath.Join(fb, "foo.tmp"), "an ignored file made while the daemon ran was synced")
	mustNotExist(t, filepath.Join(fb, "newdir/x.tmp"), "an ignored file in a new folder was synced")

	// The rules change while running: *.tmp is synced from now on, *.log
	// no longer is, and notes.log stays on bob (ignoring is not deleting).
	write(t, filepath.Join(fa, ".blueshiftignore"), "*.log\n")
	waitFile(t, filepath.Join(fb, "foo.tmp"), "scratch", a, b)
	waitFile(t, filepath.Join(fb, "newdir/x.tmp"), "scratch", a, b)
	write(t, filepath.Join(fa, "notes.log"), "changed while ignored")
	write(t, filepath.Join(fa, "after.txt"), "after")
	waitFile(t, filepath.Join(fb, "after.txt"), "after", a, b)
	records(a, id, 9)
	if data, err := os.ReadFile(filepath.Join(fb, "notes.log")); err != nil || string(data) != "log" {
		t.Fatalf("bob's notes.log: %q %v; want it kept as it was", data, err)
	}
	// An ignored file's deletion is not synced either.
	if err := os.Remove(filepath.Join(fa, "notes.log")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(fa, "last.txt"), "last")
	waitFile(t, filepath.Join(fb, "last.txt"), "last", a, b)
	records(a, id, 10)
	if _, err := os.Stat(filepath.Join(fb, "notes.log")); err != nil {
		t.Fatalf("the deletion of an ignored file reached bob: %v", err)
	}
}
