package delta

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/blueshift-sync/blueshift/index/chunk"
)

// insert1 returns b with one byte inserted in the middle.
func insert1(b []byte) []byte {
	at := len(b)/2 + 333 // not on a window boundary
	return append(append(append([]byte(nil), b[:at]...), 'x'), b[at:]...)
}

// overwrite4K returns b with 4 KiB in the middle replaced by new random bytes.
func overwrite4K(r *rand.Rand, b []byte) []byte {
	out := append([]byte(nil), b...)
	copy(out[len(b)/2-2048+333:], randBytes(r, 4096))
	return out
}

// BenchmarkWindow measures signature and delta bytes for a 1-byte insert and
// a 4 KiB overwrite in the middle of a random block, for block sizes of 64,
// 128 and 256 KiB and a range of windows ("auto" is WindowFor). It is the
// measurement behind WindowFor.
func BenchmarkWindow(b *testing.B) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, size := range []int{64 << 10, 128 << 10, 256 << 10} {
		basis := randBytes(r, size)
		edits := map[string][]byte{"insert1": insert1(basis), "overwrite4K": overwrite4K(r, basis)}
		for _, window := range []int{0, 256, 512, 1024, 2048, 4096, 8192} {
			for _, name := range []string{"insert1", "overwrite4K"} {
				target := edits[name]
				wname := fmt.Sprint(window)
				if window == 0 {
					wname = fmt.Sprintf("auto(%d)", WindowFor(size))
				}
				b.Run(fmt.Sprintf("block=%dK/window=%s/%s", size>>10, wname, name), func(b *testing.B) {
					var sig, delta []byte
					for b.Loop() {
						sig, _ = Signature(basis, window).MarshalBinary()
						s, _ := ParseSignature(sig)
						delta = Delta(s, target)
					}
					b.ReportMetric(float64(len(sig)), "sig-B")
					b.ReportMetric(float64(len(delta)), "delta-B")
					b.ReportMetric(float64(len(sig)+len(delta)), "total-B")
				})
			}
		}
	}
}

// BenchmarkDelta measures the sender's throughput over a 256 KiB block with a
// 4 KiB overwrite (the rolling scan runs over the changed window).
func BenchmarkDelta(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 5))
	basis := randBytes(r, 256<<10)
	target := overwrite4K(r, basis)
	sig := Signature(basis, 0)
	b.SetBytes(int64(len(target)))
	b.ReportAllocs()
	for b.Loop() {
		Delta(sig, target)
	}
}

// BenchmarkDeltaUnrelated measures the worst case: no window matches, so the
// checksum rolls over every byte.
func BenchmarkDeltaUnrelated(b *testing.B) {
	r := rand.New(rand.NewPCG(6, 6))
	sig := Signature(randBytes(r, 256<<10), 0)
	target := randBytes(r, 256<<10)
	b.SetBytes(int64(len(target)))
	b.ReportAllocs()
	for b.Loop() {
		Delta(sig, target)
	}
}

func BenchmarkSignature(b *testing.B) {
	basis := randBytes(rand.New(rand.NewPCG(7, 7)), 256<<10)
	b.SetBytes(int64(len(basis)))
	b.ReportAllocs()
	for b.Loop() {
		Signature(basis, 0)
	}
}

