package main

// End-to-end tests of the verbs of issue 17 and the event stream of issue
// 19, with real daemons: status --watch and --until-synced, ls-needed,
// conflicts, versions, pause and resume, rate, events, and the bad input
// each must refuse.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// startRun is start with more flags for run.
func (d *device) startRun(extra ...string) {
	d.t.Helper()
	d.startArgs(bin, append([]string{"--home", d.home, "run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "off"}, extra...)...)
}

// lines runs a verb that streams, collecting its stdout lines on a
// channel; the process is killed at the end of the test if still running.
type stream struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan error
	err   *syncWriter
}

func (d *device) stream(args ...string) *stream {
	d.t.Helper()
	cmd := exec.Command(bin, append([]string{"--home", d.home}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	s := &stream{cmd: cmd, lines: make(chan string, 4096), done: make(chan error, 1), err: &syncWriter{}}
	cmd.Stderr = s.err
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		s.done <- cmd.Wait()
	}()
	d.t.Cleanup(func() {
		cmd.Process.Kill()
		for range s.lines {
		}
		<-s.done
	})
	return s
}

// next returns the next line, or fails at the deadline; ok is false once
// the stream has ended.
func (s *stream) next(t *testing.T) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-s.lines:
		return l, ok
	case <-time.After(e2eDeadline):
		t.Fatalf("no output from %v within %s; stderr: %s", s.cmd.Args, e2eDeadline, s.err)
	}
	return "", false
}

// exit waits for the process and returns its exit code.
func (s *stream) exit(t *testing.T) int {
	t.Helper()
	for range s.lines {
	}
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		var ee *exec.ExitError
		if err == nil {
			return 0
		}
		if ok := asExit(err, &ee); ok {
			return ee.ExitCode()
		}
		t.Fatalf("%v: %v", s.cmd.Args, err)
	case <-time.After(e2eDeadline):
		t.Fatalf("%v did not exit within %s", s.cmd.Args, e2eDeadline)
	}
	return -1
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*ee = e
	return ok
}

func randomFile(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	write(t, path, string(b))
}

// failsWith runs a verb that must exit with code and say want.
func (d *device) failsWith(code int, want string, args ...string) {
	d.t.Helper()
	out, errOut, got := d.cli(args...)
	if got != code || !strings.Contains(errOut, want) {
		d.t.Fatalf("%s %v: exit %d, stderr %q, stdout %q; want exit %d saying %q", d.name, args, got, errOut, out, code, want)
	}
}

// status --watch --json --until-synced prints one object per update while
// a capped receive rate makes the bytes arrive over seconds, the bytes
// received move between updates, never faster than the cap allows, and it
// exits 0 once in sync; --until-synced exits 1 at once on a paused share.
func TestE2EStatusWatchUntilSynced(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const rate = 1 << 20 // receive cap of bob, bytes per second
	const fileSize = 4 << 20
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	randomFile(t, filepath.Join(fa, "big.bin"), fileSize)
	shareID := strings.TrimSpace(a.ok("share", "add", fa, "--name", "stuff"))
	a.start()
	began := time.Now()
	b.startRun("--max-recv-rate", "1MiB")
	link := strings.SplitN(a.ok("invite", "stuff"), "\n", 2)[0]
	b.ok("join", link, fb)

	w := b.stream("status", "stuff", "--watch", "--json", "--until-synced", "--timeout", "2m")
	var updates, moved int
	var lastIn int64 = -1
	sawNeed, sawRate, sawETA := false, false, false
	for {
		line, ok := w.next(t)
		if !ok {
			break
		}
		elapsed := time.Since(began).Seconds()
		var st daemon.Status
		if err := json.Unmarshal([]byte(line), &st); err != nil {
			t.Fatalf("not one JSON object per line: %q: %v", line, err)
		}
		updates++
		s, ok := shareOf(st, shareID)
		if !ok {
			t.Fatalf("update without the share: %s", line)
		}
		// The limiter starts empty and allows at most rate*t plus a burst of
		// one second's worth; a slow machine only makes this smaller.
		if limit := float64(rate)*elapsed + rate + 256<<10; float64(s.BytesIn) > limit {
			t.Fatalf("received %d bytes after %.1fs: the %d B/s cap allows %.0f", s.BytesIn, elapsed, rate, limit)
		}
		if lastIn >= 0 && s.BytesIn > lastIn {
			moved++
		}
		lastIn = s.BytesIn
		sawNeed = sawNeed || s.NeedBytes > 0
		sawRate = sawRate || s.RateIn > 0
		sawETA = sawETA || s.ETASeconds > 0
	}
	if code := w.exit(t); code != 0 {
		t.Fatalf("--until-synced exit %d: %s", code, w.err)
	}
	if updates < 3 || moved < 2 || !sawNeed || !sawRate || !sawETA {
		t.Fatalf("%d updates, bytes moved in %d, need seen %v, rate seen %v, ETA seen %v", updates, moved, sawNeed, sawRate, sawETA)
	}
	waitTrees(t, fa, fb, "after --until-synced", a, b)

	// Plain --watch stays after in sync, until interrupted.
	w = b.stream("status", "--watch")
	for {
		line, ok := w.next(t)
		if !ok {
			t.Fatalf("--watch ended by itself: %s", w.err)
		}
		if strings.Contains(line, "in sync") {
			break
		}
	}
	w.cmd.Process.Signal(os.Interrupt)
	if code := w.exit(t); code != 0 {
		t.Fatalf("--watch after Ctrl-C: exit %d: %s", code, w.err)
	}

	// A paused share never comes into sync: --until-synced says so at once.
	b.ok("pause", "stuff")
	b.failsWith(1, "paused", "status", "--until-synced")
	b.ok("resume", "stuff")
	b.ok("status", "--until-synced", "--timeout", "1m")

	// A share that cannot be in sync within --timeout: bob knows of 8 MiB
	// more, which its 1 MiB/s cap makes at least 8 s away; a 1 s timeout
	// ends with exit 1 and what is left.
	randomFile(t, filepath.Join(fa, "more.bin"), 8<<20)
	b.waitFor("bob knows it needs more.bin", func(st daemon.Status) bool {
		for _, s := range st.Shares {
			if s.ID == shareID && s.NeedBytes > 0 {
				return true
			}
		}
		return false
	})
	b.failsWith(1, "not in sync after 1s", "status", "--until-synced", "--timeout", "1s")
	b.ok("status", "--until-synced", "--timeout", "2m")
}

