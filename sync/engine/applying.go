package engine

import (
	gosync "sync"

	"github.com/blueshift-sync/blueshift/index/record"
)

// Paths the puller is changing. Between the moment the puller changes a
// path on disk (a file put in place, a directory made, attributes set) and
// the moment the index commits the peer's record for it, the disk holds
// the peer's version while the index does not know it yet. A scan in that
// window (the watcher's, or one the puller runs itself when a folder moved)
// would take the file for the user's work and record it as a new version
// of this device, concurrent with the peer's: that version then beats the
// peer's later deletion of it (delete versus edit keeps the edit), and a
// folder the peer renamed comes back on both devices with the files that
// were in flight.
//
// So the puller holds each path from its change on disk to its commit, the
// scan leaves held paths alone (index.ScanOptions.Busy), and a path a scan
// skipped is scanned again once it is released: a user's edit in the
// window is recorded then, against the committed record.
//
// A folder the puller makes for a file whose folder has no record here yet
// (records come in tree-key order, not path order, so a file's may come
// before its folder's) is held the same way, from the moment it is made
// until a record of it is committed: without that, a scan in between
// records the folder as this device's own, concurrent with the peer's
// record still on its way, and pushes it back to the peer.
type applying struct {
	mu      gosync.Mutex
	held    map[record.Path]int  // guarded by mu: holds per path
	skipped map[record.Path]bool // guarded by mu: held paths a scan left alone
	made    map[record.Path]bool // guarded by mu: folders made for a file, held until recorded
}

// maxMadeHeld bounds the folders held for their records; past it a folder
// made for a file is recorded by the next scan, as any other.
const maxMadeHeld = 1 << 14

// hold marks p as being changed by the puller.
func (a *applying) hold(p record.Path) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held == nil {
		a.held = make(map[record.Path]int)
	}
	a.held[p]++
}

// release ends one hold of p. It reports whether a scan skipped p while it
// was held: the caller scans it again.
func (a *applying) release(p record.Path) (rescan bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch n := a.held[p]; {
	case n > 1:
		a.held[p] = n - 1
		return false
	case n == 1:
		delete(a.held, p)
	}
	rescan = a.skipped[p]
	delete(a.skipped, p)
	return rescan
}

// holdMade holds folder p, just made for a file, until recorded (madeRecorded).
func (a *applying) holdMade(p record.Path) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.made[p] || len(a.made) >= maxMadeHeld {
		return
	}
	if a.made == nil {
		a.made = make(map[record.Path]bool)
	}
	a.made[p] = true
	if a.held == nil {
		a.held = make(map[record.Path]int)
	}
	a.held[p]++
}

// madeRecorded ends holdMade's hold of p, if any, now that a record of p is
// committed. It reports, as release does, whether p is to be scanned again.
func (a *applying) madeRecorded(p record.Path) (rescan bool) {
	a.mu.Lock()
	made := a.made[p]
	delete(a.made, p)
	a.mu.Unlock()
	return made && a.release(p)
}

// busy is the scan's index.ScanOptions.Busy: whether p is held, noting
// that the scan skipped it.
func (a *applying) busy(p record.Path) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held[p] == 0 {
		return false
	}
	if a.skipped == nil {
		a.skipped = make(map[record.Path]bool)
	}
	a.skipped[p] = true
	return true
}

// testHookPut, set by tests only, runs once the puller has put a file in
// place and before it commits the file's record: in the window a scan
// must leave alone.
var testHookPut func(f *folder, p record.Path)

// hold marks p as being changed by the puller until f.release(p).
func (f *folder) hold(p record.Path) { f.applying.hold(p) }

// release ends a hold of p (see applying) and has p scanned again if a scan
// left it alone meanwhile.
func (f *folder) release(p record.Path) {
	if f.applying.release(p) {
		f.requestScan([]string{string(p)}, false)
	}
}

// dirMade is the apply root's DirMade: folder p was made for a file.
func (f *folder) dirMade(p record.Path) {
	if f != nil {
		f.applying.holdMade(p)
	}
}

// recorded is told of each record the puller commits: a folder made for a
// file and held until its record came (applying.holdMade) is let go.
func (f *folder) recorded(p record.Path) {
	if f.applying.madeRecorded(p) {
		f.requestScan([]string{string(p)}, false)
	}
}

// releaseStaged releases the paths of staged records, once each is
// committed or settled.
func (f *folder) releaseStaged(staged []*stagedFile) {
	for _, sf := range staged {
		if sf.held {
			sf.held = false
			f.release(sf.in.rec.Path)
		}
	}
}
