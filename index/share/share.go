// Package share holds a share's keys and the capabilities derived from them.
//
// A share is born from a random 32-byte Secret. Everything else is derived
// one way with BLAKE3 in derive-key mode, each step under its own context:
//
//	Secret ──"sign"──> Ed25519 seed ──> signing key ──> public key ──"id"──> ID
//	   └────"read"──> read key ──"path"──> path key
//
// A Key is a capability at one Level, and holds only what that level needs:
//
//	ReadWrite  Secret                     sign records, read, verify, place
//	ReadOnly   read key + public key      read names and data, verify, place
//	Encrypted  path key + public key      verify, store and forward, place
//
// ("place" is PathKey: the keyed hash of a path that orders the share's
// Merkle tree.) The path key is derived from the read key, so a read-only
// member has it, and an encrypted member holds it without being able to go
// back to the read key. Downgrades (ReadOnly, Encrypted) never go up.
//
// The share ID is derived from the public key, so every capability names its
// share, and one ID cannot be paired with another share's key.
//
// Key.Seal signs a record for the share at its path's tree key; Key.Check is
// what a receiver runs on every envelope: the signature always, and where the
// key can read, a valid record whose path hashes to the envelope's tree key.
//
// Text forms: a Key prints as "<level>-<base32>" ("rw-", "ro-", "enc-") and
// an ID as eight groups of seven base32 characters; both carry a BLAKE3
// checksum so a mistyped one is refused by ParseKey and ParseID. Keys and IDs
// are immutable values, safe to copy and to use concurrently.
package share

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

// Derivation contexts. Changing any of them changes every share's keys.
const (
	ctxSign = "blueshift 2026 share signing seed v1"
	ctxRead = "blueshift 2026 share read key v1"
	ctxPath = "blueshift 2026 share path key v1"
	ctxID   = "blueshift 2026 share id v1"
)

// Sizes of the key material, in bytes.
const (
	SecretSize = 32
	keySize    = 32
)

// Error classes, tested with errors.Is.
var (
	// ErrLevel: the key's level does not allow what was asked.
	ErrLevel = errors.New("share key level too low")
	// ErrMalformed: a key or ID in text form is not well formed or fails
	// its checksum.
	ErrMalformed = errors.New("malformed share key or ID")
)

// ID names a share.
type ID [32]byte

// Level is what a key lets its holder do.
type Level uint8

const (
	Encrypted Level = iota + 1
	ReadOnly
	ReadWrite
)

// String names the level as users read it.
func (l Level) String() string {
	switch l {
	case Encrypted:
		return "encrypted"
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	}
	return fmt.Sprintf("level(%d)", uint8(l))
}

// Secret is the root of a share's keys. Whoever holds it may write.
type Secret [SecretSize]byte

// NewSecret returns a fresh random secret.
func NewSecret() (Secret, error) {
	var s Secret
	if _, err := rand.Read(s[:]); err != nil {
		return Secret{}, fmt.Errorf("new share secret: %w", err)
	}
	return s, nil
}

// Key is a capability for one share. The zero Key has no level and no use.
type Key struct {
	level   Level
	secret  Secret             // ReadWrite only
	priv    ed25519.PrivateKey // ReadWrite only; derived from secret, never modified
	readKey [keySize]byte      // ReadWrite and ReadOnly
	pathKey [keySize]byte      // every level
	pub     [ed25519.PublicKeySize]byte
	id      ID
}

// FromSecret returns the read-write key of the share born from s.
func FromSecret(s Secret) Key {
	var seed [ed25519.SeedSize]byte
	blake3.DeriveKey(ctxSign, s[:], seed[:])
	priv := ed25519.NewKeyFromSeed(seed[:])
	k := Key{level: ReadWrite, secret: s, priv: priv}
	blake3.DeriveKey(ctxRead, s[:], k.readKey[:])
	copy(k.pub[:], priv.Public().(ed25519.PublicKey))
	return k.finish()
}

// fromReadKey returns the read-only key for readKey and pub.
func fromReadKey(readKey, pub [keySize]byte) Key {
	return Key{level: ReadOnly, readKey: readKey, pub: pub}.finish()
}

// fromPathKey returns the encrypted key for pathKey and pub.
func fromPathKey(pathKey, pub [keySize]byte) Key {
	return Key{level: Encrypted, pathKey: pathKey, pub: pub}.finish()
}

// finish derives what the level's own material allows: the path key from
// the read key, and the ID from the public key.
func (k Key) finish() Key {
	if k.level >= ReadOnly {
		blake3.DeriveKey(ctxPath, k.readKey[:], k.pathKey[:])
	}
	blake3.DeriveKey(ctxID, k.pub[:], k.id[:])
	return k
}

// Level returns what the key allows.
func (k Key) Level() Level { return k.level }

// ID returns the share's ID.
func (k Key) ID() ID { return k.id }

// PublicKey returns the share's public key, which verifies record envelopes.
func (k Key) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), k.pub[:]...)
}

// Signer returns the share's signing key; ok is false below ReadWrite.
func (k Key) Signer() (priv ed25519.PrivateKey, ok bool) {
	if k.level != ReadWrite {
		return nil, false
	}
	return append(ed25519.PrivateKey(nil), k.priv...), true
}

// Secret returns the share's secret; ok is false below ReadWrite.
func (k Key) Secret() (s Secret, ok bool) {
	return k.secret, k.level == ReadWrite
}

// ReadKey returns the key that will decrypt sealed record bodies and blocks
// for encrypted members; ok is false at Encrypted.
func (k Key) ReadKey() (key [32]byte, ok bool) {
	if k.level < ReadOnly {
		return [32]byte{}, false
	}
	return k.readKey, true
}

// PathKey returns where the record of path p sits in the share's Merkle
// tree: BLAKE3-256 keyed with the path key, over the path's bytes. Every
// level can compute it, for the names it knows.
func (k Key) PathKey(p string) merkle.Key {
	ph, _ := pathHashers.Get().(*pathHasher)
	if ph == nil || ph.key != k.pathKey {
		h, err := blake3.NewKeyed(k.pathKey[:])
		if err != nil {
			panic("share: blake3 refused a 32-byte key: " + err.Error()) // cannot happen
		}
		ph = &pathHasher{key: k.pathKey, h: h}
	} else {
		ph.h.Reset() // keeps the key
	}
	ph.h.WriteString(p)
	var out merkle.Key
	ph.h.Sum(out[:0])
	pathHashers.Put(ph)
	return out
}

// pathHashers keeps keyed hashers for PathKey, each with the key it was made
// with: a new one allocates ~7 KiB, and PathKey runs several times per
// record stored, checked or looked up (two thirds of all the bytes a touch
// of many small files allocated went to them).
var pathHashers sync.Pool // of *pathHasher

type pathHasher struct {
	key [keySize]byte
	h   *blake3.Hasher
}

// ReadOnly returns the read-only capability of k's share. It fails for an
// encrypted key: a level never goes up.
func (k Key) ReadOnly() (Key, error) {
	if k.level < ReadOnly {
		return Key{}, fmt.Errorf("make read-only key from %s key of share %s: %w", k.level, k.id.Short(), ErrLevel)
	}
	return fromReadKey(k.readKey, k.pub), nil
}

// Encrypted returns the encrypted (relay) capability of k's share.
func (k Key) Encrypted() (Key, error) {
	if k.level < Encrypted {
		return Key{}, fmt.Errorf("make encrypted key from %s key: %w", k.level, ErrLevel)
	}
	return fromPathKey(k.pathKey, k.pub), nil
}
