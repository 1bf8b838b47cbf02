package index

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// The walk runs on several goroutines (descend): every path of a wide and a
// deep tree is found once, whichever goroutine walked it, and what changed
// in any subtree between two scans (a deletion, an addition, an edit, a
// folder removed whole) is what the second scan records.
func TestWalkOfManyFolders(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	put := func(p string, data string) {
		e.write(p, []byte(data))
		want[p] = true
	}
	for d := range 24 {
		for f := range 20 {
			put(fmt.Sprintf("w%02d/x%d/f%02d", d, d%3, f), fmt.Sprintf("file %d %d", d, f))
		}
	}
	deep := ""
	for i := range 60 { // deeper than the walk has goroutines, and one descriptor at a time
		deep = filepath.Join(deep, fmt.Sprintf("l%02d", i))
		put(filepath.Join(deep, "leaf"), fmt.Sprint(i))
	}
	res := e.scan()
	if res.Hashed != len(want) || len(res.Errors) != 0 {
		t.Fatalf("first scan hashed %d files, want %d (errors %v)", res.Hashed, len(want), res.Errors)
	}
	checkLive(t, e, want)
	if again := e.scan(); again.Records != 0 || again.Hashed != 0 {
		t.Fatalf("rescan of the unchanged tree: %+v", again)
	}

	// Changes spread over subtrees the walk's goroutines share out.
	rm := func(p string) {
		if err := os.RemoveAll(filepath.Join(e.root, p)); err != nil {
			t.Fatal(err)
		}
		for k := range want {
			if k == p || strings.HasPrefix(k, p+"/") {
				delete(want, k)
			}
		}
	}
	rm("w03/x0/f07")
	rm("w17") // a folder with everything below it
	rm(filepath.Join(deep, "leaf"))
	put("w20/x2/new", "added")
	put("w09/x0/f01", "edited, and longer than before")
	res = e.scan()
	// Tombstones: a file, w17 (two folders, twenty files), the deep leaf.
	if res.Deleted != 1+22+1 || res.Hashed != 2 || len(res.Errors) != 0 {
		t.Fatalf("second scan: deleted %d, hashed %d, errors %v; want 24 deleted, 2 hashed", res.Deleted, res.Hashed, res.Errors)
	}
	checkLive(t, e, want)
}

// Found and stored paths can balance while one is gone: a file deleted and
// another added in the same scan still makes a tombstone.
func TestWalkDeletionBalancedByAddition(t *testing.T) {
	e := newEnv(t)
	e.write("a/one", []byte("1"))
	e.write("b/two", []byte("2"))
	e.scan()
	if err := os.Remove(filepath.Join(e.root, "a", "one")); err != nil {
		t.Fatal(err)
	}
	e.write("a/three", []byte("3"))
	if res := e.scan(); res.Deleted != 1 {
		t.Fatalf("deleted %d, want 1: %+v", res.Deleted, res)
	}
	checkLive(t, e, map[string]bool{"a": true, "b": true, "a/three": true, "b/two": true})
}

// checkLive fails unless the live file records are exactly the files in
// want (folders in want are ignored; folders are checked by their files).
func checkLive(t *testing.T, e *env, want map[string]bool) {
	t.Helper()
	got := e.live(t)
	for p := range want {
		if fi, err := os.Lstat(filepath.Join(e.root, p)); err == nil && fi.IsDir() {
			continue
		}
		if _, ok := got[p]; !ok {
			t.Errorf("no record of %s", p)
		}
	}
	for p, r := range got {
		if r.Kind == record.File && !want[p] {
			t.Errorf("record of %s, which is not on disk", p)
		}
	}
}

// A scan given WalkAfter looks at the folder only once it is closed: a
// file written before that is found (the caller's watches were not in
// place yet, so this scan is what sees it), and a scan whose context ends
// while it waits records nothing.
func TestWalkAfterHoldsTheWalk(t *testing.T) {
	e := newEnv(t)
	e.write("old", []byte("old"))
	e.scan()

	after := make(chan struct{})
	done := make(chan ScanResult, 1)
	go func() {
		res, err := e.sh.Scan(context.Background(), ScanOptions{WalkAfter: after})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	e.write("written while the watches were placed", []byte("new"))
	select {
	case res := <-done:
		t.Fatalf("the scan ended before WalkAfter was closed: %+v", res)
	case <-time.After(100 * time.Millisecond):
	}
	close(after)
	if res := <-done; res.Hashed != 1 || res.Records != 1 {
		t.Fatalf("scan after WalkAfter: %+v, want the new file hashed and recorded", res)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.write("later", []byte("later"))
	if res, err := e.sh.Scan(ctx, ScanOptions{WalkAfter: make(chan struct{})}); err == nil || res.Records != 0 {
		t.Fatalf("a scan whose context ended while waiting: %+v, %v; want an error and no records", res, err)
	}
	if _, ok := e.lookup("later"); ok {
		t.Fatal("a scan that never walked recorded a file")
	}
}
