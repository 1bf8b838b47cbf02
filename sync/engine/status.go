package engine

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/reconcile"
)

// Status is a snapshot of what the engine is doing, for `blueshift status`
// and the control API.
type Status struct {
	Shares []ShareStatus
	Peers  []PeerStatus
}

// ShareStatus describes one share.
type ShareStatus struct {
	ID        string
	Name      string
	Path      string
	InSync    bool   // nothing pending or being scanned, a member connected, and every connected member has our root
	Root      string // hex
	Records   uint64
	NeedItems int   // records received or retried, not yet applied
	NeedBytes int64 // their data bytes (a sparse file's holes not counted)
	Conflicts int   // conflict copies made since start
	Errors    []string
	Peers     []identity.DeviceID // members connected now
	// Reached are the members whose last announcement (connected now or
	// not) had this device's current root.
	Reached  []identity.DeviceID
	Scanned  time.Time // last scan finished
	BytesIn  int64     // block and inline bytes received for this share since it started
	BytesOut int64     // block bytes served to peers

	// DiskFull is set while pulls wait for space on the share's disk; its
	// message is then also the first of Errors.
	DiskFull *DiskFull
}

// PeerStatus describes one connected peer as the engine sees it.
type PeerStatus struct {
	ID      identity.DeviceID
	Since   time.Time
	BytesIn int64 // block payload bytes received from it
}

// Status returns a snapshot; it is cheap enough to poll.
func (e *Engine) Status() Status {
	var st Status
	for _, f := range e.folders() {
		st.Shares = append(st.Shares, f.status())
	}
	for _, s := range e.sessions() {
		s.mu.Lock()
		since := s.mu.since
		s.mu.Unlock()
		st.Peers = append(st.Peers, PeerStatus{ID: s.id, Since: since, BytesIn: s.bytesIn.Load()})
	}
	return st
}

func (f *folder) status() ShareStatus {
	root, count, _ := f.idx.TreeRoot()
	ss := ShareStatus{
		ID: f.id.String(), Name: f.cfg.Name, Path: f.cfg.Path,
		Root: hex.EncodeToString(root[:]), Records: count,
	}
	f.mu.Lock()
	ss.NeedItems, ss.NeedBytes = f.neededLocked()
	members := len(f.mu.members)
	ss.Conflicts = f.mu.conflict
	ss.Errors = slices.Clone(f.mu.errors)
	if full := f.fullLocked(); full != nil {
		ss.DiskFull = &DiskFull{Path: full.path, Need: full.need, Free: full.free, Since: full.since}
		ss.Errors = append([]string{ss.DiskFull.String()}, ss.Errors...)
	}
	ss.Scanned = f.mu.scanned
	for id, r := range f.mu.reached {
		if r == root {
			ss.Reached = append(ss.Reached, id)
		}
	}
	ss.BytesIn, ss.BytesOut = f.act.recv.Load(), f.act.sent.Load()
	// A scan under way moves the root a batch at a time, and its records
	// reach peers as it goes (pushLoop): peers that hold what it wrote so
	// far are not yet in sync with what it will have written.
	busy := f.mu.busy || f.mu.scanning > 0
	f.mu.Unlock()
	queued := len(f.inbox) > 0 || len(f.scans) > 0
	inSync := !busy && !queued && ss.NeedItems == 0 && !ss.Scanned.IsZero()
	for _, s := range f.connectedMembers() {
		ss.Peers = append(ss.Peers, s.id)
		s.mu.Lock()
		remote, known := s.mu.remote[f.id]
		s.mu.Unlock()
		if !known || remote.Root != root {
			inSync = false
		}
	}
	if members > 0 && len(ss.Peers) == 0 {
		inSync = false // nobody to compare with: unknown, not "in sync"
	}
	ss.InSync = inSync
	return ss
}

// neededLocked counts the paths this device still needs: records queued
// whose content it lacks, and records waiting to be tried again. A path is
// counted once however many of its records are on their way.
func (f *folder) neededLocked() (items int, bytes int64) {
	for _, copies := range f.mu.need {
		items++
		bytes += dataBytes(copies[len(copies)-1].rec)
	}
	for k, in := range f.mu.pending {
		if _, queued := f.mu.need[k]; !queued {
			items++
			bytes += dataBytes(in.rec)
		}
	}
	return items, bytes
}

// needed is a record a peer sent, not applied yet, whose content this device
// lacks. A record the device holds already (the same envelope, or the same
// content under another: two devices that scanned the same files) is not
// needed, only adopted, and status must not count it.
type needed struct {
	leaf merkle.Leaf
	rec  record.Record
}

