package main

// End-to-end tests: the real binary, built once, run as separate processes
// with separate homes, talking over 127.0.0.1 only. They poll `status
// --json` with generous deadlines and assert behaviour, never timings.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	gosync "sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/blueshift-sync/blueshift/daemon"
)

const e2eDeadline = 30 * time.Second

// bin is the binary TestMain built; empty when the build failed.
var bin string

func TestMain(m *testing.M) {
	// Every daemon the tests start, in any namespace and by any verb,
	// inherits this: one that would ask the public DHT routers fails to
	// start instead (--no-dht, or --bootstrap at a node the test made).
	os.Setenv(envNoPublicDHT, "1")
	dir, err := os.MkdirTemp("", "blueshift-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "blueshift")
	args := append(append([]string{"build"}, raceBuild...), "-o", bin, ".")
	out, err := exec.Command("go", args...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build blueshift: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// device is one home, and its daemon when running.
type device struct {
	t    testing.TB
	name string
	home string
	cmd  *exec.Cmd
	log  *syncWriter
	done chan error
	// killedEarly: the last SIGTERM ended the process before it caught
	// signals (see terminate).
	killedEarly bool
}

func newDevice(t testing.TB, name string) *device {
	t.Helper()
	d := &device{t: t, name: name, home: filepath.Join(t.TempDir(), name)}
	d.ok("init", "--name", name)
	t.Cleanup(d.stop)
	return d
}

// cli runs a verb and returns stdout, stderr and the exit code.
func (d *device) cli(args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(bin, append([]string{"--home", d.home}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee):
		return out.String(), errOut.String(), ee.ExitCode()
	}
	d.t.Fatalf("%s %v: %v", d.name, args, err)
	return "", "", -1
}

func (d *device) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.cli(args...)
	if code != 0 {
		d.t.Fatalf("%s %v: exit %d: %s", d.name, args, code, errOut)
	}
	return out
}

func (d *device) start() {
	d.t.Helper()
	// No LAN discovery: tests send nothing outside 127.0.0.1.
	d.startArgs(bin, "--home", d.home, "run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "off")
}

// startArgs starts the daemon with a full command line (e.g. inside a
// namespace) and waits until it answers.
func (d *device) startArgs(name string, args ...string) {
	d.t.Helper()
	d.cmd = exec.Command(name, args...)
	d.log = &syncWriter{}
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }() // ip netns exec execs the daemon: SIGTERM reaches it
	d.waitFor("the daemon answers", func(st daemon.Status) bool { return st.Listen != "" })
}

// startInNetns starts the daemon inside network namespace ns with run's
// flags args. Its listen address is beyond loopback, so it needs --no-dht
// or --bootstrap: TestMain's environment makes a daemon that would ask the
// public DHT routers fail to start.
func (d *device) startInNetns(ns string, args ...string) {
	d.t.Helper()
	d.startArgs("ip", append([]string{"netns", "exec", ns, bin, "--home", d.home, "run"}, args...)...)
}

// stop ends the daemon with SIGTERM and checks it stopped cleanly.
func (d *device) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			d.t.Errorf("%s daemon exit: %v\n%s", d.name, err, d.log)
		}
	case <-time.After(e2eDeadline):
		d.cmd.Process.Kill()
		<-d.done
		d.t.Errorf("%s daemon did not stop on SIGTERM\n%s", d.name, d.log)
	}
	d.cmd = nil
}

func (d *device) status() (daemon.Status, bool) {
	out, _, code := d.cli("status", "--json")
	var st daemon.Status
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		return st, false
	}
	return st, true
}

// waitFor polls status until cond holds, or fails the test at the deadline.
func (d *device) waitFor(what string, cond func(daemon.Status) bool) daemon.Status {
	d.t.Helper()
	return d.waitForWithin(e2eDeadline, what, cond)
}

// waitForWithin is waitFor with its own deadline.
func (d *device) waitForWithin(limit time.Duration, what string, cond func(daemon.Status) bool) daemon.Status {
	d.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, ok := d.status()
		if ok && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: waited %s for %s; last status %+v\nlog:\n%s", d.name, limit, what, st, d.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *device) logText() string {
	if d.log == nil {
		return ""
	}
	return d.log.String()
}

