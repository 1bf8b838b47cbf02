package corpus

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestPinned pins the bytes: bench results of earlier sessions were made
// from them (the digests are of the generator as cmd/bench had it before
// it moved here).
func TestPinned(t *testing.T) {
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	var buf bytes.Buffer
	if err := NewMixer(1, Vocabulary(1), "large", 0).Write(&buf, 4<<20, 0.12, 64<<10); err != nil {
		t.Fatal(err)
	}
	large := sum(buf.Bytes())
	buf.Reset()
	if err := NewMixer(7, Vocabulary(7), "small", 3).Write(&buf, 100000, 0.7, 4096); err != nil {
		t.Fatal(err)
	}
	small := sum(buf.Bytes())
	m := NewMixer(1, Vocabulary(1), "tiny", 5)
	f := m.Float64()
	b := make([]byte, 1000)
	m.Text(b)
	tiny := sum(b)
	buf.Reset()
	if err := WriteRandom(&buf, Stream(1, "random", 2), 1000); err != nil {
		t.Fatal(err)
	}
	random := sum(buf.Bytes())
	for _, c := range []struct{ name, got, want string }{
		{"large", large, "87cb119ab8a81b42814418b46e88927545eff7fc68bb511e10fb39e0255998a6"},
		{"small", small, "19f916a369c88d5d4ac8ee1e4a66e0692c31451e7d6017465d92963196745560"},
		{"tiny", tiny, "d441f748f59a78e7c2e80980f38dd170690b47839f64d43850cc80681be8f5e1"},
		{"random", random, "953b0352b9f465eb763cf1a0f167d81b44a45b64ce0940232733f92d1b4ed98c"},
	} {
		if c.got != c.want {
			t.Errorf("%s: sha256 %s, want %s", c.name, c.got, c.want)
		}
	}
	if f != 0.07941728133010384 {
		t.Errorf("tiny: first Float64 %v, want 0.07941728133010384", f)
	}
}
