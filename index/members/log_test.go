package members

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a share and some devices for tests.
type world struct {
	tb      testing.TB
	share   [32]byte
	sharePK ed25519.PublicKey
	shareSK ed25519.PrivateKey
	dev     map[string]ed25519.PrivateKey
	now     time.Time
}

func newWorld(t testing.TB, names ...string) *world {
	w := &world{tb: t, dev: map[string]ed25519.PrivateKey{}, now: time.Unix(1_800_000_000, 0).UTC()}
	var err error
	w.sharePK, w.shareSK, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	w.share = [32]byte(w.sharePK) // any 32 bytes name it in these tests
	for _, n := range names {
		_, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		w.dev[n] = sk
	}
	return w
}

func (w *world) id(name string) Device { return DeviceOf(w.dev[name].Public().(ed25519.PublicKey)) }

// entry makes the next entry of s by author, signed by author and signers.
func (w *world) entry(s *State, author string, b Body, signers ...string) *Entry {
	w.tb.Helper()
	b.Share, b.Seq, b.Prev, b.Author = w.share, uint64(s.Len()), s.Head(), w.id(author)
	w.now = w.now.Add(time.Minute)
	b.Time = w.now
	e, err := NewEntry(b)
	if err != nil {
		w.tb.Fatal(err)
	}
	e.Sign(w.dev[author])
	for _, n := range signers {
		e.Sign(w.dev[n])
	}
	if b.Kind == KindGenesis {
		e.SignShare(w.shareSK)
	}
	return e
}

func (w *world) genesis(owner string, others ...string) *State {
	s := NewState(w.share, w.sharePK)
	ms := []Member{{w.id(owner), ReadWrite}}
	for _, o := range others {
		ms = append(ms, Member{w.id(o), ReadWrite})
	}
	if err := s.Append(w.entry(s, owner, Body{Kind: KindGenesis, Members: ms})); err != nil {
		w.tb.Fatal(err)
	}
	return s
}

func add(d Device, l Level) Body { return Body{Kind: KindAdd, Member: Member{d, l}} }

