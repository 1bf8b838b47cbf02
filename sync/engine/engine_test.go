package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// device is one real engine: its own identity, Pebble database and folder.
type device struct {
	t       testing.TB
	name    string
	id      *identity.Identity
	db      *index.DB
	e       *Engine
	dir     string
	key     share.Key
	ln      *conn.TLSListener
	stop    context.CancelFunc
	done    chan struct{}
	logs    testWriter
	log     *slog.Logger
	base    string            // holds the database and the share folder
	members []*device         // the share's members, once added
	lie     bool              // serve corrupted blocks (a misbehaving peer)
	forge   []wire.RecordData // answer record requests with these (a hostile member)
	// serveLimit, if set, counts blocks served and refuses those past its limit.
	serveLimit *blockBudget
	retryEvery time.Duration // how often waiting records are retried; 0: 200 ms
	links      []func()      // cuts the links to other devices (link)
	// served, if set, counts the requests it answers (how often peers walk
	// its tree, how many blocks they ask for).
	served *served
	gate   *gate // if set, serves blocks only while open
	// dropPushes: records pushed to this device are lost on the way, so it
	// learns of changes only by walking the sender's tree.
	dropPushes bool
	// churn, if set, changes the device's tree before it answers each
	// request for tree nodes: a peer's walk always runs into a moving tree.
	churn *churn
	// moveOnce, if set, answers one request of a walk with "root moved",
	// as a device that let go of the walked version does.
	moveOnce *atomic.Bool
	// upload, if set, counts the block bytes the device serves (on top of
	// any other wrapper).
	upload *uploaded
	// version, if set, is the newest protocol version the device speaks
	// (an older peer's).
	version uint32
	// mcast, if set, gives the device a LAN multicast group on loopback
	// at this port (multicast_test.go).
	mcast int
	// noMulticast turns multicast off for the device's share.
	noMulticast bool
	// patch has the device offer patches and ask them on loopback too
	// (patch_test.go); wrap, if set, wraps the handler of its connections.
	patch bool
	wrap  func(conn.Handler) conn.Handler
	// reflate has the device offer reflated patches too (reflate_test.go).
	reflate bool
	// batchSig has the Hello announce wire.BatchSigCapability
	// (batchsig_test.go).
	batchSig bool
	// noContentAsk leaves wire.ContentAskCapability out of the device's
	// Hello, as a device from before it would (smallfiles_test.go).
	noContentAsk bool
	// compress has the device's connections compress what it sends on
	// loopback too (conn.Options.CompressLoopback; stream_test.go).
	compress bool
}

// hello is the device's Hello. It speaks wire.HaveVersion even before
// wire.Version names it (the lead bumps Version once when merging; this
// line is then a no-op).
func (d *device) hello() wire.Hello {
	h := wire.Hello{DeviceName: d.name, Version: max(wire.Version, wire.HaveVersion), MinVersion: wire.MinVersion}
	if d.version != 0 {
		h.Version = d.version
	}
	if d.mcast != 0 {
		h.Capabilities = append(h.Capabilities, wire.MulticastCapability)
	}
	if d.patch {
		h.Capabilities = append(h.Capabilities, wire.PatchCapability)
	}
	if d.reflate {
		h.Capabilities = append(h.Capabilities, wire.ReflateCapability)
	}
	if d.batchSig {
		h.Capabilities = append(h.Capabilities, wire.BatchSigCapability)
	}
	if !d.noContentAsk {
		h.Capabilities = append(h.Capabilities, wire.ContentAskCapability)
	}
	return h
}

// newDevice starts an engine syncing folder dir for share key with members.
func newDevice(t testing.TB, name string, key share.Key) *device {
	t.Helper()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	dir := filepath.Join(base, "share")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	level := slog.LevelDebug
	if _, bench := t.(*testing.B); bench {
		level = slog.LevelWarn
	}
	logs := testWriter{t: t, name: name, mu: new(gosync.Mutex), buf: new(bytes.Buffer)}
	d := &device{t: t, name: name, id: id, dir: dir, base: base, key: key, logs: logs,
		log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))}
	d.open()
	t.Cleanup(d.close)
	return d
}

