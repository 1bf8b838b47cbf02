package discovery

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// seedKey is a device key made from a fixed seed, so that packets are
// reproducible (identity.Generate is random).
type seedKey ed25519.PrivateKey

func (k seedKey) PublicKey() ed25519.PublicKey {
	return ed25519.PrivateKey(k).Public().(ed25519.PublicKey)
}
func (k seedKey) Sign(msg []byte) []byte { return ed25519.Sign(ed25519.PrivateKey(k), msg) }

func testKey(b byte) seedKey {
	return seedKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize)))
}

var testTime = time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)

func testAnnouncement() announcement {
	return announcement{
		family: family4,
		time:   testTime,
		addresses: []netip.AddrPort{
			netip.MustParseAddrPort("0.0.0.0:22000"),
			netip.MustParseAddrPort("192.0.2.7:22001"),
			netip.MustParseAddrPort("[2001:db8::1]:22000"),
		},
	}
}

func mustEncode(t testing.TB, key Signer, a announcement) []byte {
	t.Helper()
	p, err := encodePacket(key, a)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPacketRoundTrip(t *testing.T) {
	key := testKey(1)
	want := testAnnouncement()
	p := mustEncode(t, key, want)
	got, err := decodePacket(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.family != want.family || !got.time.Equal(want.time) || !bytes.Equal(got.publicKey, key.PublicKey()) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if len(got.addresses) != len(want.addresses) {
		t.Fatalf("addresses %v, want %v", got.addresses, want.addresses)
	}
	for i := range want.addresses {
		if got.addresses[i] != want.addresses[i] {
			t.Fatalf("address %d: %v, want %v", i, got.addresses[i], want.addresses[i])
		}
	}
}

// TestPacketGolden pins the wire format: a change here breaks every device
// that runs an older version.
func TestPacketGolden(t *testing.T) {
	p := mustEncode(t, testKey(1), testAnnouncement())
	want, err := os.ReadFile(filepath.Join("testdata", "golden.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(p); got != string(bytes.TrimSpace(want)) {
		t.Errorf("packet\n%s\nwant\n%s", got, want)
	}
}

func TestPacketRefused(t *testing.T) {
	key := testKey(1)
	good := mustEncode(t, key, testAnnouncement())
	many := testAnnouncement()
	for len(many.addresses) < MaxAddresses {
		many.addresses = append(many.addresses, many.addresses[0])
	}
	full := mustEncode(t, key, many)

	edit := func(p []byte, f func([]byte) []byte) []byte { return f(bytes.Clone(p)) }
	tests := []struct {
		name string
		p    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"short", good[:minSize-1], ErrMalformed},
		{"truncated", good[:len(good)-1], ErrMalformed},
		{"oversized", append(bytes.Clone(good), make([]byte, MaxPacketSize)...), ErrMalformed},
		{"bad magic", edit(good, func(p []byte) []byte { p[0] = 'X'; return p }), ErrMalformed},
		{"future version", edit(good, func(p []byte) []byte { p[3] = 2; return p }), ErrMalformed},
		{"bad family", edit(good, func(p []byte) []byte { p[4] = 5; return p }), ErrMalformed},
		{"too many addresses", edit(full, func(p []byte) []byte { p[headerSize-1] = MaxAddresses + 1; return p }), ErrMalformed},
		{"count past end", edit(good, func(p []byte) []byte { p[headerSize-1] = 9; return p }), ErrMalformed},
		{"bad address kind", edit(good, func(p []byte) []byte { p[headerSize] = 5; return p }), ErrMalformed},
		{"trailing byte", edit(good, func(p []byte) []byte {
			return append(append(p[:len(p)-sigSize:len(p)-sigSize], 0), good[len(good)-sigSize:]...)
		}), ErrMalformed},
		{"flipped time", edit(good, func(p []byte) []byte { p[12] ^= 1; return p }), ErrBadSignature},
		{"flipped address", edit(good, func(p []byte) []byte { p[headerSize+1] ^= 1; return p }), ErrBadSignature},
		{"flipped signature", edit(good, func(p []byte) []byte { p[len(p)-1] ^= 1; return p }), ErrBadSignature},
		{"other key", edit(good, func(p []byte) []byte {
			copy(p[13:], testKey(2).PublicKey())
			return p
		}), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodePacket(tt.p)
			if !errors.Is(err, tt.want) {
				t.Fatalf("decode: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeRefusesTooManyAddresses(t *testing.T) {
	a := testAnnouncement()
	a.addresses = make([]netip.AddrPort, MaxAddresses+1)
	for i := range a.addresses {
		a.addresses[i] = netip.MustParseAddrPort("[2001:db8::1]:1")
	}
	if _, err := encodePacket(testKey(1), a); err == nil {
		t.Fatal("encoded too many addresses")
	}
	a.addresses = a.addresses[:MaxAddresses]
	if p := mustEncode(t, testKey(1), a); len(p) > MaxPacketSize {
		t.Fatalf("largest packet is %d bytes, over MaxPacketSize %d", len(p), MaxPacketSize)
	}
}

// FuzzDecodePacket feeds arbitrary bytes to the decoder: it must never
// panic, and whatever it accepts from the test key must re-encode to the
// same bytes (Ed25519 signatures are deterministic).
func FuzzDecodePacket(f *testing.F) {
	key := testKey(1)
	f.Add(mustEncode(f, key, testAnnouncement()))
	f.Add(mustEncode(f, key, announcement{family: family6, time: testTime}))
	f.Add([]byte("BSD\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, p []byte) {
		a, err := decodePacket(p)
		if err != nil {
			return
		}
		if !bytes.Equal(a.publicKey, key.PublicKey()) {
			return // a valid signature by another key: the fuzzer found none, fine
		}
		again, err := encodePacket(key, a)
		if err != nil {
			t.Fatalf("re-encode accepted packet: %v", err)
		}
		if !bytes.Equal(again, p) {
			t.Fatalf("re-encoded %x\nfrom        %x", again, p)
		}
	})
}
