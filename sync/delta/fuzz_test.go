package delta

import (
	"bytes"
	"testing"
)

const fuzzMax = 1 << 20

func fuzzSeeds() (basis, target []byte) {
	basis = bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog. "), 100)
	target = append(append([]byte(nil), basis[:1000]...), append([]byte("EDIT"), basis[1200:]...)...)
	return basis, target
}

func FuzzParseSignature(f *testing.F) {
	basis, _ := fuzzSeeds()
	for _, w := range []int{16, 64, 1024} {
		b, _ := Signature(basis, w).MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{version, 8, 16, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSignature(b)
		if err != nil {
			return
		}
		// A parsed signature re-encodes to the same bytes, and Delta accepts it.
		again, _ := s.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs")
		}
		Delta(s, b)
	})
}

func FuzzApply(f *testing.F) {
	basis, target := fuzzSeeds()
	f.Add(basis, Delta(Signature(basis, 64), target))
	f.Add(basis, Delta(Signature(basis, 16), basis))
	f.Add([]byte{}, Delta(Sig{}, target))
	f.Fuzz(func(t *testing.T, basis, delta []byte) {
		out, err := Apply(basis, delta, fuzzMax)
		if err == nil && len(out) > fuzzMax {
			t.Fatalf("Apply returned %d bytes, limit %d", len(out), fuzzMax)
		}
	})
}

// FuzzRoundTrip checks that any target rebuilds from any basis.
func FuzzRoundTrip(f *testing.F) {
	basis, target := fuzzSeeds()
	f.Add(basis, target, uint16(64))
	f.Add([]byte{}, target, uint16(0))
	f.Add(basis, []byte{}, uint16(16))
	f.Fuzz(func(t *testing.T, basis, target []byte, window uint16) {
		if len(basis) > fuzzMax || len(target) > fuzzMax {
			return
		}
		sig, _ := Signature(basis, int(window)).MarshalBinary()
		s, err := ParseSignature(sig)
		if err != nil {
			t.Fatalf("parse own signature: %v", err)
		}
		got, err := Apply(basis, Delta(s, target), len(target))
		if err != nil || !bytes.Equal(got, target) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
