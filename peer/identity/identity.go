// Package identity is a device's Ed25519 key pair and the device ID derived
// from it.
//
// Nouns:
//
//   - DeviceID: the SHA-256 of a device's Ed25519 public key. Its text form is
//     base32 with a Luhn mod-32 check character per 13 characters, grouped by
//     seven for reading aloud:
//
//     TIENSGM-SSWSZMW-T6K45S5-SX2JYJM-EC2PDTW-GLWNXAJ-4243XQG-FPAXDQY
//
//     ParseDeviceID accepts it in any case, with or without dashes and spaces,
//     and rejects a mistyped ID (any single wrong character, most swaps of
//     neighbours) instead of naming another device.
//
//   - Identity: the private key, loaded from (or created in) the device's home
//     folder, with the self-signed TLS certificate made from it.
//
// The key file is "device.key" in the home folder: PEM, PKCS #8, mode 0600.
// Load refuses a key file that group or others may read or write (like ssh),
// because anyone who can read it can impersonate the device; the error says
// which chmod fixes it. The check is skipped on Windows, where mode bits do not
// describe access.
//
// An Identity is immutable after Load or Create and safe for concurrent use.
package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/blueshift-sync/blueshift/index/record"
)

// Text form: 52 base32 characters (256 bits, the last 4 bits zero) cut in 4
// groups of 13, each followed by its check character, then shown in groups of 7.
const (
	idChars     = 52
	checkGroup  = 13
	idWithCheck = idChars + idChars/checkGroup // 56
	showGroup   = 7
)

// ErrBadDeviceID is returned (wrapped) for text that is not a device ID.
var ErrBadDeviceID = errors.New("invalid device ID")

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// DeviceID names a device: the SHA-256 of its Ed25519 public key.
type DeviceID [32]byte

// FromPublicKey returns the device ID of pub.
func FromPublicKey(pub ed25519.PublicKey) DeviceID {
	return DeviceID(sha256.Sum256(pub))
}

// Short is the form version vectors use.
func (d DeviceID) Short() record.Device {
	return record.Device(binary.BigEndian.Uint64(d[:8]))
}

// IsZero reports whether d is the zero ID (no device).
func (d DeviceID) IsZero() bool { return d == DeviceID{} }

// String returns the grouped text form with check characters.
func (d DeviceID) String() string {
	plain := idEncoding.EncodeToString(d[:])
	var withCheck strings.Builder
	for i := 0; i < idChars; i += checkGroup {
		g := plain[i : i+checkGroup]
		withCheck.WriteString(g)
		withCheck.WriteByte(luhn32(g))
	}
	s := withCheck.String()
	var out strings.Builder
	out.Grow(idWithCheck + idWithCheck/showGroup)
	for i := 0; i < idWithCheck; i += showGroup {
		if i > 0 {
			out.WriteByte('-')
		}
		out.WriteString(s[i : i+showGroup])
	}
	return out.String()
}

// Abbrev returns the first group of the text form, for log lines.
func (d DeviceID) Abbrev() string { return d.String()[:showGroup] }

// MarshalText implements encoding.TextMarshaler (config files, JSON).
func (d DeviceID) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDeviceID.
func (d *DeviceID) UnmarshalText(b []byte) error {
	id, err := ParseDeviceID(string(b))
	if err != nil {
		return err
	}
	*d = id
	return nil
}

// ParseDeviceID reads a device ID written by String. Case, dashes and spaces
// do not matter; the digits 0, 1 and 8 are read as the letters O, I and B they
// are mistaken for. A wrong check character is an error.
func ParseDeviceID(s string) (DeviceID, error) {
	var id DeviceID
	if len(s) > 4*idWithCheck { // bound the work before cleaning
		return id, fmt.Errorf("parse device ID: %d characters is too long: %w", len(s), ErrBadDeviceID)
	}
	clean := make([]byte, 0, idWithCheck)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		case c == '0':
			c = 'O'
		case c == '1':
			c = 'I'
		case c == '8':
			c = 'B'
		}
		if !isBase32(c) {
			return id, fmt.Errorf("parse device ID %q: character %q is not allowed: %w", s, s[i], ErrBadDeviceID)
		}
		clean = append(clean, c)
	}
	if len(clean) != idWithCheck {
		return id, fmt.Errorf("parse device ID %q: want %d letters and digits, got %d: %w", s, idWithCheck, len(clean), ErrBadDeviceID)
	}
	plain := make([]byte, 0, idChars)
	for i := 0; i < idWithCheck; i += checkGroup + 1 {
		g := string(clean[i : i+checkGroup])
		if luhn32(g) != clean[i+checkGroup] {
			return id, fmt.Errorf("parse device ID %q: check character of group %d is wrong (mistyped?): %w", s, i/(checkGroup+1)+1, ErrBadDeviceID)
		}
		plain = append(plain, g...)
	}
	n, err := idEncoding.Decode(id[:], plain)
	if err != nil || n != len(id) {
		return DeviceID{}, fmt.Errorf("parse device ID %q: %w", s, ErrBadDeviceID)
	}
	// The last character carries 4 unused bits; only the canonical one is valid,
	// so that one ID has one text form.
	if idEncoding.EncodeToString(id[:]) != string(plain) {
		return DeviceID{}, fmt.Errorf("parse device ID %q: not in canonical form: %w", s, ErrBadDeviceID)
	}
	return id, nil
}

const base32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func isBase32(c byte) bool {
	return ('A' <= c && c <= 'Z') || ('2' <= c && c <= '7')
}

func base32Value(c byte) int {
	if c >= 'A' {
		return int(c - 'A')
	}
	return int(c-'2') + 26
}

// luhn32 returns the Luhn mod N check character (N = 32) of s, which holds
// only base32 characters. It catches every single wrong character and every
// swap of two neighbours except one pair per alphabet.
func luhn32(s string) byte {
	const n = 32
	factor, sum := 2, 0
	for i := len(s) - 1; i >= 0; i-- {
		addend := factor * base32Value(s[i])
		factor = 3 - factor
		sum += addend/n + addend%n
	}
	return base32Alphabet[(n-sum%n)%n]
}
