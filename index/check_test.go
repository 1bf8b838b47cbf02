package index

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
)

// TestCheckThenCommit: an envelope Check verified commits without a second
// verification, and any other bytes, however close, are verified in full.
func TestCheckThenCommit(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	b.key = a.key
	b.db.Close()
	b.open()
	a.write("doc.txt", []byte("doc"))
	a.scan()
	good, _, err := a.sh.Lookup("doc.txt")
	if err != nil {
		t.Fatal(err)
	}
	raw := good.Envelope.Bytes()
	bad := append([]byte(nil), raw...)
	bad[len(bad)-1] ^= 1 // the signature's last byte
	tampered, err := record.Open(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.sh.Check(tampered); err == nil {
		t.Fatal("Check accepted a bad signature")
	}
	if _, err := b.sh.Check(good.Envelope); err != nil {
		t.Fatal(err)
	}
	if err := b.sh.Commit(tampered, nil); err == nil {
		t.Fatal("Commit accepted a bad signature after Check of the good envelope")
	}
	if err := b.sh.Commit(good.Envelope, nil); err != nil {
		t.Fatal(err)
	}
	other := newEnv(t)
	other.key = testKey(t, 9)
	other.db.Close()
	other.open()
	other.write("doc.txt", []byte("forged"))
	other.scan()
	forged, _, _ := other.sh.Lookup("doc.txt")
	if _, err := other.sh.Check(forged.Envelope); err != nil {
		t.Fatal(err)
	}
	if _, err := b.sh.Check(forged.Envelope); err == nil {
		t.Fatal("an envelope of another share passed Check")
	}
	if err := b.sh.Commit(forged.Envelope, nil); err == nil {
		t.Fatal("an envelope of another share was committed")
	}
}

// TestUpdateNamesReplaced: subscribers hear, with each new envelope, the one
// it replaced, so the engine can send the new one as a delta against it.
func TestUpdateNamesReplaced(t *testing.T) {
	e := newEnv(t)
	e.write("a.txt", []byte("a"))
	e.scan()
	old, _, err := e.sh.Lookup("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heard []Update
	cancel := e.sh.Subscribe(func(u Update) {
		mu.Lock()
		heard = append(heard, u)
		mu.Unlock()
	})
	defer cancel()
	when := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(e.root, "a.txt"), when, when); err != nil {
		t.Fatal(err)
	}
	e.write("b.txt", []byte("b"))
	e.scan()
	mu.Lock()
	defer mu.Unlock()
	replaced := map[string]*record.Envelope{}
	for _, u := range heard {
		if len(u.Replaced) != len(u.Envelopes) {
			t.Fatalf("%d envelopes, %d replaced", len(u.Envelopes), len(u.Replaced))
		}
		for i, env := range u.Envelopes {
			rec, _ := env.Record()
			replaced[string(rec.Path)] = u.Replaced[i]
		}
	}
	if r, ok := replaced["a.txt"]; !ok || r == nil || r.Leaf() != old.Envelope.Leaf() {
		t.Fatalf("a.txt's update did not name the envelope it replaced: %v", r)
	}
	if r, ok := replaced["b.txt"]; !ok || r != nil {
		t.Fatalf("b.txt is new, yet its update names a replaced envelope: %v %v", ok, r)
	}
}
