package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/blueshift-sync/blueshift/config"
)

// WebUI is the web UI the daemon serves on loopback TCP. Package daemon/ui
// makes it; it imports this package, so cmd/blueshift wires it in through
// Options.NewUI.
type WebUI interface {
	http.Handler
	// Run samples what the UI shows over time (transfer rates) until ctx
	// is done.
	Run(ctx context.Context)
	// LoginURL mints a one-time login link to the UI served at base
	// ("http://127.0.0.1:8385").
	LoginURL(base string) (string, error)
}

// uiServer is the web UI's listener and handler; nil fields: no UI.
type uiServer struct {
	ln  net.Listener
	web WebUI
}

// UIAddr is the web UI's address, nil when it is off or its port was busy.
func (d *Daemon) UIAddr() net.Addr {
	if d.ui.ln == nil {
		return nil
	}
	return d.ui.ln.Addr()
}

// Home is the device home the daemon runs.
func (d *Daemon) Home() string { return d.home }

// listenUI opens the web UI's listener: Options.UI, else [device] ui, else
// config.DefaultUI; "off" or no Options.NewUI: none. A busy port is a
// warning: the daemon syncs without its UI.
func (d *Daemon) listenUI(cfg *config.Config) error {
	addr := d.opts.UI
	if addr == "" {
		addr = cfg.Device.UI
	}
	if addr == "" {
		addr = config.DefaultUI
	}
	if addr == "off" || d.opts.NewUI == nil {
		return nil
	}
	if err := config.CheckUI(addr); err != nil {
		return fmt.Errorf("web UI address %q: %w: give a loopback HOST:PORT like %s, or off", addr, err, config.DefaultUI)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		d.log.Warn("web UI not served: its port is busy; pass --ui 127.0.0.1:PORT with a free port, or --ui off", "addr", addr, "err", err)
		return nil
	}
	web, err := d.opts.NewUI(d)
	if err != nil {
		ln.Close()
		return fmt.Errorf("web UI: %w", err)
	}
	d.ui = uiServer{ln: ln, web: web}
	return nil
}

// serveUI serves the web UI until the returned stop is called.
func (d *Daemon) serveUI(ctx context.Context) (stop func(context.Context)) {
	if d.ui.ln == nil {
		return func(context.Context) {}
	}
	srv := &http.Server{
		Handler:           d.ui.web,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	d.log.Info("web UI", "url", "http://"+d.ui.ln.Addr().String(), "login", "`blueshift ui`")
	d.wg.Go(func() { d.ui.web.Run(ctx) })
	d.wg.Go(func() {
		if err := srv.Serve(d.ui.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("web UI stopped", "err", err)
		}
	})
	return func(shutdown context.Context) {
		if srv.Shutdown(shutdown) != nil {
			srv.Close()
		}
	}
}

// UILogin is what POST /v1/ui/login answers.
type UILogin struct {
	URL string `json:"url"` // the UI's address with a one-time login token
}

// serveUILogin answers POST /v1/ui/login: a one-time login link, for
// `blueshift ui`. The control socket is the proof of being the home's user.
func (d *Daemon) serveUILogin(w http.ResponseWriter, r *http.Request) {
	if d.ui.ln == nil {
		writeJSON(w, http.StatusNotFound, uiError{Error: "the web UI is off or its port was busy (the daemon's log says which): " +
			"restart the daemon with --ui 127.0.0.1:PORT, or set [device] ui in config.toml"})
		return
	}
	u, err := d.ui.web.LoginURL("http://" + d.ui.ln.Addr().String())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, uiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, UILogin{URL: u})
}

// uiError is how the login endpoint answers a failure.
type uiError struct {
	Error string `json:"error"`
}

// UILogin is POST /v1/ui/login: a one-time link to the web UI.
func (c *Client) UILogin(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://blueshift/v1/ui/login", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("ask the daemon for a web UI link: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		UILogin
		uiError
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return "", fmt.Errorf("ask the daemon for a web UI link: %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(out.Error)
	}
	return out.URL, nil
}
