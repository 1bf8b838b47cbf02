package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"
)

// The one-off transfer endpoints: POST /v1/sends offers paths under a
// short code, POST /v1/sends/{share}/finish ends the offer; POST
// /v1/receives fetches what a code offers, POST
// /v1/receives/{share}/finish moves a complete receive into its folder.
// The work is StartSend, FinishSend, StartReceive and FinishReceive's (see
// send.go), on the daemon's home; each handler then reloads, so the daemon
// serves or fetches the share at once. Progress is GET /v1/status's.

// SendRequest is the body of POST /v1/sends.
type SendRequest struct {
	Paths     []string `json:"paths"`             // absolute
	Expires   string   `json:"expires,omitempty"` // a Go duration; absent: DefaultSendExpiry
	Addresses []string `json:"addresses,omitempty"`
	// Rendezvous: public devices (HOST:PORT) the offer is made at, for a
	// receiver behind another NAT (sendrendezvous.go).
	Rendezvous []string `json:"rendezvous,omitempty"`
}

// ReceiveRequest is the body of POST /v1/receives.
type ReceiveRequest struct {
	Code      string   `json:"code"`
	Dir       string   `json:"dir"`                 // absolute
	Addresses []string `json:"addresses,omitempty"` // where the sender listens; absent: the LAN
	// Rendezvous: public devices (HOST:PORT) to meet the sender at, when
	// Addresses is absent, instead of the LAN.
	Rendezvous []string `json:"rendezvous,omitempty"`
}

// Received is what POST /v1/receives/{share}/finish answers.
type Received struct {
	Paths []string `json:"paths"` // the items made in the receive folder
}

func (d *Daemon) apiSend(w http.ResponseWriter, r *http.Request) {
	var req SendRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if len(req.Paths) == 0 {
		writeError(w, fmt.Errorf("%w: send: name at least one file or folder", errBadRequest))
		return
	}
	for _, p := range req.Paths {
		if !filepath.IsAbs(p) {
			writeError(w, fmt.Errorf("%w: send: path %q is not absolute", errBadRequest, p))
			return
		}
	}
	opts := SendOptions{Addresses: req.Addresses}
	if req.Expires != "" {
		e, err := time.ParseDuration(req.Expires)
		if err != nil || e <= 0 {
			writeError(w, fmt.Errorf("%w: send: expires %q: give a positive duration like 1h", errBadRequest, req.Expires))
			return
		}
		opts.Expires = e
	}
	if len(opts.Addresses) == 0 && len(d.config().Device.Announce) == 0 {
		// Where the daemon really listens (a --listen of its own, a port 0).
		opts.Addresses, _ = Addresses(nil, d.Addr().String())
	}
	s, err := StartSend(d.home, req.Paths, opts)
	if err == nil {
		if err = d.Reload(); err != nil {
			FinishSend(d.home, s.ShareID)
			err = fmt.Errorf("send: the daemon did not take the offer: %w", err)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	d.offerAtRendezvous(s.ShareID, s.Code, req.Rendezvous)
	d.offerInDHT(s.ShareID, s.Code) // senddht.go
	writeJSON(w, http.StatusOK, s)
}

func (d *Daemon) apiFinishSend(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("share")
	d.endRendezvous(id)
	err := FinishSend(d.home, id)
	// Reloaded even when it failed midway: the share may be gone already.
	if err := errors.Join(err, d.Reload()); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Share string `json:"share"`
	}{id})
}

func (d *Daemon) apiReceive(w http.ResponseWriter, r *http.Request) {
	var req ReceiveRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !IsCode(req.Code) {
		writeError(w, fmt.Errorf("%w: receive: %q is not a code like XXXXX-XXXXX", errBadRequest, req.Code))
		return
	}
	if !filepath.IsAbs(req.Dir) {
		writeError(w, fmt.Errorf("%w: receive: folder %q is not absolute", errBadRequest, req.Dir))
		return
	}
	rc, err := StartReceive(r.Context(), d.home, req.Code, req.Dir, CodeJoinOptions{Addresses: req.Addresses, Rendezvous: req.Rendezvous, QUIC: d.quic, Logger: d.log, daemon: d})
	if err != nil {
		err = fmt.Errorf("receive: %w", err)
	}
	d.answerReloaded(w, rc, err)
}

func (d *Daemon) apiFinishReceive(w http.ResponseWriter, r *http.Request) {
	made, err := FinishReceive(d.home, r.PathValue("share"))
	if made == nil {
		made = []string{}
	}
	// Reloaded even when it failed midway: the share is gone already.
	if err := errors.Join(err, d.Reload()); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Received{Paths: made})
}
