package daemon

import (
	"fmt"
	"net/http"
	"path/filepath"
	"time"
)

// The pairing endpoints: POST /v1/invites makes an invitation (a link and
// a short code), POST /v1/joins joins a share from a link or a code, POST
// /v1/joins/cancel takes back a join its inviter refused. The work is
// Invite, Join, JoinByCode and Unjoin's, on the daemon's home; the
// handler then reloads, so the daemon holds an invitation before its link
// is printed and presents a join at once.

// InviteRequest is the body of POST /v1/invites.
type InviteRequest struct {
	Share     string `json:"share"`
	ReadOnly  bool   `json:"read_only,omitempty"`
	Encrypted bool   `json:"encrypted,omitempty"` // an encrypted member: stores and serves, reads nothing
	Expires   string `json:"expires,omitempty"`   // a Go duration like "24h"; absent: DefaultInviteExpiry
	SingleUse bool   `json:"single_use,omitempty"`
	// Addresses the link names; absent: config.toml's announce addresses,
	// else where the daemon really listens.
	Addresses []string `json:"addresses,omitempty"`
}

// Invitation is what POST /v1/invites answers.
type Invitation struct {
	Link      string    `json:"link"`
	Code      string    `json:"code"` // XXXXX-XXXXX, for the LAN
	Share     string    `json:"share"`
	ShareName string    `json:"share_name"`
	Access    string    `json:"access"` // read-write, read-only or encrypted
	SingleUse bool      `json:"single_use"`
	Expires   time.Time `json:"expires"`
	Addresses []string  `json:"addresses"`
}

// JoinRequest is the body of POST /v1/joins: a link, or a code (with
// where to find its inviter: absent, the LAN).
type JoinRequest struct {
	Link      string   `json:"link,omitempty"`
	Code      string   `json:"code,omitempty"`
	Path      string   `json:"path"` // absolute
	Addresses []string `json:"addresses,omitempty"`
}

// Joined is what POST /v1/joins answers, and the body of POST
// /v1/joins/cancel.
type Joined struct {
	Share     string `json:"share"`
	Path      string `json:"path"`
	Inviter   string `json:"inviter"`
	AddedPeer bool   `json:"added_peer"` // the inviter was not a known device before
}

func (d *Daemon) apiInvite(w http.ResponseWriter, r *http.Request) {
	var req InviteRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	opts := InviteOptions{ReadOnly: req.ReadOnly, Encrypted: req.Encrypted, SingleUse: req.SingleUse}
	var err error
	if opts.Expires, opts.Addresses, err = d.linkTerms("invite", req.Expires, req.Addresses); err != nil {
		writeError(w, err)
		return
	}
	l, code, err := Invite(d.home, req.Share, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	access := "read-write"
	switch {
	case req.ReadOnly:
		access = "read-only"
	case req.Encrypted:
		access = "encrypted"
	}
	out := Invitation{Link: l.String(), Code: code, Share: l.Key.ID().String(), ShareName: l.ShareName, Access: access,
		SingleUse: req.SingleUse, Expires: l.Expires, Addresses: l.Addresses}
	d.answerReloaded(w, out, nil)
}

func (d *Daemon) apiJoin(w http.ResponseWriter, r *http.Request) {
	var req JoinRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Path != "" && !filepath.IsAbs(req.Path) { // empty: a pair link's default DIR, or refused by Join
		writeError(w, fmt.Errorf("%w: join: path %q is not absolute", errBadRequest, req.Path))
		return
	}
	var res JoinResult
	var err error
	switch {
	case (req.Link == "") == (req.Code == ""):
		err = fmt.Errorf("%w: join: give a link or a code", errBadRequest)
	case req.Code != "":
		if !IsCode(req.Code) {
			err = fmt.Errorf("%w: join: %q is not a code like XXXXX-XXXXX", errBadRequest, req.Code)
			break
		}
		res, err = JoinByCode(r.Context(), d.home, req.Code, req.Path, CodeJoinOptions{Addresses: req.Addresses})
	default:
		res, err = Join(d.home, req.Link, req.Path, time.Time{})
	}
	d.answerReloaded(w, Joined{Share: res.ShareID, Path: res.Path, Inviter: res.Inviter, AddedPeer: res.AddedPeer}, err)
}

func (d *Daemon) apiCancelJoin(w http.ResponseWriter, r *http.Request) {
	var req Joined
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	err := Unjoin(d.home, JoinResult{ShareID: req.Share, Path: req.Path, Inviter: req.Inviter, AddedPeer: req.AddedPeer})
	d.answerReloaded(w, req, err)
}

// linkTerms reads a link's terms from a request: its expiry (a positive Go
// duration; "" leaves 0, the verb's default) and the addresses it names
// (none given: config.toml's announce addresses, else where the daemon
// really listens).
func (d *Daemon) linkTerms(verb, expires string, addrs []string) (time.Duration, []string, error) {
	var e time.Duration
	if expires != "" {
		var err error
		if e, err = time.ParseDuration(expires); err != nil || e <= 0 {
			return 0, nil, fmt.Errorf("%w: %s: expires %q: give a positive duration like 24h or 30m", errBadRequest, verb, expires)
		}
	}
	if len(addrs) > 0 {
		return e, addrs, nil
	}
	addrs, err := Addresses(d.config().Device.Announce, d.Addr().String())
	return e, addrs, err
}
