package conn

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// quicNode is a QUIC transport on 127.0.0.1 with its listener, accepting
// only the devices in ok.
func quicNode(t testing.TB, id *identity.Identity, ok ...identity.DeviceID) (*QUIC, *QUICListener) {
	q, err := ListenQUIC(id, "127.0.0.1:0", testLogger(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	l, err := q.Listen(func(remote identity.DeviceID) error {
		for _, d := range ok {
			if d == remote {
				return nil
			}
		}
		return errors.New("not paired")
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); q.Close() })
	return q, l
}

// TestQUICExchange runs the protocol over QUIC: the Hello, many requests
// with large blocks both ways, and a clean close that the peer sees as the
// peer's Close (our last frame was delivered before the connection ended).
func TestQUICExchange(t *testing.T) {
	a, b := newID(t), newID(t)
	_, la := quicNode(t, a, b.ID())
	qb, _ := quicNode(t, b)
	ctx := context.Background()
	sb, err := qb.Dial(ctx, la.Addr().String(), a.ID())
	if err != nil {
		t.Fatal(err)
	}
	if sb.Remote != a.ID() || sb.Net != transport.QUIC || !sb.Outbound {
		t.Fatalf("dialled stream: %+v", sb)
	}
	// The listener sees the stream once the dialer wrote on it: Open both
	// ends at once, as the peer manager does.
	opts := Options{Logger: testLogger(t, nil)}
	ch := make(chan *Conn, 1)
	go func() {
		c, err := Open(ctx, sb, wire.Hello{DeviceName: "b"}, newHandler(), opts)
		if err != nil {
			t.Error(err)
		}
		ch <- c
	}()
	sa, err := la.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sa.Remote != b.ID() || sa.Net != transport.QUIC || sa.Outbound {
		t.Fatalf("accepted stream: %+v", sa)
	}
	ca, err := Open(ctx, sa, wire.Hello{DeviceName: "a"}, newHandler(), opts)
	if err != nil {
		t.Fatal(err)
	}
	cb := <-ch
	if cb == nil {
		t.FailNow()
	}
	ra, rb := start(t, ca), start(t, cb)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			from := ra.c
			if i%2 == 0 {
				from = rb.c
			}
			h := block.Hash{byte(i + 1)}
			size := 1 << 20
			if i%4 == 0 {
				size = 10
			}
			resp, err := Call[*wire.BlockResponse](ctx, from, &wire.BlockRequest{Hash: h, Size: uint32(size)})
			if err != nil {
				t.Error(err)
				return
			}
			if !bytes.Equal(resp.Data, blockData(h, size)) {
				t.Errorf("block %d: wrong data", i)
			}
		})
	}
	wg.Wait()
	waitUntil(t, "RTT measured", func() bool { return ra.c.RTT() > 0 && rb.c.RTT() > 0 })
	if ra.c.Network() != transport.QUIC {
		t.Fatalf("network %v", ra.c.Network())
	}
	rb.c.Close()
	if err := rb.wait(t); err != nil {
		t.Fatalf("closing side: %v", err)
	}
	if err := ra.wait(t); !errors.Is(err, ErrPeerClosed) {
		t.Fatalf("other side ended with %v, want the peer's Close (ErrPeerClosed)", err)
	}
}

// TestQUICWrongDevice: a dial pinned to one device reaches another and
// fails; a device the listener does not accept is told why.
func TestQUICWrongDevice(t *testing.T) {
	a, b, c := newID(t), newID(t), newID(t)
	_, la := quicNode(t, a, b.ID())
	qb, _ := quicNode(t, b)
	qc, _ := quicNode(t, c)
	ctx := context.Background()
	if _, err := qb.Dial(ctx, la.Addr().String(), c.ID()); !errors.Is(err, ErrWrongPeer) {
		t.Fatalf("dial pinned to the wrong device: %v, want ErrWrongPeer", err)
	}
	acc := make(chan error, 1)
	go func() {
		_, err := la.Accept(ctx)
		acc <- err
	}()
	s, err := qc.Dial(ctx, la.Addr().String(), a.ID())
	if err != nil {
		t.Fatalf("the handshake itself succeeds (the listener learns who it is): %v", err)
	}
	_, err = Open(ctx, s, wire.Hello{}, newHandler(), Options{})
	if !errors.Is(err, ErrPeerClosed) || !strings.Contains(err.Error(), "not paired") {
		t.Fatalf("stranger's Open: %v, want a Close saying it is not paired", err)
	}
	var re *RefusedError
	if err := <-acc; !errors.As(err, &re) || re.Remote != c.ID() {
		t.Fatalf("Accept: %v, want RefusedError for the stranger", err)
	}
}

// TestDialerFallsBackToTCP: when nothing answers over UDP (a socket that
// swallows every datagram sits on the port), an address of both networks
// connects over TCP; when QUIC answers, it wins.
func TestDialerFallsBackToTCP(t *testing.T) {
	a, b := newID(t), newID(t)
	la := listen(t, a, testLogger(t, nil), b.ID())
	port := la.Addr().(*net.TCPAddr).Port
	hole, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	qb, err := ListenQUIC(b, "127.0.0.1:0", testLogger(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer qb.Close()
	d := &Dialer{TCP: NewTLS(b, testLogger(t, nil)), QUIC: qb, HeadStart: 100 * time.Millisecond}
	ctx := context.Background()
	go func() {
		if s, err := la.Accept(ctx); err == nil {
			s.Close()
		}
	}()
	addr, _ := transport.Parse(la.Addr().String())
	began := time.Now()
	s, err := d.Dial(ctx, addr, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s.Net != transport.TCP {
		t.Fatalf("dialled over %v, want TCP", s.Net)
	}
	t.Logf("connected over TCP in %v", time.Since(began))
	qb.HandshakeTimeout = time.Second
	if _, err := d.Dial(ctx, addr.With(transport.QUIC), a.ID()); err == nil {
		t.Fatal("a QUIC-only dial into the hole succeeded")
	}
}

// TestDialerPrefersQUIC: both networks answer; QUIC, dialled first, wins
// and only one stream comes out.
func TestDialerPrefersQUIC(t *testing.T) {
	a, b := newID(t), newID(t)
	la := listen(t, a, testLogger(t, nil), b.ID())
	qa, err := ListenQUIC(a, la.Addr().String(), testLogger(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	lq, err := qa.Listen(func(identity.DeviceID) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { lq.Close(); qa.Close() }()
	qb, _ := quicNode(t, b)
	d := &Dialer{TCP: NewTLS(b, testLogger(t, nil)), QUIC: qb, HeadStart: 2 * time.Second}
	ctx := context.Background()
	go func() {
		if s, err := lq.Accept(ctx); err == nil {
			s.Close()
		}
	}()
	addr, _ := transport.Parse(la.Addr().String())
	s, err := d.Dial(ctx, addr, a.ID())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s.Net != transport.QUIC {
		t.Fatalf("dialled over %v, want QUIC", s.Net)
	}
}

func waitUntil(t testing.TB, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
