package engine

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// A change of mtime or mode alone travels as a record and is applied in
// place: no block, no inline content, no version kept, no rewrite.

// touchBudget is the most a metadata-only change may cost on the wire, per
// file, both directions, signatures and framing included.
const touchBudget = 256

// TestTouchTravelsAsRecordOnly: A touches (and chmods half of) files B
// holds already. B sets the attributes in place: every inode stays, the
// versions folder gains nothing, and the wire carries at most touchBudget
// bytes per file.
func TestTouchTravelsAsRecordOnly(t *testing.T) {
	const n = 300
	a, b := newPair(t)
	for i := range n {
		mustWrite(t, filepath.Join(a.dir, tinyName(i)), tinyContent(i))
	}
	a.rescan()
	var count wireCount
	linkCounted(t, a, b, &count)
	waitConverged(t, a, b)

	inodes := inodesOf(t, b.dir, n)
	versions := listVersions(t, b.dir)
	count.n.Store(0)
	touchAll(t, a.dir, n, time.Now().Add(-time.Hour))
	a.rescan()
	waitConverged(t, a, b)
	waitAttrsEqual(t, a, b, n)

	if got := inodesOf(t, b.dir, n); !equalMaps(got, inodes) {
		t.Errorf("B rewrote files for a metadata-only change: %d of %d inodes changed", changed(got, inodes), n)
	}
	if got := listVersions(t, b.dir); len(got) != len(versions) {
		t.Errorf("B's versions folder went from %d to %d entries for a metadata-only change", len(versions), len(got))
	}
	per := float64(count.n.Load()) / n
	t.Logf("a touch cost %.0f bytes on the wire per file", per)
	if per > touchBudget {
		t.Errorf("a touch cost %.0f bytes on the wire per file, want <= %d", per, touchBudget)
	}

	// chmod alone (the scanner does not even read these files).
	count.n.Store(0)
	for i := range n {
		if err := os.Chmod(filepath.Join(a.dir, tinyName(i)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	a.rescan()
	waitConverged(t, a, b)
	waitAttrsEqual(t, a, b, n)
	if got := inodesOf(t, b.dir, n); !equalMaps(got, inodes) {
		t.Errorf("B rewrote files for a chmod: %d of %d inodes changed", changed(got, inodes), n)
	}
	if got := listVersions(t, b.dir); len(got) != len(versions) {
		t.Errorf("B's versions folder went from %d to %d entries for a chmod", len(versions), len(got))
	}
	if per := float64(count.n.Load()) / n; per > touchBudget {
		t.Errorf("a chmod cost %.0f bytes on the wire per file, want <= %d", per, touchBudget)
	}
}

// TestTouchBesideLocalEdit: B edits a file (not yet scanned) while A's
// touch of the same file arrives. B's edit is never overwritten: it stays
// at the path, or in a conflict copy, as the conflict rules say.
func TestTouchBesideLocalEdit(t *testing.T) {
	a, b := newPair(t)
	mustWrite(t, filepath.Join(a.dir, "notes.txt"), []byte("the original"))
	mustWrite(t, filepath.Join(a.dir, "other.txt"), []byte("the original"))
	a.rescan()
	link(t, a, b)
	waitConverged(t, a, b)

	// B's edits, same size, not scanned: one older than A's coming touch
	// (A wins, B's edit goes aside) and one newer (B's edit wins).
	bp := filepath.Join(b.dir, "notes.txt")
	mustWrite(t, bp, []byte("B's edit one"))
	if err := os.Chtimes(bp, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	bo := filepath.Join(b.dir, "other.txt")
	mustWrite(t, bo, []byte("B's edit two"))
	if err := os.Chtimes(bo, time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"notes.txt", "other.txt"} {
		if err := os.Chtimes(filepath.Join(a.dir, p), time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	a.rescan()
	waitConverged(t, a, b)

	expectFile(t, b, "notes.txt", []byte("the original"))
	copies := mustGlob(t, b.dir, "notes.sync-conflict-*.txt")
	if len(copies) != 1 {
		t.Fatalf("want B's older edit in one conflict copy, got %v", copies)
	}
	if got, _ := os.ReadFile(copies[0]); string(got) != "B's edit one" {
		t.Fatalf("conflict copy holds %q", got)
	}
	expectFile(t, b, "other.txt", []byte("B's edit two"))
	expectFile(t, a, "other.txt", []byte("B's edit two"))
}

// tinyName and tinyContent make the files of a touch test: many folders,
// a few bytes each.
func tinyName(i int) string { return fmt.Sprintf("d%03d/f%06d.txt", i%100, i) }

// tinyContent is 1 KiB that does not compress, different for every file.
func tinyContent(i int) []byte { return seededBytes(uint64(i)+1, 1024) }

// touchAll sets every file's mtime to when, and makes every other one
// owner-only, as `touch` and `chmod` would.
func touchAll(t testing.TB, dir string, n int, when time.Time) {
	t.Helper()
	for i := range n {
		p := filepath.Join(dir, tinyName(i))
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func inodesOf(t testing.TB, dir string, n int) map[string]uint64 {
	t.Helper()
	out := make(map[string]uint64, n)
	for i := range n {
		fi, err := os.Lstat(filepath.Join(dir, tinyName(i)))
		if err != nil {
			t.Fatal(err)
		}
		out[tinyName(i)] = fi.Sys().(*syscall.Stat_t).Ino
	}
	return out
}

// listVersions lists what the versions folder holds.
func listVersions(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, ".blueshift", "versions")
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitAttrsEqual waits until b's files have a's modes and mtimes.
func waitAttrsEqual(t testing.TB, a, b *device, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		diff := ""
		for i := range n {
			fa, err1 := os.Lstat(filepath.Join(a.dir, tinyName(i)))
			fb, err2 := os.Lstat(filepath.Join(b.dir, tinyName(i)))
			if err1 != nil || err2 != nil {
				diff = fmt.Sprintf("%s: %v %v", tinyName(i), err1, err2)
				break
			}
			if fa.Mode() != fb.Mode() || !fa.ModTime().Equal(fb.ModTime()) {
				diff = fmt.Sprintf("%s: A %v %s, B %v %s", tinyName(i), fa.Mode(), fa.ModTime(), fb.Mode(), fb.ModTime())
				break
			}
		}
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("attributes differ: %s", diff)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func equalMaps(a, b map[string]uint64) bool { return changed(a, b) == 0 && len(a) == len(b) }

func changed(a, b map[string]uint64) int {
	n := 0
	for k, v := range a {
		if b[k] != v {
			n++
		}
	}
	return n
}

// TestSplitInPlace: of a scan's records, those of a file that stays a file
// at its path go at once; creations, deletions and changes of kind wait for
// the scan's end (a rename's two halves travel together), as do records
// whose old or new record the index did not hand over.
func TestSplitInPlace(t *testing.T) {
	file := &record.Record{Path: "a", Kind: record.File}
	dir := &record.Record{Path: "a", Kind: record.Dir}
	gone := &record.Record{Path: "a", Kind: record.File, Deleted: true}
	old := &record.Envelope{}
	for _, tc := range []struct {
		name string
		o    outgoing
		now  bool
	}{
		{"touched file", outgoing{replaced: old, rec: file, was: file}, true},
		{"new file", outgoing{rec: file}, false},
		{"file over a tombstone", outgoing{replaced: old, rec: file, was: gone}, false},
		{"deleted file", outgoing{replaced: old, rec: gone, was: file}, false},
		{"folder made a file", outgoing{replaced: old, rec: file, was: dir}, false},
		{"folder", outgoing{replaced: old, rec: dir, was: dir}, false},
		{"records not handed over", outgoing{replaced: old}, false},
	} {
		now, later := splitInPlace([]outgoing{tc.o})
		if got := len(now) == 1 && len(later) == 0; got != tc.now || len(now)+len(later) != 1 {
			t.Errorf("%s: %d now, %d later; want now %v", tc.name, len(now), len(later), tc.now)
		}
	}
}

// TestScanningShareIsNotInSync: while a scan is under way, or its records
// are not all pushed yet, the share does not say it is in sync, even when
// its peer holds every record written so far: the scan's records reach
// peers a batch at a time, so a peer may hold the root of a half-done scan.
func TestScanningShareIsNotInSync(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.addShare(b)
	b.addShare(a)
	mustWrite(t, filepath.Join(a.dir, "f"), []byte("content"))
	a.rescan()
	link(t, a, b)
	waitConverged(t, a, b)
	f := a.e.folder(key.ID())
	if !f.status().InSync {
		t.Fatal("A is not in sync after converging")
	}
	f.mu.Lock()
	f.mu.scanning++ // as folder.scan does until the pusher has pushed the scan's records
	f.mu.Unlock()
	if f.status().InSync {
		t.Error("A says it is in sync while a scan is under way")
	}
	f.mu.Lock()
	f.mu.scanning--
	f.mu.Unlock()
	if !f.status().InSync {
		t.Error("A is not in sync once the scan is over")
	}
}
