package apply

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

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

// One range at a time (addRange, as WriteAt adds) merges as a batch does.
func TestAddRangeOneByOne(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		var one, batch []Range
		var all []Range
		for range r.IntN(40) {
			rg := Range{Off: r.Int64N(200), Len: r.Int64N(12)}
			all = append(all, rg)
			one = addRanges(one, rg)
		}
		batch = addRanges(batch, all...)
		if !slices.Equal(one, batch) {
			t.Fatalf("trial %d: adding %v one by one gave %v, as a batch %v", trial, all, one, batch)
		}
	}
}

func FuzzDecodeSidecar(f *testing.F) {
	f.Add(encodeSidecar(100, block.Hash{1}, []Range{{0, 10}, {50, 50}}, nil))
	f.Add(encodeSidecar(100, block.Hash{1}, []Range{{0, 10}}, []Range{{5, 20}, {60, 40}}))
	f.Add(encodeSidecar(0, block.Hash{}, nil, nil))
	f.Add([]byte(sidecarMagic))
	f.Add(append(encodeSidecar(8, block.Hash{}, []Range{{0, 8}}, nil), 1, 2, 3))
	f.Fuzz(func(t *testing.T, b []byte) {
		size, hash, durable, unsure, err := decodeSidecar(b)
		if err != nil {
			return
		}
		for _, ranges := range [][]Range{durable, unsure} {
			for i, rg := range ranges {
				if rg.Off < 0 || rg.Len <= 0 || rg.Off+rg.Len > size || (i > 0 && ranges[i-1].Off+ranges[i-1].Len >= rg.Off) {
					t.Fatalf("bad ranges %v for size %d", ranges, size)
				}
			}
		}
		s2, h2, d2, u2, err := decodeSidecar(encodeSidecar(size, hash, durable, unsure))
		if err != nil || s2 != size || h2 != hash || !slices.Equal(d2, durable) || !slices.Equal(u2, unsure) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// A pull killed before its temp's Sync (kill -9: the written bytes are in
// the page cache, the sidecar notes them as unsure) keeps every block that
// arrived: the reopened temp offers them to Salvage, which takes a block
// only if its bytes check out; bytes lost (a power cut) are fetched again.
func TestTempKillKeepsWrittenBlocks(t *testing.T) {
	r, dir := openTest(t, Options{})
	data := make([]byte, 10*1000)
	rand.NewChaCha8([32]byte{9}).Read(data)
	want := block.Sum(data)
	blk := func(i int) []byte { return data[i*1000 : (i+1)*1000] }
	check := func(i int) func([]byte) bool {
		return func(b []byte) bool { return bytes.Equal(b, blk(i)) }
	}
	tp, err := r.OpenTemp("k.bin", want, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 2, 6} {
		if _, err := tp.WriteAt(blk(i), int64(i*1000)); err != nil {
			t.Fatal(err)
		}
	}
	tp.closeFiles() // killed: no Sync ran
	// Block 2's bytes did not survive (as after a power cut).
	part := filepath.Join(dir, tmpDir, TempKey("k.bin", want)+".part")
	pf, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf.WriteAt(make([]byte, 1000), 2000)
	pf.Close()

	tp, err = r.OpenTemp("k.bin", want, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(tp.Done()) != 0 {
		t.Fatalf("unsynced writes trusted without a check: %v", tp.Done())
	}
	if tp.Salvage(0, 1000, check(1)) {
		t.Fatal("salvaged bytes that fail their check")
	}
	for _, c := range []struct {
		i    int
		want bool
	}{{0, true}, {1, true}, {2, false}, {3, false}, {6, true}} {
		if got := tp.Salvage(int64(c.i*1000), 1000, check(c.i)); got != c.want {
			t.Errorf("salvage block %d: %v, want %v", c.i, got, c.want)
		}
	}
	if !tp.Has(0, 2000) || !tp.Has(6000, 1000) || tp.Has(2000, 1000) {
		t.Fatalf("after salvage: done %v", tp.Done())
	}
	for i := range 10 {
		if !tp.Has(int64(i*1000), 1000) {
			tp.WriteAt(blk(i), int64(i*1000))
		}
	}
	if _, err := r.Commit(context.Background(), tp, FileState{}, Meta{Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "k.bin")); got != string(data) {
		t.Fatal("committed content differs")
	}
}

// A temp takes the space of what was written, not of the whole file, and
// a temp nobody wants any more can be removed to free space.
func TestTempNotPreallocated(t *testing.T) {
	r, dir := openTest(t, Options{})
	const size = 64 << 20
	tp, err := r.OpenTemp("big.bin", block.Hash{5}, size)
	if err != nil {
		t.Fatal(err)
	}
	part := filepath.Join(dir, tmpDir, TempKey("big.bin", block.Hash{5})+".part")
	if fi, err := os.Stat(part); err != nil || fi.Size() != 0 {
		t.Fatalf("a fresh temp for %d bytes is %v bytes long (%v): preallocated", size, fi.Size(), err)
	}
	tp.WriteAt(make([]byte, 4096), 0)
	tp.Close()
	if got := r.TempWritten("big.bin", block.Hash{5}, size); got != 4096 {
		t.Fatalf("TempWritten = %d, want 4096", got)
	}
	other, _ := r.OpenTemp("gone.bin", block.Hash{6}, 1000)
	other.WriteAt(make([]byte, 1000), 0)
	other.Close()
	keep := TempKey("big.bin", block.Hash{5})
	freed, err := r.RemoveTempsExcept(func(k string) bool { return k == keep })
	if err != nil || freed < 1000 {
		t.Fatalf("RemoveTempsExcept freed %d: %v", freed, err)
	}
	if r.TempWritten("gone.bin", block.Hash{6}, 1000) != 0 || r.TempWritten("big.bin", block.Hash{5}, size) != 4096 {
		t.Fatal("the wrong temp was removed")
	}
}

// BenchmarkAddRange notes the blocks of a 512 MiB pull (8192 of 64 KiB) in
// random order, as WriteAt does, against the sort of the whole set per
// block that it replaced (addRanges with an empty second range), measured
// in the same run.
func BenchmarkAddRange(b *testing.B) {
	order := rand.New(rand.NewPCG(3, 4)).Perm(8192)
	b.ReportAllocs()
	var base, ours time.Duration
	for b.Loop() {
		start := time.Now()
		var rs []Range
		for _, i := range order {
			rs = addRanges(rs, Range{int64(i) << 16, 1 << 16}, Range{})
		}
		base += time.Since(start)
		start = time.Now()
		rs = nil
		for _, i := range order {
			rs = addRanges(rs, Range{int64(i) << 16, 1 << 16})
		}
		ours += time.Since(start)
		if len(rs) != 1 {
			b.Fatalf("merged into %d ranges", len(rs))
		}
	}
	b.ReportMetric(float64(ours)/float64(base), "ours/sort")
}
