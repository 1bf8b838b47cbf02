package vault

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Item layout, version 2 (all integers big-endian):
//
//	+---------+----------+-----------+--------+----------+----------+
//	| 1: v=2  | 32: slot | 32: pub   | 8: seq | 8: epoch | 32: tag  |
//	+---------+----------+-----------+--------+----------+----------+
//	| 4: k    | k × 32: sealed block names, in block order          |
//	+---------+------------------------------------------------------+
//	| 4: n    | n: sealed body (seal.SealRecord, slot as its data)  |
//	+---------+------------------------------------------------------+
//	| 64: Ed25519 signature of pub over itemDomain, share ID, all   |
//	|     the bytes before it                                        |
//	+----------------------------------------------------------------+
//
// The sealed body opens to | 4: m | m: record envelope |. The sealed names
// are outside it so that the encrypted member can tell which of the blocks
// it keeps an item still needs (Store.Collect): it sees those names anyway
// as it stores them, and the pusher's signature covers them.
//
// Version 1 (still read, no longer written) has no names outside: its
// head ends at the tag, then | 4: n | body | signature |, and its body
// opens to | 4: m | m: record envelope | 4: k | k × 32: sealed names |.
const (
	itemVersion1 = 1
	itemVersion  = 2
	itemHead     = 1 + 32 + 32 + 8 + 8 + 32 + 4 // through the first count
	itemSig      = ed25519.SignatureSize
	itemDomain   = "blueshift/vault-item/v1\x00"
)

// Item is one sealed record as an encrypted member keeps it. The zero Item
// holds nothing; get one from SealItem or DecodeItem.
type Item struct {
	raw   []byte // the whole encoding, owned, never modified
	slot  [32]byte
	pub   ed25519.PublicKey // slice of raw
	seq   uint64
	epoch uint64
	tag   [32]byte
	names []byte // slice of raw: k × 32 sealed names (version 2); nil in version 1
	body  []byte // slice of raw
}

// Plain is what an item holds: a record envelope (signed by the share key,
// as the engine stores it) and the sealed name of each of its record's
// blocks, in block order.
type Plain struct {
	Envelope record.Envelope
	Names    []block.Hash
}

// SealItem seals p for share id under keys (the epoch's), at slot, as the
// seq'th item of the pusher whose device key is priv; tag is
// Keys.Tag of the envelope under the share's base keys. The item is of the
// current version: its sealed names are outside the sealed body.
func SealItem(id share.ID, keys seal.Keys, epoch, seq uint64, slot, tag [32]byte, p Plain, priv ed25519.PrivateKey) (Item, error) {
	return sealItem(itemVersion, id, keys, epoch, seq, slot, tag, p, priv)
}

func sealItem(version byte, id share.ID, keys seal.Keys, epoch, seq uint64, slot, tag [32]byte, p Plain, priv ed25519.PrivateKey) (Item, error) {
	env := p.Envelope.Bytes()
	var names []byte
	names = binary.BigEndian.AppendUint32(names, uint32(len(p.Names)))
	for _, n := range p.Names {
		names = append(names, n[:]...)
	}
	plain := make([]byte, 0, 8+len(env)+len(names))
	plain = binary.BigEndian.AppendUint32(plain, uint32(len(env)))
	plain = append(plain, env...)
	if version == itemVersion1 {
		plain = append(plain, names...)
	}
	body, err := keys.SealRecord(plain, slot)
	if err != nil {
		return Item{}, err
	}
	raw := make([]byte, 0, itemHead+len(names)+len(body)+itemSig)
	raw = append(raw, version)
	raw = append(raw, slot[:]...)
	raw = append(raw, priv.Public().(ed25519.PublicKey)...)
	raw = binary.BigEndian.AppendUint64(raw, seq)
	raw = binary.BigEndian.AppendUint64(raw, epoch)
	raw = append(raw, tag[:]...)
	if version != itemVersion1 {
		raw = append(raw, names...)
	}
	raw = binary.BigEndian.AppendUint32(raw, uint32(len(body)))
	raw = append(raw, body...)
	raw = append(raw, ed25519.Sign(priv, signed(id, raw))...)
	if len(raw) > wire.MaxVaultItemSize {
		return Item{}, fmt.Errorf("seal record %x for an encrypted member: %d bytes, limit %d", slot[:4], len(raw), wire.MaxVaultItemSize)
	}
	return DecodeItem(raw)
}

