package chunk

import (
	"bytes"
	"context"
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
// buffers, as the scanner uses it), the plain BLAKE3 baseline over the same
// bytes in the same run, and their ratio.
func BenchmarkSplit(b *testing.B) {
	data := benchData()
	var base, ours float64
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
		if base > 0 {
			b.ReportMetric(base/ours, "speed/blake3")
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
