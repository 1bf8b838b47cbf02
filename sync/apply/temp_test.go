package apply

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/blueshift-sync/blueshift/index/block"
)

func TestTempResumesAfterRestart(t *testing.T) {
	r, dir := openTest(t, Options{})
	data := make([]byte, 10*1000)
	rand.NewChaCha8([32]byte{7}).Read(data)
	want := block.Sum(data)
	blk := func(i int) []byte { return data[i*1000 : (i+1)*1000] }

	tp, err := r.OpenTemp("big/file.bin", want, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Blocks 0-4 from several goroutines, durable; block 7 written but the
	// process "crashes" before Sync: it must not count.
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			if _, err := tp.WriteAt(blk(i), int64(i*1000)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if err := tp.Sync(); err != nil {
		t.Fatal(err)
	}
	tp.WriteAt(blk(7), 7000)
	if !tp.Has(7000, 1000) {
		t.Fatal("pending write not reported in this session")
	}
	tp.closeFiles() // crash: no Sync
	r.Close()

	r, err = Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tp, err = r.OpenTemp("big/file.bin", want, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got := tp.Done(); len(got) != 1 || got[0] != (Range{0, 5000}) {
		t.Fatalf("resumed ranges %v, want [{0 5000}]", got)
	}
	if tp.Has(7000, 1000) || tp.Complete() {
		t.Fatal("unsynced block counted as done")
	}
	if _, err := r.Commit(context.Background(), tp, FileState{}, Meta{Mode: 0o644}); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("commit incomplete: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "big")); err == nil {
		t.Fatal("incomplete commit created the target's directory")
	}

	tp, err = r.OpenTemp("big/file.bin", want, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	for i := range 10 {
		if tp.Has(int64(i*1000), 1000) {
			tp.ReadAt(buf, int64(i*1000))
			if !bytes.Equal(buf, blk(i)) {
				t.Fatalf("block %d resumed with wrong bytes", i)
			}
			continue
		}
		if i < 5 {
			t.Fatalf("block %d refetched", i)
		}
		tp.WriteAt(blk(i), int64(i*1000))
	}
	st, err := r.Commit(context.Background(), tp, FileState{}, Meta{Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "big", "file.bin"))
	if !bytes.Equal(got, data) || st.Size != int64(len(data)) {
		t.Fatal("committed content differs")
	}
	noTemps(t, dir, "after Commit")
}

func TestTempOtherContentStartsOver(t *testing.T) {
	r, dir := openTest(t, Options{})
	tp, _ := r.OpenTemp("f", block.Hash{1}, 100)
	tp.WriteAt(make([]byte, 100), 0)
	tp.Close()
	// Same key, different size: the sidecar does not apply.
	tp, err := r.OpenTemp("f", block.Hash{1}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Done()) != 0 {
		t.Fatalf("ranges of another size reused: %v", tp.Done())
	}
	if _, err := tp.WriteAt(make([]byte, 10), 45); err == nil {
		t.Fatal("write beyond size accepted")
	}
	tp.Discard()
	// A corrupt sidecar is dropped, not trusted.
	tp, _ = r.OpenTemp("g", block.Hash{2}, 100)
	tp.WriteAt(make([]byte, 100), 0)
	tp.Close()
	side := filepath.Join(dir, tmpDir, TempKey("g", block.Hash{2})+".done")
	b, _ := os.ReadFile(side)
	b[len(b)-1] = 0xff // range length now runs past the size
	os.WriteFile(side, b, 0o600)
	tp, _ = r.OpenTemp("g", block.Hash{2}, 100)
	if len(tp.Done()) != 0 {
		t.Fatalf("corrupt sidecar trusted: %v", tp.Done())
	}
	tp.Discard()
	noTemps(t, dir, "after Discard")
}

// A Commit that finds the user's file changed keeps the complete temp, and a
// later OpenTemp finds it done (no refetch after the conflict is resolved).
func TestTempCommitChangedKeepsTemp(t *testing.T) {
	r, dir := openTest(t, Options{})
	mustWrite(t, r, "f", FileState{}, "user")
	tp, _ := r.OpenTemp("f", block.Hash{3}, 4)
	tp.WriteAt([]byte("peer"), 0)
	if _, err := r.Commit(context.Background(), tp, FileState{}, Meta{Mode: 0o444}); !errors.Is(err, ErrChanged) {
		t.Fatalf("got %v", err)
	}
	if readFile(t, filepath.Join(dir, "f")) != "user" {
		t.Fatal("user file overwritten")
	}
	cc, err := r.ConflictCopy("f", "ME", testTime)
	if err != nil {
		t.Fatal(err)
	}
	tp, err = r.OpenTemp("f", block.Hash{3}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !tp.Complete() {
		t.Fatal("completed temp lost after ErrChanged")
	}
	if _, err := r.Commit(context.Background(), tp, FileState{}, Meta{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(dir, "f")) != "peer" || readFile(t, filepath.Join(dir, string(cc))) != "user" {
		t.Fatal("wrong contents after conflict")
	}
}

func TestRanges(t *testing.T) {
	rs := addRanges(nil, Range{10, 5}, Range{0, 5}, Range{5, 5}, Range{30, 0}, Range{20, 5})
	if len(rs) != 2 || rs[0] != (Range{0, 15}) || rs[1] != (Range{20, 5}) {
		t.Fatalf("merged %v", rs)
	}
	for _, c := range []struct {
		r    Range
		want bool
	}{{Range{0, 15}, true}, {Range{3, 4}, true}, {Range{14, 2}, false}, {Range{15, 5}, false}, {Range{20, 5}, true}, {Range{99, 0}, true}} {
		if got := covers(rs, c.r); got != c.want {
			t.Errorf("covers(%v) = %v", c.r, got)
		}
	}
}

func FuzzDecodeSidecar(f *testing.F) {
	f.Add(encodeSidecar(100, block.Hash{1}, []Range{{0, 10}, {50, 50}}))
	f.Add(encodeSidecar(0, block.Hash{}, nil))
	f.Add([]byte(sidecarMagic))
	f.Add(append(encodeSidecar(8, block.Hash{}, []Range{{0, 8}}), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		size, hash, ranges, err := decodeSidecar(b)
		if err != nil {
			return
		}
		for i, rg := range ranges {
			if rg.Off < 0 || rg.Len <= 0 || rg.Off+rg.Len > size || (i > 0 && ranges[i-1].Off+ranges[i-1].Len >= rg.Off) {
				t.Fatalf("bad ranges %v for size %d", ranges, size)
			}
		}
		s2, h2, r2, err := decodeSidecar(encodeSidecar(size, hash, ranges))
		if err != nil || s2 != size || h2 != hash || len(r2) != len(ranges) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
