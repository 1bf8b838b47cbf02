package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
	"github.com/blueshift-sync/blueshift/cmd/internal/tree"
)

// device is one Blueshift device: a home, a synced folder, a fixed port (so
// a restarted daemon is found where it was, and nftables counters know the
// port before the first byte), and at most one running daemon process,
// which the scenario owns.
type device struct {
	s    *scenario
	name string
	home string
	dir  string
	ep   netns.Endpoint
	port int
	id   string
	log  string // the daemon's log, appended across restarts
	// logLevel is passed to run --log-level ("" = the daemon's default).
	logLevel string

	p *daemonProc // nil when not running
}

// daemonProc is one run of `blueshift run`.
type daemonProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once waited for
	err  error         // Wait's result, after done
}

// newDevice makes a home (init) for a device on ep with its folder dir.
func (s *scenario) newDevice(ctx context.Context, name string, ep netns.Endpoint, dir string) (*device, error) {
	ports, err := netns.FreePorts(1)
	if err != nil {
		return nil, err
	}
	d := &device{s: s, name: name, home: filepath.Join(s.work, name+"-home"), dir: dir, ep: ep, port: ports[0],
		log: filepath.Join(s.work, name+".log")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := d.cli(ctx, "init", "--name", name); err != nil {
		return nil, err
	}
	id, err := d.cli(ctx, "id")
	if err != nil {
		return nil, err
	}
	d.id = firstLine(id)
	s.cleanup(func() { d.stop() })
	s.devices = append(s.devices, d)
	return d, nil
}

func (d *device) addr() string { return fmt.Sprintf("%s:%d", d.ep.IP, d.port) }

// cli runs one verb against the device's home, in its namespace.
func (d *device) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := d.ep.Command(ctx, d.s.bin, append([]string{"--home", d.home}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: blueshift %s: %w: %s", d.name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// start runs the daemon and returns once it answers status with its listen
// address (its database is open).
func (d *device) start(ctx context.Context) error {
	if d.p != nil {
		return fmt.Errorf("%s: already running", d.name)
	}
	lf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "---- %s: start\n", time.Now().Format(time.RFC3339Nano))
	args := []string{"--home", d.home, "run", "--listen", d.addr(), "--no-discovery", "--ui", "off", "--no-quic", "--no-dht"} // the delay relays carry TCP only
	if d.logLevel != "" {
		args = append(args, "--log-level", d.logLevel)
	}
	cmd := d.ep.Command(context.Background(), d.s.bin, args...)
	// Whatever the flags become, a daemon that would ask the public DHT
	// routers fails to start (cmd/blueshift's envNoPublicDHT).
	cmd.Env = append(cmd.Environ(), "BLUESHIFT_NO_PUBLIC_DHT=1")
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("start %s: %w", d.name, err)
	}
	p := &daemonProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	d.p = p
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p.exited() {
			d.p = nil
			return fmt.Errorf("%s exited at start (%v): %s", d.name, p.err, d.logTail(6))
		}
		if st, err := d.status(ctx); err == nil && st.Listen != "" {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: status not answering 90 s after start: %s", d.name, d.logTail(6))
}

func (p *daemonProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (d *device) pid() int {
	if d.p == nil {
		return 0
	}
	return d.p.cmd.Process.Pid
}

// running reports whether the daemon is up; an unexpected exit is an error.
func (d *device) died() error {
	if d.p == nil || !d.p.exited() {
		return nil
	}
	return fmt.Errorf("%s (pid %d) exited on its own: %v: %s", d.name, d.pid(), d.p.err, d.logTail(6))
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 30 s); it
// returns how long the daemon took, and whether it needed SIGKILL.
func (d *device) stop() (took time.Duration, killed bool) {
	if d.p == nil {
		return 0, false
	}
	p := d.p
	d.p = nil
	if p.exited() {
		return 0, false
	}
	t0 := time.Now()
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT) // a stopped process cannot handle SIGTERM
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(t0), false
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return time.Since(t0), true
	}
}

// kill9 kills the daemon with SIGKILL and waits for it to be gone.
func (d *device) kill9() {
	if d.p == nil {
		return
	}
	p := d.p
	d.p = nil
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// signal sends sig to the daemon (SIGSTOP, SIGCONT).
func (d *device) signal(sig syscall.Signal) error {
	if d.p == nil {
		return fmt.Errorf("%s: not running", d.name)
	}
	return syscall.Kill(d.p.cmd.Process.Pid, sig)
}

// rss is the daemon's resident memory now, in bytes (VmRSS).
func (d *device) rss() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.pid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// logTail returns the last n lines of the daemon's log.
func (d *device) logTail(n int) string {
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logCount counts log lines containing s.
func (d *device) logCount(s string) int {
	b, _ := os.ReadFile(d.log)
	return strings.Count(string(b), s)
}

// status is the part of `status --json` the suite reads.
type status struct {
	Listen string        `json:"listen"`
	Shares []shareStatus `json:"shares"`
	Peers  []struct {
		ID        string `json:"id"`
		Connected bool   `json:"connected"`
	} `json:"peers"`
}

// shareStatus is one share in status.
type shareStatus struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Path      string   `json:"path"`
	InSync    bool     `json:"in_sync"`
	NeedItems int64    `json:"need_items"`
	NeedBytes int64    `json:"need_bytes"`
	Errors    []string `json:"errors"`
	Peers     []string `json:"peers"`
}

func (d *device) status(ctx context.Context) (status, error) {
	var st status
	out, err := d.cli(ctx, "status", "--json")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("%s: parse status --json: %w", d.name, err)
	}
	return st, nil
}

// connected reports whether st shows peer as connected.
func (st status) connected(peer string) bool {
	for _, p := range st.Peers {
		if p.ID == peer {
			return p.Connected
		}
	}
	return false
}

// shareDone reports whether the share at dir is in sync with nothing needed.
func (st status) shareDone(dir string) bool {
	for _, sh := range st.Shares {
		if filepath.Clean(sh.Path) == filepath.Clean(dir) {
			return sh.InSync && sh.NeedItems == 0 && sh.NeedBytes == 0
		}
	}
	return false
}

// shareErrors returns the errors status shows for the share at dir.
func (st status) shareErrors(dir string) []string {
	for _, sh := range st.Shares {
		if filepath.Clean(sh.Path) == filepath.Clean(dir) {
			return sh.Errors
		}
	}
	return nil
}

// startSharing starts a's and b's daemons, shares a's folder as name with
// b and waits until the empty share has settled on both: the start of a
// scenario of two devices.
func startSharing(ctx context.Context, s *scenario, name string, a, b *device) error {
	for _, d := range []*device{a, b} {
		if err := d.start(ctx); err != nil {
			return err
		}
	}
	if _, err := shareWith(ctx, a, name, b); err != nil {
		return err
	}
	if _, err := converge(ctx, a, a.dir, b, b.dir, s.t.timeout); err != nil {
		return fmt.Errorf("empty share did not settle: %w", err)
	}
	return nil
}

// shareWith adds a's folder as a share named name and joins b to it (b's
// folder). Both daemons must run. It returns the share ID.
func shareWith(ctx context.Context, a *device, name string, bs ...*device) (string, error) {
	return shareDir(ctx, a, a.dir, name, false, bs, nil)
}

// shareDir is share with a's folder given, read-only invitations when ro,
// and each joiner's folder (nil: its dir).
func shareDir(ctx context.Context, a *device, dir, name string, ro bool, bs []*device, bdirs []string) (string, error) {
	out, err := a.cli(ctx, "share", "add", dir, "--name", name)
	if err != nil {
		return "", err
	}
	id := firstLine(out)
	for i, b := range bs {
		args := []string{"invite", id}
		if ro {
			args = append(args, "--read-only")
		}
		link, err := a.cli(ctx, args...)
		if err != nil {
			return "", err
		}
		bdir := b.dir
		if bdirs != nil {
			bdir = bdirs[i]
		}
		if _, err := b.cli(ctx, "join", firstLine(link), bdir); err != nil {
			return "", err
		}
	}
	return id, nil
}

// converge waits until b's folder bdir equals a's folder adir, both
// daemons say the share is in sync with nothing needed, and b shows a
// connected. It returns the time it took, or the last difference.
func converge(ctx context.Context, a *device, adir string, b *device, bdir string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		for _, d := range []*device{a, b} {
			if err := d.died(); err != nil {
				return 0, err
			}
		}
		last = convergedNow(ctx, a, adir, b, bdir)
		if last == nil {
			return time.Since(t0), nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return 0, fmt.Errorf("not converged after %v: %w", timeout, last)
}

func convergedNow(ctx context.Context, a *device, adir string, b *device, bdir string) error {
	sb, err := b.status(ctx)
	if err != nil {
		return err
	}
	if !sb.connected(a.id) {
		return fmt.Errorf("%s does not show %s connected", b.name, a.name)
	}
	if !sb.shareDone(bdir) {
		return fmt.Errorf("%s: share %s not in sync: %s", b.name, bdir, shareLine(sb, bdir))
	}
	sa, err := a.status(ctx)
	if err != nil {
		return err
	}
	if !sa.shareDone(adir) {
		return fmt.Errorf("%s: share %s not in sync: %s", a.name, adir, shareLine(sa, adir))
	}
	return tree.Compare(adir, bdir)
}

func shareLine(st status, dir string) string {
	for _, sh := range st.Shares {
		if filepath.Clean(sh.Path) == filepath.Clean(dir) {
			return fmt.Sprintf("in_sync=%v need_items=%d need_bytes=%d errors=%s", sh.InSync, sh.NeedItems, sh.NeedBytes, short(sh.Errors))
		}
	}
	return "share not listed"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// signalGroup kills every given daemon with SIGKILL at once, then waits for
// all of them.
func signalGroup(ps ...*daemonProc) {
	for _, p := range ps {
		if p != nil {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	for _, p := range ps {
		if p != nil {
			<-p.done
		}
	}
}