// DecodeItem decodes an item of either version from raw, which it copies.
// It checks the layout and the limits, not the signature (Verify).
func DecodeItem(raw []byte) (Item, error) {
	if len(raw) > wire.MaxVaultItemSize {
		return Item{}, fmt.Errorf("decode sealed item of %d bytes: %w (limit %d)", len(raw), ErrCorrupt, wire.MaxVaultItemSize)
	}
	if len(raw) < itemHead+itemSig || (raw[0] != itemVersion && raw[0] != itemVersion1) {
		return Item{}, fmt.Errorf("decode sealed item: %d bytes or version %d: %w", len(raw), firstByte(raw), ErrCorrupt)
	}
	it := Item{raw: append([]byte(nil), raw...)}
	r := it.raw[1:]
	copy(it.slot[:], r[:32])
	it.pub = ed25519.PublicKey(r[32:64:64])
	it.seq = binary.BigEndian.Uint64(r[64:])
	it.epoch = binary.BigEndian.Uint64(r[72:])
	copy(it.tag[:], r[80:112])
	at := itemHead // past the body's length (version 1) or the names' count
	if it.raw[0] == itemVersion {
		k := binary.BigEndian.Uint32(it.raw[at-4:])
		if k > record.MaxBlocks || uint64(k)*32+4 > uint64(len(it.raw)-at-itemSig) {
			return Item{}, fmt.Errorf("decode sealed item: %d sealed names in %d bytes: %w", k, len(raw), ErrCorrupt)
		}
		it.names = it.raw[at : at+32*int(k) : at+32*int(k)]
		at += 32*int(k) + 4
	}
	n := binary.BigEndian.Uint32(it.raw[at-4:])
	if uint64(n) != uint64(len(it.raw)-at-itemSig) {
		return Item{}, fmt.Errorf("decode sealed item: body of %d bytes in %d: %w", n, len(raw), ErrCorrupt)
	}
	it.body = it.raw[at : at+int(n) : at+int(n)]
	return it, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// Verify checks the pusher's signature for share id.
func (it Item) Verify(id share.ID) error {
	if it.raw == nil {
		return fmt.Errorf("verify sealed item: empty: %w", ErrCorrupt)
	}
	at := len(it.raw) - itemSig
	if !ed25519.Verify(it.pub, signed(id, it.raw[:at]), it.raw[at:]) {
		return fmt.Errorf("verify sealed item %x: %w", it.slot[:4], ErrBadSignature)
	}
	return nil
}

// Open opens the sealed body with the epoch's keys and decodes it. It does
// not check the envelope's signature: the engine does, as for any record.
func (it Item) Open(keys seal.Keys) (Plain, error) {
	b, err := keys.OpenRecord(it.body, it.slot)
	if err != nil {
		return Plain{}, err
	}
	bad := func(why string) (Plain, error) {
		return Plain{}, fmt.Errorf("open sealed item %x: %s: %w", it.slot[:4], why, ErrCorrupt)
	}
	if len(b) < 4 {
		return bad("no envelope length")
	}
	m := binary.BigEndian.Uint32(b)
	b = b[4:]
	if uint64(m) > uint64(len(b)) {
		return bad("envelope overruns the body")
	}
	env, err := record.Open(b[:m])
	if err != nil {
		return Plain{}, fmt.Errorf("open sealed item %x: %w", it.slot[:4], err)
	}
	b = b[m:]
	names := it.names
	if it.raw[0] == itemVersion1 {
		if len(b) < 4 {
			return bad("no block count")
		}
		k := binary.BigEndian.Uint32(b)
		b = b[4:]
		if k > record.MaxBlocks || uint64(len(b)) != 32*uint64(k) {
			return bad(fmt.Sprintf("%d block names in %d bytes", k, len(b)))
		}
		names = b
	} else if len(b) != 0 {
		return bad(fmt.Sprintf("%d bytes after the envelope", len(b)))
	}
	p := Plain{Envelope: env, Names: make([]block.Hash, len(names)/32)}
	for i := range p.Names {
		copy(p.Names[i][:], names[32*i:])
	}
	return p, nil
}

// ListsBlocks reports whether the item names its sealed blocks outside its
// sealed body (version 2), so the member can tell which blocks it needs.
func (it Item) ListsBlocks() bool { return it.raw != nil && it.raw[0] != itemVersion1 }

// Blocks calls f with each sealed block name the item lists (none for a
// version 1 item: see ListsBlocks), repeats included, in block order.
func (it Item) Blocks(f func(block.Hash)) {
	for i := 0; i+32 <= len(it.names); i += 32 {
		f(block.Hash(it.names[i : i+32]))
	}
}

// Bytes is the item as stored and sent. Callers must not modify it.
func (it Item) Bytes() []byte { return it.raw }

// Slot is where the item sits (seal.Keys.Slot of its record's path).
func (it Item) Slot() [32]byte { return it.slot }

// Pusher is the device that sealed and signed the item.
func (it Item) Pusher() identity.DeviceID { return identity.FromPublicKey(it.pub) }

// Seq orders one pusher's items at one slot: a larger one replaces.
func (it Item) Seq() uint64 { return it.seq }

// Epoch is the key epoch the body is sealed under.
func (it Item) Epoch() uint64 { return it.epoch }

// Tag names the envelope inside to readers (seal.Keys.Tag).
func (it Item) Tag() [32]byte { return it.tag }

// Key is the item's key in a store and on the wire: slot, then pusher.
func (it Item) Key() [wire.VaultKeySize]byte {
	var k [wire.VaultKeySize]byte
	copy(k[:], it.slot[:])
	p := it.Pusher()
	copy(k[32:], p[:])
	return k
}

// signed is what a pusher signs: the domain, the share, the item's bytes.
func signed(id share.ID, b []byte) []byte {
	m := make([]byte, 0, len(itemDomain)+len(id)+len(b))
	m = append(m, itemDomain...)
	m = append(m, id[:]...)
	return append(m, b...)
}
