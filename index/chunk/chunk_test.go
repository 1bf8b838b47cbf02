package chunk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/zeebo/blake3"
	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index/block"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	rand.NewChaCha8(key).Read(b)
	return b
}

// cutRef is the one-byte-per-step definition of a cut; cut must agree.
func (c *cutter) cutRef(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	n = min(n, c.max)
	var fp uint64
	for i := c.min; i < n; i++ {
		fp = fp<<1 + gear[data[i]]
		mask := c.maskL
		if i < c.avg {
			mask = c.maskS
		}
		if fp&mask == 0 {
			return i + 1
		}
	}
	return n
}

// refChunks cuts and hashes data in one piece, with cutRef.
func refChunks(data []byte, p Params) []Chunk {
	c := newCutter(p)
	var out []Chunk
	var off int64
	for len(data) > 0 {
		l := c.cutRef(data)
		out = append(out, Chunk{Offset: off, Length: l, Hash: block.Sum(data[:l])})
		off += int64(l)
		data = data[l:]
	}
	return out
}

func TestGearTable(t *testing.T) {
	h := blake3.New()
	h.Write([]byte("blueshift chunk gear table v1"))
	buf := make([]byte, 256*8)
	if _, err := h.Digest().Read(buf); err != nil {
		t.Fatal(err)
	}
	for i := range gear {
		if want := binary.LittleEndian.Uint64(buf[8*i:]); gear[i] != want {
			t.Fatalf("gear[%d] = %#x, derivation gives %#x", i, gear[i], want)
		}
	}
}

func TestCutMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		avg := 1 << (7 + r.IntN(8))
		p := Params{Min: max(MinSize, avg/(1+r.IntN(8))), Avg: avg, Max: avg * (2 + r.IntN(6))}
		if p.Min >= p.Avg {
			p.Min = MinSize
		}
		c := newCutter(p)
		data := randBytes(uint64(trial), r.IntN(3*p.Max))
		for d := data; len(d) > 0; {
			got, want := c.cut(d), c.cutRef(d)
			if got != want {
				t.Fatalf("trial %d %+v: cut = %d, reference = %d", trial, p, got, want)
			}
			d = d[got:]
		}
	}
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{DefaultParams(), true},
		{Params{Min: 64, Avg: 128, Max: 256}, true},
		{Params{Min: 63, Avg: 128, Max: 256}, false},
		{Params{Min: 64, Avg: 100, Max: 256}, false},
		{Params{Min: 128, Avg: 128, Max: 256}, false},
		{Params{Min: 64, Avg: 256, Max: 256}, false},
		{Params{Min: 1 << 20, Avg: 1 << 22, Max: MaxSize + 1}, false},
		{Params{}, false},
	} {
		err := tc.p.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrParams)) {
			t.Errorf("%+v: Validate = %v, want ok=%v", tc.p, err, tc.ok)
		}
		if _, err := NewSplitter(tc.p); (err == nil) != tc.ok {
			t.Errorf("%+v: NewSplitter err = %v, want ok=%v", tc.p, err, tc.ok)
		}
	}
}

// TestSplitMatchesReference runs the small path and the pipelined path (with
// every slab boundary case) against the one-piece reference.
func TestSplitMatchesReference(t *testing.T) {
	p := DefaultParams()
	for _, n := range []int{0, 1, p.Min - 1, p.Min, p.Min + 1, p.Max - 1, p.Max, p.Max + 1,
		firstRead, minSlab - 1, minSlab, minSlab + 1, 3*minSlab + 12345, 9 * minSlab} {
		data := randBytes(uint64(n), n)
		want := refChunks(data, p)
		got, err := SplitAll(context.Background(), bytes.NewReader(data), p)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		equalChunks(t, fmt.Sprintf("%d bytes", n), got, want)
		checkSizes(t, got, p, n)
	}
}

func equalChunks(t *testing.T, name string, got, want []Chunk) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d chunks, want %d", name, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: chunk %d = %+v, want %+v", name, i, got[i], want[i])
		}
	}
}

// checkSizes asserts the chunks tile [0,n) and respect Min and Max.
func checkSizes(t *testing.T, cs []Chunk, p Params, n int) {
	t.Helper()
	var off int64
	for i, c := range cs {
		if c.Offset != off {
			t.Fatalf("chunk %d at %d, want %d", i, c.Offset, off)
		}
		if c.Length > p.Max || c.Length <= 0 || (c.Length < p.Min && i != len(cs)-1) {
			t.Fatalf("chunk %d of %d has length %d, outside [%d, %d]", i, len(cs), c.Length, p.Min, p.Max)
		}
		off += int64(c.Length)
	}
	if off != int64(n) {
		t.Fatalf("chunks cover %d bytes, want %d", off, n)
	}
}

