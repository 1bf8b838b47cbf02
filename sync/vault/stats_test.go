package vault

import (
	"context"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Stats counts a share's sealed items and blocks with their bytes, the
// generation readers list against, and each pusher's items and last put
// (a put that adds nothing counts as a push too); a reader's Generation
// is the member's once it handled everything. Drop forgets all of it.
func TestStoreStats(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	envs, blocks := files(t, key, 3)

	m := newMember(t)
	now := time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)
	m.store.clock = func() time.Time { return now }
	server, _ := newIdentity(t)
	aID, aPriv := newIdentity(t)
	bID, bPriv := newIdentity(t)
	rID, _ := newIdentity(t)
	m.access.writers[aID.ID()], m.access.writers[bID.ID()] = true, true
	m.access.readers[rID.ID()] = true

	if st, err := m.store.Stats(key.ID()); err != nil || st.Items+st.Blocks != 0 || st.Generation != 0 || len(st.Pushers) != 0 {
		t.Fatalf("an empty store's stats: %+v, %v", st, err)
	}
	wa := &Writer{Share: key.ID(), Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(blocks)}
	if _, err := wa.Push(context.Background(), dial(t, m, server, aID), envs[:2]); err != nil {
		t.Fatal(err)
	}
	st, err := m.store.Stats(key.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st.Items != 2 || st.Blocks == 0 || st.BlockBytes == 0 || st.ItemBytes == 0 || st.Generation == 0 {
		t.Fatalf("after alice pushed 2 records: %+v", st)
	}
	if len(st.Pushers) != 1 || st.Pushers[0].Device != aID.ID() || st.Pushers[0].Items != 2 || !st.Pushers[0].LastPush.Equal(now) {
		t.Fatalf("pushers after alice's push: %+v", st.Pushers)
	}
	held := st.BlockBytes
	gen := st.Generation

	// Bob pushes one record of his own (a block alice sent is not sent
	// again, but his item is his): two pushers, the generation moves.
	now = now.Add(time.Minute)
	wb := &Writer{Share: key.ID(), Base: base, Keys: base, Device: bPriv, ReadBlock: readFrom(blocks)}
	if _, err := wb.Push(context.Background(), dial(t, m, server, bID), envs[2:]); err != nil {
		t.Fatal(err)
	}
	if st, _ = m.store.Stats(key.ID()); st.Items != 3 || st.Generation <= gen || st.BlockBytes <= held || len(st.Pushers) != 2 {
		t.Fatalf("after bob pushed one more: %+v", st)
	}
	for _, p := range st.Pushers {
		want, items := now.Add(-time.Minute), 2
		if p.Device == bID.ID() {
			want, items = now, 1
		}
		if !p.LastPush.Equal(want) || p.Items != items {
			t.Errorf("pusher %s: %d items, last push %s; want %d, %s", p.Device.Abbrev(), p.Items, p.LastPush, items, want)
		}
	}
	// A put of nothing new: alice's last push moves, nothing else.
	now = now.Add(time.Minute)
	it, err := DecodeItem(mustGet(t, m, key.ID(), aID.ID()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.store.Answer(aID.ID(), &wire.VaultPut{Share: key.ID(), Items: [][]byte{it.Bytes()}}, m.access).(*wire.VaultPutAck); !ok {
		t.Fatal("a replayed item refused")
	}
	before := st
	if st, _ = m.store.Stats(key.ID()); st.Items != before.Items || st.Generation != before.Generation || !pusherOf(st, aID.ID()).LastPush.Equal(now) {
		t.Fatalf("after a replay: %+v", st)
	}

	// A reader's Generation is the member's once it pulled everything.
	r := &Reader{Share: key.ID(), Base: base, Epoch: func(e uint64) (seal.Keys, bool) { return base, e == 0 },
		MayPush: func(d identity.DeviceID) bool { return m.access.writers[d] }}
	if r.Generation() != 0 {
		t.Fatal("a new reader has a generation")
	}
	if _, err := r.Pull(context.Background(), dial(t, m, server, rID), nil, func([]record.Envelope, Fetch) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if r.Generation() != st.Generation {
		t.Fatalf("reader at generation %d, the member at %d", r.Generation(), st.Generation)
	}

	if err := m.store.Drop(key.ID()); err != nil {
		t.Fatal(err)
	}
	if st, _ = m.store.Stats(key.ID()); st.Items+st.Blocks != 0 || len(st.Pushers) != 0 {
		t.Fatalf("after Drop: %+v", st)
	}
}

func pusherOf(st ShareStats, d identity.DeviceID) PusherStats {
	for _, p := range st.Pushers {
		if p.Device == d {
			return p
		}
	}
	return PusherStats{}
}

// mustGet returns the first item pusher d has in share id.
func mustGet(t *testing.T, m *member, id share.ID, d identity.DeviceID) []byte {
	t.Helper()
	es, _, err := m.store.list(id, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if identity.DeviceID(e.Key[32:]) == d {
			raw, err := m.store.Get(id, [][wire.VaultKeySize]byte{e.Key})
			if err != nil || len(raw) != 1 {
				t.Fatalf("get item: %v", err)
			}
			return raw[0]
		}
	}
	t.Fatalf("no item of %s", d.Abbrev())
	return nil
}
