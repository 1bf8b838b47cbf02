package index

import (
	"bytes"
	"context"
	"math/rand"
	"slices"
	"testing"

	"github.com/blueshift-sync/blueshift/index/chunk"
)

// A scan given a ChunkKey (a share with encrypted members) cuts files with
// the keyed gear table: its blocks are those chunk.SplitAll cuts with that
// key, and not the unkeyed ones; a file the scan does not read again keeps
// the blocks it had.
func TestScanChunkKey(t *testing.T) {
	e := newEnv(t)
	data := make([]byte, 2<<20)
	rand.New(rand.NewSource(1)).Read(data)
	e.write("old.bin", data)
	e.scan()
	e.write("new.bin", data)
	key := [32]byte{7}
	if _, err := e.sh.Scan(context.Background(), ScanOptions{ChunkKey: &key}); err != nil {
		t.Fatal(err)
	}
	sizes := func(path string) []uint32 {
		r, ok := e.lookup(path)
		if !ok {
			t.Fatalf("%s not indexed", path)
		}
		var out []uint32
		for _, b := range r.Blocks {
			out = append(out, b.Size)
		}
		return out
	}
	cut := func(k *[32]byte) []uint32 {
		p := chunk.DefaultParams()
		p.Key = k
		cs, err := chunk.SplitAll(context.Background(), bytes.NewReader(data), p)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint32
		for _, c := range cs {
			out = append(out, uint32(c.Length))
		}
		return out
	}
	keyed, plain := cut(&key), cut(nil)
	if equal(keyed, plain) {
		t.Fatal("the keyed and unkeyed boundaries of the test data agree: pick other data")
	}
	if got := sizes("new.bin"); !equal(got, keyed) {
		t.Errorf("a file read with a chunk key has blocks %v, want the keyed cut %v", got, keyed)
	}
	if got := sizes("old.bin"); !equal(got, plain) {
		t.Errorf("a file not read again has blocks %v, want its unkeyed cut %v", got, plain)
	}
}

func equal(a, b []uint32) bool { return slices.Equal(a, b) }
