package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	bsconfig "github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// Blueshift driver. It uses only the command-line contract of issue 7:
//
//	blueshift --home H init --name NAME
//	blueshift --home H run --listen HOST:PORT [--no-discovery]   (foreground; SIGTERM stops it)
//	blueshift --home H status --json   (a running daemon: GET /v1/status on its socket)
//	blueshift --home H id
//	blueshift --home H share add PATH [--name NAME]   (prints the share ID)
//	blueshift --home H invite SHARE                    (link on the first line)
//	blueshift --home H join LINK PATH
//	blueshift --home H peer add ID --addr HOST:PORT
//
// LAN discovery is turned off with --no-discovery when `run --help` offers
// it: the bench's devices find each other through invites and `peer add`,
// and nothing may leave loopback or the harness's namespaces.
//
// Ports are picked by the harness (rather than 0) so the nftables counter
// knows them before the first byte and a restarted device keeps its port.

type blueshiftCluster struct {
	bin     string
	runArgs []string // extra flags of `run` (--no-discovery when offered)
	work    string
	nw      *netns.Network
	dirs    []string
	ports   []int
	ids     []string
	ps      []*proc
	shareID string // share ID printed by `share add`
	// cpuProfile, when set, is the path stem of the daemons' CPU profiles
	// (STEM-devI.pprof, run --cpu-profile; profiles.go).
	cpuProfile string
}

// blueshiftRunArgs returns the extra flags of `run` this binary offers and
// the bench wants: no LAN discovery (--no-discovery), or else discovery on
// loopback only (--discovery-interfaces lo): the bench's daemons announce
// nothing on the machine's real interfaces.
func blueshiftRunArgs(ctx context.Context, bin string) []string {
	help := runHelp(ctx, bin)
	var args []string
	if strings.Contains(help, "--no-dht") {
		args = append(args, "--no-dht") // and no DHT node asking the public routers
	}
	switch {
	case strings.Contains(help, "--no-discovery"):
		args = append(args, "--no-discovery")
	case strings.Contains(help, "--discovery-interfaces"):
		args = append(args, "--discovery-interfaces", "lo")
	}
	if strings.Contains(help, "--ui ") {
		args = append(args, "--ui", "off") // the comparison is of sync, not of a web UI's memory
	}
	// The byte counters and the delay relays see TCP only: QUIC would pass
	// around both, so the bench keeps measuring the TCP path.
	if strings.Contains(help, "--no-quic") {
		args = append(args, "--no-quic")
	}
	return args
}

// runHelp is what `bin run --help` prints: the bench reads from it which
// run flags a build offers (builds of older revisions have fewer).
func runHelp(ctx context.Context, bin string) string {
	help, _ := exec.CommandContext(ctx, bin, "run", "--help").CombinedOutput()
	return string(help)
}