func BenchmarkApply(b *testing.B) {
	r := rand.New(rand.NewPCG(8, 8))
	basis := randBytes(r, 256<<10)
	target := overwrite4K(r, basis)
	d := Delta(Signature(basis, 0), target)
	b.SetBytes(int64(len(target)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Apply(basis, d, len(target)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParams is the measurement behind chunk.DefaultParams. For a 100
// MiB random file and average chunk sizes of 16 to 256 KiB (Min = Avg/4, Max
// = Avg*4) it reports the block list size (36 B per block), and for a 1-byte
// insert and a 4 KiB overwrite at seeded random offsets the bytes of new
// chunks (what whole-block transfer would send) and the estimated wire bytes
// with this package (36 B per new block entry + signature + delta of each new
// chunk against the old chunks it overlaps). It also reports the new-chunk
// bytes after 100 scattered 1-byte inserts, the dedup cost of small chunks.
func BenchmarkParams(b *testing.B) {
	const size = 100 << 20
	r := rand.New(rand.NewPCG(9, 9))
	data := randBytes(r, size)
	for _, avg := range []int{16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10} {
		p := chunk.Params{Min: avg / 4, Avg: avg, Max: avg * 4}
		b.Run(fmt.Sprintf("avg=%dK", avg>>10), func(b *testing.B) {
			old := split(b, data, p)
			var insNew, insWire, owNew, owWire, scattered float64
			const trials = 8
			for b.Loop() {
				insNew, insWire, owNew, owWire = 0, 0, 0, 0
				er := rand.New(rand.NewPCG(10, 10))
				for range trials {
					at := er.IntN(size)
					ins := append(append(append([]byte(nil), data[:at]...), 'x'), data[at:]...)
					n, w := editCost(b, data, old, ins, p)
					insNew, insWire = insNew+n/trials, insWire+w/trials
					ow := append([]byte(nil), data...)
					copy(ow[at:], randBytes(er, 4096))
					n, w = editCost(b, data, old, ow, p)
					owNew, owWire = owNew+n/trials, owWire+w/trials
				}
				many := append([]byte(nil), data...)
				for range 100 {
					at := er.IntN(len(many))
					many = append(many[:at], append([]byte{'x'}, many[at:]...)...)
				}
				scattered, _ = newBytes(old, split(b, many, p), many)
			}
			b.ReportMetric(float64(len(old)), "blocks")
			b.ReportMetric(float64(36*len(old)), "list-B")
			b.ReportMetric(insNew, "ins1-newchunk-B")
			b.ReportMetric(insWire, "ins1-wire-B")
			b.ReportMetric(owNew, "ow4K-newchunk-B")
			b.ReportMetric(owWire, "ow4K-wire-B")
			b.ReportMetric(scattered, "100ins-newchunk-B")
		})
	}
}

func split(b *testing.B, data []byte, p chunk.Params) []chunk.Chunk {
	cs, err := chunk.SplitAll(context.Background(), bytes.NewReader(data), p)
	if err != nil {
		b.Fatal(err)
	}
	return cs
}

// newBytes returns the bytes of the chunks of nw that old lacks, and those chunks.
func newBytes(old, nw []chunk.Chunk, _ []byte) (float64, []chunk.Chunk) {
	have := map[[32]byte]bool{}
	for _, c := range old {
		have[c.Hash] = true
	}
	var n float64
	var fresh []chunk.Chunk
	for _, c := range nw {
		if !have[c.Hash] {
			n += float64(c.Length)
			fresh = append(fresh, c)
		}
	}
	return n, fresh
}

// editCost returns the new-chunk bytes of an edit and its estimated wire bytes.
func editCost(b *testing.B, data []byte, old []chunk.Chunk, edited []byte, p chunk.Params) (float64, float64) {
	n, fresh := newBytes(old, split(b, edited, p), edited)
	wire := 0
	for _, c := range fresh {
		// Basis: the old chunks overlapping the new chunk's range.
		lo, hi := c.Offset, c.Offset+int64(c.Length)
		var from, to int64 = -1, 0
		for _, o := range old {
			if o.Offset < hi && o.Offset+int64(o.Length) > lo {
				if from < 0 {
					from = o.Offset
				}
				to = o.Offset + int64(o.Length)
			}
		}
		var basis []byte
		if from >= 0 {
			basis = data[from:to]
		}
		sig, _ := Signature(basis, 0).MarshalBinary()
		wire += 36 + len(sig) + len(Delta(Signature(basis, 0), edited[c.Offset:hi]))
	}
	return n, float64(wire)
}