func TestEdgeInputs(t *testing.T) {
	p := DefaultParams()
	cs, err := SplitAll(context.Background(), bytes.NewReader(nil), p)
	if err != nil || len(cs) != 0 {
		t.Fatalf("empty input: %v, %v; want no chunks", cs, err)
	}
	if got, want := FileHash(cs), block.Hash(blake3.Sum256(nil)); got != want {
		t.Fatalf("FileHash(empty) = %v, want %v", got, want)
	}
	cs, err = SplitAll(context.Background(), bytes.NewReader([]byte{7}), p)
	if err != nil || len(cs) != 1 || cs[0].Length != 1 || cs[0].Hash != block.Sum([]byte{7}) {
		t.Fatalf("one byte: %v, %v", cs, err)
	}
	for name, data := range map[string][]byte{
		"zeros": make([]byte, p.Max), "random": randBytes(5, p.Max), "ones": bytes.Repeat([]byte{0xff}, p.Max),
	} {
		cs, err = SplitAll(context.Background(), bytes.NewReader(data), p)
		if err != nil {
			t.Fatal(err)
		}
		checkSizes(t, cs, p, p.Max)
		equalChunks(t, "exactly Max, "+name, cs, refChunks(data, p))
	}
	// Constant data has no boundaries: it is cut at Max.
	cs, _ = SplitAll(context.Background(), bytes.NewReader(make([]byte, 3*p.Max)), p)
	if len(cs) != 3 || cs[0].Hash != cs[1].Hash {
		t.Fatalf("3*Max zeros: %d chunks, want 3 equal ones", len(cs))
	}
}

func TestShortReads(t *testing.T) {
	p := DefaultParams()
	data := randBytes(9, 2*minSlab+777)
	want := refChunks(data, p)
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(bytes.NewReader(data)),
		"half":     iotest.HalfReader(bytes.NewReader(data)),
		"data+EOF": iotest.DataErrReader(bytes.NewReader(data)),
	} {
		got, err := SplitAll(context.Background(), r, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		equalChunks(t, name, got, want)
	}
}

var errBroken = errors.New("disk on fire")

// failingReader returns errBroken once n bytes are read.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBroken
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestErrorsPropagate(t *testing.T) {
	p := DefaultParams()
	data := randBytes(3, 5*minSlab)
	for _, at := range []int{0, 100, firstRead + 1, minSlab + 5, 4*minSlab + 1} {
		_, err := SplitAll(context.Background(), &failingReader{bytes.NewReader(data), at}, p)
		if !errors.Is(err, errBroken) {
			t.Errorf("read fails at %d: err = %v, want errBroken", at, err)
		}
	}
	for _, stopAt := range []int{0, 3, 40} {
		calls := 0
		err := Split(bytes.NewReader(data), p, func(Chunk, []byte) error {
			if calls == stopAt {
				return errBroken
			}
			calls++
			return nil
		})
		if !errors.Is(err, errBroken) || calls != stopAt {
			t.Errorf("callback fails at %d: err = %v after %d calls", stopAt, err, calls)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SplitAll(ctx, bytes.NewReader(data), p); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// TestSplitterReuse runs one Splitter over several streams, large and small.
func TestSplitterReuse(t *testing.T) {
	p := DefaultParams()
	s, err := NewSplitter(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{3 * minSlab, 10, 5*minSlab + 3, 0, minSlab / 2} {
		data := randBytes(uint64(100+i), n)
		var got []Chunk
		err := s.Split(context.Background(), bytes.NewReader(data), func(c Chunk, d []byte) error {
			if block.Sum(d) != c.Hash || !bytes.Equal(d, data[c.Offset:c.Offset+int64(c.Length)]) {
				t.Fatalf("stream %d: data of chunk at %d does not match", i, c.Offset)
			}
			got = append(got, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		equalChunks(t, fmt.Sprint("stream ", i), got, refChunks(data, p))
	}
}

// A keyed gear table moves the boundaries (whoever lacks the key cannot
// predict them), the same key cuts the same way, and no key is the frozen
// format.
func TestKeyedBoundaries(t *testing.T) {
	data := make([]byte, 4<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	cuts := func(p Params) []int {
		var out []int
		if err := Split(bytes.NewReader(data), p, func(c Chunk, _ []byte) error {
			out = append(out, c.Length)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	k1, k2 := [32]byte{1}, [32]byte{2}
	plain := cuts(DefaultParams())
	p1, p2 := DefaultParams(), DefaultParams()
	p1.Key, p2.Key = &k1, &k2
	a, b, again := cuts(p1), cuts(p2), cuts(p1)
	if !slices.Equal(a, again) {
		t.Fatal("one key cut the same data two ways")
	}
	if slices.Equal(a, plain) || slices.Equal(a, b) {
		t.Fatal("a keyed table cut like the frozen one or like another key's")
	}
	var sum int
	for _, n := range a {
		sum += n
		if n > p1.Max {
			t.Fatalf("keyed chunk of %d bytes over Max", n)
		}
	}
	if sum != len(data) {
		t.Fatalf("keyed chunks cover %d of %d bytes", sum, len(data))
	}
}
