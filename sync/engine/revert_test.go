package engine

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index"
)

// TestReadOnlyRevert: a read-only member's edit, deletion and new file
// stay local and are listed as local changes; Revert puts the share's
// version back, and the local copies land in the versions folder.
func TestReadOnlyRevert(t *testing.T) {
	key := newKey(t)
	ro, err := key.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	a, r := newDevice(t, "a", key), newDevice(t, "r", ro)
	a.addShare(r)
	r.addShare(a)
	write(t, a, "edit.txt", []byte("the share's version"))
	write(t, a, "gone.txt", []byte("deleted on r"))
	link(t, a, r)
	waitConverged(t, a, r)

	write(t, r, "edit.txt", []byte("r's local edit, longer"))
	if err := os.Remove(filepath.Join(r.dir, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	write(t, r, "new.txt", []byte("only on r"))
	var changes []index.LocalChange
	deadline := time.Now().Add(20 * time.Second)
	for len(changes) != 3 {
		r.rescan()
		if changes, _, err = r.e.LocalChanges(r.key.ID()); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("local changes on r: %+v", changes)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := map[string]string{}
	for _, c := range changes {
		got[string(c.Path)] = c.What
	}
	if got["edit.txt"] != "changed" || got["gone.txt"] != "deleted" || got["new.txt"] != "added" {
		t.Fatalf("local changes: %v", got)
	}
	if snap := snapshot(t, a.dir); strings.Contains(snap, "new.txt") {
		t.Fatalf("a got r's local file:\n%s", snap)
	}
	expectFile(t, a, "edit.txt", []byte("the share's version"))

	n, err := r.e.Revert(context.Background(), r.key.ID(), nil)
	if err != nil || n != 3 {
		t.Fatalf("revert: %d, %v", n, err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for snapshot(t, a.dir) != snapshot(t, r.dir) {
		if time.Now().After(deadline) {
			t.Fatalf("r after revert:\n%s\nwant:\n%s\n%s", snapshot(t, r.dir), snapshot(t, a.dir), r.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	var kept []string
	filepath.WalkDir(filepath.Join(r.dir, ".blueshift", "versions"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			kept = append(kept, string(b))
		}
		return nil
	})
	for _, want := range []string{"r's local edit, longer", "only on r"} {
		if !slices.Contains(kept, want) {
			t.Errorf("the versions folder does not hold %q: %q", want, kept)
		}
	}
	r.rescan()
	if changes, _, _ := r.e.LocalChanges(r.key.ID()); len(changes) != 0 {
		t.Errorf("local changes after revert: %+v", changes)
	}
}
