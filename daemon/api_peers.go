package daemon

import (
	"fmt"
	"net/http"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// The known devices' endpoints: GET /v1/peers, POST /v1/peers, POST
// /v1/peers/{peer}/remove. AddPeer and RemovePeer edit a home's
// config.toml; the daemon's handlers call them on its home and reload,
// `peer add|remove` call them directly only when no daemon runs.

// PeerEntry is one known device of GET /v1/peers.
type PeerEntry struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
	// Member and Note, from `peer remove` only: the shares whose
	// membership log still names the device, and what that means.
	Member []string `json:"member_of,omitempty"`
	Note   string   `json:"note,omitempty"`
}

// AddPeerRequest is the body of POST /v1/peers.
type AddPeerRequest struct {
	ID        string   `json:"id"`
	Name      string   `json:"name,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// Peers lists cfg's known devices.
func Peers(cfg *config.Config) []PeerEntry {
	out := []PeerEntry{}
	for _, p := range cfg.Peers {
		out = append(out, peerEntry(p))
	}
	return out
}

// AddPeer adds a known device to home's configuration, or more addresses
// (and a new name) to one already known.
func AddPeer(home string, req AddPeerRequest) (PeerEntry, error) {
	id, err := identity.ParseDeviceID(req.ID)
	if err != nil {
		return PeerEntry{}, fmt.Errorf("%w: peer add: %v: copy the ID `blueshift id` printed on that device", errBadRequest, err)
	}
	var out PeerEntry
	err = EditConfig(home, func(cfg *config.Config) error {
		if err := cfg.AddPeer(config.Peer{ID: id.String(), Name: req.Name, Addresses: req.Addresses}); err != nil {
			return err
		}
		p, err := cfg.FindPeer(id.String())
		if err == nil {
			out = peerEntry(*p)
		}
		return err
	})
	if err != nil {
		return PeerEntry{}, fmt.Errorf("peer add: %w", err)
	}
	return out, nil
}

// RemovePeer forgets the device ref names (ID or name) in home's
// configuration, and takes it off every share.
func RemovePeer(home, ref string) (PeerEntry, error) {
	var out PeerEntry
	err := EditConfig(home, func(cfg *config.Config) error {
		p, err := cfg.RemovePeer(ref)
		out = peerEntry(p)
		return err
	})
	if err != nil {
		return PeerEntry{}, fmt.Errorf("peer remove: %w", err)
	}
	return out, nil
}

func peerEntry(p config.Peer) PeerEntry {
	e := PeerEntry{ID: p.ID, Name: p.Name, Addresses: p.Addresses}
	if e.Addresses == nil {
		e.Addresses = []string{}
	}
	return e
}

func (d *Daemon) apiPeers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Peers(d.config()))
}

func (d *Daemon) apiAddPeer(w http.ResponseWriter, r *http.Request) {
	var req AddPeerRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	e, err := AddPeer(d.home, req)
	if err == nil {
		err = d.undismiss(e.ID) // peer_remove.go
	}
	d.answerReloaded(w, e, err)
}

func (d *Daemon) apiRemovePeer(w http.ResponseWriter, r *http.Request) {
	e, err := d.removePeer(r.PathValue("peer")) // peer_remove.go: introduced devices too
	d.answerReloaded(w, e, err)
}
