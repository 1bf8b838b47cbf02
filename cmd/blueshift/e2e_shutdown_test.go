package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/index"
)

// Stopping: the daemon must exit within 5 s of SIGTERM, whatever it is
// doing. The tests measure it and log it; they fail only past stopLimit, a
// hard limit generous enough for a loaded machine, so that they cannot
// flake, yet catch the hangs they were written for (those never ended).
const (
	stopWant  = 5 * time.Second
	stopLimit = 15 * time.Second
)

// startNoWait starts the daemon and returns at once, before it answers.
func (d *device) startNoWait(extra ...string) {
	d.t.Helper()
	args := []string{"--home", d.home, "run", "--listen", "127.0.0.1:0", "--no-discovery", "--ui", "off", "--log-level", "debug"}
	d.cmd = exec.Command(bin, append(args, extra...)...)
	// A race-enabled binary sleeps a second at exit (to catch late races)
	// unless told not to: that second is not the daemon's.
	d.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	d.log = &syncWriter{}
	d.killedEarly = false
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func() { d.done <- d.cmd.Wait() }()
}

// startTimed starts the daemon as startNoWait does and waits until it
// answers.
func (d *device) startTimed(extra ...string) {
	d.t.Helper()
	d.startNoWait(extra...)
	d.waitFor("the daemon answers", func(st daemon.Status) bool { return st.Listen != "" })
}

// terminate sends SIGTERM and waits for the daemon to exit; it fails the
// test if the daemon is still running after stopLimit or exits non-zero,
// and returns how long it took.
func (d *device) terminate(when string) time.Duration {
	d.t.Helper()
	began := time.Now()
	d.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-d.done:
	case <-time.After(stopLimit):
		d.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, in the log
		select {
		case <-d.done:
		case <-time.After(5 * time.Second):
			d.cmd.Process.Kill()
			<-d.done
		}
		d.cmd = nil
		d.t.Fatalf("%s %s: still running %s after SIGTERM\n%s", d.name, when, stopLimit, d.logText())
	}
	took := time.Since(began)
	d.cmd = nil
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM &&
		!strings.Contains(d.logText(), "msg=") {
		// The signal came before the process caught signals, which it does
		// before opening anything: nothing was open to close.
		d.t.Logf("%s %s: ended by the signal before it started", d.name, when)
		d.killedEarly = true
		return took
	}
	if err != nil {
		d.t.Fatalf("%s %s: exit after SIGTERM: %v\n%s", d.name, when, err, d.logText())
	}
	log := d.logText()
	if i := strings.LastIndex(log, "msg=stopping"); i >= 0 {
		log = log[i:]
	}
	over := ""
	if took > stopWant {
		over = fmt.Sprintf(" (over the %s wanted); its log from then:\n%s", stopWant, log)
	} else {
		// Which stage took the time: the daemon's own stopping lines.
		var stages []string
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, "msg=\"stopping:") || strings.Contains(l, "msg=stopped") {
				stages = append(stages, l)
			}
		}
		over = "\n" + strings.Join(stages, "\n")
	}
	d.t.Logf("%s %s: exited %v after SIGTERM%s", d.name, when, took.Round(time.Millisecond), over)
	return took
}

// reopensCleanly opens the device's index as the next start would and
// checks that it opens and says nothing worse than Info: no corruption, no
// recovery to report.
func (d *device) reopensCleanly(when string) {
	d.t.Helper()
	var logs syncWriter
	db, err := index.Open(filepath.Join(d.home, daemon.DBDir), index.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		d.t.Fatalf("%s %s: reopen the index: %v", d.name, when, err)
	}
	if err := db.Close(); err != nil {
		d.t.Fatalf("%s %s: close the reopened index: %v", d.name, when, err)
	}
	if s := logs.String(); s != "" {
		d.t.Fatalf("%s %s: reopening the index warned:\n%s", d.name, when, s)
	}
	if !d.killedEarly && !strings.Contains(d.logText(), "msg=stopped") {
		d.t.Fatalf("%s %s: the daemon did not say it stopped (index closed)\n%s", d.name, when, d.logText())
	}
}

