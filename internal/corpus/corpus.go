// Package corpus makes the benchmarks' data: seeded pseudo-text and random
// bytes that are the same on every machine, so that runs compare like with
// like. cmd/bench builds its trees of files from it; package benchmarks
// (peer/conn's zstream) take the same bytes in memory.
//
// Every byte is derived from a seed: a Stream is ChaCha8 keyed by (seed,
// kind, index), so two files of one kind, or the same file of two kinds,
// never share bytes, and files can be made in parallel in any order. The
// bytes are pinned (corpus_test.go): a change to them makes earlier bench
// results incomparable.
//
// A Mixer is not safe for concurrent use; a vocabulary is only read, and
// one may serve every Mixer of a seed at once.
package corpus

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// vocabularySize is how many pseudo-words a vocabulary has.
const vocabularySize = 8192

// Stream returns the random stream for (seed, kind, idx).
func Stream(seed uint64, kind string, idx uint64) *rand.ChaCha8 {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[0:], seed)
	binary.LittleEndian.PutUint64(key[8:], idx)
	copy(key[16:], kind)
	return rand.NewChaCha8(key)
}

// Vocabulary returns seed's list of pseudo-words (2 to 10 lower-case
// letters) for compressible text.
func Vocabulary(seed uint64) [][]byte {
	r := rand.New(Stream(seed, "vocab", 0))
	v := make([][]byte, vocabularySize)
	for i := range v {
		w := make([]byte, 2+r.IntN(9))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		v[i] = w
	}
	return v
}

// Mixer writes "mixed" data: segments that are random with some probability
// and Zipf-distributed pseudo-text otherwise. Random fraction 0.12 with
// 64 KiB segments compresses about 2.6x with zstd -3.
type Mixer struct {
	vocab [][]byte
	src   *rand.ChaCha8
	r     *rand.Rand
	zipf  *rand.Zipf
}

// NewMixer returns the mixer of (seed, kind, idx) over vocab, which is
// Vocabulary(seed) or another list of at least two words.
func NewMixer(seed uint64, vocab [][]byte, kind string, idx uint64) *Mixer {
	src := Stream(seed, kind, idx)
	r := rand.New(src)
	return &Mixer{vocab: vocab, src: src, r: r, zipf: rand.NewZipf(r, 1.07, 2, uint64(len(vocab)-1))}
}

// Float64 is the next value in [0, 1) of the mixer's stream, for a choice
// that goes with its bytes (a file's size).
func (m *Mixer) Float64() float64 { return m.r.Float64() }

// Text fills b with pseudo-text: words separated by spaces, commas, full
// stops and new lines.
func (m *Mixer) Text(b []byte) {
	for i := 0; i < len(b); {
		i += copy(b[i:], m.vocab[m.zipf.Uint64()])
		if i >= len(b) {
			break
		}
		switch x := m.r.IntN(100); {
		case x < 80:
			b[i] = ' '
		case x < 88:
			b[i] = ','
		case x < 95:
			b[i] = '.'
		default:
			b[i] = '\n'
		}
		i++
	}
}

// Write writes n bytes to w in segments of seg bytes, each random with
// probability randFrac and pseudo-text otherwise.
func (m *Mixer) Write(w io.Writer, n int64, randFrac float64, seg int) error {
	buf := make([]byte, seg)
	for n > 0 {
		b := buf[:min(int64(seg), n)]
		if m.r.Float64() < randFrac {
			_, _ = m.src.Read(b)
		} else {
			m.Text(b)
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}

// WriteRandom writes n bytes of src to w.
func WriteRandom(w io.Writer, src *rand.ChaCha8, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		b := buf[:min(int64(len(buf)), n)]
		_, _ = src.Read(b)
		if _, err := w.Write(b); err != nil {
			return err
		}
		n -= int64(len(b))
	}
	return nil
}
