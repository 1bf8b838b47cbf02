package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/chunk"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/delta"
)

// The tests in this file put a device under test (dut) in two shares, A and
// B, and talk to it as a member of A only, with a client that speaks the
// wire protocol over real TLS and keeps every byte it reads. Whatever it
// asks or sends, nothing of B may come back and nothing may land in B.

// TestBlocksOfAnotherShareNotServed: a member of A that names, by hash, a
// block held only in B's files (as a block of A, with and without a delta
// signature, and as a block of B) gets NotFound or Refused; it still gets
// A's blocks, and A's small files inline with their records.
func TestBlocksOfAnotherShareNotServed(t *testing.T) {
	dut, keyA, keyB, dirB := twoShareDevice(t)
	client := newHostile(t)
	dut.addShares(t, keyA, keyB, dirB, []identity.DeviceID{client.id.ID()}, nil)

	secret := randBytes(300 << 10) // several blocks, found in B only
	mustWrite(t, filepath.Join(dirB, "secret-b.bin"), secret)
	open := randBytes(200 << 10)
	mustWrite(t, filepath.Join(dut.dir, "open-a.bin"), open)
	small := randBytes(5 << 10)
	mustWrite(t, filepath.Join(dut.dir, "small-a.txt"), small)
	dut.scanShares(t)
	bRec := shareRecord(t, dut, keyB, dirB, "secret-b.bin")
	aRec := shareRecord(t, dut, keyA, dut.dir, "open-a.bin")

	client.dial(t, dut)
	sig, _ := delta.Signature(randBytes(16<<10), 0).MarshalBinary()
	for _, b := range bRec.Blocks {
		expectRefusal(t, client.ask(t, &wire.BlockRequest{Share: keyA.ID(), Hash: b.Hash, Size: b.Size}),
			wire.CodeNotFound, "a block of B asked as a block of A")
		expectRefusal(t, client.ask(t, &wire.BlockRequest{Share: keyA.ID(), Hash: b.Hash, Size: b.Size, Signature: sig}),
			wire.CodeNotFound, "a block of B asked as a block of A, with a delta signature")
		expectRefusal(t, client.ask(t, &wire.BlockRequest{Share: keyB.ID(), Hash: b.Hash, Size: b.Size}),
			wire.CodeRefused, "a block of B asked by a non-member")
	}

	// What a member of A may have, it gets.
	var got []byte
	for _, b := range aRec.Blocks {
		resp := client.ask(t, &wire.BlockRequest{Share: keyA.ID(), Hash: b.Hash, Size: b.Size})
		br, ok := resp.(*wire.BlockResponse)
		if !ok {
			t.Fatalf("a member of A asked for a block of A: %s", describe(resp))
		}
		data, err := dut.e.codec.decodeBlock(br, b.Hash, b.Size, nil)
		if err != nil {
			t.Fatalf("block of A: %v", err)
		}
		got = append(got, data...)
	}
	if !bytes.Equal(got, open) {
		t.Fatal("the blocks of A served to its member do not make its file")
	}
	rr := client.records(t, keyA.ID(), []merkle.Key{keyA.PathKey("small-a.txt")}, []merkle.Leaf{{}})
	if len(rr) != 1 || len(rr[0].Content) == 0 {
		t.Fatalf("a member of A holding nothing at small-a.txt got %d records, not its inline content", len(rr))
	}
	client.expectNothingOf(t, "B's file", secret)
}

