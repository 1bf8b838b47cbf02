package engine

import (
	"crypto/ed25519"
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// storeAccess answers Access from a real membership log.
type storeAccess struct {
	st      *members.Store
	share   [32]byte
	refused atomic.Int64
	paths   atomic.Value // string: the last path refused
}

func (a *storeAccess) MayWrite(_ identity.DeviceID, rec record.Record) bool {
	if a.st.MayWrite(a.share, uint64(rec.ModifiedBy), rec.Version.Get(rec.ModifiedBy)) {
		return true
	}
	a.refused.Add(1)
	a.paths.Store(string(rec.Path))
	return false
}

// TestAccessRefusesRemovedWriter: records of a writer the membership log
// removed are dropped by the receiver; those it wrote while a member, and
// the others' records, still arrive.
func TestAccessRefusesRemovedWriter(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "a", key), newDevice(t, "b", key)
	a.addShare(b)
	priv := b.id.Certificate().PrivateKey.(ed25519.PrivateKey)
	sharePriv, _ := key.Signer()
	st := members.Open(b.db.Pebble())
	id := [32]byte(key.ID())
	devA, devB := members.Device(a.id.ID()), members.Device(b.id.ID())
	next := func(body members.Body) {
		t.Helper()
		s, err := st.State(id, key.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		body.Share, body.Seq, body.Prev, body.Author = id, uint64(s.Len()), s.Head(), devB
		if body.Time.IsZero() {
			body.Time = time.Now()
		}
		e, err := members.NewEntry(body)
		if err != nil {
			t.Fatal(err)
		}
		e.Sign(priv)
		if body.Kind == members.KindGenesis {
			e.SignShare(sharePriv)
		}
		if ok, err := st.Append(id, key.PublicKey(), e); !ok || err != nil {
			t.Fatalf("append %s: %v %v", body.Kind, ok, err)
		}
	}
	next(members.Body{Kind: members.KindGenesis, Members: []members.Member{{Device: devB, Level: members.ReadWrite}, {Device: devA, Level: members.ReadWrite}}})
	acc := &storeAccess{st: st, share: id}
	if err := b.e.AddShare(ShareConfig{Key: key, Name: "s", Path: b.dir, Members: []identity.DeviceID{a.id.ID()}, Access: acc}); err != nil {
		t.Fatal(err)
	}
	write(t, a, "member.txt", []byte("written while a member"))
	link(t, a, b)
	waitConverged(t, a, b)
	expectFile(t, b, "member.txt", []byte("written while a member"))

	// The log removes a (an hour ago, so every counter a uses now is later).
	next(members.Body{Kind: members.KindRemove, Member: members.Member{Device: devA}, Epoch: 1, Time: time.Now().Add(-time.Hour)})
	if st.MayWrite(id, binary.BigEndian.Uint64(devA[:8]), uint64(time.Now().Unix())) {
		t.Fatal("the log still lets a write")
	}
	write(t, a, "removed.txt", []byte("written after the removal"))
	deadline := time.Now().Add(20 * time.Second)
	for acc.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b never refused a's record:\n%s", b.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p, _ := acc.paths.Load().(string); !strings.HasPrefix(p, "removed") {
		t.Errorf("refused %q", p)
	}
	waitScanned(t, b)
	if got := snapshot(t, b.dir); strings.Contains(got, "removed.txt") {
		t.Fatalf("a removed writer's record was applied:\n%s", got)
	}
	expectFile(t, b, "member.txt", []byte("written while a member"))
}

// gateAccess lets records in only once opened.
type gateAccess struct {
	open    atomic.Bool
	refused atomic.Int64
}

func (g *gateAccess) MayWrite(identity.DeviceID, record.Record) bool {
	if g.open.Load() {
		return true
	}
	g.refused.Add(1)
	return false
}

// TestReconsiderTakesWhatWasRefused: a record the share's Access refused
// is fetched again once Reconsider says the access changed, although the
// two roots are the pair the last reconcile ended on (it would otherwise
// wait for either device to change something).
func TestReconsiderTakesWhatWasRefused(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "a", key), newDevice(t, "b", key)
	a.addShare(b)
	acc := new(gateAccess)
	if err := b.e.AddShare(ShareConfig{Key: key, Name: "s", Path: b.dir, Members: []identity.DeviceID{a.id.ID()}, Access: acc}); err != nil {
		t.Fatal(err)
	}
	data := randBytes(5000)
	write(t, a, "mounted/own.txt", data)
	waitScanned(t, a)
	link(t, a, b)
	deadline := time.Now().Add(20 * time.Second)
	for acc.refused.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("B never refused a record")
		}
		time.Sleep(10 * time.Millisecond)
	}
	acc.open.Store(true)
	if err := b.e.Reconsider(key.ID()); err != nil {
		t.Fatal(err)
	}
	waitConverged(t, a, b)
	expectFile(t, b, "mounted/own.txt", data)
}
