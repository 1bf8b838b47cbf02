package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/blueshift-sync/blueshift/index/block"
)

func keys(t testing.TB, b byte) Keys {
	t.Helper()
	var rk [32]byte
	rk[0] = b
	return NewKeys(rk)
}

func TestBlockRoundTrip(t *testing.T) {
	k := keys(t, 1)
	for _, n := range []int{0, 1, 100, 4096, 65536, 65537, 256 << 10} {
		plain := make([]byte, n)
		rand.Read(plain)
		copy(plain, "SECRET-MARKER")
		name := block.Sum(plain)
		sealed, err := k.SealBlock(plain, name)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) != SealedSize(n) {
			t.Fatalf("%d bytes sealed to %d, SealedSize says %d", n, len(sealed), SealedSize(n))
		}
		if n >= 13 && bytes.Contains(sealed, []byte("SECRET-MARKER")) {
			t.Fatal("the plaintext shows through")
		}
		again, _ := k.SealBlock(plain, name)
		if !bytes.Equal(sealed, again) {
			t.Fatal("one block sealed twice differs: encrypted members could not deduplicate or be told its sealed name")
		}
		got, err := k.OpenBlock(sealed, name)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("open %d bytes: %v", n, err)
		}
		if _, err := keys(t, 2).OpenBlock(sealed, name); !errors.Is(err, ErrOpen) {
			t.Fatalf("another share's key opened a block: %v", err)
		}
		if len(sealed) > 0 {
			bad := bytes.Clone(sealed)
			bad[len(bad)/2] ^= 1
			if _, err := k.OpenBlock(bad, name); !errors.Is(err, ErrOpen) {
				t.Fatalf("a tampered block opened: %v", err)
			}
		}
	}
}

// A block sealed under one name does not open as another (the nonce
// depends on it), and a plaintext sealed under a name that is not its hash
// is refused on opening.
func TestBlockNameBinds(t *testing.T) {
	k := keys(t, 1)
	a, b := []byte("block a"), []byte("block b")
	sa, _ := k.SealBlock(a, block.Sum(a))
	if _, err := k.OpenBlock(sa, block.Sum(b)); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened under another name: %v", err)
	}
	lie, _ := k.SealBlock(a, block.Sum(b))
	if _, err := k.OpenBlock(lie, block.Sum(b)); !errors.Is(err, ErrOpen) {
		t.Fatalf("a block whose plaintext is not the named one opened: %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	k := keys(t, 1)
	body := []byte("path=holiday/secret-name.jpg size=123")
	var tk, other [32]byte
	tk[0], other[0] = 1, 2
	s1, err := k.SealRecord(body, tk)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := k.SealRecord(body, tk)
	if bytes.Equal(s1, s2) {
		t.Fatal("a record sealed twice is equal: records must not be linkable by their sealed bytes")
	}
	if bytes.Contains(s1, []byte("secret-name")) {
		t.Fatal("the name shows through")
	}
	got, err := k.OpenRecord(s1, tk)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("open: %q, %v", got, err)
	}
	if _, err := k.OpenRecord(s1, other); !errors.Is(err, ErrOpen) {
		t.Fatalf("a record opened at another tree key: %v", err)
	}
	if _, err := keys(t, 9).OpenRecord(s1, tk); !errors.Is(err, ErrOpen) {
		t.Fatalf("another key opened a record: %v", err)
	}
	for _, n := range []int{0, 5, 23, 24, 39, 40} {
		if _, err := k.OpenRecord(s1[:n], tk); !errors.Is(err, ErrOpen) {
			t.Fatalf("a record cut to %d bytes: %v", n, err)
		}
	}
}

// Sizes leak only Padmé buckets: every size in a bucket seals to the same
// length, and the overhead stays within 12% past small sizes.
func TestPadme(t *testing.T) {
	prev := 0
	for n := range 1 << 20 {
		p := Padme(n)
		if p < n || p < prev {
			t.Fatalf("Padme(%d) = %d (previous %d)", n, p, prev)
		}
		if n > 1024 && float64(p-n)/float64(n) > 0.12 {
			t.Fatalf("Padme(%d) = %d: over 12%%", n, p)
		}
		prev = p
	}
	if SealedSize(66000) != SealedSize(67000) {
		t.Fatal("two sizes of one bucket seal to different lengths")
	}
	for _, c := range []struct{ n, want int }{{0, 0}, {1, 1}, {9, 10}, {100, 104}, {1000, 1024}, {65536 + 4, 67584}} {
		if got := Padme(c.n); got != c.want {
			t.Errorf("Padme(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestKeysAreDistinct(t *testing.T) {
	k := keys(t, 1)
	all := [][32]byte{k.block, k.nonce, k.record, k.chunk, keys(t, 2).block}
	for i := range all {
		for j := range i {
			if all[i] == all[j] {
				t.Fatalf("derived keys %d and %d are equal", i, j)
			}
		}
	}
}

func FuzzOpen(f *testing.F) {
	k := keys(f, 1)
	s, _ := k.SealBlock([]byte("x"), block.Sum([]byte("x")))
	f.Add(s)
	r, _ := k.SealRecord([]byte("r"), [32]byte{})
	f.Add(r)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := k.OpenBlock(b, block.Sum([]byte("x"))); err == nil && string(p) != "x" {
			t.Fatalf("opened to %q", p)
		}
		if p, err := k.OpenRecord(b, [32]byte{}); err == nil && string(p) != "r" {
			t.Fatalf("opened to %q", p)
		}
	})
}

// Slots and tags depend on the read key and on what they name, so an
// encrypted member (which holds neither key) cannot test a guessed name
// or envelope against them, and two paths never share a slot.
func TestSlotAndTag(t *testing.T) {
	a, b := keys(t, 1), keys(t, 2)
	again := keys(t, 1)
	if a.Slot("x/y.txt") != again.Slot("x/y.txt") || a.Tag([]byte("env")) != again.Tag([]byte("env")) {
		t.Fatal("slot or tag not deterministic")
	}
	if a.Slot("x/y.txt") == b.Slot("x/y.txt") || a.Tag([]byte("env")) == b.Tag([]byte("env")) {
		t.Fatal("slot or tag does not depend on the read key")
	}
	if a.Slot("x/y.txt") == a.Slot("x/z.txt") || a.Tag([]byte("env1")) == a.Tag([]byte("env2")) {
		t.Fatal("two names share a slot or tag")
	}
	if a.Slot("same") == a.Tag([]byte("same")) {
		t.Fatal("slot and tag keys are the same key")
	}
}
