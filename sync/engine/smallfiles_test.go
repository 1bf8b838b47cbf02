package engine

import (
	"context"
	"fmt"
	"path/filepath"
	gosync "sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestFirstSyncOfSmallFilesAsksNoBlock: a first sync of small files brings
// their content with their records, in bulk, so the receiver asks the
// sender for (next to) no block on its own: neither when the records come in the
// sender's pushes (which carry content for some hundreds of files; the
// rest is asked for again, askContent), nor when the receiver walks the
// sender's tree (one response carries the content of its 256 records).
// The content of pushed records is asked for alone: no record comes back.
func TestFirstSyncOfSmallFilesAsksNoBlock(t *testing.T) {
	for _, c := range firstSyncWays {
		t.Run(c.name, func(t *testing.T) {
			a, b := newPair(t)
			writeSmallFiles(t, a, 700, 16<<10)
			a.served = new(served)
			readyFirstSync(t, a, c.walk, func() { a.served = new(served) })
			link(t, a, b)
			waitConvergedFor(t, time.Minute, a, b)
			// A few may still be asked for one by one (a record that came
			// again, without content, after its path was applied); before
			// content came in bulk it was 600-700.
			if n := a.served.blocks.Load(); n > 35 {
				t.Errorf("B asked A for %d blocks of 700 small files; want their content with their records", n)
			}
			asked, bytes := a.served.records.Load(), a.served.recordBytes.Load()
			t.Logf("records asked for: %d (%d for content only), %d bytes of records in the answers", asked, a.served.contentOnly.Load(), bytes)
			// The content of pushed records is asked for alone, never
			// with the record B holds named (an older sender's way).
			if n := a.served.held.Load(); n > 0 {
				t.Errorf("B asked for %d records naming the record it holds; want content-only asks (%d keys)", n, a.served.contentOnly.Load())
			}
			// B holds the pushed records it asks for again (for their
			// content): each comes back as a delta against itself, ~20
			// bytes, where the whole record is ~240 (before: 238 each).
			if !c.walk && asked > 0 && bytes/asked > 64 {
				t.Errorf("the records B asked for again with their content came back at %d bytes each; want deltas against the records B holds (<= 64)", bytes/asked)
			}
		})
	}
}

// TestContentAskOfAnOlderSender: a sender that does not announce
// content-only asks (wire.ContentAskCapability) is asked for a pushed
// record's content as before, with the record itself as what the receiver
// holds; it answers with the content and the record as a delta against
// itself (~20 bytes, where the whole record is ~240).
func TestContentAskOfAnOlderSender(t *testing.T) {
	a, b := newPair(t, func(d *device) { d.noContentAsk = d.name == "A" })
	writeSmallFiles(t, a, 700, 16<<10)
	a.served = new(served)
	a.rescan()
	link(t, a, b)
	waitConvergedFor(t, time.Minute, a, b)
	if n := a.served.blocks.Load(); n > 35 {
		t.Errorf("B asked A for %d blocks of 700 small files; want their content with their records", n)
	}
	asked, bytes := a.served.records.Load(), a.served.recordBytes.Load()
	if n := a.served.contentOnly.Load(); n > 0 {
		t.Errorf("B asked an older sender for the content of %d records only; it does not know such asks", n)
	}
	if held := a.served.held.Load(); held == 0 || bytes/asked > 64 {
		t.Errorf("B asked for %d records (%d naming the record it holds) and got %d bytes of records; want them asked with their own leaves, back as deltas (<= 64 bytes each)", asked, held, bytes)
	}
}

// writeSmallFiles puts n files of random bytes in seven folders of d, the
// first of size bytes, each next one a byte larger.
func writeSmallFiles(t *testing.T, d *device, n, size int) {
	t.Helper()
	for i := range n {
		mustWrite(t, filepath.Join(d.dir, fmt.Sprintf("d%d/f%04d.bin", i%7, i)), randBytes(size+i))
	}
}

// firstSyncWays are the two ways a first sync's records reach the receiver.
var firstSyncWays = []struct {
	name string
	walk bool // B walks A's tree: A pushes nothing of its scan
}{{"pushed", false}, {"walked", true}}

// readyFirstSync has A index the files it holds for a first sync with a
// device not linked yet: scanning as they link, so A pushes its records,
// or (walk) scanned and restarted before, so nothing is pushed and the
// other device walks A's tree. restarted, if set, runs once A restarted.
func readyFirstSync(t *testing.T, a *device, walk bool, restarted func()) {
	t.Helper()
	if !walk {
		a.rescan()
		return
	}
	waitScanned(t, a)
	a.restart()
	if restarted != nil {
		restarted()
	}
	waitScanned(t, a)
}

// TestRecordAsksOverlap: the receiver of a first sync keeps more than one
// RecordsRequest in flight, both when it asks for the content of pushed
// records (askContent) and when a walk fetches records: one answer crosses
// the link while the sender reads the files of the next. One at a time,
// the link idled for a round trip and the sender's reading of every answer
// (a first sync of 20,000 small files over 100 Mbit/s used ~70% of it).
// The sender here holds back the first answer until a second request
// comes, or 10 s pass; a receiver that waits for each answer before the
// next request leaves one in flight at most.
func TestRecordAsksOverlap(t *testing.T) {
	for _, c := range firstSyncWays {
		t.Run(c.name, func(t *testing.T) {
			a, b := newPair(t)
			writeSmallFiles(t, a, 1200, 4<<10)
			o := &overlap{asks: func(m *wire.RecordsRequest) bool {
				// A content ask is content-only (or names the records B
				// holds, to an older sender); a first walk names none.
				content := m.ContentOnly || len(m.Have) > 0 && m.Have[0] != (merkle.Leaf{})
				return content != c.walk
			}}
			a.wrap = func(h conn.Handler) conn.Handler { return overlapping{h, o} }
			readyFirstSync(t, a, c.walk, nil)
			link(t, a, b)
			waitConvergedFor(t, time.Minute, a, b)
			o.mu.Lock()
			defer o.mu.Unlock()
			if o.seen < 2 {
				t.Fatalf("B made %d such requests; the test needs at least 2", o.seen)
			}
			if o.most < 2 {
				t.Errorf("B kept at most %d of %d requests in flight; want 2", o.most, o.seen)
			}
		})
	}
}

// overlap counts the RecordsRequests that asks picks and that are in
// flight at once; the first is held back until a second comes.
type overlap struct {
	asks          func(*wire.RecordsRequest) bool
	mu            gosync.Mutex
	now, most     int           // guarded by mu: in flight, and the most at once
	seen          int           // guarded by mu: picked so far
	second        chan struct{} // guarded by mu: closed when a second is in flight
	firstHeldBack bool          // guarded by mu
}

// overlapping is a handler that counts into an overlap.
type overlapping struct {
	conn.Handler
	o *overlap
}

func (h overlapping) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	rr, ok := m.(*wire.RecordsRequest)
	if !ok || !h.o.asks(rr) {
		return h.Handler.HandleRequest(ctx, m)
	}
	o := h.o
	o.mu.Lock()
	o.seen++
	o.now++
	o.most = max(o.most, o.now)
	hold := !o.firstHeldBack
	if hold {
		o.firstHeldBack = true
		o.second = make(chan struct{})
	} else if o.now == 2 && o.second != nil {
		close(o.second)
		o.second = nil
	}
	second := o.second
	o.mu.Unlock()
	if hold {
		select {
		case <-second:
		case <-time.After(10 * time.Second):
		case <-ctx.Done():
		}
	}
	defer func() {
		o.mu.Lock()
		o.now--
		o.mu.Unlock()
	}()
	return h.Handler.HandleRequest(ctx, m)
}