// TestTempsOfAnotherShareNotServed: a block that has arrived only in the
// temp of a pull of B, still under way, is not served to a member of A
// that names it by hash; a member of B gets it (members of one share
// fetching the same file help each other).
func TestTempsOfAnotherShareNotServed(t *testing.T) {
	dut, keyA, keyB, dirB := twoShareDevice(t)
	client, memberB := newHostile(t), newHostile(t)
	seeder := newDevice(t, "seeder", keyB)
	seeder.addShare(dut)
	dut.addShares(t, keyA, keyB, dirB, []identity.DeviceID{client.id.ID()},
		[]identity.DeviceID{seeder.id.ID(), memberB.id.ID()})
	dut.scanShares(t)

	big := randBytes(4 << 20) // a resumable temp: larger than smallFile
	write(t, seeder, "big-b.bin", big)
	waitScanned(t, seeder)
	stall := &staller{serve: 3, release: make(chan struct{})}
	linkWrapped(t, dut, seeder, nil, func(s *Session) conn.Handler { stall.Session = s; return stall })

	// Wait until a block the seeder gave is in the dut's temp of big-b.bin.
	var h block.Hash
	var size uint32
	waitCond(t, "a block of B in a temp", func() bool {
		for _, b := range stall.given() {
			dut.e.temps.mu.Lock()
			n := len(dut.e.temps.m[b.Hash])
			dut.e.temps.mu.Unlock()
			if n > 0 {
				h, size = b.Hash, b.Size
				return true
			}
		}
		return false
	})
	if _, err := os.Lstat(filepath.Join(dirB, "big-b.bin")); err == nil {
		t.Fatal("big-b.bin is complete: the pull was meant to be under way")
	}
	marker, ok := dut.e.temps.read(func(share.ID) bool { return true }, h, size)
	if !ok {
		t.Fatal("the temp's block cannot be read back")
	}

	client.dial(t, dut)
	expectRefusal(t, client.ask(t, &wire.BlockRequest{Share: keyA.ID(), Hash: h, Size: size}),
		wire.CodeNotFound, "a block in B's temp asked as a block of A")
	sig, _ := delta.Signature(randBytes(16<<10), 0).MarshalBinary()
	expectRefusal(t, client.ask(t, &wire.BlockRequest{Share: keyA.ID(), Hash: h, Size: size, Signature: sig}),
		wire.CodeNotFound, "a block in B's temp asked as a block of A, with a delta signature")
	client.expectNothingOf(t, "B's temp", marker)

	memberB.dial(t, dut)
	resp := memberB.ask(t, &wire.BlockRequest{Share: keyB.ID(), Hash: h, Size: size})
	if br, ok := resp.(*wire.BlockResponse); !ok {
		t.Fatalf("a member of B asked for a block in B's temp: %s", describe(resp))
	} else if _, err := dut.e.codec.decodeBlock(br, h, size, nil); err != nil {
		t.Fatalf("the temp's block served to a member of B: %v", err)
	}
	close(stall.release)
}

