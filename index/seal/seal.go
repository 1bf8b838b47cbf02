// Package seal is the cryptography of encrypted members: what a device
// that may read a share does to its blocks and records before a member
// that may only store and forward them (the encrypted capability of
// index/share) gets them, and undoes when it gets them back.
//
// Every key is derived one way from a read key (a share's, or one epoch's
// after a member was removed) with BLAKE3 in derive-key mode, under its own
// context. The encrypted member holds none of them.
//
// Blocks are sealed with XChaCha20-Poly1305 (golang.org/x/crypto). The
// plaintext is prefixed with its length and padded with zeros to a Padmé
// size, so a sealed block tells its plaintext size only to within ~6%
// (at most O(log log n) bits of it). The nonce is derived from the
// block's name (the BLAKE3 of its plaintext) under a key of its own, so a
// block sealed twice seals to the same bytes: readers compute a sealed
// block's name without holding it, and the encrypted member stores a block
// several files share once. This is convergent encryption within one
// share: a member of the share who can guess a whole block can check the
// guess against the sealed name; nobody outside the share can. The sealed
// name (BLAKE3 of the sealed bytes) is what the encrypted member checks
// every block against before it stores or serves it.
//
// Records are sealed the same way but with a random nonce (they are never
// deduplicated) and the tree key they sit at as associated data, so a
// sealed record cannot be moved to another path. Slot (where a path's
// sealed record sits) and Tag (which envelope it holds) are keyed hashes
// under keys of their own, so the encrypted member, which holds the share's
// path key, cannot test guessed names against them (sync/vault).
//
// Content-defined chunk boundaries leak content (who knows a file can find
// it by its chunk sizes): a share with encrypted members cuts with a gear
// table keyed by ChunkKey (index/chunk Params.Key), so the boundaries of a
// known file are unknown to whoever lacks the read key.
package seal

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/blueshift-sync/blueshift/index/block"
)

// Derivation contexts. Changing any of them changes every sealed byte.
const (
	ctxBlock  = "blueshift 2026 sealed block key v1"
	ctxNonce  = "blueshift 2026 sealed block nonce key v1"
	ctxRecord = "blueshift 2026 sealed record key v1"
	ctxChunk  = "blueshift 2026 keyed chunk gear v1"
	ctxSlot   = "blueshift 2026 sealed record slot key v1"
	ctxTag    = "blueshift 2026 sealed record tag key v1"

	aadBlock = "blueshift sealed block v1"
	lenSize  = 4 // the plaintext length before it
)

// Overhead is the most a sealed block or record adds to its padded
// plaintext: the length prefix, the tag and (records only) the nonce.
const Overhead = lenSize + chacha20poly1305.Overhead + chacha20poly1305.NonceSizeX

// MaxPlain bounds what Seal takes: a length must fit the 4-byte prefix.
const MaxPlain = 1<<31 - 1

// ErrOpen: a sealed block or record failed to open (wrong key, tampered or
// truncated bytes, or a block whose plaintext is not the one named).
var ErrOpen = errors.New("sealed data does not open")

// Keys are the sealing keys derived from one read key.
type Keys struct {
	block, nonce, record [32]byte
	chunk                [32]byte
	slot, tag            [32]byte
}

// NewKeys derives the sealing keys of readKey.
func NewKeys(readKey [32]byte) Keys {
	var k Keys
	blake3.DeriveKey(ctxBlock, readKey[:], k.block[:])
	blake3.DeriveKey(ctxNonce, readKey[:], k.nonce[:])
	blake3.DeriveKey(ctxRecord, readKey[:], k.record[:])
	blake3.DeriveKey(ctxChunk, readKey[:], k.chunk[:])
	blake3.DeriveKey(ctxSlot, readKey[:], k.slot[:])
	blake3.DeriveKey(ctxTag, readKey[:], k.tag[:])
	return k
}

// ChunkKey keys the chunker's gear table (index/chunk Params.Key).
func (k Keys) ChunkKey() [32]byte { return k.chunk }

// Slot is where an encrypted member keeps the sealed record of path p: a
// keyed BLAKE3 of the path under a key only readers hold (the share's path
// key, which the encrypted member has, would let it test guessed names).
func (k Keys) Slot(p string) [32]byte { return keyedSum(&k.slot, []byte(p)) }

// Tag names a record envelope's exact bytes to readers (a keyed BLAKE3),
// so a reader tells which sealed records it already holds, and a writer
// which the encrypted member already has, without opening them.
func (k Keys) Tag(env []byte) [32]byte { return keyedSum(&k.tag, env) }

