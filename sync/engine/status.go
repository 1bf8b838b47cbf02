package engine

import (
	"encoding/hex"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
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
	InSync    bool   // nothing pending, a member connected, and every connected member has our root
	Root      string // hex
	Records   uint64
	NeedItems int   // records received or retried, not yet applied
	NeedBytes int64 // their file sizes
	Conflicts int   // conflict copies made since start
	Errors    []string
	Peers     []identity.DeviceID // members connected now
	Scanned   time.Time           // last scan finished

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
	ss.NeedItems = len(f.mu.pending) + f.mu.queued
	ss.NeedBytes = f.mu.queuedB
	for _, in := range f.mu.pending {
		ss.NeedBytes += in.rec.Size
	}
	members := len(f.mu.members)
	ss.Conflicts = f.mu.conflict
	ss.Errors = slices.Clone(f.mu.errors)
	if full := f.fullLocked(); full != nil {
		ss.DiskFull = &DiskFull{Path: full.path, Need: full.need, Free: full.free, Since: full.since}
		ss.Errors = append([]string{ss.DiskFull.String()}, ss.Errors...)
	}
	ss.Scanned = f.mu.scanned
	busy := f.mu.busy
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
