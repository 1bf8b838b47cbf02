package conn

import (
	"bytes"
	"context"
	"errors"
	"io"
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
// whose QUIC is preferred (as for a public address) connects over TCP.
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
	d := &Dialer{TCP: NewTLS(b, testLogger(t, nil)), QUIC: qb, HeadStart: 100 * time.Millisecond,
		Prefer: func(transport.Addr) transport.Network { return transport.QUIC }}
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

// TestDialerPreference: both networks answer; the one tried first wins and
// only one stream comes out: QUIC when preferred (public addresses), TCP for
// a local address by default.
func TestDialerPreference(t *testing.T) {
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ln := range []Listener{la, lq} {
		go func() {
			for {
				s, err := ln.Accept(ctx)
				if err != nil {
					return
				}
				go func() { io.Copy(io.Discard, s); s.Close() }() // until the dialer closes
			}
		}()
	}
	addr, _ := transport.Parse(la.Addr().String())
	for _, tc := range []struct {
		prefer func(transport.Addr) transport.Network
		want   transport.Network
	}{
		{func(transport.Addr) transport.Network { return transport.QUIC }, transport.QUIC},
		{nil, transport.TCP}, // 127.0.0.1 is local
	} {
		d := &Dialer{TCP: NewTLS(b, testLogger(t, nil)), QUIC: qb, HeadStart: 2 * time.Second, Prefer: tc.prefer}
		s, err := d.Dial(ctx, addr, a.ID())
		if err != nil {
			t.Fatal(err)
		}
		if s.Write([]byte("x")); s.Net != tc.want {
			t.Errorf("dialled over %v, want %v", s.Net, tc.want)
		}
		s.Close()
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

// quicStreams returns both ends of a real QUIC connection from b to a.
func quicStreams(tb testing.TB, a, b *identity.Identity) (atA, atB Stream) {
	_, la := quicNode(tb, a, b.ID())
	qb, _ := quicNode(tb, b)
	ctx := context.Background()
	sb, err := qb.Dial(ctx, la.Addr().String(), a.ID())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := sb.Write([]byte{1}); err != nil { // the listener sees a stream once written on
		tb.Fatal(err)
	}
	sa, err := la.Accept(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(sa, make([]byte, 1)); err != nil {
		tb.Fatal(err)
	}
	return sa, sb
}

// BenchmarkQUICvsTLS moves the same bytes through a QUIC stream and, in
// alternating rounds, through TCP + TLS on loopback, and reports QUIC's
// throughput as a ratio of TCP's (quic/tcp; above 1: QUIC is faster) in
// wall time and in CPU time per byte.
func BenchmarkQUICvsTLS(b *testing.B) {
	const round = 8 << 20
	base := newCopier(b)
	sa, sb := quicStreams(b, newID(b), newID(b))
	b.Cleanup(func() { sa.Close(); sb.Close() })
	q := &copier{src: sb, dst: sa, buf: make([]byte, 32<<10)}
	b.SetBytes(round)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		base.copy(b, round)
		q.copy(b, round)
	}
	b.StopTimer()
	b.ReportMetric(base.spent.Seconds()/q.spent.Seconds(), "quic/tcp-speed")
	b.ReportMetric(base.cpu.Seconds()/q.cpu.Seconds(), "quic/tcp-cpu-efficiency")
	b.ReportMetric(float64(b.N)*round/q.spent.Seconds()/1e6, "quic-MB/s")
}