// waitTrees polls until the two folders hold the same files (bytes and
// modes), ignoring .blueshift.
func waitTrees(t testing.TB, a, b string, why string, devs ...*device) {
	t.Helper()
	deadline := time.Now().Add(e2eDeadline)
	for {
		da, db := tree(t, a), tree(t, b)
		diff := treeDiff(da, db)
		if diff == "" {
			return
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, d := range devs {
				fmt.Fprintf(&logs, "--- %s log:\n%s\n", d.name, d.logText())
			}
			t.Fatalf("%s: trees differ after %s: %s\n%s", why, e2eDeadline, diff, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func tree(t testing.TB, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if rel == ".blueshift" && e.IsDir() {
			return filepath.SkipDir
		}
		if rel == "." {
			return nil
		}
		if e.IsDir() {
			out[rel] = "dir"
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		out[rel] = string(data)
		return nil
	})
	return out
}

func treeDiff(a, b map[string]string) string {
	for k, v := range a {
		if w, ok := b[k]; !ok {
			return fmt.Sprintf("%q only in the first", k)
		} else if v != w {
			return fmt.Sprintf("%q differs", k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			return fmt.Sprintf("%q only in the second", k)
		}
	}
	return ""
}

func write(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func shareOf(st daemon.Status, id string) (daemon.ShareStatus, bool) {
	for _, s := range st.Shares {
		if s.ID == id {
			return s, true
		}
	}
	return daemon.ShareStatus{}, false
}

func connectedTo(st daemon.Status, id string) bool {
	for _, p := range st.Peers {
		if p.ID == id && p.Connected {
			return true
		}
	}
	return false
}

func TestE2ESyncBothWaysRestartRemove(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idA, idB := strings.TrimSpace(a.ok("id")), strings.TrimSpace(b.ok("id"))
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "hello.txt"), "hello from alice\n")
	write(t, filepath.Join(fa, "docs/big.bin"), strings.Repeat("0123456789abcdef", 64<<10)) // 1 MiB
	write(t, filepath.Join(fa, "docs/deep/x.txt"), "x")
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "stuff"))

	a.start()
	b.start()
	link := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	if !strings.HasPrefix(link, "bs1-") {
		t.Fatalf("invite printed %q", link)
	}
	// B already holds a file of its own: join merges, never clobbers.
	write(t, filepath.Join(fb, "from-bob.txt"), "bob was here first")
	if got := strings.TrimSpace(b.ok("join", link, fb)); got != shareID {
		t.Fatalf("join printed %q, want the share ID %s", got, shareID)
	}
	waitTrees(t, fa, fb, "initial sync", a, b)
	if data, _ := os.ReadFile(filepath.Join(fa, "from-bob.txt")); string(data) != "bob was here first" {
		t.Fatalf("bob's own file did not reach alice: %q", data)
	}
	b.waitFor("in sync, connected", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.InSync && connectedTo(st, idA)
	})
	a.waitFor("bob paired and connected", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && connectedTo(st, idB) && len(s.Members) == 1 && s.Members[0] == idB
	})
	// Paired: bob forgets the invitation token instead of showing it on
	// every reconnect.
	b.waitFor("the used token forgotten", func(daemon.Status) bool {
		cfg, err := os.ReadFile(filepath.Join(b.home, "config.toml"))
		return err == nil && !strings.Contains(string(cfg), "invite = '") && !strings.Contains(string(cfg), `invite = "`) &&
			!strings.Contains(string(cfg), "join_token")
	})

	// An edit on A reaches B; an edit on B reaches A.
	write(t, filepath.Join(fa, "hello.txt"), "hello again from alice\n")
	waitTrees(t, fa, fb, "edit on A", a, b)
	write(t, filepath.Join(fb, "docs/deep/x.txt"), "x changed by bob")
	os.Remove(filepath.Join(fb, "docs/big.bin"))
	waitTrees(t, fa, fb, "edit on B", a, b)

	// B stops; A changes; B restarts and catches up.
	b.stop()
	write(t, filepath.Join(fa, "while-away.txt"), "written while bob was away")
	write(t, filepath.Join(fa, "hello.txt"), "third hello\n")
	b.start()
	waitTrees(t, fa, fb, "catch up after restart", a, b)

	// Removing the share on B stops syncing and leaves the files.
	b.ok("share", "remove", shareID)
	b.waitFor("share gone", func(st daemon.Status) bool { _, ok := shareOf(st, shareID); return !ok })
	write(t, filepath.Join(fa, "after-remove.txt"), "bob should not get this")
	a.waitFor("alice scanned the new file", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.Records >= 7
	})
	if data, err := os.ReadFile(filepath.Join(fb, "while-away.txt")); err != nil || string(data) != "written while bob was away" {
		t.Fatalf("share remove touched the files: %q %v", data, err)
	}
	time.Sleep(time.Second) // not an assertion on time: a chance for a wrong sync to happen
	if _, err := os.Stat(filepath.Join(fb, "after-remove.txt")); err == nil {
		t.Fatal("a removed share still syncs")
	}
}

