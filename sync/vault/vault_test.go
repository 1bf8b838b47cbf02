package vault

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// member is the encrypted member's side of a test: a store behind real TLS.
type member struct {
	store  *Store
	dir    string
	access testAccess
}

type testAccess struct{ writers, readers map[identity.DeviceID]bool }

func (a testAccess) MayRead(_ share.ID, d identity.DeviceID) bool {
	return a.readers[d] || a.writers[d]
}
func (a testAccess) MayPush(_ share.ID, d identity.DeviceID) bool { return a.writers[d] }

// handler answers vault requests from the store.
type handler struct {
	m      *member
	remote identity.DeviceID
}

func (h handler) HandleRequest(_ context.Context, m wire.Message) (wire.Message, error) {
	return h.m.store.Answer(h.remote, m, h.m.access), nil
}
func (handler) HandleMessage(context.Context, wire.Message) error { return nil }

type nobody struct{}

func (nobody) HandleRequest(context.Context, wire.Message) (wire.Message, error) {
	return wire.Errorf(wire.CodeRefused, "no"), nil
}
func (nobody) HandleMessage(context.Context, wire.Message) error { return nil }

// dial connects device id to the member over TLS on 127.0.0.1 and returns
// the connection; everything stops at the test's end.
func dial(t testing.TB, m *member, server, client *identity.Identity) *conn.Conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := conn.NewTLS(server, slog.New(slog.DiscardHandler)).Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		c, err := conn.Open(ctx, s, wire.Hello{Capabilities: []string{wire.VaultCapability}}, handler{m, s.Remote}, conn.Options{})
		if err != nil {
			return
		}
		c.Run(ctx)
		c.Close()
	}()
	s, err := conn.NewTLS(client, slog.New(slog.DiscardHandler)).Dial(ctx, ln.Addr().String(), server.ID())
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.Open(ctx, s, wire.Hello{}, nobody{}, conn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan struct{})
	go func() { c.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); c.Close(); ln.Close(); <-ran; <-done })
	return c
}

func newIdentity(t testing.TB) (*identity.Identity, ed25519.PrivateKey) {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return id, id.Certificate().PrivateKey.(ed25519.PrivateKey)
}

func newMember(t testing.TB) *member {
	t.Helper()
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "vault"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m := &member{store: s, dir: dir, access: testAccess{writers: map[identity.DeviceID]bool{}, readers: map[identity.DeviceID]bool{}}}
	t.Cleanup(func() { m.store.Close() })
	return m
}

// files makes records of a share with real chunked content, and a map of
// their blocks by hash.
func files(t testing.TB, key share.Key, n int) ([]record.Envelope, map[block.Hash][]byte) {
	t.Helper()
	blocks := map[block.Hash][]byte{}
	var envs []record.Envelope
	for i := range n {
		data := make([]byte, 20000+i*70000)
		rand.Read(data)
		copy(data, "CONTENT-MARKER-4417")
		chunks, err := chunk.SplitAll(context.Background(), bytes.NewReader(data), chunk.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		r := record.Record{Path: record.Path("secret-plans/file-" + string(rune('a'+i)) + ".txt"), Kind: record.File,
			Size: int64(len(data)), Mode: 0o644, ModTime: time.Unix(1700000000, 0), ModifiedBy: 1}
		r.Version = r.Version.Update(1, 1)
		for _, c := range chunks {
			blocks[c.Hash] = data[c.Offset : c.Offset+int64(c.Length)]
			r.Blocks = append(r.Blocks, record.BlockRef{Hash: c.Hash, Size: uint32(c.Length)})
		}
		r.FileHash = chunk.FileHash(chunks)
		env, err := key.Seal(r)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, env)
	}
	return envs, blocks
}

func readFrom(blocks map[block.Hash][]byte) func(block.Hash, uint32) ([]byte, bool) {
	return func(h block.Hash, _ uint32) ([]byte, bool) { b, ok := blocks[h]; return b, ok }
}

