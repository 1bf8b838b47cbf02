package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EHookRecordsTheSync: a hook added with `hook add` gets every event
// of a sync as JSON on stdin and in its environment; a hook that fails is
// counted in status and holds nothing up.
func TestE2EHookRecordsTheSync(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "first.txt"), "one\n")
	a.ok("share", "add", fa, "--name", "docs")
	a.start()
	b.start()
	link := strings.SplitN(a.ok("invite", "docs"), "\n", 2)[0]
	b.ok("join", link, fb)
	waitTrees(t, fa, fb, "join", a, b)

	log := filepath.Join(work, "events.log")
	b.ok("hook", "add", "docs", "*", "sh", "-c", `{ cat; echo " $BLUESHIFT_EVENT $BLUESHIFT_PATH"; } >> "$0"`, log)
	b.ok("hook", "add", "*", "file_applied", "sh", "-c", "exit 7")
	if out := b.ok("hook", "list"); strings.Count(out, "\n") != 2 {
		t.Fatalf("hook list: %q", out)
	}
	if _, errOut, code := b.cli("hook", "add", "docs", "file_exploded", "true"); code != 2 {
		t.Fatalf("an unknown event: exit %d, %s", code, errOut)
	}

	write(t, filepath.Join(fa, "second.txt"), "two\n")
	os.Remove(filepath.Join(fa, "first.txt"))
	waitTrees(t, fa, fb, "after the changes", a, b)
	var lines []string
	deadline := time.Now().Add(e2eDeadline)
	for {
		data, _ := os.ReadFile(log)
		lines = strings.Split(strings.TrimSpace(string(data)), "\n")
		text := string(data)
		if strings.Contains(text, " file_applied second.txt") && strings.Contains(text, " file_deleted first.txt") && strings.Contains(text, " share_in_sync ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook saw %q\nbob:\n%s", lines, b.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, l := range lines {
		js, _, _ := strings.Cut(l, "} ")
		var ev daemon.Event
		if err := json.Unmarshal([]byte(js+"}"), &ev); err != nil || ev.Type == "" || ev.ShareName != "docs" {
			t.Fatalf("a hook's stdin %q is not the event: %v", l, err)
		}
	}
	b.waitFor("the failing hook counted", func(st daemon.Status) bool {
		for _, h := range st.Hooks {
			if h.Failures > 0 && strings.Contains(h.LastError, "exit status 7") {
				return true
			}
		}
		return false
	})
	b.ok("hook", "remove", "2")
	if out := b.ok("hook", "list"); strings.Count(out, "\n") != 1 {
		t.Fatalf("hook list after remove: %q", out)
	}
}
