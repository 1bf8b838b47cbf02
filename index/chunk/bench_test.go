package chunk

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/zeebo/blake3"
)

const benchSize = 64 << 20

func benchData() []byte {
	b := make([]byte, benchSize)
	rand.NewChaCha8([32]byte{1}).Read(b)
	return b
}

// BenchmarkCut measures boundary finding alone.
func BenchmarkCut(b *testing.B) {
	data := benchData()
	c := newCutter(DefaultParams())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for d := data; len(d) > 0; {
			d = d[c.cut(d):]
		}
	}
}

// BenchmarkSplit measures cut+hash through the pipelined Splitter (reused
// buffers, as the scanner uses it) and two plain BLAKE3 baselines over the
// same bytes in the same run: straight from memory, and through a reader as
// Split reads them. Run the whole benchmark (not a sub-benchmark alone) to get
// the ratios.
func BenchmarkSplit(b *testing.B) {
	data := benchData()
	var base, baseRead, ours float64
	b.Run("blake3-read", func(b *testing.B) {
		// The same bytes through a reader and a 1 MiB buffer, as a scanner
		// hashing whole files would do: it pays the same copy as Split.
		buf := make([]byte, 1<<20)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			h := blake3.New()
			if _, err := io.CopyBuffer(h, bytes.NewReader(data), buf); err != nil {
				b.Fatal(err)
			}
			h.Sum(nil)
		}
		baseRead = b.Elapsed().Seconds() / float64(b.N)
	})
	b.Run("blake3", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			h := blake3.New()
			h.Write(data)
			h.Sum(nil)
		}
		base = b.Elapsed().Seconds() / float64(b.N)
	})
	b.Run("chunk+hash", func(b *testing.B) {
		s, err := NewSplitter(DefaultParams())
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if err := s.Split(ctx, bytes.NewReader(data), func(Chunk, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		ours = b.Elapsed().Seconds() / float64(b.N)
		if base > 0 && baseRead > 0 {
			b.ReportMetric(base/ours, "speed/blake3")
			b.ReportMetric(baseRead/ours, "speed/blake3-read")
		}
	})
	b.Run("chunk+hash-sequential", func(b *testing.B) {
		c := newCutter(DefaultParams())
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			for d := data; len(d) > 0; {
				l := c.cut(d)
				blake3.Sum256(d[:l])
				d = d[l:]
			}
		}
	})
}