// A writer pushes sealed records and blocks to the encrypted member over
// TLS; a reader that holds nothing pulls them back, opens them and gets
// every envelope and block, while the member's files hold no name, no
// content and no envelope in the clear. A second push sends nothing.
func TestPushPullRoundTrip(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	envs, blocks := files(t, key, 4)

	m := newMember(t)
	server, _ := newIdentity(t)
	aID, aPriv := newIdentity(t)
	rID, _ := newIdentity(t)
	m.access.writers[aID.ID()] = true
	m.access.readers[rID.ID()] = true

	w := &Writer{Share: key.ID(), Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(blocks)}
	ca := dial(t, m, server, aID)
	st, err := w.Push(context.Background(), ca, envs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Items != len(envs) || st.Blocks != len(blocks) {
		t.Fatalf("pushed %d items, %d blocks; want %d, %d", st.Items, st.Blocks, len(envs), len(blocks))
	}
	if again, err := w.Push(context.Background(), ca, envs); err != nil || again.Items+again.Blocks != 0 {
		t.Fatalf("a second push sent %+v (%v), want nothing", again, err)
	}

	r := &Reader{Share: key.ID(), Base: base, Epoch: func(e uint64) (seal.Keys, bool) { return base, e == 0 },
		MayPush: func(d identity.DeviceID) bool { return d == aID.ID() }}
	cr := dial(t, m, server, rID)
	var got []record.Envelope
	var fetch Fetch
	if _, err := r.Pull(context.Background(), cr, nil, func(e []record.Envelope, f Fetch) error {
		got, fetch = append(got, e...), f
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(envs) {
		t.Fatalf("pulled %d records, want %d", len(got), len(envs))
	}
	for _, env := range got {
		if _, err := key.Check(env); err != nil {
			t.Fatal(err)
		}
		rec, _ := env.Record()
		for _, b := range rec.Blocks {
			data, err := fetch(context.Background(), b.Hash, b.Size)
			if err != nil || !bytes.Equal(data, blocks[b.Hash]) {
				t.Fatalf("block %x: %v", b.Hash[:4], err)
			}
		}
	}
	if again, _ := r.Pull(context.Background(), cr, nil, func(e []record.Envelope, _ Fetch) error {
		t.Errorf("pulled %d records again", len(e))
		return nil
	}); again.Items != 0 {
		t.Fatal("pulled again")
	}
	// A new record: the member's generation moves, and the reader takes
	// only the new one; asked again with the generation it holds, the
	// member answers "unchanged" and sends no entry.
	more, moreBlocks := files(t, key, 5)
	for h, d := range moreBlocks {
		blocks[h] = d
	}
	if _, err := w.Push(context.Background(), ca, more[4:]); err != nil {
		t.Fatal(err)
	}
	var fresh []record.Envelope
	if _, err := r.Pull(context.Background(), cr, nil, func(e []record.Envelope, _ Fetch) error {
		fresh = append(fresh, e...)
		return nil
	}); err != nil || len(fresh) != 1 || !bytes.Equal(fresh[0].Bytes(), more[4].Bytes()) {
		t.Fatalf("after one more record, pulled %d (%v)", len(fresh), err)
	}
	resp, err := cr.Request(context.Background(), &wire.VaultList{Share: key.ID(), Since: r.gen})
	if lr, ok := resp.(*wire.VaultListResponse); err != nil || !ok || !lr.Unchanged || len(lr.Entries) != 0 {
		t.Fatalf("a list at the current generation answered %+v, %v", resp, err)
	}
	m.store.Close()
	m.store, _ = Open(filepath.Join(m.dir, "vault"), nil) // reopened for Cleanup; grep the files first
	grepTree(t, m.dir, "secret-plans", "CONTENT-MARKER-4417")
}

// grepTree fails if any file under dir holds one of the markers.
func grepTree(t *testing.T, dir string, markers ...string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		for _, mk := range markers {
			if bytes.Contains(b, []byte(mk)) || strings.Contains(p, mk) {
				t.Errorf("%s holds %q", p, mk)
			}
		}
		return nil
	})
}

// The member refuses what it must not keep: an item signed by another
// device than the pusher, a tampered item, a push from a non-writer, and
// anything from a non-member; none of it is stored.
func TestStoreRefuses(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	envs, _ := files(t, key, 1)
	m := newMember(t)
	aID, aPriv := newIdentity(t)
	bID, bPriv := newIdentity(t)
	m.access.writers[aID.ID()] = true
	m.access.readers[bID.ID()] = true
	it, err := SealItem(key.ID(), base, 0, 1, base.Slot("x"), base.Tag(envs[0].Bytes()), Plain{Envelope: envs[0]}, aPriv)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(it.Bytes())
	tampered[itemHead+5] ^= 1
	other, _ := SealItem(key.ID(), base, 0, 1, base.Slot("x"), base.Tag(envs[0].Bytes()), Plain{Envelope: envs[0]}, bPriv)
	otherShare, _ := share.NewSecret()
	cases := []struct {
		name string
		from identity.DeviceID
		id   share.ID
		item []byte
	}{
		{"tampered", aID.ID(), key.ID(), tampered},
		{"signed for another share", aID.ID(), share.FromSecret(otherShare).ID(), it.Bytes()},
		{"another device's item", aID.ID(), key.ID(), other.Bytes()},
		{"a reader pushing", bID.ID(), key.ID(), other.Bytes()},
		{"truncated", aID.ID(), key.ID(), it.Bytes()[:40]},
	}
	for _, c := range cases {
		resp := m.store.Answer(c.from, &wire.VaultPut{Share: c.id, Items: [][]byte{c.item}}, m.access)
		if _, ok := resp.(*wire.ErrorResponse); !ok {
			t.Errorf("%s: answered %s, want a refusal", c.name, wire.Name(resp))
		}
	}
	stranger := identity.DeviceID{9}
	if _, ok := m.store.Answer(stranger, &wire.VaultList{Share: key.ID()}, m.access).(*wire.ErrorResponse); !ok {
		t.Error("a non-member was served a list")
	}
	if st, _ := m.store.Stats(key.ID()); st.Items != 0 {
		t.Fatalf("%d items stored from refused puts", st.Items)
	}
	// A replay (same seq) changes nothing; a newer seq replaces.
	if _, ok := m.store.Answer(aID.ID(), &wire.VaultPut{Share: key.ID(), Items: [][]byte{it.Bytes()}}, m.access).(*wire.VaultPutAck); !ok {
		t.Fatal("a good item refused")
	}
	if ack := m.store.Answer(aID.ID(), &wire.VaultPut{Share: key.ID(), Items: [][]byte{it.Bytes()}}, m.access).(*wire.VaultPutAck); ack.Items != 0 {
		t.Fatal("a replayed item was stored again")
	}
}

// After a removal, what is sealed under the new epoch's key does not open
// for a device that lacks it (the removed one): it learns nothing of new
// records from the encrypted member, while one holding the key reads them.
func TestNewEpochLocksOutRemoved(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	var epochKey [32]byte
	rand.Read(epochKey[:])
	epoch1 := seal.NewKeys(epochKey)
	envs, blocks := files(t, key, 2)
	m := newMember(t)
	server, _ := newIdentity(t)
	aID, aPriv := newIdentity(t)
	m.access.writers[aID.ID()] = true
	ca := dial(t, m, server, aID)
	w := &Writer{Share: key.ID(), Base: base, Epoch: 1, Keys: epoch1, Device: aPriv, ReadBlock: readFrom(blocks)}
	if _, err := w.Push(context.Background(), ca, envs); err != nil {
		t.Fatal(err)
	}
	r := &Reader{Share: key.ID(), Base: base, MayPush: func(identity.DeviceID) bool { return true }}
	pull := func(has map[uint64]seal.Keys) (Stats, []record.Envelope) {
		r.Epoch = func(e uint64) (seal.Keys, bool) { k, ok := has[e]; return k, ok }
		var got []record.Envelope
		st, err := r.Pull(context.Background(), ca, nil, func(e []record.Envelope, _ Fetch) error { got = append(got, e...); return nil })
		if err != nil {
			t.Fatal(err)
		}
		return st, got
	}
	if st, got := pull(map[uint64]seal.Keys{0: base}); len(got) != 0 || st.Locked != len(envs) {
		t.Fatalf("a device without the epoch key opened %d records (locked %d)", len(got), st.Locked)
	}
	// The same reader once the key reached it (a member that joined after
	// the removal gets it with the log, maybe after its first pull).
	if _, got := pull(map[uint64]seal.Keys{0: base, 1: epoch1}); len(got) != len(envs) {
		t.Fatalf("a device with the epoch key opened %d records, want %d", len(got), len(envs))
	}
	// And the share's read key alone does not open an epoch-1 block.
	for h, data := range blocks {
		s, _ := epoch1.SealBlock(data, h)
		if _, err := base.OpenBlock(s, h); !errors.Is(err, seal.ErrOpen) {
			t.Fatalf("an epoch-1 block opened with the read key: %v", err)
		}
		break
	}
}

// A record whose blocks are not all readable here (its file changed since
// it was indexed) is not pushed, and counted, so the caller pushes again.
func TestPushSkipsUnreadable(t *testing.T) {
	secret, _ := share.NewSecret()
	key := share.FromSecret(secret)
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	envs, blocks := files(t, key, 2)
	m := newMember(t)
	server, _ := newIdentity(t)
	aID, aPriv := newIdentity(t)
	m.access.writers[aID.ID()] = true
	c := dial(t, m, server, aID)
	rec, _ := envs[1].Record()
	partial := map[block.Hash][]byte{}
	for h, d := range blocks {
		if h != rec.Blocks[0].Hash {
			partial[h] = d
		}
	}
	w := &Writer{Share: key.ID(), Base: base, Keys: base, Device: aPriv, ReadBlock: readFrom(partial)}
	st, err := w.Push(context.Background(), c, envs)
	if err != nil || st.Items != 1 || st.Skipped != 1 {
		t.Fatalf("push with a block missing: %+v, %v; want 1 item, 1 skipped", st, err)
	}
	w.ReadBlock = readFrom(blocks)
	if st, err := w.Push(context.Background(), c, envs); err != nil || st.Items != 1 || st.Skipped != 0 {
		t.Fatalf("push again: %+v, %v; want the skipped one", st, err)
	}
}
