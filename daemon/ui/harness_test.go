package ui_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/daemon/ui"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// wait is the deadline of every condition a test waits for: generous, as
// the machine is shared.
const wait = 2 * time.Minute

// device is one in-process daemon with its web UI.
type device struct {
	t    *testing.T
	home string
	d    *daemon.Daemon
	ui   *ui.Server
	base string // http://127.0.0.1:PORT
	done chan error
}

// startDevice opens and runs a daemon named name with its UI on a free
// loopback port; the test's cleanup stops it.
func startDevice(t *testing.T, name string) *device {
	t.Helper()
	home := filepath.Join(t.TempDir(), name)
	if _, err := identity.Create(home); err != nil {
		t.Fatal(err)
	}
	cfg := config.New(name)
	cfg.Device.Discovery = false
	if err := cfg.Save(home); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, daemon.DBDir), 0o700); err != nil {
		t.Fatal(err)
	}
	dev := &device{t: t, home: home, done: make(chan error, 1)}
	d, err := daemon.Open(daemon.Options{
		Home: home, Listen: "127.0.0.1:0", NoDiscovery: true, UI: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelInfo})),
		NewUI: func(d *daemon.Daemon) (daemon.WebUI, error) {
			s, err := ui.New(ui.Options{Daemon: d, SampleEvery: 200 * time.Millisecond})
			dev.ui = s
			return s, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	dev.d = d
	dev.base = "http://" + d.UIAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { dev.done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-dev.done; err != nil {
			t.Errorf("%s: run: %v", name, err)
		}
	})
	return dev
}

// addShare makes a share of a new folder holding files (name -> content).
func (dev *device) addShare(name string, files map[string]string) string {
	t := dev.t
	dir := filepath.Join(filepath.Dir(dev.home), name+"-"+filepath.Base(dev.home))
	for p, c := range files {
		writeFile(t, filepath.Join(dir, p), c)
	}
	sec, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key := share.FromSecret(sec)
	s := config.NewShare(key.ID().String(), dir, key.String())
	s.Name = name
	if err := daemon.EditConfig(dev.home, func(c *config.Config) error { return c.AddShare(s) }); err != nil {
		t.Fatal(err)
	}
	dev.reload()
	return dir
}

// reload applies config.toml, once Run has begun.
func (dev *device) reload() {
	deadline := time.Now().Add(wait)
	for {
		err := dev.d.Reload()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			dev.t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// share is the status of the share named name.
func (dev *device) share(name string) (daemon.ShareStatus, bool) {
	for _, s := range dev.d.Status().Shares {
		if s.Name == name {
			return s, true
		}
	}
	return daemon.ShareStatus{}, false
}

// waitFor polls cond until it holds, failing the test after wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", wait, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client is an HTTP client signed in to dev's UI the way a browser is:
// the one-time link, then the session cookie.
func (dev *device) client() *http.Client {
	t := dev.t
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	u, err := dev.ui.LoginURL(dev.base)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s", resp.Status)
	}
	return c
}

// csrf reads the CSRF token a page of dev's UI embeds.
func (dev *device) csrf(c *http.Client) string {
	body := get(dev.t, c, dev.base+"/pair", http.StatusOK)
	_, rest, ok := strings.Cut(body, `name="csrf" value="`)
	tok, _, ok2 := strings.Cut(rest, `"`)
	if !ok || !ok2 {
		dev.t.Fatal("no CSRF token in the pairing page")
	}
	return tok
}

func get(t *testing.T, c *http.Client, u string, want int) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %s, want %d: %s", u, resp.Status, want, b)
	}
	return string(b)
}

// post sends a form with the given headers and returns the status and body.
func post(t *testing.T, c *http.Client, u string, form url.Values, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// testWriter sends a daemon's log lines to t.Log.
type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(w.name + ": " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
