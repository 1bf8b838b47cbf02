package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// startUI starts d's daemon with --ui addr (and the flags start uses).
func (d *device) startUI(addr string) {
	d.t.Helper()
	d.startArgs(bin, "--home", d.home, "run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", addr)
}

// TestUIVerb: `blueshift ui --print-url` prints a one-time link to the UI
// the daemon serves; --json too; without a browser, `ui` prints the link.
func TestUIVerb(t *testing.T) {
	t.Parallel()
	d := newDevice(t, "alpha")
	if _, errOut, code := d.cli("ui", "--print-url"); code != exitFail || !strings.Contains(errOut, "not running") {
		t.Fatalf("ui without a daemon: exit %d: %s", code, errOut)
	}
	d.startUI("127.0.0.1:0")
	link := strings.TrimSpace(d.ok("ui", "--print-url"))
	if !strings.HasPrefix(link, "http://127.0.0.1:") || !strings.Contains(link, "/login?token=") {
		t.Fatalf("ui --print-url: %q", link)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Blueshift") || !strings.Contains(string(body), "alpha") {
		t.Fatalf("following the link: %s %.200q", resp.Status, body)
	}
	resp, err = http.Get(link) // the same link, again, by someone else
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a spent link: %s", resp.Status)
	}

	var out daemon.UILogin
	if err := json.Unmarshal([]byte(d.ok("ui", "--json")), &out); err != nil || !strings.Contains(out.URL, "/login?token=") {
		t.Fatalf("ui --json: %+v %v", out, err)
	}

	// No browser opener on PATH: the link is printed instead.
	cmd := exec.Command(bin, "--home", d.home, "ui")
	cmd.Env = append(os.Environ(), "PATH="+t.TempDir())
	got, err := cmd.Output()
	if err != nil || !strings.Contains(string(got), "/login?token=") {
		t.Fatalf("ui without a browser: %v %q", err, got)
	}
}

// TestUIPortBusy: a busy UI port is a warning, not a failure to start;
// --ui off serves none; a non-loopback address is a usage error.
func TestUIPortBusy(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := newDevice(t, "alpha")
	d.startUI(ln.Addr().String())
	if !strings.Contains(d.log.String(), "web UI not served") {
		t.Fatalf("no warning about the busy port:\n%s", d.log)
	}
	if _, errOut, code := d.cli("ui", "--print-url"); code != exitFail || !strings.Contains(errOut, "port was busy") {
		t.Fatalf("ui with no UI served: exit %d: %s", code, errOut)
	}
	d.stop()

	d.startUI("off")
	if _, errOut, code := d.cli("ui", "--print-url"); code != exitFail || !strings.Contains(errOut, "off") {
		t.Fatalf("ui with --ui off: exit %d: %s", code, errOut)
	}
	d.stop()

	_, errOut, code := d.cli("run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "0.0.0.0:8385")
	if code != exitUsage || !strings.Contains(errOut, "loopback") {
		t.Fatalf("run --ui 0.0.0.0:8385: exit %d: %s", code, errOut)
	}
}

// TestUIOnByDefault: a daemon started without --ui serves the web UI on
// loopback at the fixed default port (config.DefaultUI), where `ui
// --print-url` points. Skipped when something else holds that port.
func TestUIOnByDefault(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	ln, err := net.Listen("tcp", config.DefaultUI)
	if err != nil {
		t.Skipf("the default UI address %s is taken here: %v", config.DefaultUI, err)
	}
	ln.Close()
	d := newDevice(t, "alpha")
	d.startArgs(bin, "--home", d.home, "run", "--listen", "127.0.0.1:0", "--no-discovery")
	link := strings.TrimSpace(d.ok("ui", "--print-url"))
	if !strings.HasPrefix(link, "http://"+config.DefaultUI+"/login?token=") {
		t.Fatalf("ui --print-url of a daemon run without --ui: %q, want the default %s\n%s", link, config.DefaultUI, d.logText())
	}
	jar, _ := cookiejar.New(nil) // the link sets a session cookie, then redirects
	resp, err := (&http.Client{Jar: jar}).Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("following the default UI's link: %s", resp.Status)
	}
}
