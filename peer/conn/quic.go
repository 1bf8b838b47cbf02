package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

const (
	// quicIdleTimeout is QUIC's own idle timeout. Conn's pings (every 5 s)
	// and its timeout (15 s) decide when a peer is dead; this only reclaims
	// a connection whose Conn never ran.
	quicIdleTimeout = 30 * time.Second
	// punchPayload is the size of a hole-punching packet: small, and not
	// QUIC (its first two bits are zero), so the peer's QUIC stack drops it.
	punchPayload = 16
	// quicConnWindow is the initial connection-level receive window.
	quicConnWindow = 4 << 20
)

// QUIC is the QUIC transport on one UDP socket: it listens, dials and sends
// hole-punching packets from the same socket, so the address a NAT maps for
// one is the address of all (what a peer observes is where others can reach
// us). TLS 1.3 inside QUIC authenticates both devices exactly as TLS does:
// the same certificates, pinned, no CA.
//
// A connection's first bidirectional stream, opened by the dialer, is the
// one Conn runs on as it does on TCP. Between two devices that both
// announce wire.CapStreams, each request and its response then travel on a
// stream of their own (streams.go); the peer may open at most MaxRequests
// of them at once (QUIC's stream limit).
//
// QUIC owns the socket and quic-go's goroutines: Close stops them.
type QUIC struct {
	id               *identity.Identity
	log              *slog.Logger
	udp              *net.UDPConn
	tr               *quic.Transport
	HandshakeTimeout time.Duration // DefaultHandshakeTimeout if zero
	MaxHandshakes    int           // DefaultMaxHandshakes if zero
	// MaxRequests is how many request streams the peer may open at once
	// (set it to Options.MaxRequests of the Conns run on this transport);
	// DefaultMaxRequests if zero.
	MaxRequests int
}

// ListenQUIC opens the UDP socket of the QUIC transport on addr (host:port;
// port 0 picks one).
func ListenQUIC(id *identity.Identity, addr string, log *slog.Logger) (*QUIC, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on udp %s: %w", addr, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("listen on udp %s: %w", addr, err)
	}
	return &QUIC{id: id, log: log, udp: udp, tr: &quic.Transport{Conn: udp}}, nil
}

// LocalAddr is the UDP address the transport listens and dials from.
func (q *QUIC) LocalAddr() net.Addr { return q.udp.LocalAddr() }

// Close closes every QUIC connection and the socket.
func (q *QUIC) Close() error {
	err := q.tr.Close()
	q.udp.Close()
	return err
}

// Dial connects to addr (host:port) and succeeds only if the device there is
// want.
func (q *QUIC) Dial(ctx context.Context, addr string, want identity.DeviceID) (Stream, error) {
	return q.dial(ctx, addr, &want)
}

// DialAny connects to addr from the transport's socket and accepts
// whichever device answers (TLS.DialAny's QUIC twin): for a caller that
// authenticates the device some other way, or trusts it for nothing.
func (q *QUIC) DialAny(ctx context.Context, addr string) (Stream, error) {
	return q.dial(ctx, addr, nil)
}

func (q *QUIC) dial(ctx context.Context, addr string, want *identity.DeviceID) (Stream, error) {
	who := "any device"
	if want != nil {
		who = "device " + want.Abbrev()
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return Stream{}, fmt.Errorf("dial %s at quic://%s: %w", who, addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, q.handshakeTimeout())
	defer cancel()
	var remote identity.DeviceID
	cfg := tlsConfig(q.id)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		got, err := peerID(cs)
		if err != nil {
			return err
		}
		if want != nil && got != *want {
			return fmt.Errorf("device at quic://%s is %s, want %s: %w", addr, got, *want, ErrWrongPeer)
		}
		remote = got
		return nil
	}
	qc, err := q.tr.Dial(ctx, ua, cfg, q.config(false))
	if err != nil {
		return Stream{}, fmt.Errorf("dial %s at quic://%s: %w", who, addr, quicError(err))
	}
	st, err := qc.OpenStreamSync(ctx)
	if err != nil {
		qc.CloseWithError(0, "")
		return Stream{}, fmt.Errorf("dial %s at quic://%s: open stream: %w", who, addr, err)
	}
	qs := newQUICStream(qc, st)
	return Stream{Conn: qs, Remote: remote, Outbound: true, Net: transport.QUIC, rtt: qs.SmoothedRTT, qc: qc}, nil
}

