package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// served counts the requests a device answers, by kind.
type served struct {
	nodes, blocks, records atomic.Int64
	recordBytes            atomic.Int64 // of the records in the responses (RecordData.Data)
	contentOnly, held      atomic.Int64 // keys asked for content only; asked naming a record held (a non-zero have-leaf)
	keys                   gosync.Map   // merkle.Key of every record asked for
	distinct               atomic.Int64
}

// servedCounter counts into a served.
type servedCounter struct {
	*Session
	n *served
}

func (c servedCounter) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	switch m := m.(type) {
	case *wire.NodesRequest:
		c.n.nodes.Add(1)
	case *wire.BlockRequest:
		c.n.blocks.Add(1)
	case *wire.RecordsRequest:
		c.n.records.Add(int64(len(m.Keys)))
		for _, l := range m.Have {
			if l != (merkle.Leaf{}) {
				c.n.held.Add(1)
			}
		}
		if m.ContentOnly {
			c.n.contentOnly.Add(int64(len(m.Keys)))
		}
		for _, k := range m.Keys {
			if _, seen := c.n.keys.LoadOrStore(k, true); !seen {
				c.n.distinct.Add(1)
			}
		}
	}
	resp, err := c.Session.HandleRequest(ctx, m)
	if rr, ok := resp.(*wire.RecordsResponse); ok {
		for _, rd := range rr.Records {
			c.n.recordBytes.Add(int64(len(rd.Data)))
		}
	}
	return resp, err
}

// TestPeerWaitsWhilePulling: while B applies a first sync from A, its
// announcements say it is pulling, and A does not walk B's tree after each
// of them (it would find nothing: B's root is on its way to A's). A walks it
// once, when they meet, to fetch B's own files. When B is done it says so,
// and afterwards neither side believes the other is still pulling.
func TestPeerWaitsWhilePulling(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	b.served = new(served)
	a.addShare(b)
	b.addShare(a)
	for i := range 1500 {
		mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("d%02d/f%04d.txt", i%20, i)), []byte(fmt.Sprintf("file %d on A", i)))
	}
	for i := range 5 {
		mustWrite(t, filepath.Join(b.dir, fmt.Sprintf("b%d.txt", i)), []byte("on B"))
	}
	waitScanned(t, a)
	waitScanned(t, b)
	// A restart leaves no push of the scan in flight: B gets A's files by
	// reconciling, in one walk of A's tree.
	a.restart()
	waitScanned(t, a)
	link(t, a, b)
	waitConverged(t, a, b)

	walks := b.served.nodes.Load()
	t.Logf("A asked B for Merkle nodes %d times", walks)
	// One walk of a five-file tree is one or two requests; a walk after each
	// of B's announcements while it applies 1,500 records is many more.
	if walks > 2 {
		t.Errorf("A walked B's tree %d times while B was pulling; want at most the walk when they met", walks)
	}
	for _, pair := range [][2]*device{{a, b}, {b, a}} {
		d, other := pair[0], pair[1]
		for _, s := range d.e.sessions() {
			f := d.e.folder(d.key.ID())
			if s.peerPulling(f) {
				t.Errorf("%s still believes %s is pulling", d.name, other.name)
			}
		}
	}
}

// TestSmallFilesTravelWithRecords: a first sync of small files (300 of them,
// 255 KB in all: within one message's inline budget) asks for no
// block: each file's content comes with its record. A larger file's blocks
// are still asked for, and a renamed file's content is not sent again.
func TestSmallFilesTravelWithRecords(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.served = new(served)
	a.addShare(b)
	b.addShare(a)
	for i := range 300 {
		mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("d%d/f%03d.txt", i%7, i)), randBytes(100+i*5))
	}
	big := randBytes(600 << 10)
	mustWrite(t, filepath.Join(a.dir, "big.bin"), big)
	waitScanned(t, a)
	link(t, a, b)
	waitConverged(t, a, b)
	blocks := a.served.blocks.Load()
	t.Logf("B asked A for %d blocks (big.bin has %d)", blocks, len(mustRecord(t, a, "big.bin").Blocks))
	if max := int64(len(mustRecord(t, a, "big.bin").Blocks)); blocks > max {
		t.Errorf("B asked for %d blocks; want at most big.bin's %d", blocks, max)
	}

	// A rename: B has the content, and nothing asks or sends it again.
	before := b.e.Status().Peers[0].BytesIn
	if err := os.Rename(filepath.Join(a.dir, "d0/f000.txt"), filepath.Join(a.dir, "moved.txt")); err != nil {
		t.Fatal(err)
	}
	a.rescan()
	waitConverged(t, a, b)
	if got := b.e.Status().Peers[0].BytesIn - before; got != 0 {
		t.Errorf("a rename moved %d bytes of content to B; want 0", got)
	}
}

// TestStaleRecordDroppedOnAnnouncement: a record still waiting for blocks
// is dropped as soon as its sender announces our very root, not at the next
// retry tick (an hour here): the sender has moved on from it.
func TestStaleRecordDroppedOnAnnouncement(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.retryEvery = time.Hour
	a.restart()
	a.addShare(b)
	b.addShare(a)
	mustWrite(t, filepath.Join(b.dir, "kept.txt"), []byte("on both"))
	waitScanned(t, b)
	link(t, a, b)
	waitConverged(t, a, b)

	// A record B once sent, for a file whose blocks nobody has any more.
	f := a.e.folder(key.ID())
	env, ok, err := f.idx.Envelope(key.PathKey("kept.txt"))
	if err != nil || !ok {
		t.Fatalf("no envelope of kept.txt on A: %v", err)
	}
	rec, err := env.Record()
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	f.mu.pending[env.Key()] = incoming{env: env, rec: rec, from: b.id.ID()}
	f.mu.Unlock()
	if n := a.e.Status().Shares[0].NeedItems; n != 1 {
		t.Fatalf("A needs %d items, want the 1 planted", n)
	}

	b.e.folder(key.ID()).announceAll() // B: same root as A
	deadline := time.Now().Add(10 * time.Second)
	for a.e.Status().Shares[0].NeedItems != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the stale record still waits after its sender announced A's root")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWalkPutOffByOurScanRunsWhenItEnds: the peer's root arrives while our
// own scan is moving our root, so the walk of its tree is put off. It runs
// when the scan ends, not when the retry timer says: here the timer would
// wait an hour (before the fix, a restarted device waited the timer's 2 s
// for a changed file whatever the share's size).
func TestWalkPutOffByOurScanRunsWhenItEnds(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	b.e.walkRetryMax = time.Hour // before any session of b reads it
	a.addShare(b)
	b.addShare(a)
	mustWrite(t, filepath.Join(a.dir, "changed.txt"), []byte("changed on A while B was away"))
	waitScanned(t, a)
	waitScanned(t, b)
	f := b.e.folder(key.ID())
	f.mu.Lock()
	f.mu.scanning++ // a scan of B's under way
	f.mu.Unlock()
	link(t, a, b)
	waitCond(t, "B to put its walk of A off", func() bool { return strings.Contains(b.logs.String(), "walk put off") })
	f.scanDone()
	waitConverged(t, a, b)
}
