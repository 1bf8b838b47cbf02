package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// Syncthing driver: one home per device, configured by writing a minimal
// config.xml (no discovery, relays, NAT, usage or crash reporting, upgrades)
// and then through the REST API, like a user's GUI would.

const (
	stAPIKey = "blueshift-bench"
	stFolder = "bench"
)

type syncthingCluster struct {
	bin   string
	work  string
	nw    *netns.Network
	dirs  []string
	gui   []int // REST ports (on each namespace's own 127.0.0.1)
	bep   []int // sync protocol ports
	ids   []string
	ps    []*proc
	newV2 bool // Syncthing 2.x spells some flags differently
}

func newSyncthing(bin string) newCluster {
	return func(ctx context.Context, work string, nw *netns.Network, dirs []string) (cluster, error) {
		n := len(dirs)
		ports, err := netns.FreePorts(2 * n)
		if err != nil {
			return nil, err
		}
		help, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
		c := &syncthingCluster{bin: bin, work: work, nw: nw, dirs: dirs, gui: ports[:n], bep: ports[n:],
			ids: make([]string, n), ps: make([]*proc, n), newV2: strings.Contains(string(help), "device-id")}
		for i := range n {
			if err := c.setup(ctx, i); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
}

func (c *syncthingCluster) home(i int) string {
	return filepath.Join(c.work, fmt.Sprintf("st-home-%d", i))
}

var cfgVersion = regexp.MustCompile(`<configuration version="(\d+)"`)

func (c *syncthingCluster) setup(ctx context.Context, i int) error {
	h := c.home(i)
	gen := []string{"generate", "--home", h, "--skip-port-probing"}
	idArgs := []string{"serve", "--device-id", "--home", h}
	if c.newV2 {
		gen[3] = "--no-port-probing"
		idArgs = []string{"device-id", "--home", h}
	}
	cmd := exec.CommandContext(ctx, c.bin, gen...)
	cmd.Env = append(os.Environ(), "STNODEFAULTFOLDER=1")
	if _, err := run(ctx, cmd); err != nil {
		return fmt.Errorf("generate syncthing home %d: %w", i, err)
	}
	out, err := run(ctx, exec.CommandContext(ctx, c.bin, idArgs...))
	if err != nil {
		return fmt.Errorf("read syncthing device id %d: %w", i, err)
	}
	c.ids[i] = strings.TrimSpace(out)
	old, err := os.ReadFile(filepath.Join(h, "config.xml"))
	if err != nil {
		return fmt.Errorf("read generated syncthing config: %w", err)
	}
	ver := "35"
	if m := cfgVersion.FindSubmatch(old); m != nil {
		ver = string(m[1]) // 1.19 refuses a config newer than it knows
	}
	ep := c.nw.Endpoints[i]
	cfg := fmt.Sprintf(`<configuration version="%s">
    <device id="%s" name="dev%d" compression="metadata"><address>dynamic</address></device>
    <gui enabled="true" tls="false"><address>127.0.0.1:%d</address><apikey>%s</apikey></gui>
    <options>
        <listenAddress>tcp://%s:%d</listenAddress>
        <globalAnnounceServer>http://127.0.0.1:9/</globalAnnounceServer>
        <globalAnnounceEnabled>false</globalAnnounceEnabled>
        <localAnnounceEnabled>false</localAnnounceEnabled>
        <relaysEnabled>false</relaysEnabled>
        <natEnabled>false</natEnabled>
        <startBrowser>false</startBrowser>
        <urAccepted>-1</urAccepted>
        <urURL>http://127.0.0.1:9/</urURL>
        <crashReportingEnabled>false</crashReportingEnabled>
        <crashReportingURL>http://127.0.0.1:9/</crashReportingURL>
        <autoUpgradeIntervalH>0</autoUpgradeIntervalH>
        <releasesURL>http://127.0.0.1:9/</releasesURL>
        <stunServer>127.0.0.1:9</stunServer>
        <stunKeepaliveStartS>0</stunKeepaliveStartS>
        <announceLANAddresses>false</announceLANAddresses>
        <alwaysLocalNet>10.77.0.0/16</alwaysLocalNet>
        <alwaysLocalNet>127.0.0.0/8</alwaysLocalNet>
    </options>
</configuration>
`, ver, c.ids[i], i, c.gui[i], stAPIKey, ep.IP, c.bep[i])
	return os.WriteFile(filepath.Join(h, "config.xml"), []byte(cfg), 0o600)
}

func (c *syncthingCluster) start(ctx context.Context, i int) error {
	logFlag := "--logfile"
	if c.newV2 {
		logFlag = "--log-file"
	}
	// The process outlives ctx of this call; the cluster's close stops it.
	cmd := c.nw.Endpoints[i].Command(context.Background(), c.bin, "serve", "--home", c.home(i), "--no-browser",
		"--no-restart", "--no-upgrade", "--gui-apikey", stAPIKey, logFlag, filepath.Join(c.work, fmt.Sprintf("st-%d.log", i)))
	// STMONITORED: no monitor parent, so the PID is the syncing process.
	cmd.Env = append(os.Environ(), "STMONITORED=1", "STNODEFAULTFOLDER=1", "STNOUPGRADE=1")
	p, err := startProc(fmt.Sprintf("syncthing-%d", i), cmd, filepath.Join(c.work, fmt.Sprintf("st-%d.out", i)))
	if err != nil {
		return err
	}
	c.ps[i] = p
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.exited() {
			return fmt.Errorf("syncthing %d exited at start: see %s", i, c.work)
		}
		if _, err := c.api(ctx, i, "GET", "/rest/system/ping", nil); err == nil {
			return nil
		}
	}
	return fmt.Errorf("syncthing %d REST not up after 60s", i)
}

func (c *syncthingCluster) stop(i int) {
	if c.ps[i] != nil {
		c.ps[i].stop(30 * time.Second)
		c.ps[i] = nil
	}
}

func (c *syncthingCluster) api(ctx context.Context, i int, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, fmt.Sprintf("http://127.0.0.1:%d%s", c.gui[i], path), rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-API-Key", stAPIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.nw.Endpoints[i].HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("syncthing %d %s %s: %s: %s", i, method, path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

func (c *syncthingCluster) share(ctx context.Context) error {
	n := len(c.dirs)
	for i := range n {
		var devs []map[string]any
		for j := range n {
			devs = append(devs, map[string]any{"deviceID": c.ids[j]})
			if j == i {
				continue
			}
			dev := map[string]any{"deviceID": c.ids[j], "name": fmt.Sprintf("dev%d", j),
				"addresses": []string{fmt.Sprintf("tcp://%s:%d", c.nw.Endpoints[j].IP, c.bep[j])}, "compression": "metadata"}
			if _, err := c.api(ctx, i, "PUT", "/rest/config/devices/"+c.ids[j], dev); err != nil {
				return err
			}
		}
		folder := map[string]any{"id": stFolder, "label": stFolder, "path": c.dirs[i], "type": "sendreceive",
			"devices": devs, "rescanIntervalS": 3600, "fsWatcherEnabled": true, "fsWatcherDelayS": 1}
		if _, err := c.api(ctx, i, "PUT", "/rest/config/folders/"+stFolder, folder); err != nil {
			return err
		}
	}
	return nil
}

type stStatus struct {
	State           string `json:"state"`
	Sequence        int64  `json:"sequence"`
	NeedTotalItems  int64  `json:"needTotalItems"`
	LocalBytes      int64  `json:"localBytes"`
	GlobalBytes     int64  `json:"globalBytes"`
	ReceiveOnlyRest int64  `json:"receiveOnlyTotalItems"`
}

func (c *syncthingCluster) status(ctx context.Context, i int) (stStatus, error) {
	var s stStatus
	b, err := c.api(ctx, i, "GET", "/rest/db/status?folder="+stFolder, nil)
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func (c *syncthingCluster) inSync(ctx context.Context, i int) (bool, error) {
	if c.ps[i] == nil || c.ps[0] == nil {
		return false, nil
	}
	b, err := c.api(ctx, i, "GET", "/rest/system/connections", nil)
	if err != nil {
		return false, err
	}
	var conns struct {
		Connections map[string]struct {
			Connected bool `json:"connected"`
		} `json:"connections"`
	}
	if err := json.Unmarshal(b, &conns); err != nil {
		return false, err
	}
	if !conns.Connections[c.ids[0]].Connected {
		return false, nil
	}
	sa, err := c.status(ctx, 0)
	if err != nil {
		return false, err
	}
	sb, err := c.status(ctx, i)
	if err != nil {
		return false, err
	}
	// B's view of A's index sequence: the same field in 1.19 and 2.x.
	b, err = c.api(ctx, i, "GET", "/rest/db/completion?folder="+stFolder+"&device="+c.ids[0], nil)
	if err != nil {
		return false, err
	}
	var comp struct {
		Sequence int64 `json:"sequence"`
	}
	if err := json.Unmarshal(b, &comp); err != nil {
		return false, err
	}
	return sa.State == "idle" && sb.State == "idle" && sb.NeedTotalItems == 0 &&
		comp.Sequence == sa.Sequence && sb.GlobalBytes == sa.LocalBytes && sb.LocalBytes == sb.GlobalBytes, nil
}

func (c *syncthingCluster) procs() []*proc {
	var ps []*proc
	for _, p := range c.ps {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

func (c *syncthingCluster) wirePorts() []int { return c.bep }

func (c *syncthingCluster) close() {
	for i := range c.ps {
		c.stop(i)
	}
}
