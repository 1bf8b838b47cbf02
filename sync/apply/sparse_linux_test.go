package apply

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/blueshift-sync/blueshift/index/block"
)

// A temp whose middle and end are holes (Hole) commits to a file of its full
// length, with the data where it was written and zeros elsewhere, that
// allocates only its data.
func TestTempHolesStayHoles(t *testing.T) {
	r, dir := openTest(t, Options{})
	const size = 32 << 20
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{9}).Read(data)
	tp, err := r.OpenTemp("img.bin", block.Hash{4}, size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.WriteAt(data, 0); err != nil {
		t.Fatal(err)
	}
	if err := tp.Hole(1<<20, 16<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := tp.WriteAt(data, 17<<20); err != nil {
		t.Fatal(err)
	}
	if tp.Complete() {
		t.Fatal("complete before its last hole was marked")
	}
	if err := tp.Hole(18<<20, size-18<<20+1); err == nil {
		t.Fatal("a hole past the end was accepted")
	}
	if err := tp.Hole(18<<20, size-18<<20); err != nil {
		t.Fatal(err)
	}
	if !tp.Complete() {
		t.Fatalf("not complete: %v", tp.Done())
	}
	if _, err := r.Commit(context.Background(), tp, FileState{}, Meta{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "img.bin")
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	copy(want, data)
	copy(want[17<<20:], data)
	if !bytes.Equal(got, want) {
		t.Fatalf("content differs (%d bytes, want %d)", len(got), len(want))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	if alloc := st.Blocks * 512; alloc > 4<<20 {
		t.Fatalf("the file allocates %d bytes for 2 MiB of data in %d", alloc, size)
	}
}

// On a 4 MiB tmpfs, a sparse file of 8 MiB with 1 MiB of data is not
// refused for lack of space: the check counts data, not apparent size.
func TestSparseTempFitsBySize(t *testing.T) {
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
	if _, err := r.OpenSparseTemp("sparse.bin", block.Hash{5}, 8<<20, 8<<20); !IsNoSpace(err) {
		t.Fatalf("OpenSparseTemp of 8 MiB of data on a 4 MiB disk: %v, want ENOSPC", err)
	}
	tp, err := r.OpenSparseTemp("sparse.bin", block.Hash{5}, 8<<20, 1<<20)
	if err != nil {
		t.Fatalf("OpenSparseTemp of 1 MiB of data in 8 MiB on a 4 MiB disk: %v", err)
	}
	if _, err := tp.WriteAt(make([]byte, 1<<20), 3<<20); err != nil {
		t.Fatal(err)
	}
	tp.Hole(0, 3<<20)
	tp.Hole(4<<20, 4<<20)
	if _, err := r.Commit(context.Background(), tp, FileState{}, Meta{Mode: 0o644}); err != nil {
		t.Fatalf("commit an 8 MiB sparse file on a 4 MiB disk: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(mnt, "sparse.bin")); err != nil || fi.Size() != 8<<20 {
		t.Fatalf("committed file: %v, %v", fi, err)
	}
}