// TestRecordsOfAnotherShareNotServed: a member of A gets no tree node and
// no record of B; a record of A whose content is, on this device, held
// only by a file of B goes without it (not inline); and a record delta is
// never made against an envelope of B, whatever leaf the asker says it has.
func TestRecordsOfAnotherShareNotServed(t *testing.T) {
	dut, keyA, keyB, dirB := twoShareDevice(t)
	client := newHostile(t)
	dut.addShares(t, keyA, keyB, dirB, []identity.DeviceID{client.id.ID()}, nil)

	content := randBytes(8 << 10)
	mustWrite(t, filepath.Join(dut.dir, "note-a.txt"), content)
	mustWrite(t, filepath.Join(dirB, "note-b.txt"), content)
	dut.scanShares(t)
	// A's copy changes on disk, and the index has not seen it yet: the only
	// file on this device that still holds the content of A's record is B's.
	mustWrite(t, filepath.Join(dut.dir, "note-a.txt"), randBytes(8<<10))
	bEntry := shareEntry(t, dut, keyB, dirB, "note-b.txt")
	waitCond(t, "B's envelope in B's history", func() bool {
		return dut.e.folder(keyB.ID()).hist.find(bEntry.Envelope.Leaf()) != nil
	})

	client.dial(t, dut)
	expectRefusal(t, client.ask(t, &wire.NodesRequest{Share: keyB.ID(), Prefixes: []merkle.Prefix{{}}}),
		wire.CodeRefused, "B's tree asked by a non-member")
	expectRefusal(t, client.ask(t, &wire.RecordsRequest{Share: keyB.ID(), Keys: []merkle.Key{keyB.PathKey("note-b.txt")},
		Have: []merkle.Leaf{{}}}), wire.CodeRefused, "B's records asked by a non-member")
	if rr := client.records(t, keyA.ID(), []merkle.Key{keyB.PathKey("note-b.txt")}, []merkle.Leaf{{}}); len(rr) != 0 {
		t.Fatalf("B's key asked as a key of A: %d records came back", len(rr))
	}
	rr := client.records(t, keyA.ID(), []merkle.Key{keyA.PathKey("note-a.txt")}, []merkle.Leaf{{}})
	if len(rr) != 1 {
		t.Fatalf("A's record: %d records came back", len(rr))
	}
	if len(rr[0].Content) != 0 {
		t.Errorf("A's record came with content, read from B's file (%d bytes)", len(rr[0].Content))
	}
	rr = client.records(t, keyA.ID(), []merkle.Key{keyA.PathKey("note-a.txt")}, []merkle.Leaf{bEntry.Envelope.Leaf()})
	if len(rr) != 1 {
		t.Fatalf("A's record asked with B's leaf as the base: %d records came back", len(rr))
	}
	if rr[0].Encoding == wire.RecordZstdDict {
		t.Fatalf("A's record came as a delta against %x, B's envelope", rr[0].Base[:4])
	}
	// The same record pushed (as after a commit) goes without content too.
	aEntry := shareEntry(t, dut, keyA, dut.dir, "note-a.txt")
	dut.e.folder(keyA.ID()).push(context.Background(), []outgoing{{env: aEntry.Envelope}}, false)
	waitCond(t, "the push of note-a.txt", func() bool {
		for _, rd := range client.pushed(keyA.ID()) {
			if rd.Key == aEntry.Envelope.Key() {
				return true
			}
		}
		return false
	})
	for _, rd := range client.pushed(keyA.ID()) {
		if len(rd.Content) != 0 {
			t.Errorf("A's record was pushed with content, read from B's file (%d bytes)", len(rd.Content))
		}
	}
	client.expectNothingOf(t, "B's file", content)
	envB := bEntry.Envelope.Bytes()
	client.expectNothingOf(t, "B's envelope", envB[len(envB)-64:]) // its signature
}

// TestPushIntoAnotherShareIgnored: a member of A pushes a record, signed
// with B's real key (a replay, say), into B, and announces a root of B.
// Nothing lands in B, and the device asks it nothing about B. A push into
// A, sent after them, is applied: by then the others were handled.
func TestPushIntoAnotherShareIgnored(t *testing.T) {
	dut, keyA, keyB, dirB := twoShareDevice(t)
	client := newHostile(t)
	dut.addShares(t, keyA, keyB, dirB, []identity.DeviceID{client.id.ID()}, nil)
	dut.scanShares(t)
	client.dial(t, dut)

	ctx := context.Background()
	planted := randBytes(4 << 10)
	if err := client.c.Send(ctx, &wire.RecordPush{Share: keyB.ID(), Records: []wire.RecordData{sealSmallFile(t, keyB, "planted.txt", planted)}}); err != nil {
		t.Fatal(err)
	}
	if err := client.c.Send(ctx, &wire.ShareState{Share: keyB.ID(), Root: merkle.Hash(block.Sum([]byte("a root of B"))), Count: 1}); err != nil {
		t.Fatal(err)
	}
	after := randBytes(4 << 10)
	if err := client.c.Send(ctx, &wire.RecordPush{Share: keyA.ID(), Records: []wire.RecordData{sealSmallFile(t, keyA, "after.txt", after)}}); err != nil {
		t.Fatal(err)
	}
	waitCond(t, "the push into A to land", func() bool {
		got, err := os.ReadFile(filepath.Join(dut.dir, "after.txt"))
		return err == nil && bytes.Equal(got, after)
	})
	if _, err := os.Lstat(filepath.Join(dirB, "planted.txt")); err == nil {
		t.Fatal("a member of A planted a file in B")
	}
	idx, err := dut.db.Share(keyB, dirB, dut.id.ID().Short())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := idx.Lookup("planted.txt"); ok {
		t.Fatal("a member of A planted a record in B's index")
	}
	for _, m := range client.heard() {
		if id, ok := namedShare(m); ok && id == keyB.ID() {
			t.Fatalf("the device told a member of A about B: %s", wire.Name(m))
		}
	}
	for _, st := range dut.e.Status().Shares {
		if st.ID == keyB.ID().String() && len(st.Peers) != 0 {
			t.Fatalf("B lists %d connected members; the only peer is a member of A", len(st.Peers))
		}
	}
}

