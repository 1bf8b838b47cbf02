package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

// nodeCounter counts the Merkle node requests a device answers.
type nodeCounter struct {
	*Session
	n *atomic.Int64
}

func (c nodeCounter) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	if _, ok := m.(*wire.NodesRequest); ok {
		c.n.Add(1)
	}
	return c.Session.HandleRequest(ctx, m)
}

// TestPeerWaitsWhilePulling: while B applies a first sync from A, its
// announcements say it is pulling, and A does not walk B's tree after each
// of them (it would find nothing: B's root is on its way to A's). A walks it
// once, when they meet, to fetch B's own files. When B is done it says so,
// and afterwards neither side believes the other is still pulling.
func TestPeerWaitsWhilePulling(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	b.nodesServed = new(atomic.Int64)
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
	link(t, a, b)
	waitConverged(t, a, b)

	walks := b.nodesServed.Load()
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
