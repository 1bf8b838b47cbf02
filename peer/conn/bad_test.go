package conn

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

type netDialer struct{}

func (netDialer) dial(addr string) (net.Conn, error) { return net.Dial("tcp", addr) }

// badPeer completes Hello by hand on s and returns a reader of what follows.
func badPeer(t *testing.T, s Stream) *bufio.Reader {
	if err := wire.WriteFrame(s, wire.Frame{Msg: &wire.Hello{Version: wire.Version, MinVersion: wire.MinVersion}}); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(s)
	if _, err := wire.NewReader(br).ReadFrame(); err != nil {
		t.Fatal(err)
	}
	return br
}

// goodConn opens a Conn on s while the test plays the other side with fn.
func goodConn(t *testing.T, opts Options, fn func(bad Stream)) error {
	a, b := newID(t), newID(t)
	good, bad := streams(t, a, b)
	defer bad.Close()
	opts.Logger = testLogger(t, nil)
	ch := make(chan *Conn, 1)
	go func() {
		c, err := Open(context.Background(), good, wire.Hello{}, newHandler(), opts)
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() { fn(bad); <-done })
	c := <-ch
	if c == nil {
		close(done)
		wg.Wait()
		t.FailNow()
	}
	err := c.Run(context.Background())
	close(done)
	bad.Close()
	wg.Wait()
	return err
}

func TestBadPeers(t *testing.T) {
	fast := Options{PingInterval: 20 * time.Millisecond, Timeout: 300 * time.Millisecond}
	for _, tc := range []struct {
		name string
		opts Options
		bad  func(t *testing.T, s Stream)
		want error
	}{
		{"garbage", Options{}, func(t *testing.T, s Stream) {
			badPeer(t, s)
			s.Write([]byte{0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff})
		}, ErrPeerMisbehaved},
		{"oversized length", Options{}, func(t *testing.T, s Stream) {
			badPeer(t, s)
			s.Write([]byte{0x7f, 0xff, 0xff, 0xff})
		}, wire.ErrMalformed},
		{"truncated frame", Options{}, func(t *testing.T, s Stream) {
			badPeer(t, s)
			s.Write([]byte{0, 0, 1, 0, 1, 2, 3})
			s.Close()
		}, ErrLost},
		{"second hello", Options{}, func(t *testing.T, s Stream) {
			badPeer(t, s)
			wire.WriteFrame(s, wire.Frame{Msg: &wire.Hello{}})
		}, ErrPeerMisbehaved},
		{"unsolicited answer is dropped", Options{}, func(t *testing.T, s Stream) {
			badPeer(t, s)
			wire.WriteFrame(s, wire.Frame{ID: 1, Msg: &wire.NodesResponse{}})
			wire.WriteFrame(s, wire.Frame{Msg: &wire.Close{Reason: "bye"}})
		}, ErrPeerClosed},
		{"silent peer", fast, func(t *testing.T, s Stream) {
			badPeer(t, s) // then nothing, and never read
		}, ErrTimeout},
		{"gone without close", Options{}, func(t *testing.T, s Stream) {
			badPeer(t, s)
			s.Close()
		}, ErrLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := goodConn(t, tc.opts, func(s Stream) { tc.bad(t, s) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run: %v, want %v", err, tc.want)
			}
			t.Logf("Run: %v", err)
		})
	}
}

// A peer that keeps talking but never reads: our sends fill the queue, then
// the write deadline cuts it off. Memory stays at MaxQueue.
func TestPeerStopsReading(t *testing.T) {
	opts := Options{PingInterval: time.Hour, Timeout: 300 * time.Millisecond, MaxQueue: 1 << 20}
	var sendErr error
	err := goodConnWith(t, opts, func(c *Conn) {
		data := make([]byte, 256<<10)
		for {
			if sendErr = c.Send(context.Background(), &wire.RecordPush{Records: []wire.RecordData{{Encoding: wire.RecordPlain, Data: data}}}); sendErr != nil {
				return
			}
		}
	}, func(s Stream, stop <-chan struct{}) {
		badPeer(t, s)
		t := time.NewTicker(20 * time.Millisecond) // alive, so only writes time out
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if wire.WriteFrame(s, wire.Frame{Msg: &wire.Ping{}}) != nil {
					return
				}
			case <-stop:
				return
			}
		}
	})
	if !errors.Is(err, ErrTimeout) || !errors.Is(sendErr, ErrTimeout) {
		t.Fatalf("Run: %v, Send: %v; want ErrTimeout", err, sendErr)
	}
}

// goodConnWith is goodConn with a user of the good Conn.
func goodConnWith(t *testing.T, opts Options, use func(*Conn), fn func(bad Stream, stop <-chan struct{})) error {
	a, b := newID(t), newID(t)
	good, bad := streams(t, a, b)
	defer bad.Close()
	opts.Logger = testLogger(t, nil)
	ch := make(chan *Conn, 1)
	go func() {
		c, err := Open(context.Background(), good, wire.Hello{}, newHandler(), opts)
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { fn(bad, stop) })
	c := <-ch
	if c == nil {
		close(stop)
		wg.Wait()
		t.FailNow()
	}
	wg.Go(func() { use(c) })
	err := c.Run(context.Background())
	close(stop)
	bad.Close()
	wg.Wait()
	return err
}

// A peer that answers a request with the wrong message type is cut off.
func TestWrongAnswer(t *testing.T) {
	var reqErr error
	err := goodConnWith(t, Options{}, func(c *Conn) {
		_, reqErr = c.Request(context.Background(), &wire.BlockRequest{Size: 1})
	}, func(s Stream, stop <-chan struct{}) {
		r := wire.NewReader(badPeer(t, s))
		for {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			if _, ok := f.Msg.(*wire.BlockRequest); ok {
				wire.WriteFrame(s, wire.Frame{ID: f.ID, Msg: &wire.NodesResponse{}})
			}
		}
	})
	if !errors.Is(err, ErrPeerMisbehaved) || !errors.Is(reqErr, ErrPeerMisbehaved) {
		t.Fatalf("Run: %v, Request: %v; want ErrPeerMisbehaved", err, reqErr)
	}
}
