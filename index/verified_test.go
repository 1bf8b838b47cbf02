package index

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
)

// TestProvesOnlyWhatTheScanHashed: a scan that hashed a file proves its
// blocks (at their offsets, of their lengths) while the file is as the scan
// saw it, so a served block need not be hashed again. Any write after the
// scan ends the proof, even one that puts the size and mtime back; so does
// a file written just before its scan (the racy case) and a file too small
// to be worth remembering.
func TestProvesOnlyWhatTheScanHashed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("proofs need a ctime (Linux only): elsewhere every served block is hashed")
	}
	db, err := Open(t.TempDir(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	content := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("old.bin", content(3<<20))
	write("small.bin", content(100<<10))
	write("edited.bin", content(2<<20))
	time.Sleep(racyMargin + 100*time.Millisecond) // the files are older than the margin now
	write("fresh.bin", content(2<<20))            // and this one is not
	sh, err := db.Share(testKey(t, 30), root, 0xA1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sh.Scan(context.Background(), ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	// proven counts the blocks of name that Proves accepts as they are.
	proven := func(name string) (n, of int) {
		t.Helper()
		e, ok, err := sh.Lookup(record.Path(name))
		if err != nil || !ok {
			t.Fatalf("lookup %s: %v %v", name, ok, err)
		}
		fi, err := os.Stat(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		var off int64
		for _, b := range e.Record.Blocks {
			if sh.Proves(record.Path(name), fi, off, b.Size, b.Hash) {
				n++
			}
			off += int64(b.Size)
		}
		return n, len(e.Record.Blocks)
	}
	if n, of := proven("old.bin"); n != of || of < 2 {
		t.Errorf("old.bin: %d of %d blocks proven, want all", n, of)
	}
	for _, name := range []string{"small.bin", "fresh.bin"} {
		if n, of := proven(name); n != 0 {
			t.Errorf("%s: %d of %d blocks proven, want none", name, n, of)
		}
	}
	// Proven finds old.bin's blocks where the scan cut them, and nothing
	// of the files it did not remember.
	var at int64
	for _, b := range mustLookup(t, sh, "old.bin").Blocks {
		l, ok := sh.Proven(b.Hash, b.Size)
		if !ok || l.Path != "old.bin" || l.Offset != at || l.Length != b.Size {
			t.Errorf("Proven(%s) = %+v, %v; want old.bin at %d", b.Hash.Short(), l, ok, at)
		}
		if _, ok := sh.Proven(b.Hash, b.Size+1); ok {
			t.Errorf("Proven(%s) with a wrong length found it", b.Hash.Short())
		}
		at += int64(b.Size)
	}
	for _, name := range []string{"small.bin", "fresh.bin"} {
		b := mustLookup(t, sh, name).Blocks[0]
		if l, ok := sh.Proven(b.Hash, b.Size); ok {
			t.Errorf("Proven finds %s's block at %+v; its scan proved nothing", name, l)
		}
	}
	// A wrong offset, length or hash is not proven.
	e, _, _ := sh.Lookup("old.bin")
	fi, _ := os.Stat(filepath.Join(root, "old.bin"))
	b0 := e.Record.Blocks[0]
	for _, c := range []struct {
		off  int64
		size uint32
		h    block.Hash
	}{{1, b0.Size, b0.Hash}, {0, b0.Size - 1, b0.Hash}, {0, b0.Size, e.Record.Blocks[1].Hash}} {
		if sh.Proves("old.bin", fi, c.off, c.size, c.h) {
			t.Errorf("proves block at %d+%d %s, which the scan did not see there", c.off, c.size, c.h.Short())
		}
	}
	// Edited in place after the scan, size and mtime put back as they were:
	// only the ctime tells, and it does.
	p := filepath.Join(root, "edited.bin")
	before, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if n, of := proven("edited.bin"); n != of {
		t.Fatalf("edited.bin before the edit: %d of %d blocks proven, want all", n, of)
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("changed"), 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("the edit should keep size and mtime")
	}
	if n, of := proven("edited.bin"); n != 0 {
		t.Errorf("edited.bin after an edit that kept size and mtime: %d of %d blocks proven, want none", n, of)
	}
	if SameFile(before, after) {
		t.Errorf("SameFile: a write between two stats went unseen")
	}
	// old.bin rewritten and rescanned (too fresh now to prove anything):
	// its old proof is gone.
	b0 = mustLookup(t, sh, "old.bin").Blocks[0]
	write("old.bin", content(2<<20))
	if _, err := sh.Scan(context.Background(), ScanOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, ok := sh.Proven(b0.Hash, b0.Size); ok {
		t.Errorf("after old.bin was rewritten and rescanned, Proven still finds its old block at %+v", l)
	}
}

func mustLookup(t *testing.T, sh *Share, name string) record.Record {
	t.Helper()
	e, ok, err := sh.Lookup(record.Path(name))
	if err != nil || !ok {
		t.Fatalf("lookup %s: %v %v", name, ok, err)
	}
	return e.Record
}

// TestHoldsListsIndexedBlocks: Holds answers, for a whole list at once,
// which blocks the index lists in any share, as Locate does one by one.
func TestHoldsListsIndexedBlocks(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hs []block.Hash
	for i := range 2 {
		root := t.TempDir()
		data := []byte{byte(i), 'x', 'y'}
		if err := os.WriteFile(filepath.Join(root, "f"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		sh, err := db.Share(testKey(t, byte(40+i)), root, 0xA1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sh.Scan(context.Background(), ScanOptions{}); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, blockHash(data))
	}
	absent := []block.Hash{blockHash([]byte("nowhere")), {}, {0xff, 0xff}}
	held, err := db.Holds(append(append(append([]block.Hash{}, absent[0]), hs...), absent[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if !held[h] {
			t.Errorf("Holds misses %s, which a share's file holds", h.Short())
		}
	}
	for _, h := range absent {
		if held[h] {
			t.Errorf("Holds lists %s, which no file holds", h.Short())
		}
	}
	if held, err := db.Holds(nil); err != nil || len(held) != 0 {
		t.Errorf("Holds(nil) = %v, %v", held, err)
	}
}
