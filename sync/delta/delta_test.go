package delta

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// edit applies k random inserts, deletes and overwrites to a copy of b.
func edit(r *rand.Rand, b []byte, k int) []byte {
	out := append([]byte(nil), b...)
	for range k {
		at := r.IntN(len(out) + 1)
		n := 1 + r.IntN(5000)
		switch r.IntN(3) {
		case 0:
			out = append(out[:at], append(randBytes(r, n), out[at:]...)...)
		case 1:
			out = append(out[:at], out[min(at+n, len(out)):]...)
		default:
			copy(out[at:], randBytes(r, n))
		}
	}
	return out
}

// roundTrip sends target against basis through the encoded signature.
func roundTrip(t *testing.T, basis, target []byte, window int) (sig, delta []byte) {
	t.Helper()
	sig, err := Signature(basis, window).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseSignature(sig)
	if err != nil {
		t.Fatalf("parse own signature: %v", err)
	}
	delta = Delta(s, target)
	got, err := Apply(basis, delta, len(target))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !bytes.Equal(got, target) {
		t.Fatalf("round trip differs (basis %d, target %d, window %d)", len(basis), len(target), window)
	}
	return sig, delta
}

func TestRoundTripRandomEdits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for trial := range 300 {
		basis := randBytes(r, r.IntN(300<<10))
		if trial%5 == 0 { // low-entropy bases: repeated windows, equal weak sums
			basis = bytes.Repeat([]byte("abcd"), r.IntN(20000))
		}
		target := edit(r, basis, 1+r.IntN(4))
		window := []int{0, MinWindow, 100, 1024, 4096}[r.IntN(5)]
		roundTrip(t, basis, target, window)
	}
}

func TestRoundTripCases(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	block := randBytes(r, 64<<10)
	odd := randBytes(r, 64<<10+777)
	for _, tc := range []struct {
		name          string
		basis, target []byte
		maxDelta      int // bound on the delta size
	}{
		{"identical", block, block, 16},
		{"identical, short last window", odd, odd, 16},
		{"fully different", block, randBytes(r, 64<<10), 64<<10 + 16},
		{"empty basis", nil, block, 64<<10 + 16},
		{"empty target", block, nil, 16},
		{"both empty", nil, nil, 16},
		{"tiny", []byte("a"), []byte("b"), 16},
		{"append", block, append(append([]byte(nil), block...), "tail"...), 32},
		{"prepend", block, append([]byte("head"), block...), 1100},
		{"1-byte insert", block, append(append(append([]byte(nil), block[:30000]...), 'x'), block[30000:]...), 1100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, d := roundTrip(t, tc.basis, tc.target, 0)
			if len(d) > tc.maxDelta {
				t.Errorf("delta is %d bytes, want <= %d", len(d), tc.maxDelta)
			}
		})
	}
	// The zero Sig (an empty basis) works without Signature.
	d := Delta(Sig{}, block)
	if got, err := Apply(nil, d, len(block)); err != nil || !bytes.Equal(got, block) {
		t.Fatalf("zero Sig: %v", err)
	}
}

func TestApplyRejects(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	basis := randBytes(r, 10000)
	target := edit(r, basis, 2)
	good := Delta(Signature(basis, 1024), target)
	for _, tc := range []struct {
		name    string
		basis   []byte
		delta   []byte
		maxSize int
		want    error
	}{
		{"empty", basis, nil, 1 << 20, ErrCorrupt},
		{"version", basis, append([]byte{9}, good[1:]...), 1 << 20, ErrCorrupt},
		{"truncated", basis, good[:len(good)-1], 1 << 20, ErrCorrupt},
		{"trailing", basis, append(append([]byte(nil), good...), 0), 1 << 20, ErrCorrupt},
		{"too large", basis, good, len(target) - 1, ErrTooLarge},
		{"negative max", basis, good, -1, ErrTooLarge},
		{"other basis", basis[1:], good, 1 << 20, ErrBasisMismatch},
		{"copy past basis", basis, []byte{version, 0x80, 0x08, 0x90, 0x4e, 0x10, 0x03, 0x14}, 1 << 20, ErrCorrupt},
		{"copy before 0", basis, []byte{version, 0x80, 0x08, 0x90, 0x4e, 0x10, 0x03, 0x01}, 1 << 20, ErrCorrupt},
		{"zero op", basis, []byte{version, 0x80, 0x08, 0x90, 0x4e, 0x10, 0x00}, 1 << 20, ErrCorrupt},
		{"small window", basis, []byte{version, 0x01, 0x90, 0x4e, 0x00}, 1 << 20, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Apply(tc.basis, tc.delta, tc.maxSize)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Apply = %d bytes, %v; want %v", len(got), err, tc.want)
			}
		})
	}
}

func TestParseSignatureRejects(t *testing.T) {
	good, _ := Signature(bytes.Repeat([]byte("xyz"), 1000), 256).MarshalBinary()
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"version", append([]byte{2}, good[1:]...)},
		{"strong 0", append([]byte{version, 0}, good[2:]...)},
		{"strong 33", append([]byte{version, 33}, good[2:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing", append(append([]byte(nil), good...), 1)},
		{"window 0", []byte{version, 8, 0, 0}},
		{"huge basis", []byte{version, 8, 16, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"windows without bytes", []byte{version, 8, 16, 0x80, 0x80, 0x04}},
	} {
		if _, err := ParseSignature(tc.b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tc.name, err)
		}
	}
	s, err := ParseSignature(good)
	if err != nil || s.Window() != 256 || s.BasisLen() != 3000 {
		t.Fatalf("good signature: %+v, %v", s, err)
	}
}

func TestSignatureWindowClamp(t *testing.T) {
	for _, tc := range []struct{ n, asked, want int }{
		{1000, 1, MinWindow},
		{1000, 2 * MaxWindow, MaxWindow},
		{64 << 10, 0, WindowFor(64 << 10)},
	} {
		if got := Signature(make([]byte, tc.n), tc.asked).Window(); got != tc.want {
			t.Errorf("Signature(%d bytes, %d).Window() = %d, want %d", tc.n, tc.asked, got, tc.want)
		}
	}
	for _, n := range []int{0, 16 << 10, 64 << 10, 128 << 10, 256 << 10, 1 << 20} {
		t.Logf("WindowFor(%d) = %d", n, WindowFor(n))
	}
}

func TestWeakSum(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	for n := range 70 {
		w := randBytes(r, n)
		var want uint32
		for _, x := range w {
			want = want*weakBase + uint32(x)
		}
		if got := weakSum(w); got != want {
			t.Fatalf("weakSum of %d bytes = %#x, want %#x", n, got, want)
		}
	}
	// Rolling a window across data equals the sum from scratch at every step.
	data := randBytes(r, 500)
	for _, w := range []int{1, 7, 16, 64} {
		h, out := weakSum(data[:w]), powBase(w)
		for pos := 0; pos+w < len(data); pos++ {
			h = h*weakBase - uint32(data[pos])*out + uint32(data[pos+w])
			if want := weakSum(data[pos+1 : pos+1+w]); h != want {
				t.Fatalf("window %d at %d: rolled %#x, want %#x", w, pos+1, h, want)
			}
		}
	}
}
