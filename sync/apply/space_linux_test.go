package apply

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/blueshift-sync/blueshift/index/block"
)

// On a real, small file system (a 4 MiB tmpfs): a temp for content that
// cannot fit is refused at once with ENOSPC and nothing is created; one
// that fits but runs out of space part way keeps what was written, and no
// more; TempWritten tells what a resumed pull still needs.
func TestTempOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a size-limited tmpfs needs root (CI runs as root)")
	}
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("mount a tmpfs at %s: %v (needs CAP_SYS_ADMIN)", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	})
	r, err := Open(mnt, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	free, err := r.FreeSpace()
	if err != nil || free <= 0 || free > 4<<20 {
		t.Fatalf("FreeSpace = %d, %v on a 4 MiB tmpfs", free, err)
	}

	if _, err := r.OpenTemp("huge.bin", block.Hash{1}, 8<<20); !IsNoSpace(err) {
		t.Fatalf("OpenTemp for 8 MiB on a 4 MiB disk: %v, want ENOSPC", err)
	}
	noTemps(t, mnt, "a refused temp")

	// Fits when opened; a filler then takes the space.
	const size = 3 << 20
	tp, err := r.OpenTemp("big.bin", block.Hash{2}, size)
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	var wrote int64
	var werr error
	for off := int64(0); off < size; off += int64(len(chunk)) {
		var n int
		n, werr = tp.WriteAt(chunk, off)
		wrote += int64(n)
		if werr != nil {
			break
		}
	}
	if !IsNoSpace(werr) {
		t.Fatalf("writing 3 MiB beside a 2 MiB filler on a 4 MiB disk: %v, want ENOSPC", werr)
	}
	tp.Close()
	got := r.TempWritten("big.bin", block.Hash{2}, size)
	if got <= 0 || got > wrote {
		t.Fatalf("TempWritten = %d after %d bytes written", got, wrote)
	}
	part := filepath.Join(mnt, tmpDir, TempKey("big.bin", block.Hash{2})+".part")
	var st syscall.Stat_t
	// At most the block whose write failed beyond what was written: no
	// preallocation of the 3 MiB.
	if err := syscall.Stat(part, &st); err != nil || st.Blocks*512 > wrote+int64(len(chunk))+4096 {
		t.Fatalf("the partial file takes %d bytes on disk after %d were written (%v)", st.Blocks*512, wrote, err)
	}
	// Space returns: the temp resumes where it stopped.
	os.Remove(filler)
	tp, err = r.OpenTemp("big.bin", block.Hash{2}, size)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Discard()
	if !tp.Has(0, got) {
		t.Fatalf("resumed temp lost what was written: %v", tp.Done())
	}
}

// A sidecar grown long with one note per write is rewritten merged at the
// next Sync.
func TestTempSidecarCompacted(t *testing.T) {
	r, dir := openTest(t, Options{})
	const n = compactAt/recordLen + 100
	tp, err := r.OpenTemp("many.bin", block.Hash{3}, n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(n) {
		if _, err := tp.WriteAt([]byte{byte(i)}, i); err != nil {
			t.Fatal(err)
		}
	}
	side := filepath.Join(dir, tmpDir, TempKey("many.bin", block.Hash{3})+".done")
	if fi, err := os.Stat(side); err != nil || fi.Size() < compactAt {
		t.Fatalf("sidecar of %v bytes after %d notes (%v)", fi.Size(), n, err)
	}
	if err := tp.Sync(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(side); err != nil || fi.Size() > headerLen+4*recordLen {
		t.Fatalf("sidecar of %v bytes after Sync (%v): not compacted", fi.Size(), err)
	}
	tp.WriteAt([]byte{1}, 0) // appends go to the new sidecar
	tp.Close()
	tp, err = r.OpenTemp("many.bin", block.Hash{3}, n)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Discard()
	if !tp.Complete() {
		t.Fatalf("after compaction and reopen: %v", tp.Done())
	}
}
