package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble"
	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestShareRegistryPersists(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	a, b := share.ID{1}, share.ID{2}
	sa, err := db.Space(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := db.Space(b)
	if sa.Number() == sb.Number() {
		t.Fatalf("two shares got number %d", sa.Number())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sa2, _ := db.Space(a)
	if sa2 != sa {
		t.Fatalf("share number changed across restart: %v then %v", sa, sa2)
	}
	id, err := db.ShareOf(sb.Number())
	if err != nil || id != b {
		t.Fatalf("ShareOf(%d) = %x, %v", sb.Number(), id[:2], err)
	}
}

func TestCorruptDatabase(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := db.Space(share.ID{7})
	for i := 0; i < 100; i++ {
		_ = db.Pebble().Set(s.StateKey(strings.Repeat("x", i+1)), []byte("v"), nil)
	}
	db.Close()
	// Overwrite every file Pebble wrote with garbage of the same length.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		n := max(fi.Size(), 16)
		garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, int(n/4)+1)
		if err := os.WriteFile(p, garbage[:n], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Open(dir, testLogger(t))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of garbage: err = %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), "delete") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("error does not say what to do: %v", err)
	}
}

func TestForeignFormat(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Pebble().Set(keyFormat, []byte("something-else/9"), nil)
	db.Close()
	if _, err := Open(dir, testLogger(t)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	cases := []FileState{
		{Kind: record.File, Size: 0, ModTime: -5, Inode: 0},
		{Kind: record.Dir, Mode: 0o755, ModTime: 1_700_000_000_123_456_789, Inode: 1 << 60},
		{Kind: record.File, Size: 1 << 40, Mode: 0o644, FileHash: block.Sum([]byte("x")),
			Blocks: []record.BlockRef{{Hash: block.Sum([]byte("a")), Size: 1}, {Hash: block.Sum([]byte("b")), Size: 1 << 20}}},
		{Kind: record.Symlink, Size: 3},
	}
	for _, c := range cases {
		got, err := ParseState(AppendState(nil, c))
		if err != nil {
			t.Fatalf("parse %+v: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip: got %+v, want %+v", got, c)
		}
	}
	bad := [][]byte{nil, {}, {2}, {1, 1}, {1, 9, 0, 0, 0, 0, 0, 0}, append(AppendState(nil, cases[0]), 0)}
	for _, b := range bad {
		if _, err := ParseState(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseState(%x) err = %v, want ErrCorrupt", b, err)
		}
	}
}

func FuzzParseState(f *testing.F) {
	f.Add(AppendState(nil, FileState{Kind: record.File, Size: 10, ModTime: 99, Inode: 3, Mode: 0o644}))
	f.Add(AppendState(nil, FileState{Kind: record.File, FileHash: block.Hash{1},
		Blocks: []record.BlockRef{{Hash: block.Hash{2}, Size: 7}}}))
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseState(b)
		if err != nil {
			return
		}
		again, err := ParseState(AppendState(nil, s))
		if err != nil || !reflect.DeepEqual(again, s) {
			t.Fatalf("re-encode of a parsed state differs: %+v vs %+v (%v)", s, again, err)
		}
	})
}

func TestBlockEntry(t *testing.T) {
	s := Space{no: 3}
	h := block.Sum([]byte("hello"))
	k := s.BlockKey(h, [32]byte{9}, 1<<33)
	if !bytes.HasPrefix(k, BlockPrefix(h)) {
		t.Fatal("block key lacks its prefix")
	}
	e, err := ParseBlockEntry(k, BlockValue(65536, "a/b.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := BlockEntry{Share: 3, PathKey: [32]byte{9}, Offset: 1 << 33, Length: 65536, Path: "a/b.txt"}
	if e != want {
		t.Fatalf("got %+v, want %+v", e, want)
	}
	if _, err := ParseBlockEntry(k[:10], nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := ParseBlockEntry(k, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("empty value: %v", err)
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, c := range []struct{ in, want []byte }{
		{[]byte{1, 2}, []byte{1, 3}},
		{[]byte{1, 0xff}, []byte{2}},
		{[]byte{0xff}, nil},
	} {
		if got := PrefixEnd(c.in); !bytes.Equal(got, c.want) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", c.in, got, c.want)
		}
	}
}

// TestTablesAreSmallBlocksUncompressed: what the index stores is mostly
// hashes and signatures, read by point lookups, so tables are written in
// 4 KiB blocks without compression (a lookup that missed the cache used to
// decode a 32 KiB snappy block for one record).
func TestTablesAreSmallBlocksUncompressed(t *testing.T) {
	db, err := Open(t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Pebble()
	val := bytes.Repeat([]byte("compressible "), 20)
	for i := range 2000 {
		if err := p.Set([]byte(fmt.Sprintf("k%06d", i)), val, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	levels, err := p.SSTables(pebble.WithProperties())
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for _, level := range levels {
		for _, tab := range level {
			tables++
			props := tab.Properties
			if props.CompressionName != "NoCompression" {
				t.Errorf("table %s: compression %q, want NoCompression", tab.FileNum, props.CompressionName)
			}
			// 2000 values of 260 bytes in 4 KiB blocks: at least 100 of them.
			if props.NumDataBlocks < 100 {
				t.Errorf("table %s: %d data blocks for %d bytes of data: blocks larger than 4 KiB", tab.FileNum, props.NumDataBlocks, props.DataSize)
			}
		}
	}
	if tables == 0 {
		t.Fatal("no table written by the flush")
	}
}

// TestBlockCacheKeepsBlocks: blocks read once are kept for the next read.
// Pebble counts its memtables against the block cache; when they took it
// all, it kept no block and every lookup read its block from the file again.
func TestBlockCacheKeepsBlocks(t *testing.T) {
	db, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := db.Pebble()
	value := make([]byte, 400)
	// Pebble's memtables start small and double at each flush up to
	// their full size: a database in use holds full ones.
	for range 8 {
		for i := range 20_000 {
			if err := p.Set(fmt.Appendf(nil, "k%08d", i*7919%20_000), value, pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// The flushes' tables compacted now, not while the reads run: a
	// compaction that ends drops its input tables' blocks from the cache.
	if err := p.Compact([]byte("k"), []byte("l"), true); err != nil {
		t.Fatal(err)
	}
	read := func() {
		it, err := p.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20_000; i += 3 {
			if !it.SeekGE(fmt.Appendf(nil, "k%08d", i)) {
				t.Fatalf("k%08d not found", i)
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	read()
	before := p.Metrics().BlockCache
	read()
	after := p.Metrics().BlockCache
	if after.Count == 0 || after.Hits-before.Hits == 0 {
		t.Fatalf("block cache holds %d blocks (%d bytes); the second read hit it %d times and missed %d",
			after.Count, after.Size, after.Hits-before.Hits, after.Misses-before.Misses)
	}
	t.Logf("block cache: %d blocks, second read %d hits, %d misses", after.Count, after.Hits-before.Hits, after.Misses-before.Misses)
}
