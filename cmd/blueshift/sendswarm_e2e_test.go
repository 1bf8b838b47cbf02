package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EShareRemoveLeavesKeyring: a share removed on one device of a
// person leaves the keyring (its record file is deleted), so the person's
// other device, which followed it from the keyring, stops following it
// (its files stay); the other shares are followed as before.
func TestE2EShareRemoveLeavesKeyring(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, l := newDevice(t, "alice"), newDevice(t, "laptop")
	work := t.TempDir()
	in := func(parts ...string) string { return filepath.Join(append([]string{work}, parts...)...) }
	write(t, in("a", "docs", "plan.txt"), "the plan\n")
	write(t, in("a", "keep", "notes.txt"), "notes\n")
	a.ok("share", "add", in("a", "docs"), "--name", "docs")
	a.ok("share", "add", in("a", "keep"), "--name", "keep")
	a.start()
	l.start()
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nlaptop:\n%s", a.logText(), l.logText())
		}
	}()
	var pr daemon.PairResult
	if err := json.Unmarshal([]byte(a.ok("pair", "--json")), &pr); err != nil {
		t.Fatal(err)
	}
	l.ok("join", pr.Link, in("l"))
	waitTrees(t, in("a", "docs"), in("l", "docs"), "the laptop follows docs", a, l)
	waitTrees(t, in("a", "keep"), in("l", "keep"), "the laptop follows keep", a, l)
	docsID := ""
	for _, s := range a.waitFor("docs listed", func(daemon.Status) bool { return true }).Shares {
		if s.Name == "docs" {
			docsID = s.ID
		}
	}
	record := daemon.KeyringDir + "/" + docsID + ".cap"
	if _, err := os.Stat(filepath.Join(l.home, record)); err != nil {
		t.Fatalf("the laptop's keyring has no record of docs: %v", err)
	}

	_, errOut, code := a.cli("share", "remove", "docs")
	if code != 0 || !strings.Contains(errOut, "keyring") {
		t.Fatalf("share remove docs: exit %d, %q: want a note that it left the keyring", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(a.home, record)); !os.IsNotExist(err) {
		t.Fatalf("alice's keyring still holds the record of docs (%v)", err)
	}
	has := func(st daemon.Status, name string) bool {
		return slices.ContainsFunc(st.Shares, func(s daemon.ShareStatus) bool { return s.Name == name })
	}
	l.waitFor("the laptop stops following docs", func(st daemon.Status) bool { return !has(st, "docs") && has(st, "keep") })
	if _, err := os.Stat(filepath.Join(l.home, record)); !os.IsNotExist(err) {
		t.Errorf("the laptop's keyring still holds the record of docs (%v)", err)
	}
	if b, err := os.ReadFile(in("l", "docs", "plan.txt")); err != nil || string(b) != "the plan\n" {
		t.Errorf("the laptop's copy of docs is gone: %q %v", b, err)
	}
	// keep still syncs to the laptop.
	write(t, in("a", "keep", "more.txt"), "more\n")
	waitTrees(t, in("a", "keep"), in("l", "keep"), "keep still syncs", a, l)
}
