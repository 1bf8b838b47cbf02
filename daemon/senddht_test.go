package daemon

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/crypto/hkdf"
)

// TestSendKeyFromDHTNameOnly: both ends derive the same DHT key from a
// code however it is typed; it depends on the locator and the first two
// password characters and on nothing else of the code, so whoever reads
// the key in the DHT can test no guess at the rest of the password; it is
// not the key a derivation from the whole code would give.
func TestSendKeyFromDHTNameOnly(t *testing.T) {
	key := func(code string) ed25519.PublicKey {
		t.Helper()
		k, err := sendKey(code)
		if err != nil {
			t.Fatal(err)
		}
		return k.Public().(ed25519.PublicKey)
	}
	k := key("AB3DE-FGHJK")
	if !k.Equal(key("ab3de fghjk")) {
		t.Fatal("the same code typed otherwise gives another key")
	}
	if !k.Equal(key("AB3DE-00000")) || !k.Equal(key("AB3D0-MNPQR")) {
		t.Fatal("the key depends on the password past its first two characters: a DHT observer could test guesses at them offline")
	}
	for _, other := range []string{"AC3DE-FGHJK", "AB4DE-FGHJK", "AB3EE-FGHJK"} {
		if k.Equal(key(other)) {
			t.Fatalf("%s gives the key of AB3DE-FGHJK: the DHT name is shorter than four characters", other)
		}
	}
	seed := make([]byte, ed25519.SeedSize)
	io.ReadFull(hkdf.New(sha256.New, []byte("AB3DEFGHJK"), []byte(sendSalt), []byte(dhtKeyInfo)), seed)
	if k.Equal(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)) {
		t.Fatal("the key is derived from the whole code")
	}
	if _, err := sendKey("AB3DE"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("a short code: %v, want ErrBadCode", err)
	}
}

// TestFreshRecv: a receiver's item published a moment ago (or by a clock
// a little ahead) is punched towards; one left from a receive long over
// is not.
func TestFreshRecv(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		at   time.Time
		want bool
	}{{now, true}, {now.Add(-time.Minute), true}, {now.Add(time.Minute), true}, {now.Add(-time.Hour), false}, {now.Add(time.Hour), false}} {
		if got := freshRecv(c.at.UnixMilli(), now); got != c.want {
			t.Errorf("an item published %v from now: fresh %v, want %v", c.at.Sub(now), got, c.want)
		}
	}
}
