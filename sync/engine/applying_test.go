package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// TestScanDuringPutLeavesTheFileToThePeer: a scan that runs while the
// puller has put a file in place but not yet committed its record (here:
// forced into that window, as a folder moved by the user makes the puller
// scan the whole share while other files are being put in place) does not
// take the file for this device's own. Before the fix the receiver made a
// version of its own of each such file, concurrent with the sender's: when
// the sender then renamed the folder, the files came back at the old name
// on both devices.
func TestScanDuringPutLeavesTheFileToThePeer(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.addShare(b)
	b.addShare(a)
	files := dirFiles(t, a, "dir", 3)
	for i := range 3 {
		name := "big" + string(rune('0'+i)) + ".bin"
		files[name] = randBytes(smallFile + 1<<16 + i)
		mustWrite(t, filepath.Join(a.dir, "dir", name), files[name])
	}
	waitScanned(t, a)
	// B puts dir/big0 in place; before it commits A's record, B scans (as
	// the puller does when a folder moved) and A renames dir to dir2.
	var scanned atomic.Int64
	testHookPut = func(f *folder, p record.Path) {
		if f.e != b.e || p != "dir/big0.bin" || scanned.Add(1) != 1 {
			return
		}
		f.scan(context.Background(), scanRequest{full: true})
		if err := os.Rename(filepath.Join(a.dir, "dir"), filepath.Join(a.dir, "dir2")); err != nil {
			t.Error(err)
			return
		}
		a.rescan()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if e, ok, _ := a.index().Lookup("dir/big0.bin"); ok && e.Record.Deleted {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Error("A never recorded the rename")
	}
	t.Cleanup(func() { testHookPut = nil })
	link(t, a, b)
	waitConvergedFor(t, 3*time.Minute, a, b)
	testHookPut = nil
	if scanned.Load() == 0 {
		t.Fatal("no scan ran while a file was put in place")
	}
	for _, d := range []*device{a, b} {
		expectOnlyDir(t, d, "dir2", "dir", files)
	}
}

// index opens d's share index (a second handle on its database).
func (d *device) index() *index.Share {
	d.t.Helper()
	idx, err := d.db.Share(d.key, d.dir, d.id.ID().Short())
	if err != nil {
		d.t.Fatal(err)
	}
	return idx
}

// TestMovedDirIsNotMadeAgain: a directory the puller made and the user then
// moved is not made again by a file put below it, however many try (the
// puller puts files in place with several workers), until a scan has seen
// where it went; once the user deleted it instead, it is made again.
func TestMovedDirIsNotMadeAgain(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.addShare(b)
	b.addShare(a)
	dirFiles(t, a, "dir", 2)
	waitScanned(t, a)
	cut := link(t, a, b)
	waitConverged(t, a, b)
	cut()
	f := b.e.folder(key.ID())
	if err := os.Rename(filepath.Join(b.dir, "dir"), filepath.Join(b.dir, "dir2")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // not yet scanned: refused each time
		if err := f.mayMakeDir("dir"); !errors.Is(err, apply.ErrChanged) {
			t.Fatalf("try %d to make dir again before a scan saw it move: %v, want ErrChanged", i, err)
		}
	}
	f.scan(context.Background(), scanRequest{full: true})
	for i := range 2 { // moved: the files go to dir2
		if err := f.mayMakeDir("dir"); !errors.Is(err, apply.ErrChanged) || !strings.Contains(err.Error(), "dir2") {
			t.Fatalf("try %d to make dir again once it was seen moved: %v, want ErrChanged naming dir2", i, err)
		}
	}
	if err := os.RemoveAll(filepath.Join(b.dir, "dir2")); err != nil {
		t.Fatal(err)
	}
	f.scan(context.Background(), scanRequest{full: true})
	if err := f.mayMakeDir("dir"); err != nil {
		t.Fatalf("make dir again once it was deleted: %v", err)
	}
}

// TestFolderMadeForAFileWaitsForItsRecord: a file whose record comes before
// its folders' records (a push or a walk's answer is in tree-key order, not
// path order) makes the puller create those folders. A scan in the window
// before their records come must not take them for this device's own: each
// would become a new record of the receiver's, concurrent with the
// sender's, pushed back to it and applied there (a first sync of 20,000
// small files over 100 Mbit/s sent some hundreds of such records back). The
// folders are left to the peer's records, and recorded as they say.
func TestFolderMadeForAFileWaitsForItsRecord(t *testing.T) {
	a, b := newPair(t)
	content := []byte("content")
	write(t, a, "d1/d2/f.txt", content)
	waitScanned(t, a)
	e, ok, err := a.index().Lookup("d1/d2/f.txt")
	if err != nil || !ok {
		t.Fatalf("A's record of d1/d2/f.txt: %v, %v", ok, err)
	}
	fb := b.e.folders()[0]
	if err := fb.deliver(context.Background(), []incoming{{env: e.Envelope, rec: e.Record, from: a.id.ID(), content: content}}); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "B to apply d1/d2/f.txt", func() bool {
		_, ok, _ := b.index().Lookup("d1/d2/f.txt")
		return ok
	})
	waitScanned(t, b) // before the folders' records come
	for _, dir := range []record.Path{"d1", "d1/d2"} {
		if e, ok, _ := b.index().Lookup(dir); ok {
			t.Errorf("B recorded %q, a folder its puller made, before A's record of it came (by %v, version %v)", dir, e.Record.ModifiedBy, e.Record.Version)
		}
	}
	link(t, a, b)
	waitConverged(t, a, b)
	for _, d := range []*device{a, b} {
		for _, dir := range []record.Path{"d1", "d1/d2"} {
			e, ok, err := d.index().Lookup(dir)
			if err != nil || !ok {
				t.Fatalf("%s's record of %q: %v, %v", d.name, dir, ok, err)
			}
			if e.Record.ModifiedBy != a.id.ID().Short() || len(e.Record.Version) != 1 {
				t.Errorf("%s's record of %q: by %v, version %v; want A's own", d.name, dir, e.Record.ModifiedBy, e.Record.Version)
			}
		}
	}
}