func TestRules(t *testing.T) {
	w := newWorld(t, "a", "b", "c", "r", "x")
	s := w.genesis("a")
	must := func(e *Entry) {
		t.Helper()
		if err := s.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	must(w.entry(s, "a", add(w.id("b"), ReadWrite)))
	must(w.entry(s, "b", add(w.id("r"), ReadOnly))) // k = 1: any writer
	for _, tt := range []struct {
		name string
		e    *Entry
		want error
	}{
		{"a stranger adds itself", w.entry(s, "x", add(w.id("x"), ReadWrite)), ErrRefused},
		{"ro adds a writer", w.entry(s, "r", add(w.id("c"), ReadWrite)), ErrRefused},
		{"ro removes a writer", w.entry(s, "r", Body{Kind: KindRemove, Member: Member{Device: w.id("b")}, Epoch: 1}), ErrRefused},
		{"ro raises itself", w.entry(s, "r", add(w.id("r"), ReadWrite)), ErrRefused},
		{"a non-owner changes the owners", w.entry(s, "b", Body{Kind: KindOwners, Owners: []Device{w.id("b")}, K: 1}), ErrNeedsApproval},
		{"a writer removes the only owner", w.entry(s, "b", Body{Kind: KindRemove, Member: Member{Device: w.id("a")}, Epoch: 1}), ErrRefused},
		{"a skipped epoch", w.entry(s, "a", Body{Kind: KindRemove, Member: Member{Device: w.id("r")}, Epoch: 5}), ErrRefused},
	} {
		if tt.e == nil {
			continue
		}
		if err := s.Check(tt.e); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := NewEntry(Body{Share: w.share, Seq: 3, Prev: s.Head(), Kind: KindGenesis, Members: []Member{{w.id("a"), ReadWrite}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a second genesis: %v", err)
	}
	// ro may add ro; a forged signature counts for nothing.
	must(w.entry(s, "r", add(w.id("c"), ReadOnly)))
	e := w.entry(s, "b", add(w.id("x"), ReadOnly))
	e.Sigs[0].Sig[0] ^= 1
	if err := s.Check(e); !errors.Is(err, ErrRefused) {
		t.Errorf("a bad signature: %v", err)
	}
	// A signature by the author's key on another device's entry.
	e = w.entry(s, "b", add(w.id("x"), ReadOnly))
	e.Author = w.id("a")
	if err := s.Check(e); !errors.Is(err, ErrRefused) {
		t.Errorf("an author who did not sign: %v", err)
	}
	// Removed members sign nothing more.
	must(w.entry(s, "a", Body{Kind: KindRemove, Member: Member{Device: w.id("r")}, Epoch: 1}))
	if err := s.Check(w.entry(s, "r", add(w.id("x"), ReadOnly))); !errors.Is(err, ErrRefused) {
		t.Errorf("an entry by a removed member: %v", err)
	}
	if s.Epoch() != 1 {
		t.Errorf("epoch %d after a removal", s.Epoch())
	}
	in, _ := s.Member(w.id("r"))
	if !in.Removed || in.RemovedBy != w.id("a") {
		t.Errorf("r after removal: %+v", in)
	}
}

func TestForkAndReplay(t *testing.T) {
	w := newWorld(t, "a", "b", "c")
	s := w.genesis("a")
	e1 := w.entry(s, "a", add(w.id("b"), ReadWrite))
	other := w.entry(s, "a", add(w.id("c"), ReadOnly)) // same position, another change
	if err := s.Append(e1); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(e1); !errors.Is(err, ErrRefused) {
		t.Errorf("a replayed entry: %v", err)
	}
	if err := s.Append(other); !errors.Is(err, ErrFork) {
		t.Errorf("a second entry at position 1: %v", err)
	}
	// An entry that names the wrong predecessor.
	bad := w.entry(s, "a", add(w.id("c"), ReadOnly))
	b := bad.Body
	b.Prev = Hash{1}
	bad, _ = NewEntry(b)
	bad.Sign(w.dev["a"])
	if err := s.Append(bad); !errors.Is(err, ErrFork) {
		t.Errorf("a broken link: %v", err)
	}
	// A genesis not signed by the share key.
	g := NewState(w.share, w.sharePK)
	ge, _ := NewEntry(Body{Share: w.share, Author: w.id("b"), Kind: KindGenesis, Members: []Member{{w.id("b"), ReadWrite}}})
	ge.Sign(w.dev["b"])
	if err := g.Append(ge); !errors.Is(err, ErrRefused) {
		t.Errorf("a genesis without the share key: %v", err)
	}
	if s.Len() != 2 {
		t.Errorf("log has %d entries, want 2", s.Len())
	}
}

func TestThreshold(t *testing.T) {
	w := newWorld(t, "a", "b", "c")
	s := w.genesis("a", "b")
	if err := s.Append(w.entry(s, "a", Body{Kind: KindOwners, Owners: []Device{w.id("a"), w.id("b")}, K: 2})); err != nil {
		t.Fatal(err)
	}
	lone := w.entry(s, "a", add(w.id("c"), ReadWrite))
	if err := s.Append(lone); !errors.Is(err, ErrNeedsApproval) {
		t.Fatalf("one owner of two adds a writer: %v", err)
	}
	// A non-owner's signature is not an approval.
	lone.Sign(w.dev["c"])
	if err := s.Check(lone); !errors.Is(err, ErrNeedsApproval) {
		t.Fatalf("a non-owner approved: %v", err)
	}
	// The second owner signs the same body elsewhere; signatures merge.
	again, err := Decode(lone.Encode())
	if err != nil {
		t.Fatal(err)
	}
	again.Sigs = nil
	again.Sign(w.dev["b"])
	lone.merge(again)
	if err := s.Append(lone); err != nil {
		t.Fatalf("with two owners: %v", err)
	}
	if in, _ := s.Member(w.id("c")); in.Level != ReadWrite {
		t.Errorf("c is %v", in.Level)
	}
	// ro additions need no owners, even at k = 2.
	if err := s.Append(w.entry(s, "c", add(Device{7}, ReadOnly))); err != nil {
		t.Errorf("a writer adds a reader at k = 2: %v", err)
	}
}

func openStore(t testing.TB) (*Store, *pebble.DB) {
	db, err := pebble.Open(filepath.Join(t.TempDir(), "db"), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return Open(db), db
}

func TestStoreMergeAndPending(t *testing.T) {
	w := newWorld(t, "a", "b", "c")
	sa, dba := openStore(t)
	sb, _ := openStore(t)
	s := w.genesis("a", "b")
	owners := w.entry(s, "a", Body{Kind: KindOwners, Owners: []Device{w.id("a"), w.id("b")}, K: 2})
	if err := s.Append(owners); err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	for _, e := range s.Entries(0) {
		raw = append(raw, e.Encode())
	}
	for _, st := range []*Store{sa, sb} {
		if n, err := st.Merge(w.share, w.sharePK, raw); err != nil || n != 2 {
			t.Fatalf("merge: %d, %v", n, err)
		}
	}
	// a proposes; it is pending, not in the log.
	prop := w.entry(s, "a", add(w.id("c"), ReadWrite))
	if ok, err := sa.Append(w.share, w.sharePK, prop); ok || err != nil {
		t.Fatalf("proposal applied=%v err=%v", ok, err)
	}
	if sa.MayWrite(w.share, short64(w.id("c")), uint64(w.now.Unix())) {
		t.Errorf("c may write before the approval")
	}
	if !sa.MayWrite(w.share, short64(w.id("c")), 1) {
		t.Errorf("a record made before the log began, by a device it does not name, is refused")
	}
	// b gets it relayed, approves it, and a gets b's signature back.
	pend, _ := sa.Pending(w.share, w.sharePK)
	if err := sb.MergePending(w.share, w.sharePK, [][]byte{pend[0].Encode()}); err != nil {
		t.Fatal(err)
	}
	pb, _ := sb.Pending(w.share, w.sharePK)
	pb[0].Sign(w.dev["b"])
	if ok, err := sb.Append(w.share, w.sharePK, pb[0]); !ok || err != nil {
		t.Fatalf("approved: applied=%v err=%v", ok, err)
	}
	if err := sa.MergePending(w.share, w.sharePK, [][]byte{pb[0].Encode()}); err != nil {
		t.Fatal(err)
	}
	if !sa.MayWrite(w.share, short64(w.id("c")), uint64(w.now.Unix())) {
		t.Errorf("c may not write after the approval")
	}
	// The log survives a reopen.
	again := Open(dba)
	st, err := again.State(w.share, w.sharePK)
	if err != nil || st.Len() != 3 {
		t.Fatalf("reopened: %v entries, %v", st.Len(), err)
	}
}

func TestMigratedGenesisYields(t *testing.T) {
	w := newWorld(t, "a", "b")
	sa, _ := openStore(t)
	mk := func(owner, other string) *Entry {
		s := NewState(w.share, w.sharePK)
		return w.entry(s, owner, Body{Kind: KindGenesis, Migrated: true, Members: []Member{{w.id(owner), ReadWrite}, {w.id(other), ReadWrite}}})
	}
	ga, gb := mk("a", "b"), mk("b", "a")
	if _, err := sa.Append(w.share, w.sharePK, ga); err != nil {
		t.Fatal(err)
	}
	_, err := sa.Merge(w.share, w.sharePK, [][]byte{gb.Encode()})
	st, _ := sa.State(w.share, w.sharePK)
	winner := ga
	if string(gb.hash[:]) < string(ga.hash[:]) {
		winner = gb
	}
	if st.Entries(0)[0].Hash() != winner.Hash() {
		t.Errorf("after merging two migrated geneses the log starts with the larger hash (err %v)", err)
	}
	// Once the log holds more than its migrated genesis, another genesis
	// is a fork.
	st, _ = sa.State(w.share, w.sharePK)
	author := "a"
	if winner == gb {
		author = "b"
	}
	if _, err := sa.Append(w.share, w.sharePK, w.entry(st, author, add(Device{9}, ReadOnly))); err != nil {
		t.Fatal(err)
	}
	loser := ga
	if winner == ga {
		loser = gb
	}
	// A lone migrated genesis is not taken (its holder gives way when it
	// asks us), nor is it an error.
	if _, err := sa.Merge(w.share, w.sharePK, [][]byte{loser.Encode()}); err != nil {
		t.Errorf("a lone migrated genesis after the log grew: %v", err)
	}
	if st, _ := sa.State(w.share, w.sharePK); st.Len() != 2 {
		t.Errorf("the log has %d entries, want 2", st.Len())
	}
	// Another log that would not give way is a fork.
	other := NewState(w.share, w.sharePK)
	g := w.entry(other, "b", Body{Kind: KindGenesis, Members: []Member{{w.id("b"), ReadWrite}}})
	if err := other.Append(g); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Merge(w.share, w.sharePK, [][]byte{g.Encode(), w.entry(other, "b", add(Device{8}, ReadOnly)).Encode()}); !errors.Is(err, ErrFork) {
		t.Errorf("a forked log: %v", err)
	}
}

func short64(d Device) uint64 {
	return uint64(d[0])<<56 | uint64(d[1])<<48 | uint64(d[2])<<40 | uint64(d[3])<<32 | uint64(d[4])<<24 | uint64(d[5])<<16 | uint64(d[6])<<8 | uint64(d[7])
}

func TestEpochKeySeal(t *testing.T) {
	w := newWorld(t, "a", "b")
	k, err := NewEpochKey()
	if err != nil {
		t.Fatal(err)
	}
	box, err := SealKey(k, w.dev["a"].Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenKey(box, w.dev["a"])
	if err != nil || got != k {
		t.Fatalf("open own box: %v", err)
	}
	if _, err := OpenKey(box, w.dev["b"]); err == nil {
		t.Errorf("another device opened the box")
	}
}
