package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

// gate serves blocks while open and refuses them while shut, as if the
// sender had stalled part way through a pull.
type gate struct {
	shut    atomic.Bool
	served  atomic.Int64
	refused atomic.Int64
	// openFor, if positive, shuts the gate once that many blocks went.
	openFor atomic.Int64
}

type gated struct {
	*Session
	g *gate
}

func (h gated) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	if _, ok := m.(*wire.BlockRequest); ok {
		if n := h.g.openFor.Load(); n > 0 && h.g.served.Load() >= n {
			h.g.shut.Store(true)
		}
		if h.g.shut.Load() {
			h.g.refused.Add(1)
			return wire.Errorf(wire.CodeNotFound, "gate shut"), nil
		}
		h.g.served.Add(1)
	}
	return h.Session.HandleRequest(ctx, m)
}

// dirFiles writes n files of distinct content under dir on d, each large
// enough that its blocks are asked for (not sent with its record).
func dirFiles(t *testing.T, d *device, dir string, n int) map[string][]byte {
	t.Helper()
	files := make(map[string][]byte, n)
	for i := range n {
		name := fmt.Sprintf("f%03d.bin", i)
		data := randBytes(80<<10 + i)
		mustWrite(t, filepath.Join(d.dir, dir, name), data)
		files[name] = data
	}
	return files
}

// expectOnlyDir checks that d holds exactly the given files under dir and
// nothing under gone.
func expectOnlyDir(t *testing.T, d *device, dir, gone string, files map[string][]byte) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(d.dir, gone)); err == nil {
		left, _ := os.ReadDir(filepath.Join(d.dir, gone))
		t.Errorf("%s still has %s/ (%d entries) after it was renamed to %s", d.name, gone, len(left), dir)
	}
	got, err := os.ReadDir(filepath.Join(d.dir, dir))
	if err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	if len(got) != len(files) {
		t.Errorf("%s has %d files in %s/, want %d", d.name, len(got), dir, len(files))
	}
	for name, data := range files {
		expectFile(t, d, filepath.Join(dir, name), data)
	}
}

// waitBlocked waits until g has refused a block: the receiver holds part of
// the files and waits for the rest.
func waitBlocked(t *testing.T, g *gate) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for g.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the pull never stalled (%d blocks served)", g.served.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDirRenamedBySenderDuringPull: A renames dir to dir2 while B is still
// pulling dir's files. Both end with one folder, dir2, holding every file.
func TestDirRenamedBySenderDuringPull(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	g := new(gate)
	g.openFor.Store(40)
	a.gate = g
	a.addShare(b)
	b.addShare(a)
	files := dirFiles(t, a, "dir", 120)
	waitScanned(t, a)
	link(t, a, b)
	waitBlocked(t, g)
	if err := os.Rename(filepath.Join(a.dir, "dir"), filepath.Join(a.dir, "dir2")); err != nil {
		t.Fatal(err)
	}
	a.rescan()
	time.Sleep(200 * time.Millisecond) // let the rename's records reach B while it waits
	g.openFor.Store(0)
	g.shut.Store(false)
	waitConvergedFor(t, 3*time.Minute, a, b)
	for _, d := range []*device{a, b} {
		expectOnlyDir(t, d, "dir2", "dir", files)
	}
}

// TestDirRenamedByReceiverDuringPull: B renames dir, which it is still
// receiving files into, to dir2. Files that arrive afterwards land in dir2
// too: both end with one folder, dir2, holding every file.
func TestDirRenamedByReceiverDuringPull(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	g := new(gate)
	g.openFor.Store(120) // more than the large files take (~72 blocks), so dir/ gets some
	a.gate = g
	a.addShare(b)
	b.addShare(a)
	files := dirFiles(t, a, "dir", 120)
	// Large files too: built in resumable temps, put in place at the end.
	for i := range 3 {
		name := fmt.Sprintf("big%d.bin", i)
		files[name] = randBytes(3<<19 + i)
		mustWrite(t, filepath.Join(a.dir, "dir", name), files[name])
	}
	waitScanned(t, a)
	link(t, a, b)
	waitBlocked(t, g)
	// B holds some of dir's files; it moves the folder away.
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := os.ReadDir(filepath.Join(b.dir, "dir"))
		if len(got) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B received none of dir's files")
		}
		time.Sleep(10 * time.Millisecond)
	}
	held, _ := os.ReadDir(filepath.Join(b.dir, "dir"))
	t.Logf("B holds %d of dir's %d files when it moves dir to dir2 (%d blocks served, %d refused)", len(held), len(files), g.served.Load(), g.refused.Load())
	if err := os.Rename(filepath.Join(b.dir, "dir"), filepath.Join(b.dir, "dir2")); err != nil {
		t.Fatal(err)
	}
	b.rescan()
	time.Sleep(200 * time.Millisecond)
	t.Log("the gate opens")
	g.openFor.Store(0)
	g.shut.Store(false)
	waitConvergedFor(t, 3*time.Minute, a, b)
	for _, d := range []*device{a, b} {
		expectOnlyDir(t, d, "dir2", "dir", files)
	}
	if strings.Contains(snapshot(t, b.dir), "sync-conflict") {
		t.Errorf("B made conflict copies:\n%s", snapshot(t, b.dir))
	}
}

// TestDirRenamedBySenderWhileWalked: A renames dir to dir2 as soon as B
// has some of its files, with no stall: B may still be walking A's tree.
func TestDirRenamedBySenderWhileWalked(t *testing.T) {
	a, b := newPair(t)
	files := dirFiles(t, a, "dir", 400)
	waitScanned(t, a)
	a.restart() // no push in flight: B walks A's tree
	waitScanned(t, a)
	link(t, a, b)
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := os.ReadDir(filepath.Join(b.dir, "dir"))
		if len(got) > 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B received none of dir's files")
		}
		time.Sleep(time.Millisecond)
	}
	if err := os.Rename(filepath.Join(a.dir, "dir"), filepath.Join(a.dir, "dir2")); err != nil {
		t.Fatal(err)
	}
	a.rescan()
	waitConvergedFor(t, 3*time.Minute, a, b)
	for _, d := range []*device{a, b} {
		expectOnlyDir(t, d, "dir2", "dir", files)
	}
}
