package record

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/zeebo/blake3"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

// Envelope limits. An envelope larger than MaxEnvelopeSize is refused before
// anything is allocated for it. MaxBlocks bounds one file's block list:
// 2^20 blocks of the 64 KiB average is a 64 GiB file (256 GiB at the 256 KiB
// maximum chunk), and its body, about 35 bytes per block, fits the envelope
// limit.
const (
	MaxEnvelopeSize = 64 << 20
	MaxBlocks       = 1 << 20
	MaxBlockSize    = 16 << 20 // bytes in one block; the chunker's maximum is far below
	MaxVectorLen    = 4096     // devices that ever wrote one path
	MaxTargetLen    = 4096     // bytes in a symlink target
)

// Envelope body kinds (field 1). The kind is covered by the signature.
const (
	kindRecord byte = 1 // body is an encoded Record
	kindSealed byte = 2 // body is ciphertext (encrypted capability); reserved
)

// signDomain separates envelope signatures from anything else the share key
// might ever sign.
const signDomain = "blueshift/envelope/v1\x00"

const (
	keySize = len(merkle.Key{})
	sigSize = ed25519.SignatureSize
)

// Error classes, tested with errors.Is.
var (
	// ErrCorrupt: bytes that are not a valid envelope or record.
	ErrCorrupt = errors.New("corrupt record")
	// ErrTooLarge: an envelope or a part of it exceeds a hard limit.
	ErrTooLarge = errors.New("record too large")
	// ErrBadSignature: the envelope is not signed by the given share key.
	ErrBadSignature = errors.New("record signature does not verify")
	// ErrSealed: the body is ciphertext this holder cannot read.
	ErrSealed = errors.New("record is sealed")
	// ErrInvalidRecord: a record breaks one of the rules Validate checks.
	ErrInvalidRecord = errors.New("invalid record")
)

// Envelope is a record as its writer sealed it. The zero Envelope holds
// nothing; get one from Seal or Open.
type Envelope struct {
	raw  []byte     // the whole encoded envelope, owned, never modified
	kind byte       // kindRecord or kindSealed
	key  merkle.Key // where the record sits in the share's tree
	body []byte     // slice of raw
	sig  []byte     // slice of raw: over the record alone, or over the batch root
	// A batched envelope (batch.go) also has its place in the batch its
	// writer signed at once: n > 1 records, this one at index, and the
	// sibling hashes from its leaf up to the root (slice of raw).
	n, index uint32
	proof    []byte
	leaf     merkle.Leaf // BLAKE3-256 of raw, computed once: a record's leaf is asked for many times
}

// Seal validates r, encodes it and signs it with the share's signing key.
// key is the tree key of r.Path (share.Key.PathKey).
func Seal(r Record, key merkle.Key, priv ed25519.PrivateKey) (Envelope, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Envelope{}, fmt.Errorf("seal record %q: signing key has %d bytes, want %d", r.Path, len(priv), ed25519.PrivateKeySize)
	}
	body, err := encodeRecord(r)
	if err != nil {
		return Envelope{}, fmt.Errorf("seal record %q: %w", r.Path, err)
	}
	return seal(kindRecord, key, body, priv)
}

func seal(kind byte, key merkle.Key, body []byte, priv ed25519.PrivateKey) (Envelope, error) {
	if len(body) > MaxEnvelopeSize-128 {
		return Envelope{}, fmt.Errorf("seal record: body of %d bytes: %w (limit %d)", len(body), ErrTooLarge, MaxEnvelopeSize-128)
	}
	sig := ed25519.Sign(priv, signedMessage(kind, key, body))
	raw, bodyAt := appendHead(make([]byte, 0, envelopeSize(len(body))), kind, key, body)
	raw = protowire.AppendTag(raw, 4, protowire.BytesType)
	raw = protowire.AppendBytes(raw, sig)
	return Envelope{
		raw:  raw,
		kind: kind,
		key:  key,
		body: raw[bodyAt : bodyAt+len(body) : bodyAt+len(body)],
		sig:  raw[len(raw)-sigSize:],
		leaf: leafOf(raw),
	}, nil
}

// Open decodes an envelope from raw, which it copies. It accepts only the
// canonical encoding, so equal signed contents always mean equal bytes. It
// does not check the signature (Verify) or decode the body (Record).
func Open(raw []byte) (Envelope, error) {
	if len(raw) > MaxEnvelopeSize {
		return Envelope{}, fmt.Errorf("open record envelope of %d bytes: %w (limit %d)", len(raw), ErrTooLarge, MaxEnvelopeSize)
	}
	e := Envelope{raw: append([]byte(nil), raw...)}
	d := decoder{buf: e.raw}
	e.kind = byte(d.varint(1, uint64(kindSealed)))
	if e.kind == 0 && d.err == nil {
		d.fail("body kind 0")
	}
	key := d.bytes(2, keySize, keySize)
	e.body = d.bytes(3, 1, MaxEnvelopeSize)
	if d.next() == batchField {
		e.n, e.index, e.proof = d.batch()
	}
	e.sig = d.bytes(sigField(e.n), sigSize, sigSize)
	if d.err == nil && len(d.buf) > 0 {
		d.fail(fmt.Sprintf("%d bytes after the signature", len(d.buf)))
	}
	if d.err != nil {
		return Envelope{}, fmt.Errorf("open record envelope: %w", d.err)
	}
	copy(e.key[:], key)
	e.leaf = leafOf(e.raw)
	return e, nil
}

// Verify checks that the envelope is signed by the share's public key:
// alone, or (a batched envelope) as a leaf of a batch whose root is signed.
func (e Envelope) Verify(pub ed25519.PublicKey) error {
	return e.verify(pub, nil)
}

