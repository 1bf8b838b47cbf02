package engine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// lifeDeadline turns a hang into a failure; nothing here is timed.
const lifeDeadline = 30 * time.Second

// waitOrFail waits for ch, failing the test if it takes lifeDeadline.
func waitOrFail(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(lifeDeadline):
		t.Fatalf("%s did not return within %s", what, lifeDeadline)
	}
}

// newBareEngine returns an engine on its own database and share folder,
// not running.
func newBareEngine(t *testing.T) (*Engine, string) {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "share")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("some content"), 0o644)
	db, err := index.Open(filepath.Join(base, "db"), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{DB: db, Self: id.ID()})
	if err != nil {
		t.Fatal(err)
	}
	return e, dir
}

// TestAddShareAfterRunEnded: once Run has returned nothing will start a
// share's puller, so AddShare must refuse instead of leaving a folder whose
// stop (RemoveShare, the daemon's shutdown) waits forever.
func TestAddShareAfterRunEnded(t *testing.T) {
	e, dir := newBareEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	cancel()
	waitOrFail(t, "Run", done)

	key := newKey(t)
	err := e.AddShare(ShareConfig{Key: key, Name: "late", Path: dir})
	if !errors.Is(err, ErrStopped) {
		t.Errorf("AddShare after Run ended: %v, want ErrStopped", err)
	}
	removed := make(chan struct{})
	go func() { defer close(removed); e.RemoveShare(key.ID()) }()
	waitOrFail(t, "RemoveShare after Run ended", removed)
}

// TestAddShareRacingRunsEnd adds a share while Run ends, many times: AddShare
// either succeeds (and then RemoveShare stops its puller) or says
// ErrStopped; nothing hangs, nothing leaks (goleak).
func TestAddShareRacingRunsEnd(t *testing.T) {
	for range 20 {
		e, dir := newBareEngine(t)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx) }()
		key := newKey(t)
		added := make(chan error, 1)
		go func() { added <- e.AddShare(ShareConfig{Key: key, Name: "racing", Path: dir}) }()
		cancel()
		err := <-added
		if err != nil && !errors.Is(err, ErrStopped) {
			t.Fatalf("AddShare while Run ends: %v", err)
		}
		removed := make(chan struct{})
		go func() {
			defer close(removed)
			if rerr := e.RemoveShare(key.ID()); (rerr == nil) != (err == nil) {
				t.Errorf("RemoveShare: %v after AddShare: %v", rerr, err)
			}
		}()
		waitOrFail(t, "RemoveShare of a share added while Run ended", removed)
		waitOrFail(t, "Run", done)
	}
}

// TestStalledPeerHoldsUpNoOne: one member's connection never reads (its
// queue to us is full); the other member is healthy. AddShare must return,
// and every change must reach the healthy member, while the stalled one is
// still stalled: sends to a peer wait in that peer's own queue.
func TestStalledPeerHoldsUpNoOne(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	stalled, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	members := []identity.DeviceID{b.id.ID(), stalled.ID()}
	if err := a.e.AddShare(ShareConfig{Key: key, Name: "s", Path: a.dir, Members: members}); err != nil {
		t.Fatal(err)
	}
	b.addShare(a)
	link(t, a, b)
	write(t, a, "before.txt", []byte("before the stall"))
	waitFile(t, b, b.dir, "before.txt", []byte("before the stall"))

	toStalled := stallPeer(t, a, stalled)
	// Fill what we queue for it to the byte: big sends until one cannot get
	// in, then smaller ones, down to a Ping. Random bytes: the connection
	// compresses what it sends (peer/conn zstream.go), and zeros would fill
	// the socket only after gigabytes.
	junk := randBytes(1 << 20)
	for size := 1 << 20; size > 0; size /= 2 {
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			err := toStalled.Send(ctx, &wire.RecordPush{Share: key.ID(), Records: []wire.RecordData{{Encoding: wire.RecordPlain, Data: junk[:size]}}})
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				break
			}
			if err != nil {
				t.Fatalf("filling the stalled connection: %v", err)
			}
		}
	}
	for stalledFull(t, toStalled) == nil {
	}
	t.Log("the stalled peer's queue is full")

	for _, name := range []string{"one.txt", "two.txt", "three.txt"} {
		write(t, a, name, []byte("made while a member is stalled: "+name))
		waitFile(t, b, b.dir, name, []byte("made while a member is stalled: "+name))
	}

	// A second share with both members: AddShare queues its announcement to
	// the stalled member and returns; the healthy member gets the share.
	key2 := newKey(t)
	dirA, dirB := filepath.Join(a.base, "second"), filepath.Join(b.base, "second")
	for _, d := range []string{dirA, dirB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dirA, "second.txt"), []byte("second share"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.e.AddShare(ShareConfig{Key: key2, Name: "second", Path: dirB, Members: []identity.DeviceID{a.id.ID()}}); err != nil {
		t.Fatal(err)
	}
	added := make(chan struct{})
	go func() {
		defer close(added)
		if err := a.e.AddShare(ShareConfig{Key: key2, Name: "second", Path: dirA, Members: members}); err != nil {
			t.Errorf("add the second share: %v", err)
		}
	}()
	waitOrFail(t, "AddShare with a stalled member connected", added)
	waitFile(t, b, dirB, "second.txt", []byte("second share"))
	if err := a.e.SetMembers(key2.ID(), members[:1]); err != nil {
		t.Fatal(err)
	}
	// Still stalled: not even a Ping gets in.
	if err := stalledFull(t, toStalled); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the stalled peer's queue drained (%v): the test proved nothing", err)
	}
}