// open starts the device's engine on its database and folder, and gives it
// back its share if it had one.
func (d *device) open() {
	d.t.Helper()
	db, err := index.Open(filepath.Join(d.base, "db"), index.Options{Logger: d.log})
	if err != nil {
		d.t.Fatal(err)
	}
	retry := 200 * time.Millisecond
	if d.retryEvery > 0 {
		retry = d.retryEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	group, groupDone := d.openMulticast(ctx)
	e, err := New(Options{DB: db, Self: d.id.ID(), Logger: d.log, RetryEvery: retry, Multicast: group, MulticastRate: 200 << 20, PatchOnThisMachine: d.patch})
	if err != nil {
		d.t.Fatal(err)
	}
	d.db, d.e, d.done = db, e, make(chan struct{})
	d.stop = cancel
	go func() { defer close(d.done); e.Run(ctx); <-groupDone }()
	if d.members != nil {
		d.addShare(d.members...)
	}
}

func (d *device) close() {
	if d.e == nil {
		return
	}
	// Links first, as the daemon stops its peers before the engine: a
	// session left running would read the database closed below.
	for _, cut := range d.links {
		cut()
	}
	d.links = nil
	d.stop()
	<-d.done
	if d.ln != nil {
		d.ln.Close()
	}
	d.db.Close()
	d.e = nil
}

// restart stops the engine and starts a new one on the same disk state.
func (d *device) restart() {
	d.close()
	d.open()
}

func (d *device) addShare(members ...*device) {
	d.t.Helper()
	d.members = members
	var ids []identity.DeviceID
	for _, m := range members {
		ids = append(ids, m.id.ID())
	}
	if err := d.e.AddShare(ShareConfig{Key: d.key, Name: "s", Path: d.dir, Members: ids, NoMulticast: d.noMulticast}); err != nil {
		d.t.Fatal(err)
	}
}

// link connects a and b over real TLS on 127.0.0.1 until the test ends or
// the returned function is called.
func link(t testing.TB, a, b *device) (cut func()) {
	return linkCounted(t, a, b, nil)
}

// wireCount counts the bytes both directions put on the TLS connection
// (application data plus TLS framing), after the handshake.
type wireCount struct{ n atomic.Int64 }

type countedConn struct {
	net.Conn
	c *wireCount
}

func (c countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.c.n.Add(int64(n))
	return n, err
}

func (c countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.c.n.Add(int64(n))
	return n, err
}

func linkCounted(t testing.TB, a, b *device, count *wireCount) (cut func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := conn.NewTLS(b.id, slog.New(slog.DiscardHandler)).Listen("127.0.0.1:0", func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	serve := func(local *device, s conn.Stream) {
		defer func() { done <- struct{}{} }()
		if count != nil && s.Outbound {
			s.Conn = countedConn{Conn: s.Conn, c: count}
		}
		sess := local.e.NewSession(s.Remote)
		var h conn.Handler = sess
		if local.lie {
			h = liar{sess}
		}
		if local.forge != nil {
			h = forger{sess, local.forge}
		}
		if local.serveLimit != nil {
			h = limiter{sess, local.serveLimit}
		}
		if local.served != nil {
			h = servedCounter{sess, local.served}
		}
		if local.gate != nil {
			h = gated{sess, local.gate}
		}
		if local.dropPushes {
			h = pushDropper{sess}
		}
		if local.churn != nil {
			h = churner{sess, local, local.churn}
		}
		if local.moveOnce != nil {
			h = rootMover{sess, local, local.moveOnce}
		}
		if local.upload != nil {
			h = uploadCounter{h, local.upload}
		}
		if local.wrap != nil {
			h = local.wrap(h)
		}
		c, err := conn.Open(ctx, s, local.hello(), h, conn.Options{CompressLoopback: local.compress})
		if err != nil {
			return
		}
		cctx, ccancel := context.WithCancel(ctx)
		ran := make(chan struct{})
		go func() { c.Run(cctx); ccancel(); close(ran) }()
		sess.Serve(cctx, c)
		ccancel()
		c.Close()
		<-ran // no handler still answers from a database about to close
	}
	go func() {
		s, err := ln.Accept(ctx)
		if err != nil {
			done <- struct{}{}
			return
		}
		serve(b, s)
	}()
	s, err := conn.NewTLS(a.id, slog.New(slog.DiscardHandler)).Dial(ctx, ln.Addr().String(), b.id.ID())
	if err != nil {
		t.Fatal(err)
	}
	go serve(a, s)
	var once bool
	cut = func() {
		if once {
			return
		}
		once = true
		cancel()
		ln.Close()
		<-done
		<-done
	}
	t.Cleanup(cut)
	a.links = append(a.links, cut)
	b.links = append(b.links, cut)
	return cut
}

// waitConverged waits until every device reports in sync with the same
// root and the same tree on disk.
func waitConverged(t testing.TB, ds ...*device) {
	t.Helper()
	waitConvergedFor(t, 30*time.Second, ds...)
}

// waitConvergedFor is waitConverged with a deadline of its own, for tests
// that load the machine.
func waitConvergedFor(t testing.TB, limit time.Duration, ds ...*device) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var roots []string
		ok := true
		for _, d := range ds {
			st := d.e.Status()
			if len(st.Shares) != 1 || !st.Shares[0].InSync {
				ok = false
				break
			}
			roots = append(roots, st.Shares[0].Root)
		}
		if ok {
			for _, r := range roots[1:] {
				ok = ok && r == roots[0]
			}
		}
		if ok {
			want := snapshot(t, ds[0].dir)
			for _, d := range ds[1:] {
				if got := snapshot(t, d.dir); got != want {
					ok = false
				}
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, d := range ds {
				t.Logf("%s status: %+v\n%s", d.name, d.e.Status().Shares, snapshot(t, d.dir))
			}
			t.Fatalf("devices did not converge")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// snapshot describes a tree: names, kinds, modes, sizes, content hashes and
// link targets, skipping .blueshift.
func snapshot(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if de.Name() == ".blueshift" {
			return filepath.SkipDir
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			lines = append(lines, fmt.Sprintf("L %s -> %s", rel, target))
		case fi.IsDir():
			lines = append(lines, fmt.Sprintf("D %s %o", rel, fi.Mode().Perm()))
		default:
			b, _ := os.ReadFile(p)
			lines = append(lines, fmt.Sprintf("F %s %o %d %x", rel, fi.Mode().Perm(), len(b), sum(b)))
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func sum(b []byte) []byte {
	h := [8]byte{}
	for i, c := range b {
		h[i%8] = h[i%8]*31 + c
	}
	return h[:]
}

func write(t testing.TB, d *device, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(d.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	d.rescan()
}

func (d *device) rescan() {
	if err := d.e.Rescan(d.key.ID(), nil, true); err != nil {
		d.t.Fatal(err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// testWriter sends a device's log to t.Log and keeps it for assertions.
type testWriter struct {
	t    testing.TB
	name string
	mu   *gosync.Mutex
	buf  *bytes.Buffer
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name + ": " + string(bytes.TrimRight(p, "\n")))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	return len(p), nil
}

func (w testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// newPair returns devices A and B of a new share, each the other's only
// member. set, when given, configures each device (batchSig, compress,
// ...) before its share is added.
func newPair(t testing.TB, set ...func(*device)) (a, b *device) {
	t.Helper()
	key := newKey(t)
	a, b = newDevice(t, "A", key), newDevice(t, "B", key)
	for _, f := range set {
		f(a)
		f(b)
	}
	a.addShare(b)
	b.addShare(a)
	return a, b
}

func newKey(t testing.TB) share.Key {
	t.Helper()
	sec, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return share.FromSecret(sec)
}

func TestTwoDevicesScenarios(t *testing.T) {
	a, b := newPair(t)

	big := randBytes(3 << 20)
	write(t, a, "docs/readme.txt", []byte("hello"))
	write(t, a, "big.bin", big)
	if err := os.MkdirAll(filepath.Join(a.dir, "empty/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../outside/target", filepath.Join(a.dir, "docs/link")); err != nil {
		t.Fatal(err)
	}
	a.rescan()
	link(t, a, b)
	waitConverged(t, a, b)
	expectFile(t, b, "docs/readme.txt", []byte("hello"))
	expectFile(t, b, "big.bin", big)
	if target, err := os.Readlink(filepath.Join(b.dir, "docs/link")); err != nil || target != "../outside/target" {
		t.Fatalf("link on B: %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(b.dir, "empty/dir")); err != nil || !fi.IsDir() {
		t.Fatalf("empty dir on B: %v", err)
	}

	steps := []struct {
		name string
		do   func()
	}{
		{"edit", func() { write(t, a, "docs/readme.txt", []byte("hello, world")) }},
		{"append", func() { write(t, a, "big.bin", append(big, randBytes(70000)...)) }},
		{"insert in the middle", func() {
			b2 := append(append(append([]byte{}, big[:1<<20]...), 'X'), big[1<<20:]...)
			write(t, a, "big.bin", b2)
		}},
		{"truncate", func() { write(t, a, "big.bin", big[:100000]) }},
		{"edit on B", func() { write(t, b, "docs/from-b.txt", []byte("made on B")) }},
		{"check B's file reached A", func() { expectFile(t, a, "docs/from-b.txt", []byte("made on B")) }},
		{"rename", func() {
			if err := os.Rename(filepath.Join(a.dir, "big.bin"), filepath.Join(a.dir, "renamed.bin")); err != nil {
				t.Fatal(err)
			}
			a.rescan()
		}},
		{"move between directories", func() {
			if err := os.Rename(filepath.Join(a.dir, "renamed.bin"), filepath.Join(a.dir, "docs/moved.bin")); err != nil {
				t.Fatal(err)
			}
			a.rescan()
		}},
		{"permissions", func() {
			if err := os.Chmod(filepath.Join(a.dir, "docs/readme.txt"), 0o600); err != nil {
				t.Fatal(err)
			}
			a.rescan()
		}},
		{"delete", func() {
			if err := os.Remove(filepath.Join(a.dir, "docs/from-b.txt")); err != nil {
				t.Fatal(err)
			}
			a.rescan()
		}},
		{"delete dir", func() {
			if err := os.RemoveAll(filepath.Join(a.dir, "empty")); err != nil {
				t.Fatal(err)
			}
			a.rescan()
		}},
	}
	for _, s := range steps {
		s.do()
		waitConverged(t, a, b)
		t.Logf("converged after %s", s.name)
	}
	expectFile(t, b, "docs/moved.bin", big[:100000])
	for _, gone := range []string{"big.bin", "renamed.bin", "docs/from-b.txt", "empty"} {
		if _, err := os.Lstat(filepath.Join(b.dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still on B: %v", gone, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(b.dir, "docs/readme.txt")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode on B: %v %v", fi.Mode(), err)
	}
}

func expectFile(t testing.TB, d *device, rel string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(d.dir, rel))
	if err != nil {
		t.Fatalf("%s on %s: %v", rel, d.name, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s on %s: %d bytes, want %d", rel, d.name, len(got), len(want))
	}
}

func TestConflictKeepsBoth(t *testing.T) {
	a, b := newPair(t)
	write(t, a, "notes.txt", []byte("v1"))
	cut := link(t, a, b)
	waitConverged(t, a, b)
	cut()

	// Both edit while apart; B's edit is later, so it wins everywhere.
	write(t, a, "notes.txt", []byte("edited on A"))
	waitScanned(t, a)
	time.Sleep(10 * time.Millisecond)
	write(t, b, "notes.txt", []byte("edited on B, later"))
	waitScanned(t, b)
	link(t, a, b)
	waitConverged(t, a, b)

	expectFile(t, a, "notes.txt", []byte("edited on B, later"))
	copies, _ := filepath.Glob(filepath.Join(a.dir, "notes.sync-conflict-*.txt"))
	if len(copies) != 1 {
		t.Fatalf("want one conflict copy on A, got %v\n%s", copies, snapshot(t, a.dir))
	}
	if got, _ := os.ReadFile(copies[0]); string(got) != "edited on A" {
		t.Fatalf("conflict copy holds %q", got)
	}
	if n := len(mustGlob(t, b.dir, "notes.sync-conflict-*.txt")); n != 1 {
		t.Fatalf("B has %d conflict copies", n)
	}
}

// TestConflictWaitsForTheWinner: when the winning side of a conflict cannot
// be fetched (its device changed the file since, and has not scanned it),
// the losing file stays where it is, not set aside and not recorded as
// deleted, until the winner's content can be had.
func TestConflictWaitsForTheWinner(t *testing.T) {
	a, b := newPair(t)
	mustWrite(t, filepath.Join(a.dir, "notes.txt"), []byte("edited on A"))
	waitScanned(t, a)
	time.Sleep(10 * time.Millisecond)
	mustWrite(t, filepath.Join(b.dir, "notes.txt"), []byte("edited on B, later"))
	waitScanned(t, b)
	// B's file changes in place, same size and time, so that not even B sees
	// it: the winning record's block is gone.
	bp := filepath.Join(b.dir, "notes.txt")
	fi, err := os.Stat(bp)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, bp, []byte("EDITED ON B, LATER"))
	if err := os.Chtimes(bp, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	link(t, a, b)

	deadline := time.Now().Add(10 * time.Second)
	for a.e.Status().Shares[0].NeedItems != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("A never waited for B's record: %+v", a.e.Status().Shares[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	expectFile(t, a, "notes.txt", []byte("edited on A"))
	if copies := mustGlob(t, a.dir, "notes.sync-conflict-*.txt"); len(copies) != 0 {
		t.Fatalf("A set its file aside before it had the winner: %v", copies)
	}
	waitScanned(t, a)
	if rec := mustRecord(t, a, "notes.txt"); rec.Deleted {
		t.Fatal("A recorded a deletion nobody made")
	}

	// B edits again, which wins; A's edit goes aside now.
	write(t, b, "notes.txt", []byte("B again"))
	waitConverged(t, a, b)
	expectFile(t, a, "notes.txt", []byte("B again"))
	copies := mustGlob(t, a.dir, "notes.sync-conflict-*.txt")
	if len(copies) != 1 {
		t.Fatalf("want one conflict copy on A, got %v", copies)
	}
	if got, _ := os.ReadFile(copies[0]); string(got) != "edited on A" {
		t.Fatalf("conflict copy holds %q", got)
	}
}

// TestThreeDevicesAndABadPeer: C joins late and pulls from A and B at once;
// B lies about every block it serves, so C cuts it off and still converges
// from A, and nothing B sent lands on disk.
func TestThreeDevicesAndABadPeer(t *testing.T) {
	key := newKey(t)
	a, b, c := newDevice(t, "A", key), newDevice(t, "B", key), newDevice(t, "C", key)
	a.addShare(b, c)
	b.addShare(a, c)
	c.addShare(a, b)
	data := randBytes(2 << 20)
	write(t, a, "data.bin", data)
	write(t, a, "small.txt", []byte("small"))
	link(t, a, b)
	waitConverged(t, a, b)

	b.lie = true
	link(t, a, c)
	link(t, b, c)
	waitConverged(t, a, c)
	expectFile(t, c, "data.bin", data)
	for _, p := range c.e.Status().Shares[0].Peers {
		if p == b.id.ID() {
			t.Fatalf("C still connected to the peer that sent bad blocks")
		}
	}
}

// waitScanned waits until a scan that started after the call has finished.
func waitScanned(t *testing.T, d *device) {
	t.Helper()
	since := time.Now()
	d.rescan()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st := d.e.Status().Shares[0]
		if st.Scanned.After(since) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not settle", d.name)
}

func mustGlob(t *testing.T, dir, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// liar corrupts every block it serves.
type liar struct{ *Session }

func (l liar) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	resp, err := l.Session.HandleRequest(ctx, m)
	if br, ok := resp.(*wire.BlockResponse); ok {
		bad := append([]byte(nil), br.Data...)
		bad[len(bad)/2] ^= 0xff
		return &wire.BlockResponse{Encoding: br.Encoding, Data: bad}, err
	}
	return resp, err
}

func mustRecord(t testing.TB, d *device, p string) record.Record {
	t.Helper()
	e, ok, err := d.index().Lookup(record.Path(p))
	if err != nil || !ok {
		t.Fatalf("no record of %s on %s: %v", p, d.name, err)
	}
	return e.Record
}
