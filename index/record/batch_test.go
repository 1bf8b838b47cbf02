package record

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/blueshift-sync/blueshift/index/merkle"
)

// testBatch seals n distinct records together.
func testBatch(t testing.TB, n int) ([]Record, []merkle.Key, []Envelope) {
	t.Helper()
	rs := make([]Record, n)
	keys := make([]merkle.Key, n)
	for i := range rs {
		rs[i] = fileRecord(i%3, 100)
		rs[i].Path = Path(fmt.Sprintf("dir/file-%03d", i))
		keys[i] = merkle.Key{byte(i), byte(i >> 8), 0xBB}
	}
	envs, err := SealBatch(rs, keys, testPriv)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != n {
		t.Fatalf("SealBatch returned %d envelopes for %d records", len(envs), n)
	}
	return rs, keys, envs
}

// Every record of batches of every size up to 40 opens alone from its bytes
// (as a relay or a vault hands it over), verifies under the share key, and
// holds its record; the proof has the depth the batch size implies.
func TestBatchEachRecordVerifiesAlone(t *testing.T) {
	for n := 1; n <= 40; n++ {
		rs, keys, envs := testBatch(t, n)
		var roots [][32]byte
		for i, e := range envs {
			o, err := Open(e.Bytes())
			if err != nil {
				t.Fatalf("batch of %d, record %d: open: %v", n, i, err)
			}
			if err := o.Verify(testPub); err != nil {
				t.Fatalf("batch of %d, record %d: %v", n, i, err)
			}
			r, err := o.Record()
			if err != nil || r.Path != rs[i].Path || o.Key() != keys[i] {
				t.Fatalf("batch of %d, record %d: record %+v, %v", n, i, r, err)
			}
			bn, bi := o.Batch()
			if n == 1 {
				if bn != 0 || len(o.Bytes()) != envelopeSize(len(o.body)) {
					t.Fatalf("a batch of one is not sealed as a single envelope")
				}
				continue
			}
			if bn != n || bi != i || len(o.proof) != 32*proofDepth(uint32(i), uint32(n)) {
				t.Fatalf("batch of %d, record %d: Batch() = %d, %d; proof %d bytes", n, i, bn, bi, len(o.proof))
			}
			root, _ := o.Root()
			roots = append(roots, root)
		}
		for _, r := range roots {
			if r != roots[0] {
				t.Fatalf("batch of %d: records disagree on the root", n)
			}
		}
	}
}

// Sealing the same records again gives the same bytes (Ed25519 is
// deterministic): two devices holding one batch hold equal envelopes.
func TestBatchDeterministic(t *testing.T) {
	_, _, a := testBatch(t, 17)
	_, _, b := testBatch(t, 17)
	for i := range a {
		if !bytes.Equal(a[i].Bytes(), b[i].Bytes()) || a[i].Leaf() != b[i].Leaf() {
			t.Fatalf("record %d sealed twice differs", i)
		}
	}
}

// mutate re-encodes a batched envelope with one part changed.
func mutate(e Envelope, fn func(kind *byte, key *merkle.Key, body *[]byte, n, index *uint32, proof, sig *[]byte)) []byte {
	kind, key, body, n, index := e.kind, e.key, append([]byte(nil), e.body...), e.n, e.index
	proof, sig := append([]byte(nil), e.proof...), append([]byte(nil), e.sig...)
	fn(&kind, &key, &body, &n, &index, &proof, &sig)
	raw := protowire.AppendTag(nil, 1, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(kind))
	raw = protowire.AppendTag(raw, 2, protowire.BytesType)
	raw = protowire.AppendBytes(raw, key[:])
	raw = protowire.AppendTag(raw, 3, protowire.BytesType)
	raw = protowire.AppendBytes(raw, body)
	raw = protowire.AppendTag(raw, batchField, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(n))
	raw = protowire.AppendTag(raw, indexField, protowire.VarintType)
	raw = protowire.AppendVarint(raw, uint64(index))
	raw = protowire.AppendTag(raw, proofField, protowire.BytesType)
	raw = protowire.AppendBytes(raw, proof)
	raw = protowire.AppendTag(raw, batchSigField, protowire.BytesType)
	return protowire.AppendBytes(raw, sig)
}