// stalledFull tries to queue the smallest message for c.
func stalledFull(t *testing.T, c *conn.Conn) error {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Send(ctx, &wire.Ping{})
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("filling the stalled connection: %v", err)
	}
	return err
}

// stallPeer connects a to a device that completes the Hello and then never
// reads: a's session with it runs, and its sends pile up. It returns a's
// connection to it; the test's end closes both.
func stallPeer(t *testing.T, a *device, peer *identity.Identity) *conn.Conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := conn.NewTLS(peer, slog.New(slog.DiscardHandler)).Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan *conn.Conn, 1)
	go func() {
		s, err := ln.Accept(ctx)
		if err != nil {
			opened <- nil
			return
		}
		c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "stalled"}, quiet{}, conn.Options{})
		if err != nil {
			opened <- nil
			return
		}
		opened <- c // never Run: nothing reads what a sends
	}()
	s, err := conn.NewTLS(a.id, slog.New(slog.DiscardHandler)).Dial(ctx, ln.Addr().String(), peer.ID())
	if err != nil {
		t.Fatal(err)
	}
	sess := a.e.NewSession(peer.ID())
	// A long timeout: the stall must outlast the test, not end in a drop.
	c, err := conn.Open(ctx, s, wire.Hello{DeviceName: a.name}, sess, conn.Options{Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	far := <-opened
	if far == nil {
		t.Fatal("the stalled side did not open")
	}
	served := make(chan struct{}, 2)
	go func() { defer func() { served <- struct{}{} }(); c.Run(ctx) }()
	go func() { defer func() { served <- struct{}{} }(); sess.Serve(ctx, c) }()
	t.Cleanup(func() {
		cancel()
		far.Close()
		ln.Close()
		<-served
		<-served
	})
	return c
}

// quiet answers nothing: the stalled side never gets to use it.
type quiet struct{}

func (quiet) HandleRequest(context.Context, wire.Message) (wire.Message, error) {
	return nil, wire.Errorf(wire.CodeNotFound, "nothing here")
}
func (quiet) HandleMessage(context.Context, wire.Message) error { return nil }

// waitFile waits until dir/rel on d holds want.
func waitFile(t *testing.T, d *device, dir, rel string, want []byte) {
	t.Helper()
	deadline := time.Now().Add(lifeDeadline)
	for {
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err == nil && bytes.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach %s within %s (%v)", rel, d.name, lifeDeadline, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRequestBeforeServe: a session is the connection's handler before
// Serve runs, so the peer's first requests may be answered while Serve
// starts. Under -race this caught Serve writing what answers read (whether
// to compress for this peer) without synchronisation.
func TestRequestBeforeServe(t *testing.T) {
	key := newKey(t)
	b := newDevice(t, "B", key)
	peer := shareWithStranger(t, b, key)
	write(t, b, "f.txt", []byte("served before Serve"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln, err := conn.NewTLS(b.id, slog.New(slog.DiscardHandler)).Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type side struct {
		c    *conn.Conn
		sess *Session
	}
	accepted := make(chan side, 1)
	go func() {
		s, err := ln.Accept(ctx)
		if err != nil {
			accepted <- side{}
			return
		}
		sess := b.e.NewSession(s.Remote)
		c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "B"}, sess, conn.Options{})
		if err != nil {
			accepted <- side{}
			return
		}
		accepted <- side{c, sess}
	}()
	s, err := conn.NewTLS(peer, slog.New(slog.DiscardHandler)).Dial(ctx, ln.Addr().String(), b.id.ID())
	if err != nil {
		t.Fatal(err)
	}
	far, err := conn.Open(ctx, s, wire.Hello{DeviceName: "peer"}, quiet{}, conn.Options{})
	if err != nil {
		t.Fatal(err)
	}
	near := <-accepted
	if near.c == nil {
		t.Fatal("B did not open the connection")
	}
	var wg gosync.WaitGroup
	wg.Go(func() { far.Run(ctx) })
	wg.Go(func() { near.c.Run(ctx) })
	defer wg.Wait()
	defer cancel()

	// Requests in flight, many at once, while B's Serve starts.
	var key0 merkle.Key
	ask := func() {
		if _, err := far.Request(ctx, &wire.RecordsRequest{Share: key.ID(), Keys: []merkle.Key{key0}, Have: []merkle.Leaf{{}}}); err != nil && ctx.Err() == nil {
			t.Errorf("records request: %v", err)
		}
	}
	ask()
	served := make(chan struct{})
	var askers gosync.WaitGroup
	for range 16 {
		askers.Go(func() {
			for range 50 {
				ask()
			}
		})
	}
	wg.Go(func() { close(served); near.sess.Serve(ctx, near.c) })
	<-served
	askers.Wait()
}

// TestOutgoingQueueIsBounded: pushes for a peer that does not keep up stop
// queueing at outQueueBytes; what did not fit is replaced by an
// announcement of its share, so the peer reconciles instead of us holding
// an unbounded backlog.
func TestOutgoingQueueIsBounded(t *testing.T) {
	key := newKey(t)
	a := newDevice(t, "A", key)
	peer := shareWithStranger(t, a, key)
	s := a.e.NewSession(peer.ID()) // never served: nothing drains it
	f := a.e.folder(key.ID())
	rec := wire.RecordData{Encoding: wire.RecordPlain, Data: make([]byte, 64<<10)}
	for range 3 * outQueueBytes / (64 << 10) {
		s.push(f, []wire.RecordData{rec}, nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.pushBytes > outQueueBytes {
		t.Fatalf("%d bytes of pushes queued, more than the %d bound", s.mu.pushBytes, outQueueBytes)
	}
	if s.mu.announce[f.id] != f {
		t.Fatal("pushes were dropped without announcing their share")
	}
}

// TestIncomingFreshPushesAreBounded: pushes of whole records and inline
// content (a peer's new files) stop queueing for the session's goroutine
// at pushQueueFresh, well before pushQueueBytes; what did not fit is
// dropped and its share reconciled, so a receiver busy creating files does
// not hold a backlog of them. Pushes of record deltas (a touch, an edit)
// still queue up to pushQueueBytes: they must not turn into a walk.
func TestIncomingFreshPushesAreBounded(t *testing.T) {
	key := newKey(t)
	a := newDevice(t, "A", key)
	peer := shareWithStranger(t, a, key)
	s := a.e.NewSession(peer.ID()) // never run: nothing takes its pushes
	ctx := t.Context()
	const size = 64 << 10
	fresh := &wire.RecordPush{Share: key.ID(), Records: []wire.RecordData{{Encoding: wire.RecordPlain, Data: make([]byte, 512), Content: make([]byte, size)}}}
	for range 4 * pushQueueFresh / size {
		if err := s.HandleMessage(ctx, fresh); err != nil {
			t.Fatal(err)
		}
	}
	if c := s.pushFresh.Load(); c > pushQueueFresh {
		t.Fatalf("%d bytes of fresh pushes queued, more than the %d bound", c, pushQueueFresh)
	}
	if queued := len(s.pushes); queued < pushQueueFresh/size-2 || queued > pushQueueFresh/size {
		t.Fatalf("%d fresh pushes queued, want about %d", queued, pushQueueFresh/size)
	}
	s.mu.Lock()
	want := s.mu.want[key.ID()]
	s.mu.Unlock()
	if !want {
		t.Fatal("pushes were dropped without a reconcile of their share")
	}
	// Deltas still fit behind the fresh bound, up to the byte bound.
	before := len(s.pushes)
	delta := &wire.RecordPush{Share: key.ID(), Records: []wire.RecordData{{Encoding: wire.RecordZstdDict, Base: merkle.Leaf{1}, Data: make([]byte, 100)}}}
	for range 500 {
		if err := s.HandleMessage(ctx, delta); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(s.pushes) - before; got != 500 {
		t.Fatalf("%d of 500 pushes of record deltas queued behind the fresh bound, want all", got)
	}
}

// shareWithStranger adds key's share to d with one other member, a new
// identity no engine runs: a session for it is driven by the test alone.
func shareWithStranger(t *testing.T, d *device, key share.Key) *identity.Identity {
	t.Helper()
	peer, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.e.AddShare(ShareConfig{Key: key, Name: "s", Path: d.dir, Members: []identity.DeviceID{peer.ID()}}); err != nil {
		t.Fatal(err)
	}
	return peer
}