// countNeeded adds (sign > 0) the records of batch whose content this
// device lacks to what status counts as needed, or takes them out (sign <
// 0) once the puller is done with them. Taking one out looks again at other
// records of the same path still queued: those whose content the device
// now holds no longer count.
func (f *folder) countNeeded(batch []incoming, sign int) {
	if sign > 0 {
		lack := make([]incoming, 0, len(batch))
		for _, in := range batch {
			if !f.holds(in.env.Key(), in.env.Leaf(), in.rec) {
				lack = append(lack, in)
			}
		}
		f.mu.Lock()
		for _, in := range lack {
			k := in.env.Key()
			f.mu.need[k] = append(f.mu.need[k], needed{leaf: in.env.Leaf(), rec: in.rec})
		}
		f.mu.Unlock()
		return
	}
	for _, in := range batch {
		k := in.env.Key()
		f.mu.Lock()
		rest := f.mu.need[k]
		if i := slices.IndexFunc(rest, func(n needed) bool { return n.leaf == in.env.Leaf() }); i >= 0 {
			rest = slices.Delete(rest, i, i+1)
		}
		f.setNeedLocked(k, rest)
		rest = slices.Clone(rest) // read below without the lock
		f.mu.Unlock()
		if len(rest) == 0 {
			continue
		}
		var held []merkle.Leaf
		for _, n := range rest {
			if f.holds(k, n.leaf, n.rec) {
				held = append(held, n.leaf)
			}
		}
		if len(held) == 0 {
			continue
		}
		f.mu.Lock()
		f.setNeedLocked(k, slices.DeleteFunc(f.mu.need[k], func(n needed) bool { return slices.Contains(held, n.leaf) }))
		f.mu.Unlock()
	}
}

func (f *folder) setNeedLocked(k merkle.Key, copies []needed) {
	if len(copies) == 0 {
		delete(f.mu.need, k)
		return
	}
	f.mu.need[k] = copies
}

// holds reports whether the device already holds what the record of key k
// with leaf and rec puts on disk: the same envelope, the same content, or,
// for a deletion, nothing at all.
func (f *folder) holds(k merkle.Key, leaf merkle.Leaf, rec record.Record) bool {
	env, ok, err := f.idx.Envelope(k)
	switch {
	case err != nil:
		return false
	case !ok:
		return rec.Deleted
	case env.Leaf() == leaf:
		return true
	case env.Sealed():
		return false
	}
	local, err := env.Record()
	return err == nil && reconcile.SameContent(local, rec)
}

// heardRoot notes the root a member announced, for Reached.
func (f *folder) heardRoot(id identity.DeviceID, root merkle.Hash) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.reached == nil {
		f.mu.reached = make(map[identity.DeviceID]merkle.Hash)
	}
	f.mu.reached[id] = root
}

// Reasons a path is not in sync yet (NeededFile.Reason).
const (
	NeedQueued   = "queued"           // received, waiting for the puller
	NeedNoPeer   = "waiting for peer" // no connected member has its blocks now
	NeedDirWaits = "waiting for deletions below it"
	NeedDiskFull = "disk full"
	NeedError    = "error" // Err says which
)

// NeededFile is one path this device does not hold yet, and why.
type NeededFile struct {
	Path    record.Path
	Bytes   int64 // the file's size; 0 for a deletion, a folder or a link
	Deleted bool  // the record deletes the path
	Peer    identity.DeviceID
	Reason  string // one of the Need* constants
	Err     string // the last error, for NeedError and NeedDiskFull
}

// Needed lists, sorted by path, up to limit (<= 0: all) of the paths status
// counts as needed in share id, and how many there are in all.
func (e *Engine) Needed(id share.ID, limit int) ([]NeededFile, int, error) {
	f := e.folder(id)
	if f == nil {
		return nil, 0, fmt.Errorf("list needed files of share %s: %w", id, ErrUnknownShare)
	}
	var out []NeededFile
	f.mu.Lock()
	add := func(in incoming, reason string, err error) {
		n := NeededFile{Path: in.rec.Path, Deleted: in.rec.Deleted, Peer: in.from, Reason: reason}
		if !in.rec.Deleted && in.rec.Kind == record.File {
			n.Bytes = dataBytes(in.rec)
		}
		if err != nil {
			n.Err = err.Error()
		}
		out = append(out, n)
	}
	for k, copies := range f.mu.need {
		if _, waits := f.mu.pending[k]; !waits {
			c := copies[len(copies)-1]
			add(incoming{rec: c.rec}, NeedQueued, nil)
		}
	}
	for k, in := range f.mu.pending {
		err := f.mu.why[k]
		reason := NeedError
		switch full := f.mu.full[k]; {
		case full != nil:
			reason = NeedDiskFull
		case errors.Is(err, errMissingBlocks):
			reason, err = NeedNoPeer, nil
		case errors.Is(err, errDirWaits):
			reason, err = NeedDirWaits, nil
		}
		add(in, reason, err)
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b NeededFile) int { return cmp.Compare(a.Path, b.Path) })
	total := len(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, total, nil
}
