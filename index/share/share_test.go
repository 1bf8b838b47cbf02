package share

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

func fixedSecret() Secret {
	var s Secret
	for i := range s {
		s[i] = byte(i)
	}
	return s
}

// TestGoldenDerivation pins every derived value for one secret: changing a
// context or the derivation order changes every share's keys and IDs.
func TestGoldenDerivation(t *testing.T) {
	k := FromSecret(fixedSecret())
	ro, err := k.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := ro.Encrypted()
	if err != nil {
		t.Fatal(err)
	}
	readKey, _ := k.ReadKey()
	pathKey := k.PathKey("docs/report.txt")
	got := map[string]string{
		"public":   hex.EncodeToString(k.PublicKey()),
		"read":     hex.EncodeToString(readKey[:]),
		"path key": hex.EncodeToString(pathKey[:]),
		"id":       k.ID().String(),
		"rw":       k.String(),
		"ro":       ro.String(),
		"enc":      enc.String(),
	}
	want := map[string]string{
		"public":   "f6b8d213a9c595e8a69d9609450ea7571af8532a5c63126c4840342f4f5005c0",
		"read":     "6448d2b38cb0912046d45d926bf5fdcf64889347ad252e069e2d10cf8100a7ec",
		"path key": "e6cec2f02e4473d36bfbc43a49117a9961178e13bc82e674370b17f53ec80c92",
		"id":       "ESOOZCW-D7ISMLT-QLLPUF2-NCYWHFU-UGL56PL-USDT5EA-V2ZNW2A-77CLBIB",
		"rw":       "rw-AAAQEAYEAUDAOCAJBIFQYDIOB4IBCEQTCQKRMFYYDENBWHA5DYPUGMW7",
		"ro":       "ro-MRENFM4MWCISARWULWJGX5P5Z5SIRE2HVUSS4BU6FUIM7AIAU7WPNOGSCOU4LFPIU2OZMCKFB2TVOGXYKMVFYYYSNREEANBPJ5IALQBU4VMAXFPQ",
		"enc":      "enc-ZIOQBLWC4SKPDM5T5WQER6LP7ZWSXAYU4EQBNSD5RLPGOBBIBO4PNOGSCOU4LFPIU2OZMCKFB2TVOGXYKMVFYYYSNREEANBPJ5IALQFPL62HEEK6",
	}
	for name := range want {
		if got[name] != want[name] {
			t.Errorf("%s = %q, want %q", name, got[name], want[name])
		}
	}
}

func TestLevels(t *testing.T) {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	rw := FromSecret(s)
	ro, err := rw.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	enc, err := rw.Encrypted()
	if err != nil {
		t.Fatal(err)
	}
	enc2, err := ro.Encrypted()
	if err != nil {
		t.Fatal(err)
	}
	ro2, err := ro.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		k                 Key
		level             Level
		signs, reads, has bool
	}{
		{rw, ReadWrite, true, true, true},
		{ro, ReadOnly, false, true, false},
		{ro2, ReadOnly, false, true, false},
		{enc, Encrypted, false, false, false},
		{enc2, Encrypted, false, false, false},
	} {
		k := tt.k
		if k.Level() != tt.level {
			t.Errorf("level %v, want %v", k.Level(), tt.level)
		}
		// Every level names the same share, verifies with the same key and
		// places paths at the same tree keys.
		if k.ID() != rw.ID() || !bytes.Equal(k.PublicKey(), rw.PublicKey()) || k.PathKey("a/b") != rw.PathKey("a/b") {
			t.Errorf("%v key disagrees with the read-write key on ID, public key or path key", k.Level())
		}
		priv, ok := k.Signer()
		if ok != tt.signs || (ok && !bytes.Equal(priv.Public().(ed25519.PublicKey), rw.PublicKey())) {
			t.Errorf("%v: Signer ok=%v", k.Level(), ok)
		}
		if _, ok := k.ReadKey(); ok != tt.reads {
			t.Errorf("%v: ReadKey ok=%v", k.Level(), ok)
		}
		if _, ok := k.Secret(); ok != tt.has {
			t.Errorf("%v: Secret ok=%v", k.Level(), ok)
		}
	}
	// Downgrades never go up, and the text of a lower key never parses as a
	// higher one.
	if _, err := enc.ReadOnly(); !errors.Is(err, ErrLevel) {
		t.Errorf("encrypted -> read-only = %v, want ErrLevel", err)
	}
	if _, err := (Key{}).Encrypted(); !errors.Is(err, ErrLevel) {
		t.Errorf("zero key -> encrypted = %v, want ErrLevel", err)
	}
	for _, k := range []Key{ro, enc} {
		text := k.String()
		for _, tag := range []string{"rw", "ro"} {
			if tag == text[:2] {
				continue
			}
			_, payload, _ := strings.Cut(text, "-")
			if got, err := ParseKey(tag + "-" + payload); err == nil {
				t.Errorf("%v key relabelled %s parsed as %v", k.Level(), tag, got.Level())
			}
		}
	}
	// The signing key signs for the share.
	priv, _ := rw.Signer()
	msg := []byte("m")
	if !ed25519.Verify(enc.PublicKey(), msg, ed25519.Sign(priv, msg)) {
		t.Errorf("signature by the share key does not verify with the encrypted key's public key")
	}
	if rw.PathKey("a") == rw.PathKey("b") || rw.PathKey("a") == FromSecret(fixedSecret()).PathKey("a") {
		t.Errorf("path keys collide across paths or shares")
	}
}