// pause and resume, for a share and the device, survive a restart; rates
// change live and bad ones change nothing.
func TestE2EPauseResumeRate(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "one.txt"), "one")
	shareID := pair(t, a, b, fa, fb)
	waitTrees(t, fa, fb, "initial sync", a, b)

	var res daemon.PauseResult
	if err := json.Unmarshal([]byte(b.ok("pause", "stuff", "--json")), &res); err != nil || !res.Paused || res.Share != shareID {
		t.Fatalf("pause --json: %+v %v", res, err)
	}
	b.waitFor("the share paused", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.Paused && !s.Running
	})
	write(t, filepath.Join(fa, "two.txt"), "two")
	a.waitFor("alice scanned two.txt", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return s.Records >= 2 })
	b.stop()
	b.start()
	st := b.waitFor("still paused after a restart", func(st daemon.Status) bool { s, ok := shareOf(st, shareID); return ok && s.Paused })
	if s, _ := shareOf(st, shareID); s.Running {
		t.Fatal("a paused share runs after a restart")
	}
	time.Sleep(time.Second) // not an assertion on time: a chance for a wrong sync to happen
	mustNotExist(t, filepath.Join(fb, "two.txt"), "a paused share synced")
	b.ok("resume", "stuff")
	waitFile(t, filepath.Join(fb, "two.txt"), "two", a, b)

	// The whole device: every share stops, and resuming brings it back.
	b.ok("pause")
	b.waitFor("the device paused", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return st.Paused && s.Paused && !s.Running })
	b.ok("resume")
	b.waitFor("the device resumed", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return !st.Paused && s.Running })

	// Rates: set live, shown in status and config.toml, lifted again.
	var r daemon.Rates
	if err := json.Unmarshal([]byte(b.ok("rate", "--max-send-rate", "1MiB", "--max-recv-rate", "500kB", "--json")), &r); err != nil ||
		r.Send != 1<<20 || r.Recv != 500000 {
		t.Fatalf("rate --json: %+v %v", r, err)
	}
	if err := json.Unmarshal([]byte(b.ok("rate", "stuff", "--max-recv-rate", "64KiB", "--json")), &r); err != nil ||
		len(r.Shares) != 1 || r.Shares[0].Recv != 64<<10 || r.Recv != 500000 {
		t.Fatalf("rate SHARE --json: %+v %v", r, err)
	}
	b.waitFor("rates in status", func(st daemon.Status) bool {
		s, _ := shareOf(st, shareID)
		return st.MaxSendRate == 1<<20 && s.MaxRecvRate == 64<<10
	})
	cfg, _ := os.ReadFile(filepath.Join(b.home, "config.toml"))
	for _, bad := range [][]string{
		{"rate", "--max-send-rate", "0"}, {"rate", "--max-recv-rate", "-1"}, {"rate", "stuff", "--max-send-rate", "-2MiB"},
		{"rate", "--max-send-rate", "fast"},
	} {
		b.failsWith(2, "rate", bad...)
	}
	if after, _ := os.ReadFile(filepath.Join(b.home, "config.toml")); !bytes.Equal(cfg, after) {
		t.Fatal("a refused rate changed config.toml")
	}
	b.ok("rate", "--max-send-rate", "unlimited", "--max-recv-rate", "unlimited")
	b.ok("rate", "stuff", "--max-recv-rate", "unlimited")
	b.waitFor("rates lifted", func(st daemon.Status) bool {
		s, _ := shareOf(st, shareID)
		return st.MaxSendRate == 0 && st.MaxRecvRate == 0 && s.MaxRecvRate == 0
	})
	write(t, filepath.Join(fa, "three.txt"), "three")
	waitFile(t, filepath.Join(fb, "three.txt"), "three", a, b)
	b.failsWith(1, "nope", "pause", "nope")
}