func TestE2ESecondDaemonRefused(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "alice")
	a.start()
	_, errOut, code := a.cli("run", "--listen", "127.0.0.1:0", "--no-discovery")
	if code != exitFail || !strings.Contains(errOut, "already running") {
		t.Fatalf("second daemon: exit %d, %q", code, errOut)
	}
	// The first one still serves.
	a.waitFor("first daemon alive", func(st daemon.Status) bool { return st.Listen != "" })
}

func TestE2EBadLinks(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idB := strings.TrimSpace(b.ok("id"))
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "f"), "data")
	a.ok("share", "add", fa)
	a.start()

	// A typo anywhere in the link is caught by its checksum.
	link := strings.SplitN(a.ok("invite", "a"), "\n", 2)[0]
	i := len(link) / 2
	swap := byte('A')
	if link[i] == 'A' {
		swap = 'B'
	}
	typo := link[:i] + string(swap) + link[i+1:]
	_, errOut, code := b.cli("join", typo, fb)
	if code != exitFail || !strings.Contains(errOut, "mistyped") {
		t.Fatalf("mistyped link: exit %d, %q", code, errOut)
	}
	if _, _, code := b.cli("join", link); code != exitUsage {
		t.Fatalf("join without PATH: exit %d", code)
	}

	// An expired link is refused by join, and its token by the inviter.
	// (8 s: long enough for invite and join to run under -race on a busy
	// machine before it expires; then wait past it, not asserting a time.)
	made := time.Now()
	short := strings.SplitN(a.ok("invite", "a", "--expires", "8s"), "\n", 2)[0]
	b.ok("join", short, fb) // still valid now
	time.Sleep(time.Until(made.Add(9 * time.Second)))
	_, errOut, code = b.cli("join", short, filepath.Join(work, "c"))
	if code != exitFail || !strings.Contains(errOut, "expired") || !strings.Contains(errOut, "new link") {
		t.Fatalf("expired link: exit %d, %q", code, errOut)
	}
	b.start()
	st := a.waitFor("bob refused", func(st daemon.Status) bool {
		for _, r := range st.Refused {
			if r.ID == idB {
				return true
			}
		}
		return false
	})
	if connectedTo(st, idB) || len(st.Shares[0].Members) != 0 {
		t.Fatalf("an expired invitation paired a device: %+v", st)
	}
	if ents, _ := os.ReadDir(fb); len(ents) > 1 {
		t.Fatalf("a refused device got files: %v", ents)
	}
}

// syncWriter lets the daemon's stderr be read while it runs.
type syncWriter struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// An invitation made while no daemon runs still works as a link, but says
// that it names the configured address, not one a later --listen picks.
func TestE2EInviteWithoutDaemonWarns(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "alice")
	dir := filepath.Join(t.TempDir(), "a")
	write(t, filepath.Join(dir, "f"), "data")
	a.ok("share", "add", dir)
	out, errOut, code := a.cli("invite", "a")
	if code != 0 || !strings.HasPrefix(out, "bs1-") {
		t.Fatalf("invite: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "no daemon is running") {
		t.Fatalf("invite without a daemon does not warn: stderr %q", errOut)
	}
}