// TestLocalCopyInAnotherShareStillUsed: building a file of A from a record
// sent by a peer that is a member of B too, the device takes blocks from its
// own copy in B and asks the peer for none (a move across shares is free).
func TestLocalCopyInAnotherShareStillUsed(t *testing.T) {
	dut, keyA, keyB, dirB := twoShareDevice(t)
	peerA := newDevice(t, "peerA", keyA)
	peerA.addShare(dut)
	both := []identity.DeviceID{peerA.id.ID()}
	dut.addShares(t, keyA, keyB, dirB, both, both)
	data := randBytes(3 << 20)
	mustWrite(t, filepath.Join(dirB, "data-b.bin"), data)
	dut.scanShares(t)
	write(t, peerA, "copy-a.bin", data)
	waitScanned(t, peerA)

	count := &served{}
	linkWrapped(t, dut, peerA, nil, func(s *Session) conn.Handler { return servedCounter{s, count} })
	waitCond(t, "copy-a.bin on the device", func() bool {
		got, err := os.ReadFile(filepath.Join(dut.dir, "copy-a.bin"))
		return err == nil && bytes.Equal(got, data)
	})
	if n := count.blocks.Load(); n != 0 {
		t.Fatalf("the device asked the member of A and B for %d blocks it holds in B", n)
	}
}

// TestLocalCopyNotLentToANonMember: a writer of A that is no member of B
// signs a record of A naming the blocks of a file only B holds (it learnt
// their hashes somehow: a hash is no proof of holding the content). The
// device must not build that file from its copy in B, which would put B's
// content in A for every member of A to read: it asks the sender for the
// blocks, hears no, and the file never appears.
func TestLocalCopyNotLentToANonMember(t *testing.T) {
	dut, keyA, keyB, dirB := twoShareDevice(t)
	client := newHostile(t)
	dut.addShares(t, keyA, keyB, dirB, []identity.DeviceID{client.id.ID()}, nil)
	secret := randBytes(2 << 20) // a resumable pull, several blocks
	mustWrite(t, filepath.Join(dirB, "secret-b.bin"), secret)
	small := randBytes(5 << 10) // a one-block file, fetched in one go
	mustWrite(t, filepath.Join(dirB, "small-b.txt"), small)
	dut.scanShares(t)
	client.dial(t, dut)

	var asked []block.Hash
	for _, name := range []string{"secret-b.bin", "small-b.txt"} {
		bRec := shareRecord(t, dut, keyB, dirB, name)
		forged := bRec
		forged.Path = record.Path("copied-" + name)
		forged.Version = record.Vector{{Device: 77, Value: 1}}
		forged.ModifiedBy = 77
		env, err := keyA.Seal(forged)
		if err != nil {
			t.Fatal(err)
		}
		rd := wire.RecordData{Key: env.Key(), Encoding: wire.RecordPlain, Data: env.Bytes()}
		if err := client.c.Send(context.Background(), &wire.RecordPush{Share: keyA.ID(), Records: []wire.RecordData{rd}}); err != nil {
			t.Fatal(err)
		}
		asked = append(asked, bRec.Blocks[0].Hash)
	}
	// The device, unable to use its copy in B, asks the sender for a block
	// of each file: by then it has decided where each block comes from.
	waitCond(t, "the device to ask the sender for the blocks", func() bool {
		seen := 0
		for _, h := range asked {
			for _, m := range client.heard() {
				if br, ok := m.(*wire.BlockRequest); ok && br.Share == keyA.ID() && br.Hash == h {
					seen++
					break
				}
			}
		}
		return seen == len(asked)
	})
	for _, name := range []string{"secret-b.bin", "small-b.txt"} {
		if _, err := os.Lstat(filepath.Join(dut.dir, "copied-"+name)); err == nil {
			t.Fatalf("the device built copied-%s in A from its copy in B for a member of A only", name)
		}
	}
	client.expectNothingOf(t, "B's file", secret)
	client.expectNothingOf(t, "B's small file", small)
}

