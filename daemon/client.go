package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// ErrNotRunning: no daemon answers on the home's control socket.
var ErrNotRunning = errors.New("the daemon is not running")

// maxEventLine bounds one line of the events stream.
const maxEventLine = 16 << 20

// Client talks to the daemon of a home over its control socket. Its
// methods are the endpoints of docs/api.md, one each; a refused request
// returns an *APIError with the HTTP status.
type Client struct {
	hc   *http.Client
	sock string
}

// NewClient returns a client for home's daemon, or ErrNotRunning when the
// socket is missing or nothing listens on it.
func NewClient(home string) (*Client, error) {
	sock := filepath.Join(home, SocketFile)
	if _, err := os.Stat(sock); err != nil {
		return nil, fmt.Errorf("%w (no %s)", ErrNotRunning, sock)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrNotRunning, err)
	}
	c.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}
	return &Client{hc: &http.Client{Transport: tr}, sock: sock}, nil
}

// Close closes the client's idle connections to the socket; a long-lived
// caller that makes clients often calls it when done with one.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Reload is POST /v1/reload.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reload", nil, nil)
}

// Needed is GET /v1/shares/{share}/needed.
func (c *Client) Needed(ctx context.Context, share string) (Needed, error) {
	var out Needed
	err := c.do(ctx, http.MethodGet, "/v1/shares/"+url.PathEscape(share)+"/needed", nil, &out)
	return out, err
}

// Pause is POST /v1/pause (share empty) or /v1/shares/{share}/pause; with
// pause false, the resume endpoints.
func (c *Client) Pause(ctx context.Context, share string, pause bool) (PauseResult, error) {
	verb := "resume"
	if pause {
		verb = "pause"
	}
	p := "/v1/" + verb
	if share != "" {
		p = "/v1/shares/" + url.PathEscape(share) + "/" + verb
	}
	var out PauseResult
	err := c.do(ctx, http.MethodPost, p, nil, &out)
	return out, err
}

// Rates is GET /v1/rates.
func (c *Client) Rates(ctx context.Context) (Rates, error) {
	var out Rates
	err := c.do(ctx, http.MethodGet, "/v1/rates", nil, &out)
	return out, err
}

// SetRates is POST /v1/rates.
func (c *Client) SetRates(ctx context.Context, req SetRates) (Rates, error) {
	var out Rates
	err := c.do(ctx, http.MethodPost, "/v1/rates", req, &out)
	return out, err
}

// Versions is GET /v1/shares/{share}/versions[?path=].
func (c *Client) Versions(ctx context.Context, share, path string) (Versions, error) {
	q := ""
	if path != "" {
		q = "?path=" + url.QueryEscape(path)
	}
	var out Versions
	err := c.do(ctx, http.MethodGet, "/v1/shares/"+url.PathEscape(share)+"/versions"+q, nil, &out)
	return out, err
}

// Restore is POST /v1/shares/{share}/versions/restore.
func (c *Client) Restore(ctx context.Context, share string, req Restore) (Restored, error) {
	var out Restored
	err := c.do(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(share)+"/versions/restore", req, &out)
	return out, err
}

// Conflicts is GET /v1/conflicts (share empty) or
// /v1/shares/{share}/conflicts.
func (c *Client) Conflicts(ctx context.Context, share string) (Conflicts, error) {
	p := "/v1/conflicts"
	if share != "" {
		p = "/v1/shares/" + url.PathEscape(share) + "/conflicts"
	}
	var out Conflicts
	err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out, err
}

// Resolve is POST /v1/shares/{share}/conflicts/resolve.
func (c *Client) Resolve(ctx context.Context, share string, req Resolve) (Conflict, error) {
	var out Conflict
	err := c.do(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(share)+"/conflicts/resolve", req, &out)
	return out, err
}

// Events calls fn with every event of GET /v1/events (of the given types;
// none: all) until ctx is done, the stream ends, or fn returns an error
// (which Events returns).
func (c *Client) Events(ctx context.Context, fn func(Event) error, types ...string) error {
	u := "http://blueshift/v1/events"
	if len(types) > 0 {
		q := ""
		for i, t := range types {
			if i > 0 {
				q += ","
			}
			q += t
		}
		u += "?types=" + url.QueryEscape(q)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("daemon events: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("daemon events: %w", err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("daemon events: %w", err)
	}
	return fmt.Errorf("daemon events: the daemon closed the stream (stopped?): %w", io.ErrUnexpectedEOF)
}

// requestTimeout bounds one request: no endpoint but the event stream
// takes long, and a command must never hang on a stuck daemon.
const requestTimeout = time.Minute

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://blueshift"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxEventLine))
	if err != nil {
		return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		ae := &APIError{Code: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae.Message = fmt.Sprintf("ask the daemon (%s %s): %s", method, path, resp.Status)
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
		}
	}
	return nil
}