// makeStopTree writes n small files and one big one under dir.
func makeStopTree(t *testing.T, dir string, n int, big int) {
	t.Helper()
	for i := range n {
		write(t, filepath.Join(dir, fmt.Sprintf("d%02d/f%04d.txt", i%40, i)), fmt.Sprintf("file %d\n%s", i, strings.Repeat("y", i%500)))
	}
	if big > 0 {
		data := make([]byte, big)
		rand.Read(data)
		if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestE2EStopAtStartAndShareAdd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	var times []string
	note := func(what string, took time.Duration) {
		times = append(times, fmt.Sprintf("%s %v", what, took.Round(time.Millisecond)))
	}
	defer func() { t.Logf("SIGTERM to exit: %s", strings.Join(times, ", ")) }()
	work := t.TempDir()

	// Right after start: the signal comes while the index opens and the
	// shares start (a share of 3,000 files is being scanned).
	a := newDevice(t, "alice")
	fa := filepath.Join(work, "a")
	makeStopTree(t, fa, 3000, 0)
	a.ok("share", "add", fa, "--name", "big")
	for _, delay := range []time.Duration{0, 50 * time.Millisecond, 300 * time.Millisecond} {
		a.startNoWait()
		time.Sleep(delay)
		when := fmt.Sprintf("%v after start", delay)
		note(when, a.terminate(when))
		a.reopensCleanly(when)
	}

	// While a share is being added: `share add` reloads the running daemon.
	a.startTimed()
	for i := range 3 {
		dir := filepath.Join(work, fmt.Sprintf("added%d", i))
		makeStopTree(t, dir, 500, 0)
		add := exec.Command(bin, "--home", a.home, "share", "add", dir, "--name", fmt.Sprintf("added%d", i))
		var out bytes.Buffer
		add.Stdout, add.Stderr = &out, &out
		if err := add.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i) * 30 * time.Millisecond)
		when := fmt.Sprintf("during share add %d", i)
		note(when, a.terminate(when))
		add.Wait() // it may fail: the daemon went away under it
		a.reopensCleanly(when)
		a.startTimed()
	}

}

// TestE2EStopDuringPull stops the receiver and then the sender of a large
// pull, with the peer connected; then the receiver again, dialling its gone
// peer.
func TestE2EStopDuringPull(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	var times []string
	note := func(what string, took time.Duration) {
		times = append(times, fmt.Sprintf("%s %v", what, took.Round(time.Millisecond)))
	}
	defer func() { t.Logf("SIGTERM to exit: %s", strings.Join(times, ", ")) }()
	work := t.TempDir()
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	a.startTimed()
	fp, fb := filepath.Join(work, "p"), filepath.Join(work, "b")
	makeStopTree(t, fp, 200, 160<<20)
	shareID := strings.TrimSpace(a.ok("share", "add", fp, "--name", "pull"))
	a.waitFor("the pull share scanned", func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.Records >= 201
	})
	// Bob receives at most 16 MiB/s, so the 160 MiB pull lasts ~10 s and is
	// still under way after each restart: at full speed a restarted bob
	// finished what its temp lacked before a status poll saw it pulling.
	slow := []string{"--max-recv-rate", "16MiB"}
	b.startTimed(slow...)
	link := strings.SplitN(a.ok("invite", "pull"), "\n", 2)[0]
	b.ok("join", link, fb)
	pulling := func(st daemon.Status) bool {
		s, ok := shareOf(st, shareID)
		return ok && s.NeedBytes > 0
	}
	b.waitFor("pulling the big file", pulling)
	note("receiver during a pull", b.terminate("receiver during a pull"))
	b.reopensCleanly("receiver during a pull")
	b.startTimed(slow...)
	b.waitFor("pulling again", pulling)
	note("sender during a pull", a.terminate("sender during a pull"))
	a.reopensCleanly("sender during a pull")
	// Bob now dials alice, who is gone.
	note("while dialling a gone peer", b.terminate("while dialling a gone peer"))
	b.reopensCleanly("while dialling a gone peer")
}
