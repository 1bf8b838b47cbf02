package engine

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestFirstSyncOfSmallFilesAsksNoBlock: a first sync of small files brings
// their content with their records, in bulk, so the receiver asks the
// sender for (next to) no block on its own: neither when the records come in the
// sender's pushes (which carry content for some hundreds of files; the
// rest is asked for again, askContent), nor when the receiver walks the
// sender's tree (one response carries the content of its 256 records).
// A record asked for again only for its content comes back as a delta
// against itself.
func TestFirstSyncOfSmallFilesAsksNoBlock(t *testing.T) {
	for _, c := range []struct {
		name string
		walk bool // link once the sender has scanned and pushed to nobody
	}{{"pushed", false}, {"walked", true}} {
		t.Run(c.name, func(t *testing.T) {
			a, b := newPair(t)
			for i := range 700 {
				mustWrite(t, filepath.Join(a.dir, fmt.Sprintf("d%d/f%03d.bin", i%7, i)), randBytes(16<<10+i))
			}
			a.served = new(served)
			if c.walk {
				waitScanned(t, a)
				a.restart() // no push in flight: B walks A's tree
				a.served = new(served)
				waitScanned(t, a)
			} else {
				a.rescan()
			}
			link(t, a, b)
			waitConvergedFor(t, time.Minute, a, b)
			// A few may still be asked for one by one (a record that came
			// again, without content, after its path was applied); before
			// content came in bulk it was 600-700.
			if n := a.served.blocks.Load(); n > 35 {
				t.Errorf("B asked A for %d blocks of 700 small files; want their content with their records", n)
			}
			asked, bytes := a.served.records.Load(), a.served.recordBytes.Load()
			t.Logf("records asked for: %d, %d bytes of records in the answers", asked, bytes)
			// B holds the pushed records it asks for again (for their
			// content): each comes back as a delta against itself, ~20
			// bytes, where the whole record is ~240 (before: 238 each).
			if !c.walk && asked > 0 && bytes/asked > 64 {
				t.Errorf("the records B asked for again with their content came back at %d bytes each; want deltas against the records B holds (<= 64)", bytes/asked)
			}
		})
	}
}