// Shares is GET /v1/shares.
func (c *Client) Shares(ctx context.Context) ([]ShareEntry, error) {
	var out []ShareEntry
	err := c.do(ctx, http.MethodGet, "/v1/shares", nil, &out)
	return out, err
}

// AddShare is POST /v1/shares.
func (c *Client) AddShare(ctx context.Context, req AddShareRequest) (ShareEntry, error) {
	var out ShareEntry
	err := c.do(ctx, http.MethodPost, "/v1/shares", req, &out)
	return out, err
}

// RemoveShare is POST /v1/shares/{share}/remove.
func (c *Client) RemoveShare(ctx context.Context, share string) (RemovedShare, error) {
	var out RemovedShare
	err := c.do(ctx, http.MethodPost, "/v1/shares/"+url.PathEscape(share)+"/remove", nil, &out)
	return out, err
}

// Peers is GET /v1/peers.
func (c *Client) Peers(ctx context.Context) ([]PeerEntry, error) {
	var out []PeerEntry
	err := c.do(ctx, http.MethodGet, "/v1/peers", nil, &out)
	return out, err
}

// AddPeer is POST /v1/peers.
func (c *Client) AddPeer(ctx context.Context, req AddPeerRequest) (PeerEntry, error) {
	var out PeerEntry
	err := c.do(ctx, http.MethodPost, "/v1/peers", req, &out)
	return out, err
}

// RemovePeer is POST /v1/peers/{peer}/remove.
func (c *Client) RemovePeer(ctx context.Context, peer string) (PeerEntry, error) {
	var out PeerEntry
	err := c.do(ctx, http.MethodPost, "/v1/peers/"+url.PathEscape(peer)+"/remove", nil, &out)
	return out, err
}

// Hooks is GET /v1/hooks.
func (c *Client) Hooks(ctx context.Context) ([]HookEntry, error) {
	var out []HookEntry
	err := c.do(ctx, http.MethodGet, "/v1/hooks", nil, &out)
	return out, err
}

// AddHook is POST /v1/hooks.
func (c *Client) AddHook(ctx context.Context, req AddHookRequest) (HookEntry, error) {
	var out HookEntry
	err := c.do(ctx, http.MethodPost, "/v1/hooks", req, &out)
	return out, err
}

// RemoveHook is POST /v1/hooks/{n}/remove.
func (c *Client) RemoveHook(ctx context.Context, n int) (HookEntry, error) {
	var out HookEntry
	err := c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/hooks/%d/remove", n), nil, &out)
	return out, err
}

// Invite is POST /v1/invites.
func (c *Client) Invite(ctx context.Context, req InviteRequest) (Invitation, error) {
	var out Invitation
	err := c.do(ctx, http.MethodPost, "/v1/invites", req, &out)
	return out, err
}

// Join is POST /v1/joins.
func (c *Client) Join(ctx context.Context, req JoinRequest) (Joined, error) {
	var out Joined
	err := c.do(ctx, http.MethodPost, "/v1/joins", req, &out)
	return out, err
}

// CancelJoin is POST /v1/joins/cancel.
func (c *Client) CancelJoin(ctx context.Context, j Joined) error {
	return c.do(ctx, http.MethodPost, "/v1/joins/cancel", j, nil)
}

// Send is POST /v1/sends.
func (c *Client) Send(ctx context.Context, req SendRequest) (Send, error) {
	var out Send
	err := c.do(ctx, http.MethodPost, "/v1/sends", req, &out)
	return out, err
}

// FinishSend is POST /v1/sends/{share}/finish.
func (c *Client) FinishSend(ctx context.Context, share string) error {
	return c.do(ctx, http.MethodPost, "/v1/sends/"+url.PathEscape(share)+"/finish", nil, nil)
}

// Receive is POST /v1/receives.
func (c *Client) Receive(ctx context.Context, req ReceiveRequest) (Receive, error) {
	var out Receive
	err := c.do(ctx, http.MethodPost, "/v1/receives", req, &out)
	return out, err
}

// FinishReceive is POST /v1/receives/{share}/finish.
func (c *Client) FinishReceive(ctx context.Context, share string) (Received, error) {
	var out Received
	err := c.do(ctx, http.MethodPost, "/v1/receives/"+url.PathEscape(share)+"/finish", nil, &out)
	return out, err
}
