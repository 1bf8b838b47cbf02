package identity

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// golden pins the text form: changing it would orphan every written-down ID.
var golden = DeviceID(sha256.Sum256([]byte("blueshift")))

const goldenText = "TIENSGM-SSWSZMW-T6K45S5-SX2JYJM-EC2PDTW-GLWNXAJ-4243XQG-FPAXDQY"

func TestDeviceIDGolden(t *testing.T) {
	if got := golden.String(); got != goldenText {
		t.Fatalf("String() = %q, want %q", got, goldenText)
	}
}

func TestParseDeviceID(t *testing.T) {
	good := golden.String()
	noDash := strings.ReplaceAll(good, "-", "")
	// flip one character of the first group to a different valid one
	typo := []byte(good)
	if typo[2] == 'A' {
		typo[2] = 'B'
	} else {
		typo[2] = 'A'
	}
	swapped := []byte(good)
	for i := 0; i+1 < len(swapped); i++ {
		if swapped[i] != swapped[i+1] && swapped[i] != '-' && swapped[i+1] != '-' {
			swapped[i], swapped[i+1] = swapped[i+1], swapped[i]
			break
		}
	}
	// The last data character carries 4 unused bits; set one.
	nonCanon := []byte(noDash)
	nonCanon[54] = base32Alphabet[(base32Value(nonCanon[54])+1)%32]
	nonCanon[55] = luhn32(string(nonCanon[42:55]))

	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"canonical", good, true},
		{"lower case", strings.ToLower(good), true},
		{"no dashes", noDash, true},
		{"spaces", strings.ReplaceAll(good, "-", " "), true},
		{"tabs and mixed", "  " + strings.ToLower(noDash[:20]) + "\t" + noDash[20:] + " ", true},
		{"digits read as letters", strings.NewReplacer("O", "0", "I", "1", "B", "8").Replace(good), true},
		{"empty", "", false},
		{"one char short", good[:len(good)-1], false},
		{"one char long", good + "A", false},
		{"typo", string(typo), false},
		{"neighbours swapped", string(swapped), false},
		{"bad character", "!" + good[1:], false},
		{"unicode", "É" + good[2:], false},
		{"non-canonical trailing bits", string(nonCanon), false},
		{"very long", strings.Repeat(good, 100), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := ParseDeviceID(tc.in)
			if tc.ok {
				if err != nil {
					t.Fatalf("ParseDeviceID(%q): %v", tc.in, err)
				}
				if id != golden {
					t.Fatalf("ParseDeviceID(%q) = %s, want %s", tc.in, id, golden)
				}
				return
			}
			if !errors.Is(err, ErrBadDeviceID) {
				t.Fatalf("ParseDeviceID(%q) = %s, %v; want ErrBadDeviceID", tc.in, id, err)
			}
		})
	}
}

// Every single-character typo anywhere in the ID is caught.
func TestParseDeviceIDEverySingleTypo(t *testing.T) {
	s := strings.ReplaceAll(golden.String(), "-", "")
	for i := 0; i < len(s); i++ {
		for _, c := range []byte(base32Alphabet) {
			if c == s[i] {
				continue
			}
			b := []byte(s)
			b[i] = c
			if _, err := ParseDeviceID(string(b)); err == nil {
				t.Fatalf("typo %q at %d accepted", c, i)
			}
		}
	}
}

func TestDeviceIDTextRoundTrip(t *testing.T) {
	for i := 0; i < 100; i++ {
		id := DeviceID(sha256.Sum256([]byte{byte(i)}))
		b, _ := id.MarshalText()
		var back DeviceID
		if err := back.UnmarshalText(b); err != nil || back != id {
			t.Fatalf("round trip %s: got %s, %v", id, back, err)
		}
	}
}

func FuzzParseDeviceID(f *testing.F) {
	f.Add(golden.String())
	f.Add(strings.ToLower(golden.String()))
	f.Add("")
	f.Add("AAAAAAA-AAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseDeviceID(s)
		if err != nil {
			if !errors.Is(err, ErrBadDeviceID) {
				t.Fatalf("error is not ErrBadDeviceID: %v", err)
			}
			return
		}
		// An accepted ID has exactly one canonical form that parses back.
		back, err := ParseDeviceID(id.String())
		if err != nil || back != id {
			t.Fatalf("%q -> %s does not round trip: %v", s, id, err)
		}
	})
}

func TestCreateLoad(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	created, err := Create(home)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(home, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %04o, want 0600", st.Mode().Perm())
	}
	loaded, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID() != created.ID() {
		t.Fatalf("loaded %s, created %s", loaded.ID(), created.ID())
	}
	if FromPublicKey(loaded.PublicKey()) != loaded.ID() {
		t.Fatal("ID is not the hash of the public key")
	}
	if _, err := Create(home); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("second Create: %v, want ErrKeyExists", err)
	}
	again, _ := Load(home)
	if again.ID() != created.ID() {
		t.Fatal("second Create replaced the key")
	}
	// The certificate is deterministic and names the device.
	a, b := created.Certificate(), loaded.Certificate()
	if string(a.Certificate[0]) != string(b.Certificate[0]) {
		t.Fatal("certificate differs between Create and Load")
	}
	if got, err := FromCertificate(a.Leaf); err != nil || got != created.ID() {
		t.Fatalf("FromCertificate = %s, %v; want %s", got, err, created.ID())
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(t.TempDir()); !errors.Is(err, ErrNoKey) {
		t.Fatalf("Load of empty home: %v, want ErrNoKey", err)
	}
	home := t.TempDir()
	path := filepath.Join(home, KeyFile)
	for _, tc := range []struct {
		name string
		data string
		mode os.FileMode
		want error
	}{
		{"garbage", "not a key", 0o600, ErrBadKey},
		{"wrong PEM type", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 0o600, ErrBadKey},
		{"bad DER", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", 0o600, ErrBadKey},
		{"huge", strings.Repeat("A", maxKeyFile*2), 0o600, ErrBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(path)
			if err := os.WriteFile(path, []byte(tc.data), tc.mode); err != nil {
				t.Fatal(err)
			}
			if _, err := Load(home); !errors.Is(err, tc.want) {
				t.Fatalf("Load: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestLoadRefusesReadableKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits do not describe access on Windows")
	}
	home := t.TempDir()
	if _, err := Create(home); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, KeyFile)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := Load(home)
		if !errors.Is(err, ErrKeyPermissions) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %04o: %v, want ErrKeyPermissions with a chmod hint", mode, err)
		}
	}
}

func TestSignVerify(t *testing.T) {
	a, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate()
	msg := []byte("announce")
	sig := a.Sign(msg)
	if !Verify(a.ID(), a.PublicKey(), msg, sig) {
		t.Fatal("good signature rejected")
	}
	if Verify(b.ID(), a.PublicKey(), msg, sig) {
		t.Fatal("signature accepted for the wrong device")
	}
	if Verify(a.ID(), a.PublicKey(), []byte("other"), sig) {
		t.Fatal("signature accepted for another message")
	}
	if Verify(a.ID(), a.PublicKey()[:10], msg, sig) {
		t.Fatal("short key accepted")
	}
}
