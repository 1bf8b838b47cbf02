package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// fileRecord makes the record of path holding n random bytes (none and
// Deleted: a tombstone), at version counter ver of device 1, and adds its
// blocks to blocks.
func fileRecord(t testing.TB, key share.Key, path string, n int, ver uint64, blocks map[block.Hash][]byte) record.Envelope {
	t.Helper()
	r := record.Record{Path: record.Path(path), Kind: record.File, Mode: 0o644, ModTime: time.Unix(1700000000+int64(ver), 0), ModifiedBy: 1}
	r.Version = record.Vector{}.Update(1, ver)
	if n == 0 {
		r.Deleted = true
	} else {
		data := make([]byte, n)
		rand.Read(data)
		chunks, err := chunk.SplitAll(context.Background(), bytes.NewReader(data), chunk.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		r.Size = int64(n)
		for _, c := range chunks {
			blocks[c.Hash] = data[c.Offset : c.Offset+int64(c.Length)]
			r.Blocks = append(r.Blocks, record.BlockRef{Hash: c.Hash, Size: uint32(c.Length)})
		}
		r.FileHash = chunk.FileHash(chunks)
	}
	env, err := key.Seal(r)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// sealedNames is the sealed name of each block of env under keys.
func sealedNames(t testing.TB, keys seal.Keys, env record.Envelope, blocks map[block.Hash][]byte) [][wire.VaultNameSize]byte {
	t.Helper()
	rec, err := env.Record()
	if err != nil {
		t.Fatal(err)
	}
	var out [][wire.VaultNameSize]byte
	for _, ref := range rec.Blocks {
		s, err := keys.SealBlock(blocks[ref.Hash], ref.Hash)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, seal.SealedName(s))
	}
	return out
}

// heldCount says how many of names the store holds (read with data, so
// the question does not refresh their time).
func heldCount(t testing.TB, s *Store, id share.ID, names [][wire.VaultNameSize]byte) int {
	t.Helper()
	n := 0
	for _, name := range names {
		held, _, err := s.Blocks(id, [][wire.VaultNameSize]byte{name}, true)
		if err != nil {
			t.Fatal(err)
		}
		if held[0]&1 != 0 {
			n++
		}
	}
	return n
}

// A file overwritten, then deleted: once the grace period has passed,
// Collect deletes the sealed blocks of its old contents (no current item
// names them), never a block an item still names, never one younger than
// the grace; a reader then still gets the whole share from the member
// alone, every block of every live file included.
func TestCollectUnreferencedBlocks(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	blocks := map[block.Hash][]byte{}
	big1 := fileRecord(t, key, "big.bin", 600<<10, 1, blocks)
	keep := fileRecord(t, key, "keep.bin", 300<<10, 1, blocks)
	gone := fileRecord(t, key, "gone.bin", 200<<10, 1, blocks)

	m := newMember(t)
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	m.store.clock = func() time.Time { return now }
	server, _ := newIdentity(t)
	aID, aPriv := newIdentity(t)
	rID, _ := newIdentity(t)
	m.access.writers[aID.ID()] = true
	m.access.readers[rID.ID()] = true
	ca := dial(t, m, server, aID)
	w := &Writer{Share: key.ID(), Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(blocks)}
	id := key.ID()
	push := func(envs ...record.Envelope) Stats {
		t.Helper()
		st, err := w.Push(context.Background(), ca, envs)
		if err != nil || st.Missing+st.Skipped != 0 {
			t.Fatalf("push: %+v, %v", st, err)
		}
		return st
	}
	collect := func() CollectResult {
		t.Helper()
		res, err := m.store.Collect(id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	push(big1, keep, gone)
	all, _ := m.store.Stats(id)
	now = now.Add(2 * time.Hour)
	if res := collect(); res.Blocks != 0 || res.Unlisted != 0 {
		t.Fatalf("collected %+v while every block is named", res)
	}

	// big.bin overwritten: its item is sealed again at its slot, and the
	// old blocks are named by nothing; kept for the grace, then gone.
	big2 := fileRecord(t, key, "big.bin", 500<<10, 2, blocks)
	if st := push(big2, keep, gone); st.Items != 1 {
		t.Fatalf("pushed %d items after one file changed, want 1", st.Items)
	}
	old, kept := sealedNames(t, base, big1, blocks), sealedNames(t, base, keep, blocks)
	// A block put just now and named by no item yet (its item is on its
	// way, in the pusher's next put) is kept for the grace.
	young := make([]byte, 4096)
	rand.Read(young)
	if _, ok := m.store.Answer(aID.ID(), &wire.VaultPut{Share: id, Blocks: [][]byte{young}}, m.access).(*wire.VaultPutAck); !ok {
		t.Fatal("a put of one block refused")
	}
	res := collect()
	if res.Blocks != len(old) || res.Bytes < 600<<10 {
		t.Fatalf("collected %+v; want big.bin's %d old blocks (600 KiB or more), not the young one", res, len(old))
	}
	if n := heldCount(t, m.store, id, [][wire.VaultNameSize]byte{block.Sum(young)}); n != 1 {
		t.Fatal("a block younger than the grace was collected")
	}
	if n := heldCount(t, m.store, id, old); n != 0 {
		t.Fatalf("%d of big.bin's old blocks still held", n)
	}
	if n := heldCount(t, m.store, id, kept); n != len(kept) {
		t.Fatalf("keep.bin: %d of its %d blocks held", n, len(kept))
	}

	// gone.bin deleted: its tombstone names no block.
	tomb := fileRecord(t, key, "gone.bin", 0, 2, blocks)
	push(big2, keep, tomb)
	now = now.Add(2 * time.Hour)
	goneNames := sealedNames(t, base, gone, blocks)
	if res := collect(); res.Blocks != len(goneNames)+1 {
		t.Fatalf("collected %d blocks after gone.bin was deleted, want its %d and the young one", res.Blocks, len(goneNames))
	}
	st, _ := m.store.Stats(id)
	want := len(kept) + len(sealedNames(t, base, big2, blocks))
	if st.Blocks != want || st.Items != 3 || st.BlockBytes >= all.BlockBytes {
		t.Fatalf("the store keeps %d blocks, %d items (%d bytes, %d before); want %d blocks, 3 items", st.Blocks, st.Items, st.BlockBytes, all.BlockBytes, want)
	}

	// A reader with nothing gets the share from the member alone.
	r := &Reader{Share: id, Base: base, Epoch: func(e uint64) (seal.Keys, bool) { return base, e == 0 },
		MayPush: func(d identity.DeviceID) bool { return d == aID.ID() }}
	got := map[string]record.Envelope{}
	var fetch Fetch
	if _, err := r.Pull(context.Background(), dial(t, m, server, rID), nil, func(e []record.Envelope, f Fetch) error {
		for _, env := range e {
			rec, _ := env.Record()
			got[string(rec.Path)] = env
		}
		fetch = f
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, env := range []record.Envelope{big2, keep, tomb} {
		rec, _ := env.Record()
		if !bytes.Equal(got[string(rec.Path)].Bytes(), env.Bytes()) {
			t.Fatalf("the reader did not get the current record of %s", rec.Path)
		}
		for _, ref := range rec.Blocks {
			if data, err := fetch(context.Background(), ref.Hash, ref.Size); err != nil || !bytes.Equal(data, blocks[ref.Hash]) {
				t.Fatalf("%s: block %x from the member: %v", rec.Path, ref.Hash[:4], err)
			}
		}
	}
}

// A pusher told a block is held leaves it out of its put: the question
// refreshes the block's time, so a Collect before the put does not take
// it. An item naming a block the member does not hold is left out and
// counted Missing; pushed again, it goes with its blocks.
func TestCollectRacesNoPush(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	blocks := map[block.Hash][]byte{}
	v1 := fileRecord(t, key, "f.bin", 300<<10, 1, blocks)
	v2 := fileRecord(t, key, "f.bin", 100<<10, 2, blocks)
	id := key.ID()
	m := newMember(t)
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	m.store.clock = func() time.Time { return now }
	server, _ := newIdentity(t)
	aID, aPriv := newIdentity(t)
	m.access.writers[aID.ID()] = true
	ca := dial(t, m, server, aID)
	w := &Writer{Share: id, Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(blocks)}
	if _, err := w.Push(context.Background(), ca, []record.Envelope{v1}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Push(context.Background(), ca, []record.Envelope{v2}); err != nil {
		t.Fatal(err)
	}
	// v1's blocks are named by nothing now and old; a writer asks about
	// them (it is about to name them again), then a Collect runs.
	old := sealedNames(t, base, v1, blocks)
	now = now.Add(2 * time.Hour)
	if resp := m.store.Answer(aID.ID(), &wire.VaultBlocks{Share: id, Names: old}, m.access).(*wire.VaultBlocksResponse); !resp.Holds(0) {
		t.Fatal("the old blocks are not held before the collect")
	}
	now = now.Add(30 * time.Minute)
	if res, err := m.store.Collect(id, time.Hour); err != nil || res.Blocks != 0 {
		t.Fatalf("collected %+v (%v) blocks a writer was just told are held", res, err)
	}
	now = now.Add(2 * time.Hour)
	if res, err := m.store.Collect(id, time.Hour); err != nil || res.Blocks != len(old) {
		t.Fatalf("collected %+v (%v), want v1's %d blocks once the grace passed", res, err, len(old))
	}

	// An item naming blocks the member lacks is left out, and counted.
	p := Plain{Envelope: v1, Names: make([]block.Hash, len(old))}
	for i, n := range old {
		p.Names[i] = n
	}
	it, err := SealItem(id, base, 0, 9, base.Slot("f.bin"), base.Tag(v1.Bytes()), p, aPriv)
	if err != nil {
		t.Fatal(err)
	}
	ack, ok := m.store.Answer(aID.ID(), &wire.VaultPut{Share: id, Items: [][]byte{it.Bytes()}}, m.access).(*wire.VaultPutAck)
	if !ok || ack.Missing != 1 || ack.Items != 0 {
		t.Fatalf("an item naming collected blocks: %+v", ack)
	}
	// The writer going back to v1 sends its blocks again, and the item.
	v3 := fileRecord(t, key, "f.bin", 0, 3, blocks) // a tombstone, then v1's content again
	if _, err := w.Push(context.Background(), ca, []record.Envelope{v3}); err != nil {
		t.Fatal(err)
	}
	if st, err := w.Push(context.Background(), ca, []record.Envelope{v1}); err != nil || st.Items != 1 || st.Blocks != len(old) || st.Missing != 0 {
		t.Fatalf("pushing v1 again: %+v, %v; want its item and %d blocks", st, err, len(old))
	}
}

// Items of version 1 (sealed names inside the body) still open, and
// while the member keeps one it collects nothing (it cannot tell which
// blocks it needs); the pusher, once it seals version 2, seals its own
// version 1 items again, and collection resumes.
func TestCollectWaitsForOldItems(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	blocks := map[block.Hash][]byte{}
	v1 := fileRecord(t, key, "f.bin", 200<<10, 1, blocks)
	other := fileRecord(t, key, "g.bin", 100<<10, 1, blocks)
	id := key.ID()
	m := newMember(t)
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	m.store.clock = func() time.Time { return now }
	server, _ := newIdentity(t)
	aID, aPriv := newIdentity(t)
	rID, _ := newIdentity(t)
	m.access.writers[aID.ID()] = true
	m.access.readers[rID.ID()] = true
	ca := dial(t, m, server, aID)
	old := &Writer{Share: id, Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(blocks), OldItems: true}
	if st, err := old.Push(context.Background(), ca, []record.Envelope{v1, other}); err != nil || st.Items != 2 {
		t.Fatalf("version 1 push: %+v, %v", st, err)
	}
	if again, err := old.Push(context.Background(), ca, []record.Envelope{v1, other}); err != nil || again.Items != 0 {
		t.Fatalf("a second version 1 push sent %+v, %v", again, err)
	}
	// A reader opens version 1 items and their blocks.
	r := &Reader{Share: id, Base: base, Epoch: func(e uint64) (seal.Keys, bool) { return base, e == 0 },
		MayPush: func(d identity.DeviceID) bool { return d == aID.ID() }}
	n := 0
	if _, err := r.Pull(context.Background(), dial(t, m, server, rID), nil, func(e []record.Envelope, f Fetch) error {
		for _, env := range e {
			rec, _ := env.Record()
			for _, ref := range rec.Blocks {
				if data, err := f(context.Background(), ref.Hash, ref.Size); err != nil || !bytes.Equal(data, blocks[ref.Hash]) {
					t.Fatalf("a block of a version 1 item: %v", err)
				}
			}
			n++
		}
		return nil
	}); err != nil || n != 2 {
		t.Fatalf("pulled %d version 1 records, want 2 (%v)", n, err)
	}

	v2 := fileRecord(t, key, "f.bin", 100<<10, 2, blocks)
	if _, err := old.Push(context.Background(), ca, []record.Envelope{v2, other}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if res, err := m.store.Collect(id, time.Hour); err != nil || res.Blocks != 0 || res.Unlisted != 2 {
		t.Fatalf("collected %+v (%v) with version 1 items kept; want nothing, 2 unlisted", res, err)
	}
	w := &Writer{Share: id, Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(blocks)}
	if st, err := w.Push(context.Background(), ca, []record.Envelope{v2, other}); err != nil || st.Items != 2 || st.Blocks != 0 {
		t.Fatalf("sealing version 1 items again: %+v, %v; want 2 items, no block", st, err)
	}
	if res, err := m.store.Collect(id, time.Hour); err != nil || res.Unlisted != 0 || res.Blocks != len(sealedNames(t, base, v1, blocks)) {
		t.Fatalf("collected %+v (%v); want f.bin's first blocks", res, err)
	}
}
