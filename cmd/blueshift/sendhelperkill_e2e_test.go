package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2ESendHelperKilled: in a swarmed send (TestE2ESendSwarm's set-up:
// alice's laptop holds the file in docs and helps by ticket), the laptop
// is killed (SIGKILL) while bob fetches from it. The receive completes
// from alice alone, intact, and no block arrives twice: bob's bytes_in for
// the receive, which counts the blocks of the sender and of its helpers
// alike, stays within maxReceivedRatio of the file.
func TestE2ESendHelperKilled(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, l, b := newDevice(t, "alice"), newDevice(t, "laptop"), newDevice(t, "bob")
	work := t.TempDir()
	in := func(parts ...string) string { return filepath.Join(append([]string{work}, parts...)...) }
	const size = 24 << 20
	randomFile(t, in("a", "docs", "one.bin"), size)
	a.ok("share", "add", in("a", "docs"), "--name", "docs")
	a.start()
	l.start()
	// bob receives slowly enough for the laptop to be killed midway.
	b.startRun("--max-recv-rate", "2MiB")
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nlaptop:\n%s\nbob:\n%s", a.logText(), l.logText(), b.logText())
		}
	}()
	var pr daemon.PairResult
	if err := json.Unmarshal([]byte(a.ok("pair", "--json")), &pr); err != nil {
		t.Fatal(err)
	}
	l.ok("join", pr.Link, in("l"))
	waitTrees(t, in("a", "docs"), in("l", "docs"), "the laptop follows docs", a, l)
	stL, _ := l.status()
	stA, _ := a.status()
	a.ok("peer", "add", strings.TrimSpace(l.ok("id")), "--addr", stL.Listen)

	s := startSend(t, a, in("a", "docs"), "one.bin", "--addr", stA.Listen)
	received := countBytes(t, b.home, func(st daemon.Status) (int64, bool, bool) {
		for _, sh := range st.Shares {
			if strings.HasPrefix(sh.Name, "receive-") {
				return sh.BytesIn, true, len(sh.Reached) > 0 && sh.Records > 0 && sh.NeedItems == 0
			}
		}
		return 0, false, false
	})
	into := in("b")
	os.MkdirAll(into, 0o755)
	rc := exec.Command(bin, "--home", b.home, "receive", s.offer.Code, into, "--addr", stA.Listen, "--json",
		"--timeout", (4 * e2eDeadline).String())
	rcOut := &syncWriter{}
	rc.Stdout, rc.Stderr = rcOut, rcOut
	if err := rc.Start(); err != nil {
		t.Fatal(err)
	}
	rcDone := make(chan error, 1)
	go func() { rcDone <- rc.Wait() }()
	t.Cleanup(func() {
		rc.Process.Kill()
		err := <-rcDone
		rcDone <- err
	})

	var before, fromLaptop int64
	b.waitFor("a quarter of one.bin arrived, part of it from the laptop", func(st daemon.Status) bool {
		for _, sh := range st.Shares {
			if strings.HasPrefix(sh.Name, "receive-") && sh.BytesIn >= size/4 && st.Swarm.FetchedBytes >= size/16 {
				before, fromLaptop = sh.BytesIn, st.Swarm.FetchedBytes
				return sh.NeedItems > 0
			}
		}
		return false
	})
	l.kill()
	if err := <-rcDone; err != nil {
		rcDone <- err
		t.Fatalf("receive after the helper was killed: %v\n%s", err, rcOut)
	}
	rcDone <- nil
	want, err1 := os.ReadFile(in("a", "docs", "one.bin"))
	got, err2 := os.ReadFile(filepath.Join(into, "one.bin"))
	if err1 != nil || err2 != nil || !bytes.Equal(got, want) {
		t.Fatalf("one.bin arrived different after the helper was killed (%v %v)", err1, err2)
	}
	if err := s.wait(t); err != nil {
		t.Fatalf("send: %v\n%s", err, s.err)
	}
	n, exact := received.total()
	stB, _ := b.status()
	t.Logf("bob had %d bytes (%d of them from the laptop) when the laptop was killed; %d from the laptop in all", before, fromLaptop, stB.Swarm.FetchedBytes)
	checkReceivedOnce(t, "bob's bytes_in for the receive", n, exact, size)
}
