package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// Issue 13, hole 9: folders that would share the device's keys, or
// everything, are refused with the reason and what to do.
func TestE2EShareAddRefusesUnsafeFolders(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "alice")
	inside := filepath.Join(a.home, "inside")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link-to-home")
	if err := os.Symlink(a.home, link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, why string
	}{
		{"the file system root", "/", "root of a file system"},
		{"the home", a.home, "inside this device's home"},
		{"a folder inside the home", inside, "inside this device's home"},
		{"the home through a symlink", link, "inside this device's home"},
		{"a folder holding the home", filepath.Dir(a.home), "holds this device's home"},
	}
	for _, c := range cases {
		out, errOut, code := a.cli("share", "add", c.path)
		if code != 1 || !strings.Contains(errOut, c.why) || !strings.Contains(errOut, "share a folder") || out != "" {
			t.Errorf("share add %s (%s): exit %d, stdout %q, stderr %q; want exit 1 saying %q and what to do",
				c.path, c.name, code, out, errOut, c.why)
		}
	}
	if out := a.ok("share", "list"); strings.TrimSpace(out) != "" {
		t.Fatalf("a refused folder became a share:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(a.home, ".blueshift")); err == nil {
		t.Fatal("a refused share add wrote into the home")
	}

	// join refuses the same folders.
	b := newDevice(t, "bob")
	okDir := t.TempDir()
	a.ok("share", "add", okDir, "--name", "ok")
	a.start()
	invite := strings.SplitN(a.ok("invite", "ok"), "\n", 2)[0]
	if _, errOut, code := b.cli("join", invite, filepath.Join(b.home, "joined")); code != 1 || !strings.Contains(errOut, "inside this device's home") {
		t.Errorf("join into the home: exit %d, stderr %q; want exit 1 and the reason", code, errOut)
	}
	if out := b.ok("share", "list"); strings.TrimSpace(out) != "" {
		t.Fatalf("a refused join became a share:\n%s", out)
	}
	// A share written into config.toml by hand is refused by the daemon,
	// which says why in status and writes nothing into the home.
	a.stop()
	cfgPath := filepath.Join(a.home, "config.toml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.ReplaceAll(string(cfg), okDir, inside)
	if edited == string(cfg) {
		t.Fatalf("config.toml does not name %s:\n%s", okDir, cfg)
	}
	if err := os.WriteFile(cfgPath, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	a.start()
	a.waitFor("the share in the home refused", func(st daemon.Status) bool {
		return len(st.Shares) == 1 && !st.Shares[0].Running && len(st.Shares[0].Errors) > 0 &&
			strings.Contains(st.Shares[0].Errors[0], "inside this device's home")
	})
	if _, err := os.Stat(filepath.Join(inside, ".blueshift")); err == nil {
		t.Fatal("the daemon wrote a .blueshift folder into the home")
	}
}

// Issue 13, hole 9: removing a share nested in another one leaves nothing
// that keeps the outer share from syncing its folder; share remove says
// that the folder's files now go to the outer share's members.
func TestE2ERemoveInnerShareOuterSyncsIt(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	inner := filepath.Join(fa, "inner")
	write(t, filepath.Join(fa, "top.txt"), "top")
	write(t, filepath.Join(inner, "own.txt"), "the inner share's")
	// Both shares are added before the daemon starts: the outer one's first
	// scan must already see the inner one.
	a.ok("share", "add", inner, "--name", "inner")
	id := pair(t, a, b, fa, fb)
	waitFile(t, filepath.Join(fb, "top.txt"), "top", a, b)
	records(a, id, 2) // top.txt and the folder inner, not what is inside it
	mustNotExist(t, filepath.Join(fb, "inner/own.txt"), "the outer share synced a nested share's file")

	_, errOut, code := a.cli("share", "remove", "inner")
	if code != 0 || !strings.Contains(errOut, `inside share "stuff"`) || !strings.Contains(errOut, "members") {
		t.Fatalf("share remove inner: exit %d, stderr %q; want it to say the outer share syncs the folder now", code, errOut)
	}
	a.waitFor("the inner share stopped", func(st daemon.Status) bool { return len(st.Shares) == 1 })
	waitFile(t, filepath.Join(fb, "inner/own.txt"), "the inner share's", a, b)
	// New files there sync as well, and the metadata never does.
	write(t, filepath.Join(inner, "later.txt"), "later")
	waitFile(t, filepath.Join(fb, "inner/later.txt"), "later", a, b)
	records(a, id, 4)
	mustNotExist(t, filepath.Join(fb, "inner/.blueshift"), "a share's metadata folder was synced")

	// Adding it again makes it a nested share again.
	a.ok("share", "add", inner, "--name", "inner")
	a.waitFor("the inner share running", func(st daemon.Status) bool { return len(st.Shares) == 2 })
	write(t, filepath.Join(inner, "inner-again.txt"), "inner only")
	write(t, filepath.Join(fa, "outer-again.txt"), "outer")
	waitFile(t, filepath.Join(fb, "outer-again.txt"), "outer", a, b)
	records(a, id, 5)
	mustNotExist(t, filepath.Join(fb, "inner/inner-again.txt"), "a re-added nested share's new file went to the outer share")

	// Removed again, then a restart: nothing left behind brings the
	// boundary back (alice listens elsewhere after it, so the outer share's
	// records show it).
	a.ok("share", "remove", "inner")
	a.stop()
	write(t, filepath.Join(inner, "after-restart.txt"), "again")
	a.start()
	a.waitFor("records of the files in the removed share's folder", func(st daemon.Status) bool {
		s, ok := shareOf(st, id)
		return ok && s.Records == 7 // + inner-again.txt, after-restart.txt
	})
}