// Punch sends a few bytes that are not QUIC to addr from our socket, so that
// our NAT and firewall let addr's packets in (its dial reaches us). The peer
// drops them.
func (q *QUIC) Punch(addr netip.AddrPort) error {
	b := make([]byte, punchPayload) // first byte 0: not a QUIC packet
	_, err := q.tr.WriteTo(b, net.UDPAddrFromAddrPort(addr))
	return err
}

// Listen accepts QUIC connections on the transport's socket; accept decides
// about each proven device. Listen may be called once.
func (q *QUIC) Listen(accept AcceptFunc) (*QUICListener, error) {
	cfg := tlsConfig(q.id)
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_, err := peerID(cs)
		return err
	}
	ql, err := q.tr.Listen(cfg, q.config(true))
	if err != nil {
		return nil, fmt.Errorf("listen on quic %s: %w", q.udp.LocalAddr(), err)
	}
	max := q.MaxHandshakes
	if max <= 0 {
		max = DefaultMaxHandshakes
	}
	l := &QUICListener{q: q, ql: ql, accept: accept, out: make(chan acceptResult), slots: make(chan struct{}, max)}
	l.life, l.stop = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// config is the QUIC configuration of a connection we dial, or of one we
// accept (listening: the dialer also opens the first stream).
func (q *QUIC) config(listening bool) *quic.Config {
	streams := int64(q.MaxRequests)
	if streams <= 0 {
		streams = DefaultMaxRequests
	}
	if listening {
		streams++
	}
	return &quic.Config{
		HandshakeIdleTimeout:  q.handshakeTimeout(),
		MaxIdleTimeout:        quicIdleTimeout,
		MaxIncomingStreams:    streams,
		MaxIncomingUniStreams: -1, // none
		// Room for a few request streams whose reader lags (each holds at
		// most its stream window, 512 KiB at first) before they hold up
		// the others; QUIC grows it to 15 MB for a fast reader either way.
		InitialConnectionReceiveWindow: quicConnWindow,
	}
}