// twoShareDevice starts the device under test with two share keys; its
// share A lives in dut.dir, B in the returned folder. addShares adds them.
func twoShareDevice(t *testing.T) (dut *device, keyA, keyB share.Key, dirB string) {
	t.Helper()
	keyA, keyB = newKey(t), newKey(t)
	dut = newDevice(t, "dut", keyA)
	dirB = filepath.Join(dut.base, "share-b")
	if err := os.MkdirAll(dirB, 0o755); err != nil {
		t.Fatal(err)
	}
	return dut, keyA, keyB, dirB
}

// addShares gives d share A (in d.dir) with members a and share B (in
// dirB) with members b.
func (d *device) addShares(t *testing.T, keyA, keyB share.Key, dirB string, a, b []identity.DeviceID) {
	t.Helper()
	if err := d.e.AddShare(ShareConfig{Key: keyA, Name: "a", Path: d.dir, Members: a}); err != nil {
		t.Fatal(err)
	}
	if err := d.e.AddShare(ShareConfig{Key: keyB, Name: "b", Path: dirB, Members: b}); err != nil {
		t.Fatal(err)
	}
}

// scanShares rescans every share of d and waits until a full scan that
// started after the call has finished in each (a scan the watcher started
// before the test wrote its files does not count).
func (d *device) scanShares(t *testing.T) {
	t.Helper()
	folders := d.e.folders()
	before := make([]int, len(folders))
	for i, f := range folders {
		f.mu.Lock()
		before[i] = f.mu.fullScans[0]
		f.mu.Unlock()
		if err := d.e.Rescan(f.id, nil, true); err != nil {
			t.Fatal(err)
		}
	}
	waitCond(t, d.name+" to scan", func() bool {
		for i, f := range folders {
			f.mu.Lock()
			done := f.mu.fullScans[1]
			f.mu.Unlock()
			if done <= before[i] {
				return false
			}
		}
		return true
	})
}

func shareEntry(t *testing.T, d *device, key share.Key, dir, p string) index.Entry {
	t.Helper()
	idx, err := d.db.Share(key, dir, d.id.ID().Short())
	if err != nil {
		t.Fatal(err)
	}
	e, ok, err := idx.Lookup(record.Path(p))
	if err != nil || !ok {
		t.Fatalf("no record of %s on %s: %v", p, d.name, err)
	}
	return e
}

func shareRecord(t *testing.T, d *device, key share.Key, dir, p string) record.Record {
	t.Helper()
	return shareEntry(t, d, key, dir, p).Record
}

// sealSmallFile makes a genuine record of a one-block file at p in key's share,
// with its content inline, as a writer of that share would push it.
func sealSmallFile(t *testing.T, key share.Key, p string, content []byte) wire.RecordData {
	t.Helper()
	h := block.Sum(content)
	env, err := key.Seal(record.Record{
		Path: record.Path(p), Kind: record.File, Size: int64(len(content)), Mode: 0o644,
		ModTime: time.Now().UTC().Truncate(time.Second), Blocks: []record.BlockRef{{Hash: h, Size: uint32(len(content))}},
		FileHash: chunk.FileHash([]chunk.Chunk{{Length: len(content), Hash: h}}),
		Version:  record.Vector{{Device: 77, Value: 1}}, ModifiedBy: 77,
	})
	if err != nil {
		t.Fatal(err)
	}
	return wire.RecordData{Key: env.Key(), Encoding: wire.RecordPlain, Data: env.Bytes(),
		ContentEncoding: wire.BlockRaw, Content: content}
}

