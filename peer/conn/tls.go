package conn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

const (
	// alpn names our protocol in the TLS handshake, so a Blueshift port is
	// never mistaken for (or by) another TLS service.
	alpn = "blueshift"
	// DefaultHandshakeTimeout bounds a TLS handshake, so a connection that
	// never speaks cannot hold a slot.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxHandshakes bounds inbound handshakes in progress; connections
	// beyond it are closed at once.
	DefaultMaxHandshakes = 32
	// lingerTime bounds how long a refusal waits for the dialer to read it.
	lingerTime = time.Second
)

// TLS is the TCP + TLS 1.3 transport: mutual authentication with the devices'
// self-signed certificates, no CA. The dialer pins the device it expects; the
// listener learns the device from its certificate and asks an AcceptFunc.
type TLS struct {
	id               *identity.Identity
	log              *slog.Logger
	HandshakeTimeout time.Duration // DefaultHandshakeTimeout if zero
	MaxHandshakes    int           // DefaultMaxHandshakes if zero
}

// NewTLS returns the TLS transport of device id.
func NewTLS(id *identity.Identity, log *slog.Logger) *TLS {
	return &TLS{id: id, log: log}
}

// Dial connects to addr and succeeds only if the device there is want.
func (t *TLS) Dial(ctx context.Context, addr string, want identity.DeviceID) (Stream, error) {
	return t.dial(ctx, addr, &want)
}

// DialAny connects to addr and accepts whichever device answers, learning
// its ID from its certificate. Only for a caller that authenticates the
// device some other way: a join by short code, where only the inviter can
// seal an invitation that the code opens.
func (t *TLS) DialAny(ctx context.Context, addr string) (Stream, error) {
	return t.dial(ctx, addr, nil)
}

func (t *TLS) dial(ctx context.Context, addr string, want *identity.DeviceID) (Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, t.handshakeTimeout())
	defer cancel()
	who := "any device"
	if want != nil {
		who = "device " + want.Abbrev()
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return Stream{}, fmt.Errorf("dial %s at %s: %w", who, addr, err)
	}
	var remote identity.DeviceID
	cfg := t.config()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		got, err := peerID(cs)
		if err != nil {
			return err
		}
		if want != nil && got != *want {
			return fmt.Errorf("device at %s is %s, want %s: %w", addr, got, *want, ErrWrongPeer)
		}
		remote = got
		return nil
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		t.log.Warn("dial failed", "peer", who, "addr", addr, "err", err)
		return Stream{}, fmt.Errorf("dial %s at %s: %w", who, addr, err)
	}
	return Stream{Conn: tc, Remote: remote, Outbound: true, Net: transport.TCP}, nil
}

// Listen listens on addr (host:port; port 0 picks one). The listener runs
// handshakes in goroutines it owns; Close stops them and waits.
func (t *TLS) Listen(addr string, accept AcceptFunc) (*TLSListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	max := t.MaxHandshakes
	if max <= 0 {
		max = DefaultMaxHandshakes
	}
	l := &TLSListener{
		t: t, ln: ln, accept: accept,
		out:   make(chan acceptResult),
		slots: make(chan struct{}, max),
	}
	l.life, l.stop = context.WithCancel(context.Background())
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

func (t *TLS) config() *tls.Config { return tlsConfig(t.id) }

// tlsConfig is the TLS 1.3 configuration of both transports: our device
// certificate, a certificate required from the peer, and no CA (the caller
// sets VerifyConnection to check the peer's key).
func tlsConfig(id *identity.Identity) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		MaxVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.Certificate()},
		ClientAuth:   tls.RequireAnyClientCert,
		// There is no CA: VerifyConnection checks the certificate's key
		// against the device ID instead of a chain.
		InsecureSkipVerify: true,
		NextProtos:         []string{alpn},
	}
}

