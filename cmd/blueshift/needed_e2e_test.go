package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2ELsNeededLocalChanges: on rob, a read-only member, `ls-needed`
// lists his own edit as a local change, not shared (text and --json), as
// does `status --needed`; the invitation and the join go through the
// daemons' API.
func TestE2ELsNeededLocalChanges(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, r := newDevice(t, "alice"), newDevice(t, "rob")
	work := t.TempDir()
	fa, fr := filepath.Join(work, "a"), filepath.Join(work, "r")
	write(t, filepath.Join(fa, "recipe.txt"), "the family recipe\n")
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "home"))
	a.start()
	r.start()
	r.ok("join", firstLine(a.ok("invite", "home", "--read-only")), fr)
	waitTrees(t, fa, fr, "rob joined", a, r)
	if out := r.ok("ls-needed", "home"); strings.Contains(out, "local changes") {
		t.Fatalf("ls-needed before any edit: %s", out)
	}

	write(t, filepath.Join(fr, "recipe.txt"), "rob's own recipe\n")
	r.waitFor("rob's local change", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.LocalChanges != nil
	})
	out := r.ok("ls-needed", "home")
	if !strings.Contains(out, "1 local changes, not shared") || !strings.Contains(out, "recipe.txt") {
		t.Fatalf("ls-needed on rob:\n%s", out)
	}
	var n daemon.Needed
	if err := json.Unmarshal([]byte(r.ok("ls-needed", "home", "--json")), &n); err != nil {
		t.Fatal(err)
	}
	if n.LocalChanges == nil || n.LocalChanges.Count != 1 || string(n.LocalChanges.Paths[0].Path) != "recipe.txt" || n.LocalChanges.Paths[0].What != "changed" {
		t.Fatalf("ls-needed --json on rob: %+v", n)
	}
	if out := r.ok("status", "--needed"); !strings.Contains(out, "1 local changes, not shared") {
		t.Fatalf("status --needed on rob:\n%s", out)
	}
	if out := a.ok("ls-needed", "home"); strings.Contains(out, "local changes") {
		t.Fatalf("ls-needed on alice, a writer: %s", out)
	}
}