// Every way of presenting a record as part of a batch it was not signed in
// is refused, by Open (a malformed proof) or by Verify, with and without a
// cache that has seen the real root verified.
func TestBatchForgeriesRefused(t *testing.T) {
	_, _, envs := testBatch(t, 13)
	e := envs[5]
	if !bytes.Equal(mutate(e, func(*byte, *merkle.Key, *[]byte, *uint32, *uint32, *[]byte, *[]byte) {}), e.Bytes()) {
		t.Fatal("mutate does not re-encode the envelope as sealed")
	}
	otherPriv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	otherEnvs, err := SealBatch([]Record{fileRecord(1, 5), fileRecord(2, 5)}, []merkle.Key{{1}, {2}}, otherPriv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		raw    []byte
		opens  bool
		target error
	}{
		{"forged proof", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, _ *uint32, p, _ *[]byte) { (*p)[40] ^= 1 }), true, ErrBadSignature},
		{"another key's record under this proof", mutate(e, func(_ *byte, k *merkle.Key, _ *[]byte, _, _ *uint32, _, _ *[]byte) { k[0] ^= 0x80 }), true, ErrBadSignature},
		{"another body under this proof", mutate(e, func(_ *byte, _ *merkle.Key, b *[]byte, _, _ *uint32, _, _ *[]byte) { *b = envs[6].body }), true, ErrBadSignature},
		{"reordered: another index", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, i *uint32, _, _ *[]byte) { *i = 4 }), true, ErrBadSignature},
		{"reordered: proofs swapped", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, _ *uint32, p, _ *[]byte) {
			*p = append([]byte(nil), envs[4].proof...)
		}), true, ErrBadSignature},
		{"another batch size", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, n, _ *uint32, _, _ *[]byte) { *n = 14 }), true, ErrBadSignature},
		{"truncated proof", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, _ *uint32, p, _ *[]byte) { *p = (*p)[:len(*p)-32] }), false, ErrCorrupt},
		{"proof one hash too long", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, _ *uint32, p, _ *[]byte) {
			*p = append(*p, make([]byte, 32)...)
		}), false, ErrCorrupt},
		{"index past the batch", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, i *uint32, _, _ *[]byte) { *i = 13 }), false, ErrCorrupt},
		{"batch of one", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, n, i *uint32, p, _ *[]byte) { *n, *i, *p = 1, 0, nil }), false, ErrCorrupt},
		{"batch over the limit", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, n, _ *uint32, _, _ *[]byte) { *n = MaxBatch + 1 }), false, ErrCorrupt},
		{"another batch's signature", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, _ *uint32, _, s *[]byte) { *s = otherEnvs[0].sig }), true, ErrBadSignature},
		{"a flipped signature bit", mutate(e, func(_ *byte, _ *merkle.Key, _ *[]byte, _, _ *uint32, _, s *[]byte) { (*s)[0] ^= 1 }), true, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := Open(tc.raw)
			if !tc.opens {
				if !errors.Is(err, tc.target) {
					t.Fatalf("Open = %v, want %v", err, tc.target)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := o.Verify(testPub); !errors.Is(err, tc.target) {
				t.Fatalf("Verify = %v, want %v", err, tc.target)
			}
			roots := NewRoots(8)
			for _, ok := range envs {
				if err := roots.Verify(ok, testPub); err != nil {
					t.Fatal(err)
				}
			}
			if err := roots.Verify(o, testPub); !errors.Is(err, tc.target) {
				t.Fatalf("Verify with the batch's root cached = %v, want %v", err, tc.target)
			}
		})
	}
	// A batch signed by another key verifies under that key only.
	if err := otherEnvs[1].Verify(testPub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a root signed by another key: %v", err)
	}
	if err := NewRoots(4).Verify(otherEnvs[1], otherPriv.Public().(ed25519.PublicKey)); err != nil {
		t.Fatal(err)
	}
}

