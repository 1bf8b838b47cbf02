package relay

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Defaults of Options.
const (
	DefaultMaxCircuits     = 4       // per device, either end
	DefaultMaxCircuitBytes = 1 << 30 // both directions together
	DefaultRate            = 1 << 20 // bytes per second, all circuits

	acceptTimeout = 10 * time.Second // the target dials back within this
	peekTimeout   = 10 * time.Second // a diverted stream's first frame
	idleTimeout   = time.Minute      // a circuit silent this long ends (the ends ping every 5 s)
	maxPeeking    = 32               // streams whose first frame is awaited at once
	maxPeekFrame  = 4 << 10          // a relay frame is smaller; a bigger one is not ours
	copyBuffer    = 32 << 10
)

var (
	// ErrRefused: the relay, or the target, refused the circuit.
	ErrRefused = errors.New("relay refused the circuit")
)

// Options configure a Server.
type Options struct {
	// Allowed decides whether a device (proven by its stream's TLS) may use
	// this relay, at either end: nil error if it shares a share with us.
	Allowed func(identity.DeviceID) error
	// Invite asks target, over the session we have with it, to dial back
	// for a circuit from from (a RelayInvite); an error if it cannot be
	// asked or refused.
	Invite func(ctx context.Context, target, from identity.DeviceID, token [wire.RelayTokenSize]byte) error
	// MaxCircuits bounds the circuits a device is an end of at once.
	MaxCircuits int
	// MaxCircuitBytes bounds the bytes one circuit carries; it then ends
	// (the ends may open another).
	MaxCircuitBytes int64
	// Rate bounds the bytes per second of all circuits together; below 0:
	// no bound.
	Rate   int64
	Logger *slog.Logger
}

// Server is a relay. Wrap the listeners of the device with Divert; Close
// ends every circuit and waits for its goroutines.
type Server struct {
	opts    Options
	log     *slog.Logger
	limit   *rate.Limiter // nil: no bound
	life    context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	relayed atomic.Int64 // bytes carried, both directions, all circuits

	mu struct {
		sync.Mutex
		pending  map[[wire.RelayTokenSize]byte]*pendingCircuit
		circuits map[identity.DeviceID]int // circuits (pending included) per end
		open     int                       // circuits spliced now
		closed   bool
	}
}

// pendingCircuit waits for its target's stream.
type pendingCircuit struct {
	from, to identity.DeviceID
	accepted chan conn.Stream // buffered 1
}

// NewServer returns a relay; it serves once its Divert listeners are
// accepted from.
func NewServer(opts Options) *Server {
	if opts.MaxCircuits <= 0 {
		opts.MaxCircuits = DefaultMaxCircuits
	}
	if opts.MaxCircuitBytes <= 0 {
		opts.MaxCircuitBytes = DefaultMaxCircuitBytes
	}
	if opts.Rate == 0 {
		opts.Rate = DefaultRate
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger}
	if opts.Rate > 0 {
		s.limit = rate.NewLimiter(rate.Limit(opts.Rate), max(int(min(opts.Rate, 1<<30)), 2*copyBuffer))
	}
	s.life, s.stop = context.WithCancel(context.Background())
	s.mu.pending = make(map[[wire.RelayTokenSize]byte]*pendingCircuit)
	s.mu.circuits = make(map[identity.DeviceID]int)
	return s
}

// Stats reports the circuits spliced now and the bytes relayed so far.
func (s *Server) Stats() (circuits int, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.open, s.relayed.Load()
}

// Close ends every circuit and waits for the goroutines of the server and
// of its Divert listeners' circuits.
func (s *Server) Close() error {
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
	return nil
}

// handle serves a diverted stream whose first frame was msg. It owns st.
func (s *Server) handle(st conn.Stream, msg wire.Message) {
	switch m := msg.(type) {
	case *wire.RelayConnect:
		s.connect(st, m.Device)
	case *wire.RelayAccept:
		s.accept(st, m.Token)
	default:
		st.Close()
	}
}

