package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
)

// ErrNotRunning: no daemon answers on the home's control socket.
var ErrNotRunning = errors.New("the daemon is not running")

// maxEventLine bounds one line of the events stream.
const maxEventLine = 16 << 20

// Client talks to the daemon of a home over its control socket.
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

// Status is GET /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", &st)
	return st, err
}

// Reload is POST /v1/reload.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/v1/reload", nil)
}

// Events calls fn with every event of GET /v1/events until ctx is done,
// the stream ends, or fn returns an error (which Events returns).
func (c *Client) Events(ctx context.Context, fn func(Event) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://blueshift/v1/events", nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
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
	return sc.Err()
}

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://blueshift"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEventLine))
	if err != nil {
		return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(body, &ae) == nil && ae.Error != "" {
			return errors.New(ae.Error)
		}
		return fmt.Errorf("ask the daemon (%s %s): %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("ask the daemon (%s %s): %w", method, path, err)
		}
	}
	return nil
}
