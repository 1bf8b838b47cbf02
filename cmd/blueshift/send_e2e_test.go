package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// sender is a `blueshift send` process and the offer it printed.
type sender struct {
	cmd   *exec.Cmd
	offer daemon.Send
	out   *bufio.Scanner
	err   *syncWriter
	done  chan error
}

// startSend runs `send --json ARGS...` for d in the background and reads
// its offer.
func startSend(t *testing.T, d *device, dir string, args ...string) *sender {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--home", d.home, "send", "--json"}, args...)...)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &sender{cmd: cmd, out: bufio.NewScanner(stdout), err: &syncWriter{}, done: make(chan error, 1)}
	cmd.Stderr = s.err
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	if !s.out.Scan() {
		cmd.Process.Kill()
		t.Fatalf("send printed no offer: %s", s.err)
	}
	if err := json.Unmarshal(s.out.Bytes(), &s.offer); err != nil || !daemon.IsCode(s.offer.Code) {
		t.Fatalf("send's first line %q is not an offer with a code: %v", s.out.Text(), err)
	}
	go func() {
		for s.out.Scan() { // progress lines; the last says done
		}
		s.done <- cmd.Wait()
	}()
	return s
}

func (s *sender) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for Cleanup
		return err
	case <-time.After(e2eDeadline):
		t.Fatalf("send did not end after its receipt\n%s", s.err)
	}
	return nil
}

// TestE2ESendReceive: files and a folder sent by code reach a device that
// was never paired and has no daemon running (receive runs one, and
// creates the device); both ends clean up; a wrong code gets nothing.
func TestE2ESendReceive(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "alice")
	a.start()
	st, _ := a.status()
	work := t.TempDir()
	src := filepath.Join(work, "src")
	randomFile(t, filepath.Join(src, "photos", "a.jpg"), 3<<20)
	write(t, filepath.Join(src, "photos", "sub", "b.txt"), "bee\n")
	write(t, filepath.Join(src, "note.txt"), "a note\n")
	before := tree(t, src)

	s := startSend(t, a, src, "photos", "note.txt", "--addr", st.Listen)
	if s.offer.Files != 3 {
		t.Fatalf("offer of %d files, want 3", s.offer.Files)
	}

	carol := filepath.Join(t.TempDir(), "carol") // no init: receive makes the device
	into := filepath.Join(work, "into")
	os.MkdirAll(into, 0o755)
	write(t, filepath.Join(into, "note.txt"), "mine, not to be replaced\n")
	recv := func(code string) (string, string, int) {
		cmd := exec.Command(bin, "--home", carol, "receive", code, into, "--addr", st.Listen,
			"--listen", "127.0.0.1:0", "--no-discovery", "--json", "--timeout", e2eDeadline.String())
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code2 := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code2 = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), code2
	}

	wrong := []byte(s.offer.Code)
	wrong[len(wrong)-1] = map[bool]byte{true: 'A', false: 'B'}[wrong[len(wrong)-1] != 'A']
	if _, errOut, code := recv(string(wrong)); code != 1 || !strings.Contains(errOut, "no device") {
		t.Fatalf("receive with a wrong code: exit %d, %s", code, errOut)
	}
	if got := tree(t, into); len(got) != 1 {
		t.Fatalf("a wrong code left %v in the receive folder", got)
	}

	out, errOut, code := recv(s.offer.Code)
	if code != 0 {
		t.Fatalf("receive: exit %d\n%s\n%s\nsender:\n%s", code, out, errOut, s.err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.Contains(lines[len(lines)-1], `"done":true`) {
		t.Fatalf("receive's last line %q does not say done", lines[len(lines)-1])
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("send: %v\n%s", err, s.err)
	}

	got := tree(t, into)
	for p, v := range before {
		want := p
		if p == "note.txt" {
			want = "note (2).txt" // the receiver's own note stays
		}
		if got[want] != v {
			t.Errorf("received %s differs from the sent %s", want, p)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(into, "note.txt")); string(b) != "mine, not to be replaced\n" {
		t.Errorf("the receiver's own note.txt was replaced: %q", b)
	}
	for _, dir := range []string{into, src} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".blueshift") {
				t.Errorf("%s left behind in %s", e.Name(), dir)
			}
		}
	}
	if diff := treeDiff(before, tree(t, src)); diff != "" {
		t.Errorf("sending changed the sent files: %s", diff)
	}
	for _, home := range []string{a.home, carol} {
		cfg, err := daemon.LoadConfig(home)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Shares) != 0 || len(cfg.Peers) != 0 {
			t.Errorf("%s keeps %d shares and %d peers after the transfer", home, len(cfg.Shares), len(cfg.Peers))
		}
	}
}