// connect opens a circuit from st's device to target: it invites target,
// waits for its stream, and splices the two.
func (s *Server) connect(st conn.Stream, target identity.DeviceID) {
	from := st.Remote
	log := s.log.With("peer", from.Abbrev(), "to", target.Abbrev())
	pc, token, err := s.reserve(from, target)
	if err != nil {
		log.Info("relay refused a circuit", "err", err)
		refuse(st, wire.CodeRefused, err.Error())
		return
	}
	defer s.release(pc, token)
	ctx, cancel := context.WithTimeout(s.life, acceptTimeout)
	defer cancel()
	if err := s.opts.Invite(ctx, target, from, token); err != nil {
		log.Info("relay could not invite the target", "err", err)
		refuse(st, wire.CodeNotFound, fmt.Sprintf("device %s cannot be invited through this relay: %v", target.Abbrev(), err))
		return
	}
	var other conn.Stream
	select {
	case other = <-pc.accepted:
	case <-ctx.Done():
		log.Info("relay target did not dial back", "err", ctx.Err())
		refuse(st, wire.CodeNotFound, fmt.Sprintf("device %s did not dial the relay back", target.Abbrev()))
		return
	}
	for _, e := range []conn.Stream{st, other} {
		e.SetWriteDeadline(time.Now().Add(acceptTimeout))
		if err := wire.WriteFrame(e, wire.Frame{Msg: &wire.RelayStatus{}}); err != nil {
			log.Info("relay circuit lost before it began", "err", err)
			st.Close()
			other.Close()
			return
		}
		e.SetWriteDeadline(time.Time{})
	}
	s.mu.Lock()
	s.mu.open++
	s.mu.Unlock()
	log.Info("relaying")
	n, err := s.splice(st, other)
	s.mu.Lock()
	s.mu.open--
	s.mu.Unlock()
	log.Info("relay circuit ended", "bytes", n, "err", err)
}