func TestTextRoundTrip(t *testing.T) {
	for range 20 {
		s, _ := NewSecret()
		rw := FromSecret(s)
		ro, _ := rw.ReadOnly()
		enc, _ := rw.Encrypted()
		for _, k := range []Key{rw, ro, enc} {
			text := k.String()
			for _, form := range []string{text, strings.ToLower(text), strings.ToUpper(text)} {
				got, err := ParseKey(form)
				if err != nil {
					t.Fatalf("ParseKey(%q): %v", form, err)
				}
				if got.String() != text || got.Level() != k.Level() || got.ID() != k.ID() || got.PathKey("x") != k.PathKey("x") {
					t.Fatalf("key %q did not round trip", text)
				}
			}
			var u Key
			if b, err := k.MarshalText(); err != nil || u.UnmarshalText(b) != nil || u.String() != text {
				t.Fatalf("MarshalText round trip of %q failed", text)
			}
		}
		id := rw.ID()
		text := id.String()
		if len(text) != 8*7+7 || strings.Count(text, "-") != 7 || id.Short() != text[:7] {
			t.Fatalf("ID text %q is not 8 groups of 7", text)
		}
		for _, form := range []string{text, strings.ToLower(text), strings.ReplaceAll(text, "-", ""), strings.ReplaceAll(text, "-", " ")} {
			if got, err := ParseID(form); err != nil || got != id {
				t.Fatalf("ParseID(%q) = %v, %v", form, got, err)
			}
		}
	}
}

// TestTyposRejected: every single-character substitution and every
// adjacent transposition of a key or ID is refused.
func TestTyposRejected(t *testing.T) {
	rw := FromSecret(fixedSecret())
	ro, _ := rw.ReadOnly()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	try := func(what, s string, parse func(string) error) {
		for i := range len(s) {
			if s[i] == '-' {
				continue
			}
			for _, c := range []byte(alphabet) {
				if c == s[i] || c|0x20 == s[i] {
					continue
				}
				typo := s[:i] + string(c) + s[i+1:]
				if err := parse(typo); err == nil {
					t.Errorf("%s typo %q accepted", what, typo)
				} else if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s typo error %v is not ErrMalformed", what, err)
				}
			}
			if i+1 < len(s) && s[i] != s[i+1] && s[i+1] != '-' {
				swap := s[:i] + string(s[i+1]) + string(s[i]) + s[i+2:]
				if err := parse(swap); err == nil {
					t.Errorf("%s transposition %q accepted", what, swap)
				}
			}
		}
		for _, cut := range []string{s[:len(s)-1], s + "A", "", "-", "x" + s} {
			if err := parse(cut); err == nil {
				t.Errorf("%s %q accepted", what, cut)
			}
		}
	}
	parseKey := func(s string) error { _, err := ParseKey(s); return err }
	parseID := func(s string) error { _, err := ParseID(s); return err }
	try("rw key", rw.String(), parseKey)
	try("ro key", ro.String(), parseKey)
	try("id", rw.ID().String(), parseID)
}

func FuzzParseKey(f *testing.F) {
	rw := FromSecret(fixedSecret())
	ro, _ := rw.ReadOnly()
	enc, _ := rw.Encrypted()
	for _, s := range []string{rw.String(), ro.String(), enc.String(), "rw-", "enc-AAAA", "id-" + rw.ID().String()} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if !strings.EqualFold(k.String(), s) {
			t.Fatalf("ParseKey(%q) prints as %q", s, k.String())
		}
		again, err := ParseKey(k.String())
		if err != nil || again.ID() != k.ID() || again.Level() != k.Level() {
			t.Fatalf("reparse of %q: %v", k.String(), err)
		}
	})
}

func FuzzParseID(f *testing.F) {
	id := FromSecret(fixedSecret()).ID()
	for _, s := range []string{id.String(), strings.ReplaceAll(id.String(), "-", ""), "", "-------"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if again, err := ParseID(id.String()); err != nil || again != id {
			t.Fatalf("reparse of %q: %v", id.String(), err)
		}
	})
}

// TestPathKeyReusesHashersOfItsOwnKey: PathKey keeps keyed hashers for
// reuse; calls for two shares, interleaved and from several goroutines, must
// each get the hash under their own key, as a hasher made afresh gives.
func TestPathKeyReusesHashersOfItsOwnKey(t *testing.T) {
	a := FromSecret(fixedSecret())
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b := FromSecret(s)
	fresh := func(k Key, p string) merkle.Key {
		h, err := blake3.NewKeyed(k.pathKey[:])
		if err != nil {
			t.Error(err)
			return merkle.Key{}
		}
		h.WriteString(p)
		var out merkle.Key
		copy(out[:], h.Sum(nil))
		return out
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				k := a
				if (i+g)%2 == 0 {
					k = b
				}
				p := fmt.Sprintf("dir %d/file %d", g, i)
				if got, want := k.PathKey(p), fresh(k, p); got != want {
					errs <- fmt.Sprintf("PathKey(%q) = %x, want %x", p, got[:4], want[:4])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