// The cache is keyed by the public key too: a root verified under one
// share's key is not taken as verified under another's.
func TestRootsKeyedByPublicKey(t *testing.T) {
	_, _, envs := testBatch(t, 4)
	roots := NewRoots(4)
	if err := roots.Verify(envs[0], testPub); err != nil {
		t.Fatal(err)
	}
	otherPub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	if err := roots.Verify(envs[1], otherPub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("root cached under another key: %v", err)
	}
}

func BenchmarkVerifyBatch32(b *testing.B) {
	_, _, envs := testBatch(b, 32)
	b.ReportAllocs()
	for b.Loop() {
		roots := NewRoots(4)
		for _, e := range envs {
			if err := roots.Verify(e, testPub); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Any subset of a batch, trimmed and sent with the hashes SplitBatch gives,
// joins back into the exact envelopes, which verify; the whole batch needs
// no hash at all.
func TestSplitJoinBatch(t *testing.T) {
	for _, n := range []int{2, 3, 13, 32} {
		_, _, envs := testBatch(t, n)
		for mask := 1; mask < 1<<min(n, 8); mask += 1 + mask/3 {
			var sub []Envelope
			var trimmed [][]byte
			for i := n - 1; i >= 0; i-- { // any order
				if i >= 8 || mask&(1<<i) != 0 {
					sub = append(sub, envs[i])
					tr, ok := envs[i].Trimmed()
					if !ok || !bytes.HasPrefix(envs[i].Bytes(), tr) || len(tr) >= len(envs[i].Bytes())-sigSize {
						t.Fatalf("Trimmed of a batched envelope: %d bytes of %d", len(tr), len(envs[i].Bytes()))
					}
					trimmed = append(trimmed, tr)
				}
			}
			hashes, err := SplitBatch(sub)
			if err != nil {
				t.Fatal(err)
			}
			if len(sub) == n && len(hashes) != 0 {
				t.Fatalf("a whole batch of %d needs %d hashes", n, len(hashes))
			}
			got, err := JoinBatch(trimmed, envs[0].Signature(), hashes)
			if err != nil {
				t.Fatalf("batch of %d, subset %b: %v", n, mask, err)
			}
			roots := NewRoots(2)
			for i := range got {
				if !bytes.Equal(got[i].Bytes(), sub[i].Bytes()) {
					t.Fatalf("batch of %d, subset %b: record %d rebuilt differently", n, mask, i)
				}
				if err := roots.Verify(got[i], testPub); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// A join with a wrong hash rebuilds envelopes that do not verify; one
// with a hash too many or too few, records of two batch sizes, or an index
// twice is refused.
func TestJoinBatchRefusesBadInput(t *testing.T) {
	_, _, envs := testBatch(t, 13)
	sub := []Envelope{envs[2], envs[9]}
	trimmed := make([][]byte, len(sub))
	for i, e := range sub {
		trimmed[i], _ = e.Trimmed()
	}
	hashes, err := SplitBatch(sub)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([][32]byte(nil), hashes...)
	bad[1][3] ^= 1
	got, err := JoinBatch(trimmed, envs[0].Signature(), bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := got[0].Verify(testPub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("a rebuilt envelope with a forged hash: %v", err)
	}
	_, _, other := testBatch(t, 14)
	otherTrim, _ := other[0].Trimmed()
	for name, tc := range map[string]struct {
		trimmed [][]byte
		hashes  [][32]byte
	}{
		"a hash too many":    {trimmed, append(append([][32]byte(nil), hashes...), [32]byte{})},
		"a hash too few":     {trimmed, hashes[1:]},
		"index twice":        {[][]byte{trimmed[0], trimmed[0]}, hashes},
		"two batch sizes":    {[][]byte{trimmed[0], otherTrim}, hashes},
		"a full envelope":    {[][]byte{sub[0].Bytes(), trimmed[1]}, hashes},
		"no records":         {nil, nil},
		"a truncated record": {[][]byte{trimmed[0][:len(trimmed[0])-1], trimmed[1]}, hashes},
	} {
		if _, err := JoinBatch(tc.trimmed, envs[0].Signature(), tc.hashes); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := SplitBatch([]Envelope{envs[1], other[2]}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("split of two batches: %v", err)
	}
}