func (q *QUIC) handshakeTimeout() time.Duration {
	if q.HandshakeTimeout > 0 {
		return q.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

// QUICListener is a Listener of the QUIC transport.
type QUICListener struct {
	q      *QUIC
	ql     *quic.Listener
	accept AcceptFunc
	out    chan acceptResult // handshake goroutines -> Accept
	slots  chan struct{}     // one per connection waiting for its stream
	life   context.Context   // ends at Close
	stop   context.CancelFunc
	once   sync.Once
	wg     sync.WaitGroup // acceptLoop and the goroutines it starts
}

// Accept returns the next accepted stream, or a *RefusedError.
func (l *QUICListener) Accept(ctx context.Context) (Stream, error) {
	select {
	case r := <-l.out:
		return r.s, r.err
	case <-l.life.Done():
		return Stream{}, fmt.Errorf("accept on quic %s: %w", l.ql.Addr(), net.ErrClosed)
	case <-ctx.Done():
		return Stream{}, ctx.Err()
	}
}

// Addr is the UDP address the listener listens on.
func (l *QUICListener) Addr() net.Addr { return l.ql.Addr() }

// Close stops accepting and waits for the goroutines; connections already
// accepted stay (the transport's Close ends them).
func (l *QUICListener) Close() error {
	var err error
	l.once.Do(func() {
		l.stop()
		err = l.ql.Close()
		l.wg.Wait()
	})
	return err
}

func (l *QUICListener) acceptLoop() {
	defer l.wg.Done()
	for {
		qc, err := l.ql.Accept(l.life)
		if err != nil {
			return // closed
		}
		select {
		case l.slots <- struct{}{}:
		default:
			l.q.log.Warn("too many handshakes in progress; closing connection", "addr", qc.RemoteAddr())
			qc.CloseWithError(0, "busy")
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.slots }()
			l.handshake(qc)
		}()
	}
}

// handshake asks the AcceptFunc about the proven device, waits for the
// dialer's stream and hands the result to Accept.
func (l *QUICListener) handshake(qc *quic.Conn) {
	addr := qc.RemoteAddr()
	remote, err := peerID(qc.ConnectionState().TLS)
	if err != nil {
		qc.CloseWithError(0, "")
		l.q.log.Info("inbound QUIC handshake failed", "addr", addr, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(l.life, l.q.handshakeTimeout())
	defer cancel()
	st, err := qc.AcceptStream(ctx)
	if err != nil {
		qc.CloseWithError(0, "")
		l.q.log.Info("inbound QUIC connection opened no stream", "peer", remote.Abbrev(), "addr", addr, "err", err)
		return
	}
	s := newQUICStream(qc, st)
	var res acceptResult
	if err := l.accept(remote); err != nil {
		res.err = &RefusedError{Remote: remote, Addr: addr, Err: err}
		l.q.log.Warn("refused connection from unknown device", "peer", remote.String(), "addr", addr, "err", err)
		s.SetDeadline(time.Now().Add(lingerTime))
		wire.WriteFrame(s, wire.Frame{Msg: &wire.Close{Reason: wire.Text(fmt.Sprintf("device %s refused the connection: %v", l.q.id.ID().Abbrev(), err)), Code: wire.CodeRefused}})
		s.Close()
	} else {
		res.s = Stream{Conn: s, Remote: remote, Net: transport.QUIC, rtt: s.SmoothedRTT, qc: qc}
	}
	select {
	case l.out <- res:
	case <-l.life.Done():
		if res.s.Conn != nil {
			res.s.Close()
		}
	}
}

// quicStream is the first stream of a QUIC connection as a net.Conn. Close
// ends the whole connection, after our last bytes had a chance to arrive.
type quicStream struct {
	*quic.Stream
	qc      *quic.Conn
	peerFIN chan struct{} // closed when the peer finished its side
	finOnce sync.Once
	once    sync.Once
}

func newQUICStream(qc *quic.Conn, st *quic.Stream) *quicStream {
	s := &quicStream{Stream: st, qc: qc, peerFIN: make(chan struct{})}
	st.SetReceiveFinalSizeCallback(func(int64) { s.finOnce.Do(func() { close(s.peerFIN) }) })
	return s
}

func (s *quicStream) LocalAddr() net.Addr  { return s.qc.LocalAddr() }
func (s *quicStream) RemoteAddr() net.Addr { return s.qc.RemoteAddr() }

// SmoothedRTT is QUIC's estimate of the round-trip time.
func (s *quicStream) SmoothedRTT() time.Duration { return s.qc.ConnectionStats().SmoothedRTT }

// Close finishes our side of the stream, waits (at most lingerTime) until
// the peer finished its side or closed the connection, so the Close frame
// we wrote last is delivered, and then closes the connection (closing it at
// once would discard what is not yet acknowledged).
func (s *quicStream) Close() error {
	s.once.Do(func() {
		s.Stream.Close()
		t := time.NewTimer(lingerTime)
		select {
		case <-s.peerFIN:
		case <-s.qc.Context().Done():
		case <-t.C:
		}
		t.Stop()
		s.qc.CloseWithError(0, "")
	})
	return nil
}

// quicError makes quic-go's handshake timeout an error callers recognise.
func quicError(err error) error {
	var idle *quic.IdleTimeoutError
	var hs *quic.HandshakeTimeoutError
	if errors.As(err, &idle) || errors.As(err, &hs) {
		return fmt.Errorf("no answer over UDP: %w", err)
	}
	return err
}
