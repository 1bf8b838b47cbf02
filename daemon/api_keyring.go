package daemon

import (
	"context"
	"net/http"
	"time"
)

// keyringRoutes registers the keyring's endpoint of the control API:
//
//	POST /v1/pair            PairRequest          -> PairResult
//	POST /v1/keyring/remove  {"device": DEVICE}  -> KeyringRemoval
//
// Pairing is Pair's work on the daemon's home, then a reload (as an
// invitation is), so the daemon holds the invitation before the link is
// printed.
func (d *Daemon) keyringRoutes(mux router) {
	mux.HandleFunc("POST /v1/pair", d.apiPair)
	mux.HandleFunc("POST /v1/keyring/remove", func(w http.ResponseWriter, r *http.Request) {
		var q struct {
			Device string `json:"device"`
		}
		if err := decodeBody(r, &q); err != nil {
			writeError(w, err)
			return
		}
		res, err := d.RemoveFromKeyring(q.Device)
		answer(w, res, err)
	})
}

// RemoveFromKeyring is POST /v1/keyring/remove.
func (c *Client) RemoveFromKeyring(ctx context.Context, device string) (KeyringRemoval, error) {
	var r KeyringRemoval
	err := c.do(ctx, http.MethodPost, "/v1/keyring/remove", map[string]any{"device": device}, &r)
	return r, err
}

// PairRequest is the body of POST /v1/pair.
type PairRequest struct {
	Expires   string `json:"expires,omitempty"` // a Go duration like "1h"; absent: an hour
	SingleUse bool   `json:"single_use,omitempty"`
	// Addresses the link names; absent: config.toml's announce addresses,
	// else where the daemon really listens.
	Addresses []string `json:"addresses,omitempty"`
}

func (d *Daemon) apiPair(w http.ResponseWriter, r *http.Request) {
	var req PairRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	opts := InviteOptions{SingleUse: req.SingleUse}
	var err error
	if opts.Expires, opts.Addresses, err = d.linkTerms("pair", req.Expires, req.Addresses); err != nil {
		writeError(w, err)
		return
	}
	if opts.Expires == 0 {
		opts.Expires = time.Hour
	}
	res, err := Pair(d.home, opts)
	if err != nil {
		writeError(w, err)
		return
	}
	d.answerReloaded(w, res, nil)
}

// Pair is POST /v1/pair.
func (c *Client) Pair(ctx context.Context, req PairRequest) (PairResult, error) {
	var out PairResult
	err := c.do(ctx, http.MethodPost, "/v1/pair", req, &out)
	return out, err
}
