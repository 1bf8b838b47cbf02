package members

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"
)

// FuzzDecode: no input panics; what decodes encodes back to bytes that
// decode to the same entry, and its hash is its body's.
func FuzzDecode(f *testing.F) {
	_, sk, _ := ed25519.GenerateKey(bytes.NewReader(make([]byte, 64)))
	d := DeviceOf(sk.Public().(ed25519.PublicKey))
	for _, b := range []Body{
		{Kind: KindGenesis, Author: d, Members: []Member{{d, ReadWrite}, {Device{2}, ReadOnly}}, Migrated: true},
		{Kind: KindAdd, Seq: 1, Prev: Hash{1}, Author: d, Member: Member{Device{3}, Encrypted}},
		{Kind: KindRemove, Seq: 2, Prev: Hash{2}, Author: d, Member: Member{Device: Device{3}}, Epoch: 1, Keys: []SealedKey{{Device{4}, []byte("box")}}},
		{Kind: KindOwners, Seq: 3, Prev: Hash{3}, Author: d, Owners: []Device{d}, K: 1},
	} {
		b.Time = time.Unix(1_800_000_000, 0)
		e, err := NewEntry(b)
		if err != nil {
			f.Fatal(err)
		}
		e.Sign(sk)
		f.Add(e.Encode())
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Decode(e.Encode())
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if again.Hash() != e.Hash() || len(again.Sigs) != len(e.Sigs) {
			t.Fatalf("round trip changed the entry")
		}
		_ = e.Signers()
		s := NewState(e.Share, ed25519.PublicKey(make([]byte, 32)))
		_ = s.Check(e)
	})
}