func expectRefusal(t *testing.T, resp wire.Message, code wire.ErrorCode, what string) {
	t.Helper()
	e, ok := resp.(*wire.ErrorResponse)
	if !ok {
		t.Errorf("%s: answered %s, want error %v", what, wire.Name(resp), code)
		return
	}
	if e.Code != code {
		t.Errorf("%s: answered %v (%s), want %v", what, e.Code, e.Message, code)
	}
}

// waitCond waits, with a generous deadline, until cond holds.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// hasSession reports whether d has a session with id.
func (d *device) hasSession(id identity.DeviceID) bool {
	for _, p := range d.e.Status().Peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// namedShare returns the share a message names, if it names one.
func namedShare(m wire.Message) (share.ID, bool) {
	switch m := m.(type) {
	case *wire.ShareState:
		return m.Share, true
	case *wire.NodesRequest:
		return m.Share, true
	case *wire.RecordsRequest:
		return m.Share, true
	case *wire.RecordPush:
		return m.Share, true
	case *wire.BlockRequest:
		return m.Share, true
	}
	return share.ID{}, false
}

// hostile is a device that speaks the wire protocol by hand: it asks what
// it likes, answers every request with a refusal, and keeps every byte the
// device under test sends it (after TLS) and every message it heard.
type hostile struct {
	id  *identity.Identity
	c   *conn.Conn
	raw *recorder

	mu  gosync.Mutex
	got []wire.Message // guarded by mu: every message heard
}

func newHostile(t *testing.T) *hostile {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return &hostile{id: id}
}

// dial connects h to dut over TLS on 127.0.0.1, dut running its real
// session, until the test ends.
func (h *hostile) dial(t *testing.T, dut *device) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := conn.NewTLS(dut.id, slog.New(slog.DiscardHandler)).Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var wg gosync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		s, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		sess := dut.e.NewSession(s.Remote)
		c, err := conn.Open(ctx, s, wire.Hello{DeviceName: dut.name}, sess, conn.Options{})
		if err != nil {
			return
		}
		cctx, ccancel := context.WithCancel(ctx)
		var run gosync.WaitGroup
		run.Go(func() { c.Run(cctx); ccancel() })
		sess.Serve(cctx, c)
		ccancel()
		c.Close()
		run.Wait()
	})
	s, err := conn.NewTLS(h.id, slog.New(slog.DiscardHandler)).Dial(ctx, ln.Addr().String(), dut.id.ID())
	if err != nil {
		t.Fatal(err)
	}
	h.raw = &recorder{Conn: s.Conn}
	s.Conn = h.raw
	c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "hostile"}, h, conn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	wg.Go(func() { c.Run(ctx) })
	// Ask nothing before the device's Serve has set its session up (it sets
	// squeeze before registering the session; issue 13 hole 5).
	waitCond(t, "the device's session", func() bool { return dut.hasSession(h.id.ID()) })
}

// ask sends one request and returns the answer.
func (h *hostile) ask(t *testing.T, m wire.Message) wire.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := h.c.Request(ctx, m)
	var refused *wire.ErrorResponse
	switch {
	case errors.As(err, &refused):
		return refused
	case err != nil:
		t.Fatalf("%s: %v", wire.Name(m), err)
	}
	return resp
}

// records asks for records and returns what came back.
func (h *hostile) records(t *testing.T, id share.ID, keys []merkle.Key, have []merkle.Leaf) []wire.RecordData {
	t.Helper()
	resp := h.ask(t, &wire.RecordsRequest{Share: id, Keys: keys, Have: have})
	rr, ok := resp.(*wire.RecordsResponse)
	if !ok {
		t.Fatalf("records of a share it is a member of: %s", describe(resp))
	}
	return rr.Records
}