// A conflict made while the devices were apart: listed on both with both
// devices by name, shown with IDs, resolved with --keep mine on one side;
// versions listed and restored; bad input refused.
func TestE2EConflictsAndVersions(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idA := strings.TrimSpace(a.ok("id"))
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "doc.txt"), "first")
	shareID := pair(t, a, b, fa, fb)
	waitTrees(t, fa, fb, "initial sync", a, b)
	b.waitFor("in sync", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return s.InSync })

	b.stop()
	write(t, filepath.Join(fa, "doc.txt"), "alice's edit")
	a.waitFor("alice scanned her edit", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return s.InSync || s.Records >= 1 })
	time.Sleep(1100 * time.Millisecond) // mtimes a second apart, so the later edit wins the same way everywhere
	write(t, filepath.Join(fb, "doc.txt"), "bob's edit, later")
	b.start()
	waitTrees(t, fa, fb, "after the conflict", a, b)

	var cs daemon.Conflicts
	b.waitFor("the conflict listed", func(daemon.Status) bool {
		out, _, code := b.cli("conflicts", "list", "--json")
		return code == 0 && json.Unmarshal([]byte(out), &cs) == nil && len(cs.Conflicts) == 1
	})
	x := cs.Conflicts[0]
	if x.Path != "doc.txt" || !strings.Contains(x.Copy, ".sync-conflict-") {
		t.Fatalf("conflict %+v", x)
	}
	// The copy is named by a device's name, not its ID.
	if x.Conflict.Device != "alice" && x.Conflict.Device != "bob" {
		t.Fatalf("conflict copy named %q, want a device name: %+v", x.Conflict.Device, x)
	}
	if x.Original.Device != "alice" && x.Original.Device != "bob" || x.Original.Device == x.Conflict.Device {
		t.Fatalf("both sides' devices: %+v", x)
	}
	if !x.Original.Exists || !x.Conflict.Exists || x.Original.Size == 0 || x.Conflict.Size == 0 || x.Conflict.Time.IsZero() {
		t.Fatalf("both sides' sizes and times: %+v", x)
	}
	out := b.ok("conflicts", "show", filepath.Join(fb, "doc.txt"))
	if !strings.Contains(out, idA) || !strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
		t.Fatalf("conflicts show lacks names or IDs:\n%s", out)
	}
	if out := b.ok("conflicts", "list"); !strings.Contains(out, "doc.txt") {
		t.Fatalf("conflicts list:\n%s", out)
	}
	// Keep bob's: on bob, that is mine.
	b.ok("conflicts", "resolve", filepath.Join(fb, "doc.txt"), "--keep", "mine")
	waitFile(t, filepath.Join(fa, "doc.txt"), "bob's edit, later", a, b)
	waitTrees(t, fa, fb, "after resolve", a, b)
	if data, _ := os.ReadFile(filepath.Join(fb, "doc.txt")); string(data) != "bob's edit, later" {
		t.Fatalf("keep mine left %q", data)
	}
	mustNotExist(t, filepath.Join(fb, x.Copy), "the resolved copy is still there")
	b.failsWith(1, "no conflict copy", "conflicts", "resolve", filepath.Join(fb, "doc.txt"), "--keep", "theirs")
	b.failsWith(2, "--keep", "conflicts", "resolve", filepath.Join(fb, "doc.txt"), "--keep", "everything")
	b.failsWith(2, "in no share", "conflicts", "show", filepath.Join(work, "elsewhere.txt"))

	// Versions: alice's edits of notes.txt replace bob's copy, which keeps
	// each old one.
	write(t, filepath.Join(fa, "notes.txt"), "v1")
	waitFile(t, filepath.Join(fb, "notes.txt"), "v1", a, b)
	time.Sleep(1100 * time.Millisecond) // versions are stamped by the second
	write(t, filepath.Join(fa, "notes.txt"), "v2, longer")
	waitFile(t, filepath.Join(fb, "notes.txt"), "v2, longer", a, b)
	var vs daemon.Versions
	if err := json.Unmarshal([]byte(b.ok("versions", "list", "stuff", "notes.txt", "--json")), &vs); err != nil ||
		len(vs.Files) != 1 || len(vs.Files[0].Versions) != 1 || vs.Files[0].Versions[0].Size != 2 {
		t.Fatalf("versions list: %+v %v", vs, err)
	}
	if out := b.ok("versions", "list", "stuff", "notes.txt"); !strings.Contains(out, "notes.txt") {
		t.Fatalf("versions list:\n%s", out)
	}
	oldest := vs.Files[0].Versions[0]
	var all daemon.Versions
	if err := json.Unmarshal([]byte(b.ok("versions", "list", "stuff", "--json")), &all); err != nil || len(all.Files) < 2 {
		t.Fatalf("versions list of the share (notes.txt and the resolved conflict copy): %+v %v", all, err)
	}
	var restored daemon.Restored
	if err := json.Unmarshal([]byte(b.ok("versions", "restore", "stuff", "notes.txt", "--at", oldest.Time.Format(time.RFC3339), "--json")), &restored); err != nil {
		t.Fatal(err)
	}
	waitFile(t, filepath.Join(fb, "notes.txt"), "v1", a, b)
	waitFile(t, filepath.Join(fa, "notes.txt"), "v1", a, b)

	b.failsWith(1, "no such version", "versions", "restore", "stuff", "notes.txt", "--at", "2000-01-01T00:00:00Z")
	b.failsWith(1, "no such version", "versions", "restore", "stuff", "never-there.txt")
	b.failsWith(2, "outside the share", "versions", "restore", "stuff", "../../etc/passwd")
	b.failsWith(2, "outside the share", "versions", "list", "stuff", "/etc/passwd")
	b.failsWith(2, "--at", "versions", "restore", "stuff", "notes.txt", "--at", "yesterday-ish")
	b.failsWith(1, "nope", "versions", "list", "nope")
	if _, err := os.Stat("/etc/passwd.sync-conflict"); err == nil {
		t.Fatal("wrote outside the share")
	}
}

