//go:build linux

package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
)

// TestSparseFileStaysSparse: a file with a 64 MiB hole (and one at its end)
// arrives with the same content, but its holes are neither fetched nor
// allocated, and status counts only its data as needed.
func TestSparseFileStaysSparse(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "a", key), newDevice(t, "b", key)
	a.gate, a.upload = &gate{}, &uploaded{}
	a.gate.shut.Store(true) // b learns the record first; its blocks wait
	a.addShare(b)
	b.addShare(a)

	const mib = 1 << 20
	regions := []struct {
		off int64
		n   int
	}{{0, mib}, {65 * mib, mib / 2}, {70 * mib, 300 << 10}}
	const size = 80 * mib // the last 10 MiB are a hole too
	var dataLen int64
	p := filepath.Join(a.dir, "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if _, err := f.WriteAt(randBytes(r.n), r.off); err != nil {
			t.Fatal(err)
		}
		dataLen += int64(r.n)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if alloc := allocated(t, p); alloc > size/2 {
		t.Skipf("the test's file system does not keep holes (%d of %d bytes allocated)", alloc, size)
	}
	a.rescan()
	var wire wireCount
	linkCounted(t, a, b, &wire)

	// While the blocks wait, b needs the data, not the apparent size.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := b.e.Status()
		if len(st.Shares) == 1 && st.Shares[0].NeedItems > 0 {
			need := st.Shares[0].NeedBytes
			// Blocks that straddle data and a hole are data: at most one
			// chunk (256 KiB) more at each of the regions' edges.
			if need < dataLen || need > dataLen+int64(2*len(regions))*(256<<10) {
				t.Fatalf("needed bytes %d; the data is %d bytes, the file %d", need, dataLen, int64(size))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never saw the file as needed: %+v", st.Shares)
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.gate.shut.Store(false)
	waitConvergedFor(t, 2*time.Minute, a, b)

	got, err := os.ReadFile(filepath.Join(b.dir, "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("b's file differs from a's (%d vs %d bytes)", len(got), len(want))
	}
	if alloc := allocated(t, filepath.Join(b.dir, "disk.img")); alloc > 8*mib {
		t.Errorf("b's file allocates %d bytes; its data is %d of %d", alloc, dataLen, int64(size))
	}
	zero := block.Sum(make([]byte, 256<<10))
	a.upload.mu.Lock()
	asked := a.upload.per[zero]
	a.upload.mu.Unlock()
	if asked > 0 {
		t.Errorf("b fetched the all-zero block %d times", asked)
	}
	if n := wire.n.Load(); n > 16*mib {
		t.Errorf("%d bytes on the wire for %d bytes of data", n, dataLen)
	}
	t.Logf("apparent %d, data %d, allocated at b %d, wire %d, served %d",
		int64(size), dataLen, allocated(t, filepath.Join(b.dir, "disk.img")), wire.n.Load(), a.upload.n.Load())
}

// allocated is the disk space a file takes.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Blocks * 512
}
