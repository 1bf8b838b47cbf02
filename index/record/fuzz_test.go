package record

import (
	"bytes"
	"reflect"
	"testing"
)

// Seeds live in testdata/fuzz/FuzzOpen and testdata/fuzz/FuzzRecord: sealed
// envelopes and bodies of every record kind, plus a sealed-kind envelope.

// FuzzOpen: no input panics Open or the methods of what it returns; an
// accepted envelope keeps its exact bytes, reopens to the same thing, and a
// decodable body survives a re-encode.
func FuzzOpen(f *testing.F) {
	for _, r := range testRecords() {
		e, err := Seal(r, testKey, testPriv)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Bytes())
	}
	_, _, batch := testBatch(f, 5)
	for _, e := range batch {
		f.Add(e.Bytes())
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := Open(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Bytes(), raw) {
			t.Fatalf("Open changed the bytes")
		}
		again, err := Open(e.Bytes())
		if err != nil || again.Key() != e.Key() || again.Leaf() != e.Leaf() {
			t.Fatalf("reopen: %v", err)
		}
		_ = e.Verify(testPub)
		_ = NewRoots(2).Verify(e, testPub)
		_, _ = e.Root()
		if r, err := e.Record(); err == nil {
			checkRecordRoundTrip(t, r)
		}
	})
}

// FuzzRecord: no body panics the record decoder; an accepted record is
// valid and survives encode + decode unchanged.
func FuzzRecord(f *testing.F) {
	for _, r := range testRecords() {
		b, err := encodeRecord(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeRecord(body)
		if err != nil {
			return
		}
		checkRecordRoundTrip(t, r)
	})
}

func checkRecordRoundTrip(t *testing.T, r Record) {
	t.Helper()
	if err := r.Validate(); err != nil {
		t.Fatalf("decoder returned an invalid record: %v", err)
	}
	b, err := encodeRecord(r)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	r2, err := decodeRecord(b)
	if err != nil {
		t.Fatalf("decode re-encoded: %v", err)
	}
	if !reflect.DeepEqual(r, r2) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", r2, r)
	}
}

// FuzzJoinBatch: no trimmed records or hashes panic JoinBatch; whatever it
// rebuilds opens as the same bytes.
func FuzzJoinBatch(f *testing.F) {
	_, _, envs := testBatch(f, 7)
	a, _ := envs[1].Trimmed()
	b, _ := envs[5].Trimmed()
	hashes, err := SplitBatch([]Envelope{envs[1], envs[5]})
	if err != nil {
		f.Fatal(err)
	}
	var flat []byte
	for _, h := range hashes {
		flat = append(flat, h[:]...)
	}
	f.Add(a, b, flat)
	f.Fuzz(func(t *testing.T, a, b, flat []byte) {
		var hashes [][32]byte
		for len(flat) >= 32 {
			hashes = append(hashes, [32]byte(flat[:32]))
			flat = flat[32:]
		}
		got, err := JoinBatch([][]byte{a, b}, envs[0].Signature(), hashes)
		if err != nil {
			return
		}
		for _, e := range got {
			o, err := Open(e.Bytes())
			if err != nil || !bytes.Equal(o.Bytes(), e.Bytes()) {
				t.Fatalf("a joined envelope does not reopen: %v", err)
			}
			_ = e.Verify(testPub)
		}
	})
}
