package index

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/blueshift-sync/blueshift/index/chunk"
)

// The scanner learns a sparse file's data ranges and reads only those: the
// holes come back as zeros, so the chunks (and the record) are those of the
// file's full content.
func TestSparseReaderSkipsHoles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sparse.img")
	const size = 24 << 20
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{3})
	for _, off := range []int64{0, 10 << 20, 18<<20 + 12345} {
		buf := make([]byte, 700<<10)
		rng.Read(buf)
		if _, err := f.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}

	f, err = os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, ok := dataRanges(f, size)
	if !ok {
		t.Fatal("dataRanges: no answer on Linux")
	}
	var inData int64
	for _, d := range data {
		inData += d.end - d.off
	}
	if len(data) < 3 || inData > 8<<20 {
		t.Skipf("the test's file system reports %d data ranges, %d bytes of %d: no holes to skip", len(data), inData, int64(size))
	}
	r := sparseReader(f, size)
	if _, isFile := r.(*os.File); isFile {
		t.Fatal("a sparse file is read in full")
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes through the holes, differing from the file's %d", len(got), len(want))
	}

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	sparse, err := chunk.SplitAll(context.Background(), sparseReader(f, size), chunk.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	dense, err := chunk.SplitAll(context.Background(), bytes.NewReader(want), chunk.DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sparse, dense) {
		t.Fatalf("chunks differ: %d through the holes, %d from the bytes", len(sparse), len(dense))
	}
}

// A file without holes, or a small one, is read as it is.
func TestSparseReaderDenseFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "dense.bin")
	if err := os.WriteFile(p, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, isFile := sparseReader(f, 2<<20).(*os.File); !isFile {
		t.Fatal("a file without holes goes through the hole reader")
	}
}
