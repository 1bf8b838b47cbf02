package record

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record/recordpb"
)

var (
	testPriv = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	testPub  = testPriv.Public().(ed25519.PublicKey)
	testKey  = merkle.Key{0xAA, 1, 2, 3}
)

// fileRecord returns a valid file record of n blocks of size each.
func fileRecord(n int, size uint32) Record {
	r := Record{
		Path:       "docs/report.txt",
		Kind:       File,
		Mode:       0o644,
		ModTime:    time.Unix(1767225600, 123456789).UTC(),
		FileHash:   block.Sum([]byte("file")),
		Version:    Vector{{Device: 0x0102030405060708, Value: 1767225600}, {Device: 0xF0F0F0F0F0F0F0F0, Value: 3}},
		ModifiedBy: 0x0102030405060708,
	}
	for i := range n {
		r.Blocks = append(r.Blocks, BlockRef{Hash: block.Sum([]byte{byte(i), byte(i >> 8), byte(i >> 16)}), Size: size})
		r.Size += int64(size)
	}
	return r
}

func testRecords() map[string]Record {
	tomb := fileRecord(0, 0)
	tomb.Deleted, tomb.Mode, tomb.FileHash = true, 0, block.Hash{}
	dir := fileRecord(0, 0)
	dir.Kind, dir.Path, dir.Mode, dir.FileHash = Dir, "docs", 0o755, block.Hash{}
	link := dir
	link.Kind, link.Path, link.Target = Symlink, "docs/latest", "../elsewhere/report.txt"
	empty := fileRecord(0, 0)
	return map[string]Record{
		"file":      fileRecord(3, 1000),
		"empty":     empty,
		"dir":       dir,
		"symlink":   link,
		"tombstone": tomb,
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	for name, r := range testRecords() {
		e, err := Seal(r, testKey, testPriv)
		if err != nil {
			t.Fatalf("%s: Seal: %v", name, err)
		}
		o, err := Open(e.Bytes())
		if err != nil {
			t.Fatalf("%s: Open: %v", name, err)
		}
		if err := o.Verify(testPub); err != nil {
			t.Fatalf("%s: Verify: %v", name, err)
		}
		got, err := o.Record()
		if err != nil {
			t.Fatalf("%s: Record: %v", name, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, r)
		}
		if o.Key() != testKey || o.Leaf() != e.Leaf() || o.Leaf() != merkle.Leaf(block.Sum(e.Bytes())) || o.Sealed() {
			t.Errorf("%s: key, leaf or kind changed in the round trip", name)
		}
		// The schema and the hand-written encoder agree byte for byte.
		pb := &recordpb.Envelope{Kind: recordpb.BodyKind_BODY_KIND_RECORD, PathKey: testKey[:], Body: o.body, Signature: o.sig}
		if b, err := proto.Marshal(pb); err != nil || !bytes.Equal(b, e.Bytes()) {
			t.Errorf("%s: proto.Marshal of the envelope differs from Seal: %v", name, err)
		}
	}
}

func TestOpenCopiesInput(t *testing.T) {
	e, _ := Seal(fileRecord(1, 10), testKey, testPriv)
	buf := append([]byte(nil), e.Bytes()...)
	o, err := Open(buf)
	if err != nil {
		t.Fatal(err)
	}
	clear(buf)
	if err := o.Verify(testPub); err != nil {
		t.Fatalf("envelope changed with the caller's buffer: %v", err)
	}
}

// TestEveryByteFlipIsCaught: no single-bit change of an envelope survives
// Open + Verify.
func TestEveryByteFlipIsCaught(t *testing.T) {
	e, err := Seal(fileRecord(2, 100), testKey, testPriv)
	if err != nil {
		t.Fatal(err)
	}
	raw := e.Bytes()
	for i := range raw {
		for _, bit := range []byte{0x01, 0x80} {
			bad := append([]byte(nil), raw...)
			bad[i] ^= bit
			o, err := Open(bad)
			if err == nil {
				err = o.Verify(testPub)
			}
			if err == nil {
				t.Fatalf("flip of bit %#x in byte %d was accepted", bit, i)
			}
		}
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	if err := e.Verify(other); !errors.Is(err, ErrBadSignature) {
		t.Errorf("verify with another share's key = %v, want ErrBadSignature", err)
	}
	if err := e.Verify(testPub[:5]); !errors.Is(err, ErrBadSignature) {
		t.Errorf("verify with a short key = %v, want ErrBadSignature", err)
	}
}

// TestSignedButInvalid: a writer that signs a broken body gets past Verify
// but not past Record.
func TestSignedButInvalid(t *testing.T) {
	good := fileRecord(2, 100)
	body := func(mutate func(m *recordpb.Record)) []byte {
		b, err := encodeRecord(good)
		if err != nil {
			t.Fatal(err)
		}
		var m recordpb.Record
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		mutate(&m)
		if b, err = proto.Marshal(&m); err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		mutate func(m *recordpb.Record)
		want   string
	}{
		{"dotdot path", func(m *recordpb.Record) { m.Path = "../../etc/passwd" }, `".." component`},
		{"absolute path", func(m *recordpb.Record) { m.Path = "/etc/passwd" }, "absolute"},
		{"metadata path", func(m *recordpb.Record) { m.Path = ".blueshift/x" }, "metadata folder"},
		{"sizes disagree", func(m *recordpb.Record) { m.Size++ }, "add up"},
		{"zero block", func(m *recordpb.Record) { m.BlockSizes[0] = 0; m.Size -= 100 }, "block 0 has size 0"},
		{"hash count", func(m *recordpb.Record) { m.BlockHashes = m.BlockHashes[:32] }, "block sizes"},
		{"ragged hashes", func(m *recordpb.Record) { m.BlockHashes = m.BlockHashes[:40] }, "multiple of 32"},
		{"dir with blocks", func(m *recordpb.Record) { m.Kind = recordpb.Kind_KIND_DIR }, "a dir has size"},
		{"tombstone with data", func(m *recordpb.Record) { m.Deleted = true }, "deleted record has size"},
		{"unknown kind", func(m *recordpb.Record) { m.Kind = 9 }, "unknown kind"},
		{"setuid", func(m *recordpb.Record) { m.Mode = 0o4755 }, "outside 0777"},
		{"nanos", func(m *recordpb.Record) { m.ModTimeNsec = 1e9 }, "nanoseconds"},
		{"no version", func(m *recordpb.Record) { m.Version = nil }, "empty version"},
		{"unsorted", func(m *recordpb.Record) { m.Version[0], m.Version[1] = m.Version[1], m.Version[0] }, "not sorted"},
		{"zero counter", func(m *recordpb.Record) { m.Version[1].Value = 0 }, "zero counter"},
		{"modifier not in vector", func(m *recordpb.Record) { m.ModifiedBy = 5 }, "not in the version vector"},
		{"file with target", func(m *recordpb.Record) { m.Target = []byte("x") }, "only a live symlink"},
		{"short file hash", func(m *recordpb.Record) { m.FileHash = m.FileHash[:31] }, "file hash of 31"},
	}
	for _, tt := range tests {
		e, err := seal(kindRecord, testKey, body(tt.mutate), testPriv)
		if err != nil {
			t.Fatalf("%s: seal: %v", tt.name, err)
		}
		if err := e.Verify(testPub); err != nil {
			t.Fatalf("%s: Verify: %v", tt.name, err)
		}
		_, err = e.Record()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Record() = %v, want ErrCorrupt saying %q", tt.name, err, tt.want)
		}
	}
	// Seal refuses the same records before signing anything.
	bad := good
	bad.Path = "a/../b"
	if _, err := Seal(bad, testKey, testPriv); !errors.Is(err, ErrInvalidRecord) || !errors.Is(err, ErrInvalidPath) {
		t.Errorf("Seal of a bad path = %v, want ErrInvalidRecord and ErrInvalidPath", err)
	}
}

func TestOpenRefusesNonCanonical(t *testing.T) {
	e, _ := Seal(fileRecord(1, 10), testKey, testPriv)
	raw := e.Bytes()
	n := len(raw)
	tests := map[string][]byte{
		"empty":          nil,
		"truncated":      raw[:n-1],
		"trailing field": append(append([]byte(nil), raw...), 0x28, 0x01),
		"trailing byte":  append(append([]byte(nil), raw...), 0),
		"kind zero":      append([]byte{0x08, 0x00}, raw[2:]...),
		"kind unknown":   append([]byte{0x08, 0x03}, raw[2:]...),
		"long varint":    append([]byte{0x08, 0x81, 0x00}, raw[2:]...),
		"long tag":       append([]byte{0x88, 0x00, 0x01}, raw[2:]...),
		"missing kind":   raw[2:],
		"swapped fields": append(append([]byte(nil), raw[2:36]...), append(raw[:2:2], raw[36:]...)...),
	}
	for name, b := range tests {
		if _, err := Open(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Open = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := Open(make([]byte, MaxEnvelopeSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: Open = %v, want ErrTooLarge", err)
	}
	var zero Envelope
	if _, err := zero.Record(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("zero Envelope Record = %v", err)
	}
	if err := zero.Verify(testPub); err == nil {
		t.Errorf("zero Envelope verifies")
	}
}

func TestSealedBody(t *testing.T) {
	e, err := seal(kindSealed, testKey, []byte("ciphertext"), testPriv)
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(e.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Verify(testPub); err != nil || !o.Sealed() {
		t.Fatalf("sealed envelope: verify %v, sealed %v", err, o.Sealed())
	}
	if _, err := o.Record(); !errors.Is(err, ErrSealed) {
		t.Fatalf("Record of a sealed envelope = %v, want ErrSealed", err)
	}
	// The kind is signed: relabelling ciphertext as a record breaks the signature.
	relabel := append([]byte(nil), e.Bytes()...)
	relabel[1] = kindRecord
	if o, err := Open(relabel); err != nil || o.Verify(testPub) == nil {
		t.Fatalf("relabelled envelope: open %v, still verifies", err)
	}
}

func TestPrescanLimits(t *testing.T) {
	tests := map[string][]byte{
		"too many counters": bytes.Repeat([]byte{0x5a, 0x00}, MaxVectorLen+1),
		"long path":         append([]byte{0x0a, 0x81, 0x20}, bytes.Repeat([]byte{'a'}, 4097)...),
		"too many sizes":    bytes.Repeat([]byte{0x40, 0x01}, MaxBlocks+1),
	}
	for name, body := range tests {
		if _, err := decodeRecord(body); !errors.Is(err, ErrTooLarge) || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decode = %v, want ErrTooLarge", name, err)
		}
	}
}

// TestGolden pins the envelope format: the same record, tree key and
// signing key must always give these bytes (Ed25519 is deterministic).
func TestGolden(t *testing.T) {
	e, err := Seal(fileRecord(2, 4096), testKey, testPriv)
	if err != nil {
		t.Fatal(err)
	}
	const want = "08011220aa010203000000000000000000000000000000000000000000000000000000001ab5010a0f646f63732f7265706f72742e747874100118804020a4032880f2d6ca0630959aef3a3a4091525ff00a3755a8df93c626b59f6e36cf021d85ebccecdedc38f3f1890a15fc396eab8ebe8b2247fed631cee54835e0c8678ab1cc0d5b8a73f9f86e813187d54204802080204a2039aac93919e644bc384a2c14a24d6c8c4b57159cc1b54d2c469d79be97d1bf515a0f0908070605040302011080f2d6ca065a0b09f0f0f0f0f0f0f0f010036908070605040302012240b65dc582e1a51648a496006668fd32f07022a559884ff903f0f299d3f6938dffb376d31488fc5ef9906ed9befa6d40d2e06321aa523d35e750a510366beb5e0a"
	if got := hex.EncodeToString(e.Bytes()); got != want {
		t.Errorf("envelope bytes changed:\n got %s\nwant %s", got, want)
	}
}

// TestEnvelopeSizes records the sizes the design reasons with.
func TestEnvelopeSizes(t *testing.T) {
	tomb := testRecords()["tombstone"]
	for _, c := range []struct {
		name string
		r    Record
	}{
		{"100-byte file", fileRecord(1, 100)},
		{"100 MiB file, 1600 blocks of 64 KiB", fileRecord(1600, 64<<10)},
		{"tombstone", tomb},
	} {
		e, err := Seal(c.r, testKey, testPriv)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", c.name, len(e.Bytes()))
	}
}