// TestE2EReceiveResumes: a receive killed midway (kill -9) goes on when run
// again, the whole file arrives intact, and no block is received twice
// (alice's bytes_out for the send, an upper bound of what bob received
// over both runs, is at most maxReceivedRatio times the file).
func TestE2EReceiveResumes(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	a.start()
	st, _ := a.status()
	work := t.TempDir()
	src := filepath.Join(work, "src")
	randomFile(t, filepath.Join(src, "big.bin"), 48<<20)
	s := startSend(t, a, src, "big.bin", "--addr", st.Listen)
	// What alice sends for the share bounds what bob receives, over both
	// of bob's runs (a killed run's counters die with it).
	sent := countBytes(t, a.home, func(st daemon.Status) (int64, bool, bool) {
		for _, sh := range st.Shares {
			if sh.ID == s.offer.ShareID {
				return sh.BytesOut, true, len(sh.Reached) > 0
			}
		}
		return 0, false, false
	})
	into := filepath.Join(work, "into")
	os.MkdirAll(into, 0o755)
	// Bob receives at most 8 MiB/s, so his first run is killed with most of
	// the file still to come: at full speed alice had sent all of it by the
	// kill, and the second run found her send over.
	if err := daemon.EditConfig(b.home, func(c *config.Config) error { c.Device.MaxRecvRate = 8 << 20; return nil }); err != nil {
		t.Fatal(err)
	}
	// --no-dht and --no-quic reach the daemon receive runs (as the bench's
	// daemons run): status shows neither a DHT node nor a QUIC address.
	args := []string{"--home", b.home, "receive", s.offer.Code, into, "--addr", st.Listen, "--listen", "127.0.0.1:0", "--no-discovery", "--no-dht", "--no-quic", "--json"}

	first := exec.Command(bin, args...)
	var firstErr syncWriter
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill it once some bytes have arrived in its staging folder.
	deadline := time.Now().Add(e2eDeadline)
	for {
		var got int64
		filepath.Walk(into, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				got += fi.Size()
			}
			return nil
		})
		if got > 0 {
			out, err := exec.Command(bin, "--home", b.home, "status", "--json").Output()
			var bs map[string]any
			if err := errors.Join(err, json.Unmarshal(out, &bs)); err != nil {
				t.Fatalf("status of the receive's daemon: %v: %s", err, out)
			}
			if bs["listen"] == nil || bs["listen"] == "" || bs["dht"] != nil || bs["quic"] != nil {
				t.Errorf("receive --no-dht --no-quic: its daemon's status has listen %v, dht %v, quic %v; want a listen address, no DHT, no QUIC", bs["listen"], bs["dht"], bs["quic"])
			}
			break
		}
		if time.Now().After(deadline) {
			first.Process.Kill()
			first.Wait()
			t.Fatalf("nothing arrived before the kill\n%s", firstErr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	first.Process.Kill()
	first.Wait()
	t.Logf("alice had sent %d bytes when bob's receive was killed", sent.now())

	second := exec.Command(bin, append(args, "--timeout", (10*e2eDeadline).String())...)
	out, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("receive run again: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"resumed":true`) {
		t.Errorf("the second receive did not go on with the first: %s", out)
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("send: %v\n%s", err, s.err)
	}
	if diff := treeDiff(tree(t, src), tree(t, into)); diff != "" {
		t.Fatalf("after the resumed receive: %s", diff)
	}
	// No block received twice: what was sent, at most a little more than
	// the file.
	n, exact := sent.total()
	checkReceivedOnce(t, "alice's bytes_out for the send", n, exact, 48<<20)
}
