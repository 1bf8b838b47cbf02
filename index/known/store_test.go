package known

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index/share"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func openStore(t *testing.T, dir string) (*Store, *pebble.DB) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return Open(db), db
}

func newDevice(t *testing.T) (Device, ed25519.PublicKey) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Device{ID: sha256.Sum256(pub)}, pub
}

// TestStore: a device put is listed under its share only, survives a
// reopen, keeps its introducer and time when introduced again, takes the
// key and addresses it lacked, and is gone once removed.
func TestStore(t *testing.T) {
	dir := t.TempDir()
	s, db := openStore(t, dir)
	var s1, s2 share.ID
	s1[0], s2[0] = 1, 2
	d, pub := newDevice(t)
	var by1, by2 [32]byte
	by1[0], by2[0] = 7, 8
	at := time.Date(2026, 12, 3, 17, 0, 0, 0, time.UTC)
	d.Name, d.IntroducedBy, d.At = "laptop", by1, at
	if ch, err := s.Put(s1, d); err != nil || !ch {
		t.Fatalf("put: %v, %v", ch, err)
	}
	if ch, err := s.Put(s1, d); err != nil || ch {
		t.Fatalf("the same put again changed %v, %v", ch, err)
	}
	again := Device{ID: d.ID, PublicKey: pub, Name: "other", Addresses: []string{"192.0.2.1:22000"}, IntroducedBy: by2, At: at.Add(time.Hour)}
	if ch, err := s.Put(s1, again); err != nil || !ch {
		t.Fatalf("put with a key and addresses: %v, %v", ch, err)
	}
	// A later introduction with another address: it goes first, the old
	// one stays behind it; one with none changes nothing.
	moved := Device{ID: d.ID, Addresses: []string{"192.0.2.9:22000"}, IntroducedBy: by2}
	if ch, err := s.Put(s1, moved); err != nil || !ch {
		t.Fatalf("put with a new address: %v, %v", ch, err)
	}
	if ch, err := s.Put(s1, Device{ID: d.ID}); err != nil || ch {
		t.Fatalf("put with no addresses changed %v, %v", ch, err)
	}
	db.Close()
	s, db = openStore(t, dir)
	defer db.Close()
	list, err := s.List(s1)
	if err != nil || len(list) != 1 {
		t.Fatalf("list: %v, %v", list, err)
	}
	got := list[0]
	if got.Name != "laptop" || got.IntroducedBy != by1 || !got.At.Equal(at) || !got.PublicKey.Equal(pub) ||
		!slices.Equal(got.Addresses, []string{"192.0.2.9:22000", "192.0.2.1:22000"}) {
		t.Fatalf("kept %+v", got)
	}
	many := Device{ID: d.ID}
	for i := range MaxAddresses {
		many.Addresses = append(many.Addresses, fmt.Sprintf("198.51.100.%d:22000", i+1))
	}
	if ch, err := s.Put(s1, many); err != nil || !ch {
		t.Fatalf("put with %d addresses: %v, %v", MaxAddresses, ch, err)
	}
	if got, _, _ := s.Get(s1, d.ID); !slices.Equal(got.Addresses, many.Addresses) {
		t.Fatalf("after %d new addresses, kept %v", MaxAddresses, got.Addresses)
	}
	if l, _ := s.List(s2); len(l) != 0 {
		t.Fatalf("share 2 lists %v", l)
	}
	if rm, err := s.Remove(s1, d.ID); err != nil || !rm {
		t.Fatalf("remove: %v, %v", rm, err)
	}
	if rm, err := s.Remove(s1, d.ID); err != nil || rm {
		t.Fatalf("remove again: %v, %v", rm, err)
	}
	if l, _ := s.List(s1); len(l) != 0 {
		t.Fatalf("after remove: %v", l)
	}
}

// TestPutRefusesBadDevices: the limits hold at Put and at Decode.
func TestPutRefusesBadDevices(t *testing.T) {
	s, db := openStore(t, t.TempDir())
	defer db.Close()
	d, _ := newDevice(t)
	_, otherPub := newDevice(t)
	long := strings.Repeat("x", MaxAddrLen+1)
	for name, bad := range map[string]Device{
		"no ID":          {},
		"someone's key":  {ID: d.ID, PublicKey: otherPub},
		"short key":      {ID: d.ID, PublicKey: otherPub[:5]},
		"long name":      {ID: d.ID, Name: strings.Repeat("n", MaxName+1)},
		"many addresses": {ID: d.ID, Addresses: make([]string, MaxAddresses+1)},
		"a long address": {ID: d.ID, Addresses: []string{long}},
	} {
		if _, err := s.Put(share.ID{1}, bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	for _, b := range []string{"", "{", "[]", `{"id":[0]}`, `{"id":"x"}`, strings.Repeat(" ", MaxEncoded+1)} {
		if _, err := Decode([]byte(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("decode %.20q: %v, want ErrCorrupt", b, err)
		}
	}
}

// FuzzDecode: no input panics, and what decodes encodes to a value that
// decodes the same.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"id":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32],"name":"x","addresses":["10.0.0.1:1"]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			return
		}
		if err := d.check(); err != nil {
			t.Fatalf("decoded a device that does not check: %v", err)
		}
	})
}

// TestDismiss: a dismissed device is forgotten and marked, in its share
// only; an introduction puts it back and clears the mark.
func TestDismiss(t *testing.T) {
	s, db := openStore(t, t.TempDir())
	defer db.Close()
	var s1, s2 share.ID
	s1[0], s2[0] = 1, 2
	d, _ := newDevice(t)
	if _, err := s.Put(s1, d); err != nil {
		t.Fatal(err)
	}
	if err := s.Dismiss(s1, d.ID); err != nil {
		t.Fatal(err)
	}
	if l, err := s.List(s1); err != nil || len(l) != 0 {
		t.Fatalf("after dismiss: %v, %v", l, err)
	}
	if ok, err := s.Dismissed(s1, d.ID); err != nil || !ok {
		t.Fatalf("dismissed: %v, %v", ok, err)
	}
	if ok, _ := s.Dismissed(s2, d.ID); ok {
		t.Fatal("dismissed in the other share too")
	}
	if ch, err := s.Put(s1, d); err != nil || !ch {
		t.Fatalf("introduced again: %v, %v", ch, err)
	}
	if ok, _ := s.Dismissed(s1, d.ID); ok {
		t.Fatal("still dismissed after an introduction")
	}
	if l, _ := s.List(s1); len(l) != 1 {
		t.Fatalf("introduced again, listed %v", l)
	}
}
