package daemon

import (
	"context"
	"net/http"
)

// keyringRoutes registers the keyring's endpoint of the control API:
//
//	POST /v1/keyring/remove  {"device": DEVICE}  -> KeyringRemoval
//
// (Pairing is `blueshift pair`, an edit of config.toml and a reload, as
// `invite` is.)
func (d *Daemon) keyringRoutes(mux *http.ServeMux) {
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