func keyedSum(key *[32]byte, b []byte) [32]byte {
	h, err := blake3.NewKeyed(key[:])
	if err != nil {
		panic("seal: blake3 refused a 32-byte key: " + err.Error()) // cannot happen
	}
	h.Write(b)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Padme returns the padded size of n bytes: n rounded up so that its low
// bits below the top log2(log2(n))+1 significant ones are zero (Padmé,
// Nikitin et al., PETS 2019). The overhead is at most ~12%, ~6% on
// average for sizes seen in practice, and a padded size reveals
// O(log log n) bits of n.
func Padme(n int) int {
	if n < 2 {
		return n
	}
	e := bits.Len(uint(n)) - 1 // floor(log2 n)
	s := bits.Len(uint(e))     // floor(log2 e) + 1
	zero := e - s
	if zero <= 0 {
		return n
	}
	mask := 1<<zero - 1
	return (n + mask) &^ mask
}

// pad returns len(plain) as 4 bytes, plain, and zeros up to a Padmé size.
func pad(plain []byte) []byte {
	n := Padme(lenSize + len(plain))
	out := make([]byte, n, n+Overhead)
	binary.BigEndian.PutUint32(out, uint32(len(plain)))
	copy(out[lenSize:], plain)
	return out
}

// unpad undoes pad, checking that the padding is zeros.
func unpad(padded []byte) ([]byte, error) {
	if len(padded) < lenSize {
		return nil, ErrOpen
	}
	n := binary.BigEndian.Uint32(padded)
	if uint64(n) > uint64(len(padded)-lenSize) {
		return nil, ErrOpen
	}
	for _, b := range padded[lenSize+int(n):] {
		if b != 0 {
			return nil, ErrOpen
		}
	}
	return padded[lenSize : lenSize+int(n)], nil
}

// SealBlock seals a block whose name (the BLAKE3 of plain) is name.
func (k Keys) SealBlock(plain []byte, name block.Hash) ([]byte, error) {
	if len(plain) > MaxPlain {
		return nil, fmt.Errorf("seal a block of %d bytes: over %d", len(plain), MaxPlain)
	}
	aead, err := chacha20poly1305.NewX(k.block[:])
	if err != nil {
		return nil, err
	}
	padded := pad(plain)
	return aead.Seal(padded[:0], k.blockNonce(name), padded, []byte(aadBlock)), nil
}

// OpenBlock opens a sealed block and checks that its plaintext is the one
// named.
func (k Keys) OpenBlock(sealed []byte, name block.Hash) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.block[:])
	if err != nil {
		return nil, err
	}
	padded, err := aead.Open(nil, k.blockNonce(name), sealed, []byte(aadBlock))
	if err != nil {
		return nil, fmt.Errorf("open block %x: %w", name[:4], ErrOpen)
	}
	plain, err := unpad(padded)
	if err != nil {
		return nil, fmt.Errorf("open block %x: %w", name[:4], err)
	}
	if block.Sum(plain) != name {
		return nil, fmt.Errorf("open block %x: the plaintext is another block: %w", name[:4], ErrOpen)
	}
	return plain, nil
}

// SealedName is the name of a sealed block, what an encrypted member
// checks the bytes against.
func SealedName(sealed []byte) block.Hash { return block.Sum(sealed) }

// SealedSize is the size of the sealed form of a block of n bytes.
func SealedSize(n int) int { return Padme(lenSize+n) + chacha20poly1305.Overhead }

func (k Keys) blockNonce(name block.Hash) []byte {
	h, err := blake3.NewKeyed(k.nonce[:])
	if err != nil {
		panic("seal: blake3 refused a 32-byte key: " + err.Error()) // cannot happen
	}
	h.Write(name[:])
	return h.Sum(nil)[:chacha20poly1305.NonceSizeX]
}

// SealRecord seals a record body for the tree key it sits at: a random
// nonce, then the sealed, padded body.
func (k Keys) SealRecord(body []byte, treeKey [32]byte) ([]byte, error) {
	if len(body) > MaxPlain {
		return nil, fmt.Errorf("seal a record of %d bytes: over %d", len(body), MaxPlain)
	}
	aead, err := chacha20poly1305.NewX(k.record[:])
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+Padme(lenSize+len(body))+chacha20poly1305.Overhead)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, pad(body), treeKey[:]), nil
}

// OpenRecord opens a sealed record body sitting at treeKey.
func (k Keys) OpenRecord(sealed []byte, treeKey [32]byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.record[:])
	if err != nil {
		return nil, err
	}
	if len(sealed) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("open record %x: %d bytes is too short: %w", treeKey[:4], len(sealed), ErrOpen)
	}
	nonce, box := sealed[:chacha20poly1305.NonceSizeX], sealed[chacha20poly1305.NonceSizeX:]
	padded, err := aead.Open(nil, nonce, box, treeKey[:])
	if err != nil {
		return nil, fmt.Errorf("open record %x: %w", treeKey[:4], ErrOpen)
	}
	body, err := unpad(padded)
	if err != nil {
		return nil, fmt.Errorf("open record %x: %w", treeKey[:4], err)
	}
	return body, nil
}
