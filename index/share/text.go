package share

import (
	"encoding/base32"
	"fmt"
	"strings"
	"sync"

	"github.com/zeebo/blake3"
)

// Text form:
//
//	key  = tag "-" base32(payload || checksum)     tag: "rw", "ro", "enc"
//	id   = base32(id || checksum), 56 characters in 8 groups of 7 joined by "-"
//
//	rw  payload = secret (32)                  checksum 3 bytes -> 56 chars
//	ro  payload = read key (32) || public (32)  checksum 6 bytes -> 112 chars
//	enc payload = path key (32) || public (32)  checksum 6 bytes -> 112 chars
//	id  payload = ID (32)                       checksum 3 bytes -> 56 chars
//
// checksum = the first bytes of BLAKE3 derive-key(ctxCheck, tag || payload).
// Payload and checksum together are a multiple of 5 bytes, so the base32
// has no padding and no spare bits: one string per value. Parsing ignores
// case.
const ctxCheck = "blueshift 2026 share text checksum v1"

const (
	tagReadWrite = "rw"
	tagReadOnly  = "ro"
	tagEncrypted = "enc"
	tagID        = "id"
	idGroup      = 7
	maxTextLen   = 256 // longer input is refused before decoding
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// String returns the key in text form. For a read-write key this is the
// share secret: treat it like a password.
func (k Key) String() string {
	tag, payload := k.textPayload()
	if tag == "" {
		return "invalid-share-key"
	}
	return tag + "-" + b32.EncodeToString(withChecksum(tag, payload))
}

// MarshalText implements encoding.TextMarshaler (for configuration files).
func (k Key) MarshalText() ([]byte, error) {
	if k.level < Encrypted || k.level > ReadWrite {
		return nil, fmt.Errorf("marshal share key: no level: %w", ErrMalformed)
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *Key) UnmarshalText(b []byte) error {
	parsed, err := ParseKey(string(b))
	if err != nil {
		return err
	}
	*k = parsed
	return nil
}

func (k Key) textPayload() (tag string, payload []byte) {
	switch k.level {
	case ReadWrite:
		return tagReadWrite, k.secret[:]
	case ReadOnly:
		return tagReadOnly, append(k.readKey[:], k.pub[:]...)
	case Encrypted:
		return tagEncrypted, append(k.pathKey[:], k.pub[:]...)
	}
	return "", nil
}

// ParseKey reads a key written by Key.String.
func ParseKey(s string) (Key, error) {
	if len(s) > maxTextLen {
		return Key{}, fmt.Errorf("parse share key: %d characters, too long: %w", len(s), ErrMalformed)
	}
	tag, text, ok := strings.Cut(s, "-")
	if !ok {
		return Key{}, fmt.Errorf("parse share key: no level tag (want rw-, ro- or enc-): %w", ErrMalformed)
	}
	tag = strings.ToLower(tag)
	if tag != tagReadWrite && tag != tagReadOnly && tag != tagEncrypted {
		return Key{}, fmt.Errorf("parse share key: unknown level tag %q (want rw, ro or enc): %w", tag, ErrMalformed)
	}
	want := 2 * keySize
	if tag == tagReadWrite {
		want = SecretSize
	}
	payload, err := checked(tag, text, want)
	if err != nil {
		return Key{}, fmt.Errorf("parse share key: %w", err)
	}
	var a, b [keySize]byte
	copy(a[:], payload)
	copy(b[:], payload[min(len(payload), keySize):])
	switch tag {
	case tagReadWrite:
		return FromSecret(Secret(a)), nil
	case tagReadOnly:
		return fromReadKey(a, b), nil
	default: // tagEncrypted; checked refused every other tag
		return fromPathKey(a, b), nil
	}
}

// String returns the ID as 8 groups of 7 base32 characters.
func (id ID) String() string {
	t := b32.EncodeToString(withChecksum(tagID, id[:]))
	var b strings.Builder
	for i := 0; i < len(t); i += idGroup {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(t[i : i+idGroup])
	}
	return b.String()
}

// Short returns the first group of the ID, for log lines.
func (id ID) Short() string { return id.String()[:idGroup] }

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	parsed, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseID reads an ID written by ID.String. Dashes and spaces between
// characters are ignored, and so is case, so an ID read aloud parses.
func ParseID(s string) (ID, error) {
	if len(s) > maxTextLen {
		return ID{}, fmt.Errorf("parse share ID: %d characters, too long: %w", len(s), ErrMalformed)
	}
	text := strings.NewReplacer("-", "", " ", "").Replace(s)
	payload, err := checked(tagID, text, len(ID{}))
	if err != nil {
		return ID{}, fmt.Errorf("parse share ID %q: %w", s, err)
	}
	return ID(payload), nil
}

// checked decodes text for tag and returns its payload of n bytes if the
// checksum matches.
func checked(tag, text string, n int) ([]byte, error) {
	cs := checksumSize(n)
	if len(text) != b32.EncodedLen(n+cs) {
		return nil, fmt.Errorf("%d characters, want %d: %w", len(text), b32.EncodedLen(n+cs), ErrMalformed)
	}
	raw, err := b32.DecodeString(strings.ToUpper(text))
	if err != nil || len(raw) != n+cs {
		return nil, fmt.Errorf("not base32: %w", ErrMalformed)
	}
	if string(withChecksum(tag, raw[:n])) != string(raw) {
		return nil, fmt.Errorf("checksum mismatch (mistyped?): %w", ErrMalformed)
	}
	return raw[:n], nil
}

// checksumSize is at least 3 bytes and rounds payload+checksum up to a
// multiple of 5 bytes (whole base32 groups).
func checksumSize(n int) int {
	cs := 3
	for (n+cs)%5 != 0 {
		cs++
	}
	return cs
}

// checkers holds BLAKE3 hashers keyed for ctxCheck: a share ID is spelled
// out for every event the API publishes (one per file applied), and a new
// hasher costs its key's derivation and ~2.5 KB of garbage each time
// (~a quarter of what a receiver allocated in a first sync of 200,000 tiny
// files).
var checkers = sync.Pool{New: func() any { return blake3.NewDeriveKey(ctxCheck) }}

func withChecksum(tag string, payload []byte) []byte {
	h := checkers.Get().(*blake3.Hasher)
	h.WriteString(tag)
	h.Write(payload)
	var buf [32]byte
	sum := h.Sum(buf[:0])
	h.Reset()
	checkers.Put(h)
	out := make([]byte, 0, len(payload)+checksumSize(len(payload)))
	out = append(out, payload...)
	return append(out, sum[:checksumSize(len(payload))]...)
}
