package members

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"fmt"

	"filippo.io/edwards25519"
	"golang.org/x/crypto/nacl/box"
)

// EpochKeySize is the size of an epoch key.
const EpochKeySize = 32

// EpochKey is the key of one key epoch: what content written in that
// epoch is sealed under for members who must not read it once removed.
type EpochKey [EpochKeySize]byte

// NewEpochKey returns a fresh random epoch key.
func NewEpochKey() (EpochKey, error) {
	var k EpochKey
	if _, err := rand.Read(k[:]); err != nil {
		return EpochKey{}, fmt.Errorf("new epoch key: %w", err)
	}
	return k, nil
}

// SealKey seals k to the device whose Ed25519 public key is pub: a NaCl
// anonymous box to the X25519 key converted from it (the birational map
// of RFC 7748, as libsodium's crypto_sign_ed25519_pk_to_curve25519).
func SealKey(k EpochKey, pub ed25519.PublicKey) ([]byte, error) {
	xpub, err := x25519Public(pub)
	if err != nil {
		return nil, err
	}
	return box.SealAnonymous(nil, k[:], xpub, rand.Reader)
}

// OpenKey opens a box SealKey made for priv's device.
func OpenKey(b []byte, priv ed25519.PrivateKey) (EpochKey, error) {
	xpub, err := x25519Public(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return EpochKey{}, err
	}
	xpriv := x25519Private(priv)
	out, ok := box.OpenAnonymous(nil, b, xpub, xpriv)
	if !ok || len(out) != EpochKeySize {
		return EpochKey{}, fmt.Errorf("open a sealed epoch key: %w", ErrRefused)
	}
	return EpochKey(out), nil
}

// x25519Public converts an Ed25519 public key to its X25519 (Montgomery) form.
func x25519Public(pub ed25519.PublicKey) (*[32]byte, error) {
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("device public key is not a valid Ed25519 key: %w", ErrInvalid)
	}
	var out [32]byte
	copy(out[:], p.BytesMontgomery())
	return &out, nil
}

// x25519Private is the X25519 private key of an Ed25519 key: the first half
// of SHA-512 of the seed (clamped by X25519 itself), as RFC 8032 derives the
// signing scalar.
func x25519Private(priv ed25519.PrivateKey) *[32]byte {
	h := sha512.Sum512(priv.Seed())
	var out [32]byte
	copy(out[:], h[:32])
	return &out
}
