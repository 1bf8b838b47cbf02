package engine

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestServesOnlyWhatHashesToTheAsk: a device serves a block from a file
// its scan hashed without hashing it again, but only while the file is as
// the scan saw it. After an in-place edit that keeps the size and the mtime
// (as a tool that restores timestamps leaves it), the edited block is not
// served (its bytes no longer hash to what is asked) and the others still
// are, byte for byte.
func TestServesOnlyWhatHashesToTheAsk(t *testing.T) {
	key := newKey(t)
	a := newDevice(t, "A", key)
	data := randBytes(3 << 20)
	p := filepath.Join(a.dir, "big.bin")
	mustWrite(t, p, data)
	if runtime.GOOS == "linux" {
		// Old enough for its scan's proof to count (see index.proofs): the
		// case where the hash is skipped is the one under test.
		time.Sleep(1100 * time.Millisecond)
	}
	a.addShare()
	waitScanned(t, a)
	f := a.e.folder(key.ID())
	rec := mustRecord(t, a, "big.bin")
	if len(rec.Blocks) < 3 {
		t.Fatalf("want a file of several blocks, got %d", len(rec.Blocks))
	}
	offs := make([]int64, len(rec.Blocks))
	var off int64
	for i, b := range rec.Blocks {
		offs[i] = off
		off += int64(b.Size)
	}
	serve := func(b record.BlockRef) ([]byte, bool) { return f.readShared(b.Hash, b.Size) }
	for i, b := range rec.Blocks {
		got, ok := serve(b)
		if !ok || !bytes.Equal(got, data[offs[i]:offs[i]+int64(b.Size)]) {
			t.Fatalf("block %d not served as it is on disk (ok %v)", i, ok)
		}
	}
	// Edit block 1 in place; put size and mtime back.
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("edited"), offs[1]+10); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got, ok := serve(rec.Blocks[1]); ok {
		t.Fatalf("served the edited block as %s (its bytes hash to %s)", rec.Blocks[1].Hash.Short(), block.Sum(got).Short())
	}
	for _, i := range []int{0, 2} {
		b := rec.Blocks[i]
		if got, ok := serve(b); !ok || !bytes.Equal(got, data[offs[i]:offs[i]+int64(b.Size)]) {
			t.Errorf("block %d, untouched by the edit, no longer served (ok %v)", i, ok)
		}
	}
}

// TestProvenBlocksOfAnotherShareNotServed: a large file of share B, proven
// by B's scan (so B serves it without a lookup or a hash), is still never
// served to a member of A alone that names its blocks by hash.
func TestProvenBlocksOfAnotherShareNotServed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("proofs need a ctime (Linux only)")
	}
	dut, keyA, keyB, dirB := twoShareDevice(t)
	client := newHostile(t)
	// The file is old enough for B's first scan to prove it: a scan that
	// hashed it while it was fresh would not, and a later one does not
	// hash an unchanged file again.
	secret := randBytes(3 << 20)
	mustWrite(t, filepath.Join(dirB, "secret-b.bin"), secret)
	time.Sleep(1100 * time.Millisecond)
	dut.addShares(t, keyA, keyB, dirB, []identity.DeviceID{client.id.ID()}, nil)
	dut.scanShares(t)
	bRec := shareRecord(t, dut, keyB, dirB, "secret-b.bin")
	fB := dut.e.folder(keyB.ID())
	for _, b := range bRec.Blocks {
		if _, ok := fB.idx.Proven(b.Hash, b.Size); !ok {
			t.Fatalf("B's scan proved no copy of block %s: the test would not cover proven blocks", b.Hash.Short())
		}
	}
	client.dial(t, dut)
	for _, b := range bRec.Blocks {
		expectRefusal(t, client.ask(t, &wire.BlockRequest{Share: keyA.ID(), Hash: b.Hash, Size: b.Size}),
			wire.CodeNotFound, "a proven block of B asked as a block of A")
	}
	client.expectNothingOf(t, "B's file", secret)
}
