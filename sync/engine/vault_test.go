package engine

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// Offer takes records that came from outside a session (an encrypted
// member's, opened by sync/vault) through the normal apply path: a device
// connected to nobody gets A's files, their blocks from the source it was
// given (A's ReadBlock, as a vault reader would open them), and drops a
// record the share key did not sign; a copy it replaces goes to the
// versions folder as for any pull.
func TestOfferAppliesWithBlockSource(t *testing.T) {
	key := newKey(t)
	a, r := newDevice(t, "A", key), newDevice(t, "R", key)
	a.addShare()
	r.addShare()
	big := randBytes(600 << 10)
	write(t, a, "docs/big.bin", big)
	write(t, a, "small.txt", []byte("first version"))
	waitScanned(t, a)
	waitScanned(t, r)

	idx, err := a.db.Share(key, a.dir, a.id.ID().Short())
	if err != nil {
		t.Fatal(err)
	}
	records := func() []record.Envelope {
		var envs []record.Envelope
		if err := idx.Records(func(e index.Entry) error { envs = append(envs, e.Envelope); return nil }); err != nil {
			t.Fatal(err)
		}
		return envs
	}
	forger := newKey(t)
	forged, err := forger.Seal(record.Record{Path: "forged.txt", Kind: record.File, Mode: 0o644, ModifiedBy: 9,
		Version: record.Vector{}.Update(9, 1), ModTime: time.Unix(1, 0)})
	if err != nil {
		t.Fatal(err)
	}

	vaultMember := identity.DeviceID{0xe}
	var asked atomic.Int64
	src := func(_ context.Context, h block.Hash, size uint32) ([]byte, error) {
		asked.Add(1)
		d, ok := a.e.ReadBlock(key.ID(), h, size)
		if !ok {
			return nil, os.ErrNotExist
		}
		return d, nil
	}
	if err := r.e.Offer(context.Background(), key.ID(), vaultMember, append(records(), forged), src); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r, r.dir, "docs/big.bin", big)
	waitFile(t, r, r.dir, "small.txt", []byte("first version"))
	if asked.Load() == 0 {
		t.Fatal("no block was asked of the source")
	}
	if _, err := os.Stat(filepath.Join(r.dir, "forged.txt")); !os.IsNotExist(err) {
		t.Fatalf("a record the share key did not sign was applied: %v", err)
	}

	// A newer version replaces R's copy, which goes to the versions folder.
	write(t, a, "small.txt", []byte("second version"))
	waitScanned(t, a)
	if err := r.e.Offer(context.Background(), key.ID(), vaultMember, records(), src); err != nil {
		t.Fatal(err)
	}
	waitFile(t, r, r.dir, "small.txt", []byte("second version"))
	if !holds(t, filepath.Join(r.dir, ".blueshift", "versions"), "first version") {
		t.Fatal("the replaced version of small.txt is not in the versions folder")
	}
}

// holds reports whether a file under dir has exactly the content want.
func holds(t *testing.T, dir, want string) bool {
	t.Helper()
	found := false
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if b, err := os.ReadFile(p); err == nil && string(b) == want {
				found = true
			}
		}
		return nil
	})
	return found
}