// conflicts resolve --keep theirs and --keep both, from the command line,
// on conflicts made while the devices were apart: theirs puts the other
// device's version at the path, both keeps the two side by side; each
// reaches the other device and leaves no conflict copy.
func TestE2EConflictsKeepTheirsAndBoth(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "two.txt"), "first")
	write(t, filepath.Join(fa, "three.txt"), "first")
	shareID := pair(t, a, b, fa, fb)
	waitTrees(t, fa, fb, "initial sync", a, b)
	b.waitFor("in sync", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return s.InSync })

	// Both files edited on each side while bob is away; bob's edits are
	// later, so they stay at the paths and alice's become the copies.
	b.stop()
	write(t, filepath.Join(fa, "two.txt"), "alice's two")
	write(t, filepath.Join(fa, "three.txt"), "alice's three")
	a.waitFor("alice scanned her edits", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return s.Records >= 2 })
	time.Sleep(1100 * time.Millisecond) // mtimes a second apart: the later edit wins the same way everywhere
	write(t, filepath.Join(fb, "two.txt"), "bob's two, later")
	write(t, filepath.Join(fb, "three.txt"), "bob's three, later")
	b.start()
	waitTrees(t, fa, fb, "after the conflicts", a, b)
	b.waitFor("two conflicts listed", func(daemon.Status) bool {
		var cs daemon.Conflicts
		out, _, code := b.cli("conflicts", "list", "--json")
		return code == 0 && json.Unmarshal([]byte(out), &cs) == nil && len(cs.Conflicts) == 2
	})

	b.ok("conflicts", "resolve", filepath.Join(fb, "two.txt"), "--keep", "theirs")
	waitFile(t, filepath.Join(fb, "two.txt"), "alice's two", a, b)
	waitFile(t, filepath.Join(fa, "two.txt"), "alice's two", a, b)

	b.ok("conflicts", "resolve", filepath.Join(fb, "three.txt"), "--keep", "both")
	waitFile(t, filepath.Join(fb, "three.txt"), "bob's three, later", a, b)
	waitTrees(t, fa, fb, "after the resolves", a, b)
	var kept []string
	ents, _ := os.ReadDir(fa)
	for _, e := range ents {
		if data, _ := os.ReadFile(filepath.Join(fa, e.Name())); string(data) == "alice's three" {
			kept = append(kept, e.Name())
		}
	}
	if len(kept) != 1 || kept[0] == "three.txt" || strings.Contains(kept[0], ".sync-conflict-") {
		t.Fatalf("--keep both: alice's version kept as %q, want one file beside three.txt that is no conflict copy", kept)
	}
	var cs daemon.Conflicts
	if err := json.Unmarshal([]byte(b.ok("conflicts", "list", "--json")), &cs); err != nil || len(cs.Conflicts) != 0 {
		t.Fatalf("conflicts left after resolving both: %+v %v", cs, err)
	}
}