func newBlueshift(bin string, runArgs []string) newCluster {
	return func(ctx context.Context, work string, nw *netns.Network, dirs []string) (cluster, error) {
		n := len(dirs)
		ports, err := netns.FreePorts(n)
		if err != nil {
			return nil, err
		}
		c := &blueshiftCluster{bin: bin, runArgs: runArgs, work: work, nw: nw, dirs: dirs, ports: ports, ids: make([]string, n), ps: make([]*proc, n)}
		for i := range n {
			if _, err := c.cli(ctx, i, "init", "--name", fmt.Sprintf("dev%d", i)); err != nil {
				return nil, err
			}
			id, err := c.cli(ctx, i, "id")
			if err != nil {
				return nil, err
			}
			c.ids[i] = firstLine(id)
		}
		return c, nil
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

func (c *blueshiftCluster) home(i int) string {
	return filepath.Join(c.work, fmt.Sprintf("bs-home-%d", i))
}

func (c *blueshiftCluster) addr(i int) string {
	return fmt.Sprintf("%s:%d", c.nw.Endpoints[i].IP, c.ports[i])
}

// cli runs one CLI verb for device i inside its namespace.
func (c *blueshiftCluster) cli(ctx context.Context, i int, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := run(ctx, c.nw.Endpoints[i].Command(ctx, c.bin, append([]string{"--home", c.home(i)}, args...)...))
	if err != nil {
		return out, fmt.Errorf("blueshift device %d: %w", i, err)
	}
	return out, nil
}

func (c *blueshiftCluster) start(ctx context.Context, i int) error {
	args := append([]string{"--home", c.home(i), "run", "--listen", c.addr(i)}, c.runArgs...)
	if c.cpuProfile != "" {
		args = append(args, "--cpu-profile", profilePath(c.cpuProfile, i))
	}
	cmd := c.nw.Endpoints[i].Command(context.Background(), c.bin, args...)
	p, err := startProc(fmt.Sprintf("blueshift-%d", i), cmd, filepath.Join(c.work, fmt.Sprintf("bs-%d.log", i)))
	if err != nil {
		return err
	}
	c.ps[i] = p
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if p.exited() {
			return fmt.Errorf("blueshift %d exited at start: see %s", i, filepath.Join(c.work, fmt.Sprintf("bs-%d.log", i)))
		}
		// status answers from the configuration when no daemon runs; a
		// listen address means the daemon itself answered. An invite made
		// before that names the configured port, not the one in use.
		if st, err := c.status(ctx, i); err == nil && st.Listen != "" {
			return nil
		}
	}
	return fmt.Errorf("blueshift %d: status not answering after 60s", i)
}

func (c *blueshiftCluster) stop(i int) {
	if c.ps[i] != nil {
		c.ps[i].stop(30 * time.Second)
		c.ps[i] = nil
	}
}

// share: `share add` on device 0, an invite per joiner, `join` on each, then
// `peer add` between every pair so that joiners can serve each other.
func (c *blueshiftCluster) share(ctx context.Context) error {
	out, err := c.cli(ctx, 0, "share", "add", c.dirs[0], "--name", "bench")
	if err != nil {
		return err
	}
	c.shareID = firstLine(out)
	for i := 1; i < len(c.dirs); i++ {
		link, err := c.cli(ctx, 0, "invite", c.shareID)
		if err != nil {
			return err
		}
		if _, err := c.cli(ctx, i, "join", firstLine(link), c.dirs[i]); err != nil {
			return err
		}
	}
	for i := range c.dirs {
		for j := range c.dirs {
			if i == j || (i == 0 || j == 0) && len(c.dirs) == 2 {
				continue // the invite already paired 0 and 1
			}
			if _, err := c.cli(ctx, i, "peer", "add", c.ids[j], "--addr", c.addr(j)); err != nil {
				return err
			}
		}
	}
	// Joiners are members of the share for each other too, as the seeder's
	// invites made them for it: written into each joiner's config.toml (no
	// verb does it yet).
	for i := 1; i < len(c.dirs) && len(c.dirs) > 2; i++ {
		err := daemon.EditConfig(c.home(i), func(cfg *bsconfig.Config) error {
			s, err := cfg.FindShare(c.shareID)
			if err != nil {
				return err
			}
			for j := 1; j < len(c.dirs); j++ {
				if j != i && !slices.Contains(s.Peers, c.ids[j]) {
					s.Peers = append(s.Peers, c.ids[j])
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("make device %d's share members of the other joiners: %w", i, err)
		}
	}
	// Reloaded (by a `peer add` of the seeder again) once all are edited.
	for i := 1; i < len(c.dirs) && len(c.dirs) > 2; i++ {
		if _, err := c.cli(ctx, i, "peer", "add", c.ids[0], "--addr", c.addr(0)); err != nil {
			return err
		}
	}
	return nil
}

// bsStatus is the part of `status --json` the harness reads; unknown fields
// are ignored, so the daemon may add more.
type bsStatus struct {
	Shares []struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		Path      string `json:"path"`
		InSync    bool   `json:"in_sync"`
		NeedItems int64  `json:"need_items"`
		NeedBytes int64  `json:"need_bytes"`
	} `json:"shares"`
	Peers []struct {
		ID        string `json:"id"`
		Connected bool   `json:"connected"`
	} `json:"peers"`
	Listen string `json:"listen"`
}

// status is device i's status. A running daemon is asked over its control
// socket, in the bench's process, as Syncthing is asked over its REST API:
// no process started per poll (two CLI runs a poll cost CPU the daemons
// under test compete for, and added their start-up to each poll). No
// daemon, or a build whose socket answers otherwise: `status --json`.
func (c *blueshiftCluster) status(ctx context.Context, i int) (bsStatus, error) {
	if c.ps[i] != nil {
		s, err := c.socketStatus(ctx, i)
		if err == nil || errors.Is(err, daemon.ErrNotRunning) {
			return s, nil // not listening yet: no Listen, as `status` says then
		}
	}
	var s bsStatus
	out, err := c.cli(ctx, i, "status", "--json")
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return s, fmt.Errorf("parse status --json of device %d: %w", i, err)
	}
	return s, nil
}

// socketStatus is GET /v1/status on device i's control socket.
func (c *blueshiftCluster) socketStatus(ctx context.Context, i int) (bsStatus, error) {
	var s bsStatus
	cl, err := daemon.NewClient(c.home(i))
	if err != nil {
		return s, err
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return s, err
	}
	b, err := json.Marshal(st) // as `status --json` prints it
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	return s, err
}

// shareInSync finds this bench's share in a status (by ID, else by path).
func (c *blueshiftCluster) shareInSync(s bsStatus, i int) bool {
	want, _ := filepath.Abs(c.dirs[i])
	for _, sh := range s.Shares {
		p, _ := filepath.Abs(sh.Path)
		if (c.shareID != "" && sh.ID == c.shareID) || p == want {
			return sh.InSync && sh.NeedItems == 0 && sh.NeedBytes == 0
		}
	}
	return false
}

func (c *blueshiftCluster) inSync(ctx context.Context, i int) (bool, error) {
	if c.ps[i] == nil || c.ps[0] == nil {
		return false, nil
	}
	sb, err := c.status(ctx, i)
	if err != nil {
		return false, err
	}
	connected := false
	for _, p := range sb.Peers {
		if p.ID == c.ids[0] && p.Connected {
			connected = true
		}
	}
	if !connected || !c.shareInSync(sb, i) {
		return false, nil
	}
	sa, err := c.status(ctx, 0)
	if err != nil {
		return false, err
	}
	return c.shareInSync(sa, 0), nil
}

func (c *blueshiftCluster) procs() []*proc {
	var ps []*proc
	for _, p := range c.ps {
		if p != nil {
			ps = append(ps, p)
		}
	}
	return ps
}

func (c *blueshiftCluster) wirePorts() []int { return c.ports }

func (c *blueshiftCluster) close() {
	for i := range c.ps {
		c.stop(i)
	}
}
