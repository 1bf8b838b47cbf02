package conn

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestDefaultsDetectASilentPeerInTime pins the liveness bound the daemon
// relies on: a peer whose packets are dropped is cut within 15 s, and a
// live one pings well inside that.
func TestDefaultsDetectASilentPeerInTime(t *testing.T) {
	o := Options{}.withDefaults()
	if o.Timeout > 15*time.Second || o.PingInterval*2 >= o.Timeout {
		t.Fatalf("defaults: ping every %s, timeout %s; want timeout <= 15 s and at least two pings inside it", o.PingInterval, o.Timeout)
	}
}

// TestCloseWhilePeerDoesNotRead: a peer that never reads leaves our writer
// stuck in a write; Close must still end Run without waiting for the write
// timeout (an hour here), so a stopping daemon never waits on a peer.
func TestCloseWhilePeerDoesNotRead(t *testing.T) {
	opts := Options{PingInterval: time.Hour, Timeout: time.Hour, MaxQueue: 1 << 20}
	ended := make(chan error, 1)
	ran := make(chan error, 1)
	go func() {
		ran <- goodConnWith(t, opts, func(c *Conn) {
			data := make([]byte, 256<<10)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				err := c.Send(ctx, &wire.RecordPush{Records: []wire.RecordData{{Encoding: wire.RecordPlain, Data: data}}})
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					break // the queue is full: the writer is stuck
				}
				if err != nil {
					ended <- err
					return
				}
			}
			c.Close()
			ended <- nil
		}, func(s Stream, stop <-chan struct{}) {
			badPeer(t, s) // then never read
			<-stop
		})
	}()
	var err error
	select {
	case err = <-ran:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not end within 30 s of Close while the peer does not read")
	}
	if err != nil {
		t.Fatalf("Run after Close: %v, want nil", err)
	}
	if err := <-ended; err != nil {
		t.Fatalf("filling the queue: %v", err)
	}
}