// reserve checks both ends and registers a pending circuit under a fresh
// token.
func (s *Server) reserve(from, to identity.DeviceID) (*pendingCircuit, [wire.RelayTokenSize]byte, error) {
	var token [wire.RelayTokenSize]byte
	if from == to {
		return nil, token, fmt.Errorf("a device cannot be relayed to itself: %w", ErrRefused)
	}
	for _, id := range []identity.DeviceID{from, to} {
		if err := s.opts.Allowed(id); err != nil {
			return nil, token, fmt.Errorf("device %s may not use this relay: %v: %w", id.Abbrev(), err, ErrRefused)
		}
	}
	rand.Read(token[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.mu.closed:
		return nil, token, fmt.Errorf("relay is stopping: %w", ErrRefused)
	case s.mu.circuits[from] >= s.opts.MaxCircuits:
		return nil, token, fmt.Errorf("device %s has %d relayed circuits already: %w", from.Abbrev(), s.opts.MaxCircuits, ErrRefused)
	case s.mu.circuits[to] >= s.opts.MaxCircuits:
		return nil, token, fmt.Errorf("device %s has %d relayed circuits already: %w", to.Abbrev(), s.opts.MaxCircuits, ErrRefused)
	}
	pc := &pendingCircuit{from: from, to: to, accepted: make(chan conn.Stream, 1)}
	s.mu.pending[token] = pc
	s.mu.circuits[from]++
	s.mu.circuits[to]++
	return pc, token, nil
}

func (s *Server) release(pc *pendingCircuit, token [wire.RelayTokenSize]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.pending[token] == pc {
		delete(s.mu.pending, token)
	}
	for _, id := range []identity.DeviceID{pc.from, pc.to} {
		if s.mu.circuits[id]--; s.mu.circuits[id] <= 0 {
			delete(s.mu.circuits, id)
		}
	}
	// A stream that came too late is closed.
	select {
	case late := <-pc.accepted:
		late.Close()
	default:
	}
}

// accept hands the target's stream to the circuit its token names: only
// the invited device's stream, once.
func (s *Server) accept(st conn.Stream, token [wire.RelayTokenSize]byte) {
	s.mu.Lock()
	pc := s.mu.pending[token]
	ok := pc != nil && pc.to == st.Remote
	if ok {
		delete(s.mu.pending, token)
	}
	s.mu.Unlock()
	if !ok {
		s.log.Info("relay refused a stream with an unknown token", "peer", st.Remote.Abbrev())
		refuse(st, wire.CodeRefused, "no circuit waits for this device with this token")
		return
	}
	pc.accepted <- st // buffered 1, and the token is used once
}

// splice copies both ways until one side ends, the circuit's byte cap is
// reached, it idles, or the server closes; it closes both streams.
func (s *Server) splice(a, b conn.Stream) (int64, error) {
	var total atomic.Int64
	errs := make(chan error, 2)
	cp := func(dst, src conn.Stream) { errs <- s.copy(dst, src, &total) }
	go cp(a, b) // both waited for below
	go cp(b, a)
	stop := context.AfterFunc(s.life, func() { a.Close(); b.Close() })
	err := <-errs
	stop()
	a.Close()
	b.Close()
	<-errs
	return total.Load(), err
}

func (s *Server) copy(dst, src conn.Stream, total *atomic.Int64) error {
	buf := make([]byte, copyBuffer)
	for {
		src.SetReadDeadline(time.Now().Add(idleTimeout))
		n, err := src.Read(buf)
		if n > 0 {
			if s.limit != nil {
				if werr := s.limit.WaitN(s.life, n); werr != nil {
					return werr
				}
			}
			if t := total.Add(int64(n)); t > s.opts.MaxCircuitBytes {
				return fmt.Errorf("circuit carried %d bytes, its cap", s.opts.MaxCircuitBytes)
			}
			s.relayed.Add(int64(n))
			dst.SetWriteDeadline(time.Now().Add(idleTimeout))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// refuse tells a circuit's end why not, and closes its stream.
func refuse(st conn.Stream, code wire.ErrorCode, reason string) {
	st.SetWriteDeadline(time.Now().Add(time.Second))
	wire.WriteFrame(st, wire.Frame{Msg: &wire.RelayStatus{Code: code, Reason: wire.Text(reason)}})
	st.Close()
}

// Divert wraps ln: streams that open with a relay frame go to the server,
// the others come out of Accept with their first bytes intact. The
// returned listener's Close closes ln and waits for its goroutines.
func (s *Server) Divert(ln conn.Listener) conn.Listener {
	d := &divert{s: s, ln: ln, out: make(chan acceptResult), slots: make(chan struct{}, maxPeeking)}
	d.life, d.stop = context.WithCancel(context.Background())
	d.wg.Go(d.pump)
	return d
}

type divert struct {
	s     *Server
	ln    conn.Listener
	out   chan acceptResult
	slots chan struct{}
	life  context.Context
	stop  context.CancelFunc
	once  sync.Once
	wg    sync.WaitGroup // pump and peeks
}

type acceptResult struct {
	st  conn.Stream
	err error
}

func (d *divert) Accept(ctx context.Context) (conn.Stream, error) {
	select {
	case r := <-d.out:
		return r.st, r.err
	case <-d.life.Done():
		return conn.Stream{}, fmt.Errorf("accept on %s: %w", d.ln.Addr(), net.ErrClosed)
	case <-ctx.Done():
		return conn.Stream{}, ctx.Err()
	}
}

func (d *divert) Addr() net.Addr { return d.ln.Addr() }

func (d *divert) Close() error {
	var err error
	d.once.Do(func() {
		d.stop()
		err = d.ln.Close()
		d.wg.Wait()
	})
	return err
}

// pump takes streams from ln and peeks at each in its own goroutine.
func (d *divert) pump() {
	for {
		st, err := d.ln.Accept(d.life)
		var refused *conn.RefusedError
		if err != nil && !errors.As(err, &refused) {
			select {
			case d.out <- acceptResult{err: err}:
			case <-d.life.Done():
			}
			return
		}
		if err != nil {
			d.deliver(acceptResult{err: err})
			continue
		}
		select {
		case d.slots <- struct{}{}:
		case <-d.life.Done():
			st.Close()
			return
		}
		d.wg.Go(func() {
			defer func() { <-d.slots }()
			d.peek(st)
		})
	}
}

func (d *divert) deliver(r acceptResult) {
	select {
	case d.out <- r:
	case <-d.life.Done():
		if r.st.Conn != nil {
			r.st.Close()
		}
	}
}

// peek reads st's first frame: a relay frame goes to the server (whose
// goroutine then owns st), anything else back to Accept unread.
func (d *divert) peek(st conn.Stream) {
	st.SetReadDeadline(time.Now().Add(peekTimeout))
	br := bufio.NewReaderSize(st.Conn, maxPeekFrame+4)
	msg := relayFrame(br)
	st.SetReadDeadline(time.Time{})
	if msg == nil {
		st.Conn = &peeked{Conn: st.Conn, r: br}
		d.deliver(acceptResult{st: st})
		return
	}
	d.s.mu.Lock()
	closed := d.s.mu.closed
	if !closed {
		d.s.wg.Add(1)
	}
	d.s.mu.Unlock()
	if closed {
		st.Close()
		return
	}
	go func() { // waited for by the server's Close
		defer d.s.wg.Done()
		d.s.handle(st, msg)
	}()
}

// relayFrame returns the first frame of br if it is a relay frame, having
// consumed it; nil (nothing consumed) otherwise.
func relayFrame(br *bufio.Reader) wire.Message {
	head, err := br.Peek(4)
	if err != nil {
		return nil
	}
	n := int(head[0])<<24 | int(head[1])<<16 | int(head[2])<<8 | int(head[3])
	if n > maxPeekFrame {
		return nil
	}
	b, err := br.Peek(4 + n)
	if err != nil {
		return nil
	}
	f, err := wire.NewReader(bytes.NewReader(b)).ReadFrame()
	if err != nil {
		return nil
	}
	switch f.Msg.(type) {
	case *wire.RelayConnect, *wire.RelayAccept:
		br.Discard(4 + n)
		return f.Msg
	}
	return nil
}

// peeked is a stream whose first bytes were read into r.
type peeked struct {
	net.Conn
	r *bufio.Reader
}

func (p *peeked) Read(b []byte) (int, error) { return p.r.Read(b) }
