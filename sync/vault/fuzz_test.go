package vault

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
)

// FuzzItem: any bytes decode to an item or an error, never a panic; what
// decodes re-encodes to the same bytes, and opening it with a key fails
// cleanly unless it was sealed with that key.
func FuzzItem(f *testing.F) {
	var rk [32]byte
	keys := seal.NewKeys(rk)
	key := share.FromSecret(share.Secret{1})
	env, err := key.Seal(record.Record{Path: "a/b.txt", Kind: record.Dir, Mode: 0o755, ModifiedBy: 1, Version: record.Vector{}.Update(1, 1)})
	if err != nil {
		f.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	it, err := SealItem(key.ID(), keys, 0, 1, keys.Slot("a/b.txt"), keys.Tag(env.Bytes()), Plain{Envelope: env}, priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(it.Bytes())
	listed, err := SealItem(key.ID(), keys, 0, 2, keys.Slot("a/b.txt"), keys.Tag(env.Bytes()), Plain{Envelope: env, Names: make([]block.Hash, 3)}, priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(listed.Bytes())
	v1, err := sealItem(itemVersion1, key.ID(), keys, 0, 1, keys.Slot("a/b.txt"), keys.Tag(env.Bytes()), Plain{Envelope: env, Names: make([]block.Hash, 2)}, priv)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(v1.Bytes())
	f.Add([]byte{1})
	f.Add(bytes.Repeat([]byte{1}, itemHead+itemSig))
	f.Fuzz(func(t *testing.T, b []byte) {
		it, err := DecodeItem(b)
		if err != nil {
			return
		}
		if !bytes.Equal(it.Bytes(), b) {
			t.Fatal("decoded item does not keep its bytes")
		}
		_ = it.Verify(key.ID())
		n := 0
		it.Blocks(func(block.Hash) { n++ })
		if p, err := it.Open(keys); err == nil && p.Envelope.Bytes() == nil {
			t.Fatal("opened to an empty envelope")
		} else if err == nil && it.ListsBlocks() && len(p.Names) != n {
			t.Fatalf("opened to %d names, the item lists %d", len(p.Names), n)
		}
	})
}
