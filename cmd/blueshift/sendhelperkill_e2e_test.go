package main

import (
	"bytes"
	"os"
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
	const size = 24 << 20
	a, l, b, in := newSwarmSet(t, size, "one.bin")
	stA, _ := a.status()

	s := startSend(t, a, in("a", "docs"), "one.bin", "--addr", stA.Listen)
	received := countReceived(t, b.home)
	into := in("b")
	rc := startReceive(t, b, s.offer.Code, into, stA.Listen, 4*e2eDeadline)

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
	if err := rc.wait(); err != nil {
		t.Fatalf("receive after the helper was killed: %v\n%s", err, rc.out)
	}
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