func (t *TLS) handshakeTimeout() time.Duration {
	if t.HandshakeTimeout > 0 {
		return t.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

// peerID returns the device ID of the certificate the peer proved it holds.
func peerID(cs tls.ConnectionState) (identity.DeviceID, error) {
	if len(cs.PeerCertificates) != 1 {
		return identity.DeviceID{}, fmt.Errorf("peer sent %d certificates, want 1: %w", len(cs.PeerCertificates), identity.ErrBadCertificate)
	}
	if cs.NegotiatedProtocol != alpn {
		return identity.DeviceID{}, fmt.Errorf("peer does not speak %q", alpn)
	}
	return identity.FromCertificate(cs.PeerCertificates[0])
}

// TLSListener is a Listener of the TLS transport.
type TLSListener struct {
	t      *TLS
	ln     net.Listener
	accept AcceptFunc
	out    chan acceptResult // handshake goroutines -> Accept
	slots  chan struct{}     // one per handshake in progress
	// life ends when Close is called; handshakes run under it.
	life context.Context
	stop context.CancelFunc
	once sync.Once
	wg   sync.WaitGroup // acceptLoop and handshakes
}

type acceptResult struct {
	s   Stream
	err error
}

// Accept returns the next accepted stream, or a *RefusedError.
func (l *TLSListener) Accept(ctx context.Context) (Stream, error) {
	select {
	case r := <-l.out:
		return r.s, r.err
	case <-l.life.Done():
		return Stream{}, fmt.Errorf("accept on %s: %w", l.ln.Addr(), net.ErrClosed)
	case <-ctx.Done():
		return Stream{}, ctx.Err()
	}
}

// Addr returns the address the listener listens on.
func (l *TLSListener) Addr() net.Addr { return l.ln.Addr() }

// Close stops listening, ends handshakes in progress, and waits for them.
func (l *TLSListener) Close() error {
	var err error
	l.once.Do(func() {
		l.stop()
		err = l.ln.Close()
		l.wg.Wait()
	})
	return err
}

func (l *TLSListener) acceptLoop() {
	defer l.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		raw, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.life.Done():
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, don't spin.
			l.t.log.Warn("accept failed", "addr", l.ln.Addr(), "err", err)
			select {
			case <-time.After(backoff):
			case <-l.life.Done():
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		select {
		case l.slots <- struct{}{}:
		default:
			l.t.log.Warn("too many handshakes in progress; closing connection", "addr", raw.RemoteAddr())
			raw.Close()
			continue
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.slots }()
			l.handshake(raw)
		}()
	}
}

// handshake authenticates raw, asks the AcceptFunc, and hands the result to
// Accept.
func (l *TLSListener) handshake(raw net.Conn) {
	ctx, cancel := context.WithTimeout(l.life, l.t.handshakeTimeout())
	defer cancel()

	addr := raw.RemoteAddr()
	var remote identity.DeviceID
	cfg := l.t.config()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		var err error
		remote, err = peerID(cs)
		return err
	}
	tc := tls.Server(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		// No device is proven yet: only a log line.
		l.t.log.Info("inbound TLS handshake failed", "addr", addr, "err", err)
		return
	}
	var res acceptResult
	if err := l.accept(remote); err != nil {
		rerr := &RefusedError{Remote: remote, Addr: addr, Err: err}
		l.t.log.Warn("refused connection from unknown device", "peer", remote.String(), "addr", addr, "err", err)
		refuse(tc, fmt.Sprintf("device %s refused the connection: %v", l.t.id.ID().Abbrev(), err))
		res.err = rerr
	} else {
		raw.SetDeadline(time.Time{})
		res.s = Stream{Conn: tc, Remote: remote, Net: transport.TCP}
	}
	select {
	case l.out <- res:
	case <-l.life.Done():
		if res.s.Conn != nil {
			res.s.Close()
		}
	}
}

// refuse tells the dialer why in a Close frame, and closes. It reads what the
// dialer already sent (its Hello), so that closing does not reset the
// connection before the dialer has read the Close.
func refuse(tc *tls.Conn, reason string) {
	tc.SetDeadline(time.Now().Add(lingerTime))
	if err := wire.WriteFrame(tc, wire.Frame{Msg: &wire.Close{Reason: wire.Text(reason), Code: wire.CodeRefused}}); err == nil {
		tc.CloseWrite()
		io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	}
	tc.Close()
}