func (e Envelope) verify(pub ed25519.PublicKey, roots *Roots) error {
	if e.raw == nil {
		return fmt.Errorf("verify record envelope: empty envelope: %w", ErrCorrupt)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify record envelope %x: public key of %d bytes: %w", e.key[:4], len(pub), ErrBadSignature)
	}
	if e.n > 0 {
		return e.verifyBatched(pub, roots)
	}
	if !ed25519.Verify(pub, signedMessage(e.kind, e.key, e.body), e.sig) {
		return fmt.Errorf("verify record envelope %x: %w", e.key[:4], ErrBadSignature)
	}
	return nil
}

// Record decodes and validates the body. It fails with ErrSealed for a body
// this package cannot read, and with ErrCorrupt for anything else wrong.
func (e Envelope) Record() (Record, error) {
	switch {
	case e.raw == nil:
		return Record{}, fmt.Errorf("decode record: empty envelope: %w", ErrCorrupt)
	case e.kind == kindSealed:
		return Record{}, fmt.Errorf("decode record %x: %w", e.key[:4], ErrSealed)
	}
	r, err := decodeRecord(e.body)
	if err != nil {
		return Record{}, fmt.Errorf("decode record %x: %w", e.key[:4], err)
	}
	return r, nil
}

// Sealed reports whether the body is ciphertext (an encrypted-capability
// envelope) rather than a readable record.
func (e Envelope) Sealed() bool { return e.kind == kindSealed }

// Bytes returns the envelope as stored and sent. Callers must not modify it.
func (e Envelope) Bytes() []byte { return e.raw }

// Key returns the record's place in the share's Merkle tree.
func (e Envelope) Key() merkle.Key { return e.key }

// Leaf returns the envelope's Merkle leaf: BLAKE3-256 of Bytes.
func (e Envelope) Leaf() merkle.Leaf {
	if e.raw == nil {
		return leafOf(nil)
	}
	return e.leaf
}

func leafOf(raw []byte) merkle.Leaf { return merkle.Leaf(blake3.Sum256(raw)) }

// appendHead appends the fields every envelope starts with (kind, tree key,
// body) to raw, and says where the body begins in it.
func appendHead(raw []byte, kind byte, key merkle.Key, body []byte) (_ []byte, bodyAt int) {
	raw = protowire.AppendTag(raw, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(kind))
	raw = protowire.AppendTag(raw, 2, protowire.BytesType)
	raw = protowire.AppendBytes(raw, key[:])
	raw = protowire.AppendTag(raw, 3, protowire.BytesType)
	raw = protowire.AppendVarint(raw, uint64(len(body)))
	bodyAt = len(raw)
	return append(raw, body...), bodyAt
}

// signedMessage is what the share key signs: domain || kind || key || body.
func signedMessage(kind byte, key merkle.Key, body []byte) []byte {
	m := make([]byte, 0, len(signDomain)+1+keySize+len(body))
	m = append(m, signDomain...)
	m = append(m, kind)
	m = append(m, key[:]...)
	return append(m, body...)
}

// envelopeSize is the encoded size of an envelope with a body of n bytes.
func envelopeSize(n int) int {
	return 2 + (2 + keySize) + (1 + protowire.SizeVarint(uint64(n)) + n) + (2 + sigSize)
}

// decoder reads the canonical envelope: each expected field once, in order,
// with minimal varints. It keeps the first error and then does nothing.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(why string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s: %w", why, ErrCorrupt)
	}
}

// tag consumes the tag of field num with wire type typ.
func (d *decoder) tag(num protowire.Number, typ protowire.Type) bool {
	if d.err != nil {
		return false
	}
	n, t, l := protowire.ConsumeTag(d.buf)
	switch {
	case l < 0:
		d.fail(fmt.Sprintf("field %d: %v", num, protowire.ParseError(l)))
		return false
	case n != num || t != typ:
		d.fail(fmt.Sprintf("want field %d type %d, found field %d type %d", num, typ, n, t))
		return false
	case l != protowire.SizeTag(n):
		d.fail(fmt.Sprintf("field %d: non-minimal tag", num))
		return false
	}
	d.buf = d.buf[l:]
	return true
}

func (d *decoder) varintBody(num protowire.Number) (uint64, bool) {
	v, l := protowire.ConsumeVarint(d.buf)
	switch {
	case l < 0:
		d.fail(fmt.Sprintf("field %d: %v", num, protowire.ParseError(l)))
		return 0, false
	case l != protowire.SizeVarint(v):
		d.fail(fmt.Sprintf("field %d: non-minimal varint", num))
		return 0, false
	}
	d.buf = d.buf[l:]
	return v, true
}

// varint reads field num as a varint no larger than limit.
func (d *decoder) varint(num protowire.Number, limit uint64) uint64 {
	if !d.tag(num, protowire.VarintType) {
		return 0
	}
	v, ok := d.varintBody(num)
	if ok && v > limit {
		d.fail(fmt.Sprintf("field %d: value %d above %d", num, v, limit))
		return 0
	}
	return v
}

// bytes reads field num as a length-delimited field of lo..hi bytes,
// returning a slice of the input.
func (d *decoder) bytes(num protowire.Number, lo, hi int) []byte {
	if !d.tag(num, protowire.BytesType) {
		return nil
	}
	n, ok := d.varintBody(num)
	if !ok {
		return nil
	}
	switch {
	case n < uint64(lo) || n > uint64(hi):
		d.fail(fmt.Sprintf("field %d: %d bytes, want %d..%d", num, n, lo, hi))
		return nil
	case n > uint64(len(d.buf)):
		d.fail(fmt.Sprintf("field %d: %d bytes, only %d left", num, n, len(d.buf)))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}
