package daemon

import (
	"net/http"
	"strconv"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// maxNeededListed bounds one answer of GET /v1/shares/{share}/needed.
const maxNeededListed = 10000

func (d *Daemon) apiStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.Status())
}

// fillShare adds to ss what the configuration and the rates say.
func (d *Daemon) fillShare(ss *ShareStatus, s config.Share, cfg *config.Config) {
	ss.Paused = s.Paused || cfg.Device.Paused
	ss.MaxSendRate, ss.MaxRecvRate = int64(s.MaxSendRate), int64(s.MaxRecvRate)
	if ss.Paused {
		ss.Errors = append(ss.Errors, "paused: `blueshift resume "+s.Name+"` syncs it again")
	}
	if ss.Running {
		ss.RateIn, ss.RateOut = d.shareRates.observe(s.ID, ss.BytesIn, ss.BytesOut, time.Now())
	}
	switch {
	case ss.NeedBytes == 0:
		ss.ETASeconds = 0
	case ss.RateIn > 0:
		ss.ETASeconds = float64(ss.NeedBytes) / ss.RateIn
	default:
		ss.ETASeconds = -1
	}
}

// Needed is GET /v1/shares/{share}/needed: the paths not in sync yet.
type Needed struct {
	Share string       `json:"share"`
	Total int          `json:"total"` // all of them; Files holds the first maxNeededListed (or ?limit=)
	Files []NeededFile `json:"files"`
	// LocalChanges: a read-only member's edits, which stay local (`blueshift
	// revert` puts the share's version back); absent when there are none.
	LocalChanges *LocalChanges `json:"local_changes,omitempty"`
}

// NeededFile is one path and why it is not in sync.
type NeededFile struct {
	Path     string `json:"path"`
	Bytes    int64  `json:"bytes"`
	Deleted  bool   `json:"deleted"`
	Peer     string `json:"peer,omitempty"` // who sent the record
	PeerName string `json:"peer_name,omitempty"`
	// Reason: "queued", "waiting for peer" (no connected member has its
	// blocks), "waiting for deletions below it", "disk full", "error"
	// (Error says which).
	Reason string `json:"reason"`
	Error  string `json:"error,omitempty"`
}

func (d *Daemon) apiNeeded(w http.ResponseWriter, r *http.Request) {
	s, id, err := d.runningShareOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	limit := maxNeededListed
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	files, total, err := d.eng.Needed(id, limit)
	if err != nil {
		writeError(w, err)
		return
	}
	out := Needed{Share: s.ID, Total: total, Files: make([]NeededFile, 0, len(files))}
	for _, f := range files {
		n := NeededFile{Path: string(f.Path), Bytes: f.Bytes, Deleted: f.Deleted, Reason: f.Reason, Error: f.Err}
		if f.Peer != (identity.DeviceID{}) {
			n.Peer, n.PeerName = f.Peer.String(), d.peerName(f.Peer)
		}
		out.Files = append(out.Files, n)
	}
	if list, n, err := d.eng.LocalChanges(id); err == nil && n > 0 {
		out.LocalChanges = &LocalChanges{Count: n, Paths: list}
	}
	writeJSON(w, http.StatusOK, out)
}

// peerName is what this device calls peer id: its [[peer]] name, else the
// name in its Hello, else its short form.
func (d *Daemon) peerName(id identity.DeviceID) string {
	for _, p := range d.config().Peers {
		if p.ID == id.String() && p.Name != "" {
			return p.Name
		}
	}
	for _, c := range d.peers.Connected() {
		if c.Device == id && c.Name != "" {
			return c.Name
		}
	}
	return id.Abbrev()
}
