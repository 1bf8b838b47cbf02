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

// TestE2EConfigVerbsThroughAPI runs the verbs that change config.toml
// (share, peer, hook) against a running daemon, which does the work
// through its control API and has applied it when the verb returns, and
// without one, where they edit the home's files and say the daemon will
// apply it.
func TestE2EConfigVerbsThroughAPI(t *testing.T) {
	t.Parallel()
	a := newDevice(t, "a")
	b := newDevice(t, "b")
	bID := strings.TrimSpace(b.ok("id"))
	dir := filepath.Join(t.TempDir(), "docs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}

	// No daemon: the verb edits the files and says so.
	_, errOut, code := a.cli("peer", "add", bID, "--name", "bee", "--addr", "127.0.0.1:9")
	if code != 0 || !strings.Contains(errOut, "daemon is not running") {
		t.Fatalf("peer add without a daemon: exit %d, %q", code, errOut)
	}

	a.start()
	// Through the API: nothing says the daemon is not running, and the
	// daemon runs the share as soon as the verb returns.
	out, errOut, code := a.cli("share", "add", dir, "--name", "docs")
	if code != 0 || strings.Contains(errOut, "not running") {
		t.Fatalf("share add: exit %d, %q", code, errOut)
	}
	id := strings.TrimSpace(out)
	st, _ := a.status()
	if i := slices.IndexFunc(st.Shares, func(s daemon.ShareStatus) bool { return s.ID == id }); i < 0 {
		t.Fatalf("share add returned before the daemon had share %s: %+v", id, st.Shares)
	}
	if out := a.ok("share", "list"); !strings.Contains(out, id) || !strings.Contains(out, "docs") || !strings.Contains(out, "read-write") {
		t.Fatalf("share list: %q", out)
	}
	// Bad input through the API: clear errors, exit 1, nothing changed.
	if _, errOut, code := a.cli("share", "add", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errOut, "create the folder first") {
		t.Fatalf("share add of a missing folder: exit %d, %q", code, errOut)
	}
	if _, errOut, code := a.cli("hook", "remove", "7"); code != 1 || !strings.Contains(errOut, "no number 7") {
		t.Fatalf("hook remove 7: exit %d, %q", code, errOut)
	}

	if out := a.ok("peer", "list"); !strings.Contains(out, bID) || !strings.Contains(out, "bee") {
		t.Fatalf("peer list: %q", out)
	}
	a.ok("hook", "add", "--timeout", "5s", "docs", "file_applied", "true", "--flag-of-the-command")
	var hooks []daemon.HookEntry
	if err := json.Unmarshal([]byte(a.ok("hook", "list", "--json")), &hooks); err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 1 || hooks[0].Share != id || hooks[0].ShareName != "docs" || hooks[0].Timeout != "5s" ||
		!slices.Equal(hooks[0].Command, []string{"true", "--flag-of-the-command"}) {
		t.Fatalf("hook list --json: %+v", hooks)
	}
	st, _ = a.status()
	if len(st.Hooks) != 1 {
		t.Fatalf("the daemon runs %d hooks after hook add, want 1", len(st.Hooks))
	}
	a.ok("hook", "remove", "1")
	a.ok("peer", "remove", "bee")
	if out := a.ok("peer", "list"); strings.Contains(out, bID) {
		t.Fatalf("peer list after peer remove: %q", out)
	}
	_, errOut, code = a.cli("share", "remove", "docs")
	if code != 0 || !strings.Contains(errOut, "no longer synced") {
		t.Fatalf("share remove: exit %d, %q", code, errOut)
	}
	st, _ = a.status()
	if len(st.Shares) != 0 || len(st.Hooks) != 0 {
		t.Fatalf("after share remove and hook remove the daemon still has %d shares, %d hooks", len(st.Shares), len(st.Hooks))
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("share remove took the folder: %v", err)
	}
}