// expectNothingOf fails if any 32-byte run of secret is among the bytes
// the device sent.
func (h *hostile) expectNothingOf(t *testing.T, what string, secret []byte) {
	t.Helper()
	raw := h.raw.bytes()
	for off := 0; off+32 <= len(secret); off += 32 {
		if i := bytes.Index(raw, secret[off:off+32]); i >= 0 {
			t.Errorf("bytes of %s (offset %d) reached a member of A, at byte %d of %d it read", what, off, i, len(raw))
			return
		}
	}
}

func (h *hostile) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	h.note(m)
	return wire.Errorf(wire.CodeRefused, "hostile test client"), nil
}

func (h *hostile) HandleMessage(ctx context.Context, m wire.Message) error {
	h.note(m)
	return nil
}

// pushed returns the records h heard pushed for share id.
func (h *hostile) pushed(id share.ID) []wire.RecordData {
	var out []wire.RecordData
	for _, m := range h.heard() {
		if p, ok := m.(*wire.RecordPush); ok && p.Share == id {
			out = append(out, p.Records...)
		}
	}
	return out
}

func (h *hostile) note(m wire.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, m)
}

func (h *hostile) heard() []wire.Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]wire.Message(nil), h.got...)
}

// recorder keeps every byte read through it.
type recorder struct {
	net.Conn
	mu  gosync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.buf.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// staller serves its first serve blocks and then holds every block request
// until release is closed or the connection ends: a pull that stays under
// way with part of a file in its temp.
type staller struct {
	*Session
	serve   int64
	release chan struct{}
	n       atomic.Int64

	mu   gosync.Mutex
	gave []record.BlockRef // guarded by mu
}

func (s *staller) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	br, ok := m.(*wire.BlockRequest)
	if ok && s.n.Add(1) > s.serve {
		select {
		case <-s.release:
		case <-ctx.Done():
		}
		return wire.Errorf(wire.CodeNotFound, "stalled"), nil
	}
	resp, err := s.Session.HandleRequest(ctx, m)
	if _, served := resp.(*wire.BlockResponse); ok && served {
		s.mu.Lock()
		s.gave = append(s.gave, record.BlockRef{Hash: br.Hash, Size: br.Size})
		s.mu.Unlock()
	}
	return resp, err
}

func (s *staller) given() []record.BlockRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]record.BlockRef(nil), s.gave...)
}

// linkWrapped connects a and b like link, with each side's session wrapped
// by wrapA or wrapB when set.
func linkWrapped(t *testing.T, a, b *device, wrapA, wrapB func(*Session) conn.Handler) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := conn.NewTLS(b.id, slog.New(slog.DiscardHandler)).Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	var wg gosync.WaitGroup
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	serve := func(local *device, s conn.Stream, wrap func(*Session) conn.Handler) {
		sess := local.e.NewSession(s.Remote)
		var h conn.Handler = sess
		if wrap != nil {
			h = wrap(sess)
		}
		c, err := conn.Open(ctx, s, wire.Hello{DeviceName: local.name}, h, conn.Options{})
		if err != nil {
			return
		}
		cctx, ccancel := context.WithCancel(ctx)
		var run gosync.WaitGroup
		run.Go(func() { c.Run(cctx); ccancel() })
		sess.Serve(cctx, c)
		ccancel()
		c.Close()
		run.Wait()
	}
	wg.Go(func() {
		s, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		serve(b, s, wrapB)
	})
	s, err := conn.NewTLS(a.id, slog.New(slog.DiscardHandler)).Dial(ctx, ln.Addr().String(), b.id.ID())
	if err != nil {
		t.Fatal(fmt.Errorf("link %s to %s: %w", a.name, b.name, err))
	}
	wg.Go(func() { serve(a, s, wrapA) })
}
