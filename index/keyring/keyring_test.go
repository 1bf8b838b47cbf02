package keyring

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble"
	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newKey(t testing.TB) share.Key {
	t.Helper()
	s, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return share.FromSecret(s)
}

func sampleRecord(t testing.TB) Record {
	k := newKey(t)
	var dev identity.DeviceID
	dev[0], dev[31] = 7, 9
	return Record{Share: k.ID(), Name: "Photos", Key: k, From: dev}
}

func TestSealOpenRoundTrip(t *testing.T) {
	ring := newKey(t)
	r := sampleRecord(t)
	ro, err := r.Key.ReadOnly()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []Record{r, {Share: r.Share, Name: r.Name, Key: ro, From: r.From}} {
		b, err := Seal(ring, rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open(ring, FileName(rec.Share), b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Share != rec.Share || got.Name != rec.Name || got.Key.String() != rec.Key.String() || got.From != rec.From {
			t.Fatalf("round trip: got %+v, want %+v", got, rec)
		}
	}
}

// A record is readable only under its keyring, under its own name, and
// untouched; the secret never appears in the sealed bytes.
func TestOpenRefuses(t *testing.T) {
	ring := newKey(t)
	r := sampleRecord(t)
	b, err := Seal(ring, r)
	if err != nil {
		t.Fatal(err)
	}
	other := sampleRecord(t)
	roRing, _ := ring.ReadOnly()
	encRing, _ := ring.Encrypted()
	flipped := append([]byte(nil), b...)
	flipped[len(flipped)-1] ^= 1
	cases := []struct {
		name string
		ring share.Key
		file string
		b    []byte
	}{
		{"another keyring", newKey(t), FileName(r.Share), b},
		{"renamed to another share", ring, FileName(other.Share), b},
		{"tampered", ring, FileName(r.Share), flipped},
		{"cut short", ring, FileName(r.Share), b[:20]},
		{"empty", ring, FileName(r.Share), nil},
		{"newer version", ring, FileName(r.Share), append([]byte{2}, b[1:]...)},
		{"too large", ring, FileName(r.Share), make([]byte, MaxRecord+1)},
		{"not a record name", ring, "notes.txt", b},
		{"encrypted keyring key", encRing, FileName(r.Share), b},
	}
	for _, c := range cases {
		if _, err := Open(c.ring, c.file, c.b); !errors.Is(err, ErrRecord) {
			t.Errorf("%s: %v, want ErrRecord", c.name, err)
		}
	}
	// The read-only form of the keyring key reads records too (same read key).
	if _, err := Open(roRing, FileName(r.Share), b); err != nil {
		t.Errorf("read-only keyring key: %v", err)
	}
	if secret := r.Key.String(); containsSub(b, []byte(secret)) || containsSub(b, []byte(r.Name)) {
		t.Error("the sealed record holds the capability or the name in clear")
	}
}

func TestSealRefusesBadRecords(t *testing.T) {
	ring := newKey(t)
	r := sampleRecord(t)
	for _, name := range []string{"", ".", "..", "a/b", `a\b`, ".hidden", " padded", "c:"} {
		bad := r
		bad.Name = name
		if _, err := Seal(ring, bad); !errors.Is(err, ErrRecord) {
			t.Errorf("name %q: %v, want ErrRecord", name, err)
		}
	}
	bad := r
	bad.Share = newKey(t).ID()
	if _, err := Seal(ring, bad); !errors.Is(err, ErrRecord) {
		t.Errorf("key of another share: %v, want ErrRecord", err)
	}
}

func TestIsRecordName(t *testing.T) {
	r := sampleRecord(t)
	for name, want := range map[string]bool{
		FileName(r.Share): true, r.Share.String(): false, "x.cap": false, ".blueshift": false,
	} {
		if got := IsRecordName(name); got != want {
			t.Errorf("IsRecordName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestFollowed(t *testing.T) {
	db, err := pebble.Open(filepath.Join(t.TempDir(), "db"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := OpenFollowed(db)
	a, b := newKey(t).ID(), newKey(t).ID()
	if err := f.Add(a); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Has(a); !ok || err != nil {
		t.Errorf("Has(a) = %v, %v", ok, err)
	}
	if ok, err := f.Has(b); ok || err != nil {
		t.Errorf("Has(b) = %v, %v", ok, err)
	}
}

func FuzzOpen(f *testing.F) {
	ring := newKey(f)
	r := sampleRecord(f)
	b, err := Seal(ring, r)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(FileName(r.Share), b)
	f.Add("x.cap", []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, name string, b []byte) {
		got, err := Open(ring, name, b)
		if err != nil {
			return
		}
		// Whatever opens seals again and opens to the same record.
		again, err := Seal(ring, got)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Open(ring, FileName(got.Share), again); err != nil || back.Key.String() != got.Key.String() {
			t.Fatalf("reseal: %v", err)
		}
	})
}

func containsSub(b, sub []byte) bool {
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			return true
		}
	}
	return false
}