// events --json prints each applied file with its peer and bytes, and the
// share coming into sync; ls-needed says why a file cannot arrive.
func TestE2EEventsAndNeeded(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	idA := strings.TrimSpace(a.ok("id"))
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "one.txt"), "one")
	shareID := pair(t, a, b, fa, fb)
	waitTrees(t, fa, fb, "initial sync", a, b)
	b.waitFor("in sync", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return s.InSync })

	// The first status line shows the stream is subscribed.
	ev := b.stream("events", "--json", "--status")
	if line, _ := ev.next(t); !strings.Contains(line, `"type":"status"`) {
		t.Fatalf("first event %q, want a status", line)
	}
	write(t, filepath.Join(fa, "sub/new.txt"), "hello events")
	applied, inSync := false, false
	deadline := time.Now().Add(e2eDeadline)
	for !applied || !inSync {
		if time.Now().After(deadline) {
			t.Fatalf("events: applied %v, in sync after it %v within %s\n%s", applied, inSync, e2eDeadline, b.logText())
		}
		line, ok := ev.next(t)
		if !ok {
			t.Fatalf("events ended: %s", ev.err)
		}
		var e daemon.Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		switch {
		case e.Type == daemon.EventFileApplied && e.Path == "sub/new.txt":
			if e.Peer != idA || e.PeerName != "alice" || e.Bytes != int64(len("hello events")) || e.Share != shareID {
				t.Fatalf("applied event %+v", e)
			}
			applied = true
		case e.Type == daemon.EventShareInSync && applied:
			inSync = true
		}
	}
	if !strings.Contains(b.logText(), `msg="file applied" share=stuff path=sub/new.txt`) {
		t.Fatalf("no log line for the applied file:\n%s", b.logText())
	}

	// A file whose only holder goes away is needed, waiting for a peer.
	b.ok("rate", "--max-recv-rate", "64KiB")
	randomFile(t, filepath.Join(fa, "big.bin"), 2<<20)
	b.waitFor("the big file needed", func(st daemon.Status) bool { s, _ := shareOf(st, shareID); return s.NeedBytes >= 2<<20 })
	a.stop()
	var n daemon.Needed
	b.waitFor("ls-needed says it waits for a peer", func(daemon.Status) bool {
		out, _, code := b.cli("ls-needed", "stuff", "--json")
		return code == 0 && json.Unmarshal([]byte(out), &n) == nil && len(n.Files) == 1 &&
			n.Files[0].Path == "big.bin" && n.Files[0].Reason == "waiting for peer" && n.Files[0].Bytes == 2<<20
	})
	if out := b.ok("status", "--needed"); !strings.Contains(out, "big.bin") || !strings.Contains(out, "waiting for peer") {
		t.Fatalf("status --needed:\n%s", out)
	}
	var sn StatusNeeded
	if err := json.Unmarshal([]byte(b.ok("status", "--needed", "--json")), &sn); err != nil || len(sn.Needed) != 1 || sn.Needed[0].Total != 1 {
		t.Fatalf("status --needed --json: %+v %v", sn.Needed, err)
	}
	b.failsWith(1, "nope", "ls-needed", "nope")
	b.failsWith(1, "start it with `blueshift run`", "--home", filepath.Join(work, "nohome"), "events")
}

func TestE2EUnknownVerbsAreUsageErrors(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	d := newDevice(t, "alice")
	for _, args := range [][]string{{"frobnicate"}, {"conflicts", "bogus"}, {"versions"}, {"versions", "restore", "onlyshare"}, {"rate", "--max-send-rate"}} {
		_, errOut, code := d.cli(args...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, errOut)
		}
	}
}
