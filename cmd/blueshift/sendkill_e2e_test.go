package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// byteCounter polls a daemon's status over its control socket and adds up
// a share's block byte counter (a share's bytes_in or bytes_out: the
// engine counts block payloads, once each as they are received or sent).
// The counter starts at zero with the share's engine: a drop means it
// restarted, and what was counted before is kept.
type byteCounter struct {
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	base  int64 // counted by earlier runs of the share's engine
	last  int64 // the current run's counter at the last poll
	final bool  // the last poll saw the share complete: the count is exact
}

// countReceived counts home's bytes_in for a receive (its "receive-"
// share), complete once the receive has all it needs.
func countReceived(t *testing.T, home string) *byteCounter {
	return countBytes(t, home, func(st daemon.Status) (int64, bool, bool) {
		for _, sh := range st.Shares {
			if strings.HasPrefix(sh.Name, "receive-") {
				return sh.BytesIn, true, len(sh.Reached) > 0 && sh.Records > 0 && sh.NeedItems == 0
			}
		}
		return 0, false, false
	})
}

// receiving is `receive CODE DIR --addr ADDR` run in the background for a
// running daemon; it is killed, if still running, when the test ends.
type receiving struct {
	out   *syncWriter // its stdout and stderr
	done  chan error  // its exit; whoever takes it puts it back
	limit time.Duration
}

// startReceive runs d's receive of code into into from addr, ending with
// an error after timeout (its --timeout).
func startReceive(t *testing.T, d *device, code, into, addr string, timeout time.Duration) *receiving {
	t.Helper()
	os.MkdirAll(into, 0o755)
	cmd := exec.Command(bin, "--home", d.home, "receive", code, into, "--addr", addr, "--json", "--timeout", timeout.String())
	r := &receiving{out: &syncWriter{}, done: make(chan error, 1), limit: timeout + e2eDeadline}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-r.done
	})
	return r
}

// wait returns the receive's exit once it has ended, or an error when it
// is still running well past its own --timeout.
func (r *receiving) wait() error {
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(r.limit):
		return fmt.Errorf("receive did not end %v after it started (its --timeout passed)", r.limit)
	}
}

// countBytes starts polling home's daemon. pick returns the counter of
// the share it is after, whether that share is there, and whether it is
// complete; a missing daemon (killed, restarting) is polled again.
func countBytes(t *testing.T, home string, pick func(daemon.Status) (n int64, ok, complete bool)) *byteCounter {
	c := &byteCounter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		var cl *daemon.Client
		for {
			select {
			case <-c.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if cl == nil {
				var err error
				if cl, err = daemon.NewClient(home); err != nil {
					cl = nil
					continue
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			st, err := cl.Status(ctx)
			cancel()
			if err != nil {
				cl = nil // the daemon may have been killed: a new one gets a new client
				continue
			}
			n, ok, complete := pick(st)
			if !ok {
				continue
			}
			c.mu.Lock()
			if n < c.last {
				c.base += c.last
			}
			c.last, c.final = n, complete
			c.mu.Unlock()
		}
	}()
	t.Cleanup(c.end)
	return c
}

func (c *byteCounter) end() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}

// now returns the bytes counted so far.
func (c *byteCounter) now() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base + c.last
}

// total returns the bytes counted, and whether the count ends on the
// share complete (exact) rather than on a poll some bytes may have
// followed.
func (c *byteCounter) total() (int64, bool) {
	c.end()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base + c.last, c.final
}

// maxReceivedRatio bounds the bytes received for a file over the wire:
// no block arrives twice, with room for the blocks in flight when a side
// was killed.
const maxReceivedRatio = 1.10

// checkReceivedOnce fails the test if counted is more than
// maxReceivedRatio times size.
func checkReceivedOnce(t *testing.T, what string, counted int64, exact bool, size int64) {
	t.Helper()
	ratio := float64(counted) / float64(size)
	t.Logf("%s: %d bytes for a file of %d: ratio %.3f (count ends on the share complete: %v)", what, counted, size, ratio, exact)
	if ratio > maxReceivedRatio {
		t.Errorf("%s: %d bytes for a file of %d (%.2fx): blocks were received twice", what, counted, size, ratio)
	}
	if counted < size/2 {
		t.Errorf("%s: %d bytes for a file of %d: the counter missed the transfer", what, counted, size)
	}
}

// TestE2ESendSenderKilled: the sending daemon killed midway (kill -9) and
// started again, the same send run again offers the same code, and the
// receive of an unpaired device goes on where it was: the file arrives
// intact and no block is received twice (bob's bytes_in for the receive,
// at most maxReceivedRatio times the file).
func TestE2ESendSenderKilled(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	a.start()
	stA, _ := a.status()
	// bob receives slowly enough for alice to be killed midway.
	b.startRun("--max-recv-rate", "4MiB")
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nbob:\n%s", a.logText(), b.logText())
		}
	}()
	work := t.TempDir()
	src := filepath.Join(work, "src")
	const size = 32 << 20
	randomFile(t, filepath.Join(src, "big.bin"), size)
	s := startSend(t, a, src, "big.bin", "--addr", stA.Listen)

	received := countReceived(t, b.home)
	into := filepath.Join(work, "into")
	rc := startReceive(t, b, s.offer.Code, into, stA.Listen, 10*e2eDeadline)

	var before int64
	b.waitFor("a quarter of big.bin arrived", func(st daemon.Status) bool {
		for _, sh := range st.Shares {
			if strings.HasPrefix(sh.Name, "receive-") && sh.BytesIn >= size/4 {
				before = sh.BytesIn
				return sh.NeedItems > 0
			}
		}
		return false
	})
	a.kill()
	// The send verb of the killed daemon has nothing to watch: the user
	// ends it and runs it again once the daemon is back.
	s.cmd.Process.Kill()
	err := <-s.done
	s.done <- err // for Cleanup
	// The same address: bob knows alice there from the receive.
	a.startArgs(bin, "--home", a.home, "run", "--listen", stA.Listen, "--no-discovery", "--ui", "off")
	again := startSend(t, a, src, "big.bin", "--addr", stA.Listen)
	if again.offer.Code != s.offer.Code || !again.offer.Resumed || again.offer.ShareID != s.offer.ShareID {
		t.Fatalf("send run again after the kill: code %q resumed %v share %s; want the open offer %q of share %s",
			again.offer.Code, again.offer.Resumed, again.offer.ShareID, s.offer.Code, s.offer.ShareID)
	}

	if err := rc.wait(); err != nil {
		t.Fatalf("receive after the sender was killed and started again: %v\n%s", err, rc.out)
	}
	if err := again.wait(t); err != nil {
		t.Fatalf("send run again: %v\n%s", err, again.err)
	}
	if diff := treeDiff(tree(t, src), tree(t, into)); diff != "" {
		t.Fatalf("after the sender was killed: %s", diff)
	}
	n, exact := received.total()
	t.Logf("bob had %d bytes when alice was killed", before)
	checkReceivedOnce(t, "bob's bytes_in for the receive", n, exact, size)
}
