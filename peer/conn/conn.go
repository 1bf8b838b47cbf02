package conn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sync/semaphore"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Defaults of Options. A peer that goes silent (a cut cable, dropped
// packets, a suspended laptop: no FIN ever comes) is detected within
// DefaultTimeout of its last frame; a live one is never silent longer than
// DefaultPingInterval, so the timeout allows two lost pings and more.
const (
	DefaultPingInterval = 5 * time.Second
	DefaultTimeout      = 15 * time.Second
	DefaultMaxRequests  = 64
	DefaultMaxQueue     = 8 << 20

	ioBuffer     = 64 << 10 // bufio sizes, and the largest single write under one deadline
	closeTimeout = time.Second
	sendQueueLen = 1024 // frames; bytes are bounded by MaxQueue
)

var (
	// ErrClosed: the connection was closed on this side (Close, or Run's ctx).
	ErrClosed = errors.New("connection closed")
	// ErrPeerClosed: the peer closed the connection (a *CloseError has its reason).
	ErrPeerClosed = errors.New("peer closed the connection")
	// ErrTimeout: the peer sent nothing for Timeout, or did not read what we
	// sent for Timeout. It is gone, or too slow to keep.
	ErrTimeout = errors.New("peer timed out")
	// ErrLost: the connection broke (reset, end of stream without Close).
	ErrLost = errors.New("connection lost")
	// ErrPeerMisbehaved: the peer broke the protocol; it is cut off.
	ErrPeerMisbehaved = errors.New("peer broke the protocol")
	// ErrVersion: the two devices speak no common protocol version.
	ErrVersion = errors.New("incompatible protocol versions")
)

// Options tune a Conn. Zero values take the defaults.
type Options struct {
	// PingInterval: we send a Ping this often, which the peer answers, so a
	// live connection is never silent longer than this.
	PingInterval time.Duration
	// Timeout: a peer that sends nothing for this long is dead, as is one that
	// accepts none of our bytes for this long (deadlines move in steps of
	// Timeout/8, so it is cut after 7/8 to all of Timeout); Hello must arrive
	// within it. With the defaults, a dead peer is detected within 15 s.
	Timeout time.Duration
	// MaxRequests bounds our requests in flight (Request waits for a slot) and
	// the peer's requests we serve at once (more are answered CodeBusy).
	MaxRequests int
	// MaxQueue bounds the bytes of frames queued for sending (Send and Request
	// wait for room).
	MaxQueue int
	Logger   *slog.Logger

	// CompressLoopback compresses what is sent to a peer on this machine
	// too (zstream.go), as to any other: for tests and benchmarks of the
	// compressed stream on 127.0.0.1.
	CompressLoopback bool

	// oneStream keeps every request on the first stream of a QUIC
	// connection (wire.CapStreams is not announced), as an older build
	// does: the baseline of the benchmarks.
	oneStream bool
}

func (o Options) withDefaults() Options {
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxRequests <= 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = DefaultMaxQueue
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Handler receives what the peer sends.
type Handler interface {
	// HandleRequest answers a request (NodesRequest, RecordsRequest,
	// BlockRequest). It runs in its own goroutine, up to MaxRequests at once,
	// and ctx ends when the connection does. Return a *wire.ErrorResponse to
	// answer with that error; any other error is answered CodeInternal.
	HandleRequest(ctx context.Context, req wire.Message) (wire.Message, error)
	// HandleMessage receives one-way messages (ShareState, RecordPush) in the
	// order they came, one at a time. While it runs, the connection reads at
	// most one more message, so it must not wait on a Request of this same
	// connection: hand such work to another goroutine. An error cuts the
	// connection (use ErrPeerMisbehaved for bad data).
	HandleMessage(ctx context.Context, msg wire.Message) error
}

// CloseError is a Close the peer sent, with its reason. Code is
// wire.CodeRefused when the peer turned this device away (not paired, or
// the invitation in our Hello not valid).
type CloseError struct {
	Reason string
	Code   wire.ErrorCode
}

func (e *CloseError) Error() string { return "peer closed the connection: " + e.Reason }

func (e *CloseError) Is(target error) bool { return target == ErrPeerClosed }

// Conn is one protocol session with a peer over an authenticated Stream.
//
// Open exchanges Hello; Run then starts the goroutines that own the stream
// (a reader, a writer, a keepalive ticker, the one-way message handler, and
// one per request being served; on QUIC also one accepting the peer's
// request streams and one per such stream) and returns only after all have
// exited.
// Request, Send and Close are safe for concurrent use, before and during Run.
type Conn struct {
	s       Stream
	peer    *wire.Hello // the peer's Hello; immutable
	version uint32      // the version both speak
	h       Handler
	opts    Options
	log     *slog.Logger

	br *bufio.Reader // reader goroutine (Open before Run)
	dr *deadlineConn // its deadline, changed by Open before Run only
	// life ends with the first error, its cause being why the connection is
	// over. It is a lifetime signal, not a request context.
	life context.Context
	kill context.CancelCauseFunc

	nextID  atomic.Uint64
	ping    atomic.Pointer[sentPing] // the keepalive Ping awaiting its Pong
	rtt     atomic.Int64             // nanoseconds, of the last Ping answered; 0: none yet
	heardAt atomic.Int64             // Unix nanoseconds: bytes last came on a request stream (Conn.heard)
	reqs    *semaphore.Weighted      // our requests in flight
	serving *semaphore.Weighted      // peer requests being served
	queued  *semaphore.Weighted      // bytes in sendq
	sendq   chan outFrame
	msgs    chan wire.Message // reader -> message handler
	// qc is set when requests travel on QUIC streams of their own (both
	// sides announced wire.CapStreams); immutable after Open.
	qc      *quic.Conn
	counter ByteCounter // s.Conn, if it counts bytes; immutable
	// zin: we announced wire.CapZstream, so the peer may send Zstream
	// frames; zout: the peer did, so what the writer sends goes through our
	// compressed stream (zstream.go); zblocks: blocks too, as the peer is
	// not on this machine. Immutable after Open.
	zin, zout, zblocks bool
	// readers holds frame readers of request streams (*streamReader), so a
	// block buffer given back by Release serves a later stream's block.
	readers sync.Pool

	mu struct {
		sync.Mutex
		pending map[uint64]pending
		running bool // Run started
		closed  bool // Close came first; Run will not start
	}
}

// sentPing is a keepalive Ping sent with an ID, whose Pong measures the
// round trip.
type sentPing struct {
	id   uint64
	sent time.Time
}

type outFrame struct {
	head, tail []byte // wire.EncodeFrame; tail aliases a block payload
	n          int64  // weight held in queued
	written    func() // wire.Written: run once head and tail are written
	raw        bool   // goes around the compressed stream (streamable)
}

type pending struct {
	req wire.Message
	ch  chan wire.Message // buffered 1
}

// Open runs the Hello exchange on s and returns a Conn ready to Run. Our hello
// gets wire.Version and wire.MinVersion if its versions are zero. If the
// versions are incompatible, both sides send Close and fail with ErrVersion.
// On error, s is closed.
func Open(ctx context.Context, s Stream, hello wire.Hello, h Handler, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	if hello.Version == 0 {
		hello.Version, hello.MinVersion = wire.Version, wire.MinVersion
	}
	offerStreams := s.qc != nil && !opts.oneStream && len(hello.Capabilities) < wire.MaxCapabilities
	if offerStreams {
		hello.Capabilities = append(slices.Clip(hello.Capabilities), wire.CapStreams)
	}
	zin := len(hello.Capabilities) < wire.MaxCapabilities
	if zin {
		hello.Capabilities = append(slices.Clip(hello.Capabilities), wire.CapZstream)
	}
	c := &Conn{
		s: s, h: h, opts: opts,
		log:     opts.Logger.With("peer", s.Remote.Abbrev(), "addr", s.RemoteAddr().String()),
		reqs:    semaphore.NewWeighted(int64(opts.MaxRequests)),
		serving: semaphore.NewWeighted(int64(opts.MaxRequests)),
		queued:  semaphore.NewWeighted(int64(opts.MaxQueue)),
		sendq:   make(chan outFrame, sendQueueLen),
		msgs:    make(chan wire.Message),
	}
	c.mu.pending = make(map[uint64]pending)
	c.life, c.kill = context.WithCancelCause(context.Background())
	c.dr = &deadlineConn{Conn: s.Conn}
	c.br = bufio.NewReaderSize(c.dr, ioBuffer)
	if err := c.hello(ctx, &hello); err != nil {
		s.Close()
		c.kill(err)
		return nil, fmt.Errorf("connect to device %s at %s: %w", s.Remote, s.RemoteAddr(), err)
	}
	c.dr.timeout = opts.Timeout
	c.zin = zin
	c.zout = slices.Contains(c.peer.Capabilities, wire.CapZstream)
	c.zblocks = c.zout && (opts.CompressLoopback || !loopback(s.RemoteAddr()))
	if offerStreams && slices.Contains(c.peer.Capabilities, wire.CapStreams) {
		c.qc = s.qc
		c.counter, _ = s.Conn.(ByteCounter)
	}
	return c, nil
}

func (c *Conn) hello(ctx context.Context, ours *wire.Hello) error {
	deadline := time.Now().Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.s.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.s.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// Both sides write first: a Hello fits in the socket buffers.
	if err := wire.WriteFrame(c.s, wire.Frame{Msg: ours}); err != nil {
		return fmt.Errorf("send hello: %w", c.ioError(err))
	}
	f, err := wire.NewReader(c.br).ReadFrame()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("read hello: %w", c.ioError(err))
	}
	switch m := f.Msg.(type) {
	case *wire.Hello:
		c.peer = m
	case *wire.Close:
		return &CloseError{Reason: m.Reason, Code: m.Code}
	default:
		return fmt.Errorf("peer sent %s before Hello: %w", wire.Name(f.Msg), ErrPeerMisbehaved)
	}
	v, ok := wire.Compatible(ours, c.peer)
	if !ok {
		reason := fmt.Sprintf("incompatible protocol versions: we speak %d..%d, you speak %d..%d; upgrade Blueshift on the older device",
			ours.MinVersion, ours.Version, c.peer.MinVersion, c.peer.Version)
		wire.WriteFrame(c.s, wire.Frame{Msg: &wire.Close{Reason: wire.Text(reason)}})
		return fmt.Errorf("device %s speaks protocol versions %d..%d, this device %d..%d; upgrade Blueshift on the older device: %w",
			c.s.Remote.Abbrev(), c.peer.MinVersion, c.peer.Version, ours.MinVersion, ours.Version, ErrVersion)
	}
	c.version = v
	c.s.SetDeadline(time.Time{})
	return nil
}

// Remote returns the peer's device ID.
func (c *Conn) Remote() identity.DeviceID { return c.s.Remote }

// PeerHello returns the Hello the peer sent. Callers must not modify it.
func (c *Conn) PeerHello() *wire.Hello { return c.peer }

// RemoteAddr is the network address of the peer.
func (c *Conn) RemoteAddr() net.Addr { return c.s.RemoteAddr() }

// RTT is the round-trip time to the peer: QUIC's smoothed estimate on QUIC,
// else the time the last keepalive Ping took to be answered (which includes
// the frames queued before it). 0 until known.
func (c *Conn) RTT() time.Duration {
	if c.s.rtt != nil {
		return c.s.rtt()
	}
	return time.Duration(c.rtt.Load())
}

// Compresses reports whether the frames we send go through the
// connection's compressed stream (zstream.go), so the records and small
// contents in them need no compression of their own: the peer reads it, and
// requests are not answered on streams of their own (which bypass it).
// Blocks go through it too unless the peer is on this machine (loopback
// outruns zstd; tiny blocks still do): see CompressesBlocks.
func (c *Conn) Compresses() bool { return c.zout && c.qc == nil }

// CompressesBlocks reports whether raw block payloads go through the
// compressed stream (Compresses, and the peer is not on this machine, or
// Options.CompressLoopback). A block that does not compress is best sent
// raw with wire.BlockResponse.Incompressible set: it then goes around.
func (c *Conn) CompressesBlocks() bool { return c.Compresses() && c.zblocks }

// Network is the transport the connection runs on (TCP or QUIC).
func (c *Conn) Network() transport.Network { return c.s.Net }

// Version returns the protocol version both sides speak.
func (c *Conn) Version() uint32 { return c.version }

// Done is closed when the connection is over; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.life.Done() }

// Err returns why the connection is over (ErrClosed after Close), or nil.
func (c *Conn) Err() error { return context.Cause(c.life) }

// Close ends the connection: Run sends the peer a Close, stops, and returns
// nil. Close does not wait; wait for Run.
func (c *Conn) Close() error {
	c.kill(ErrClosed)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.running || c.mu.closed {
		return nil
	}
	// Run never started and now never will: say goodbye here.
	c.mu.closed = true
	c.s.SetWriteDeadline(time.Now().Add(min(closeTimeout, c.opts.Timeout)))
	wire.WriteFrame(c.s, wire.Frame{Msg: &wire.Close{Reason: "closing"}})
	return c.s.Close()
}

// Request sends req (a request message) and waits for its answer. An
// ErrorResponse comes back as an error that errors.Is its wire.ErrorCode.
func (c *Conn) Request(ctx context.Context, req wire.Message) (wire.Message, error) {
	if !wire.IsRequest(req) {
		return nil, fmt.Errorf("request %s: not a request message", wire.Name(req))
	}
	if err := c.acquire(ctx, c.reqs, 1); err != nil {
		return nil, fmt.Errorf("request %s from %s: %w", wire.Name(req), c.s.Remote.Abbrev(), err)
	}
	defer c.reqs.Release(1)

	id := c.nextID.Add(1)
	if c.qc != nil {
		resp, err := c.requestOnStream(ctx, id, req)
		if err != nil {
			return nil, fmt.Errorf("request %s from %s: %w", wire.Name(req), c.s.Remote.Abbrev(), err)
		}
		if e, ok := resp.(*wire.ErrorResponse); ok {
			return nil, fmt.Errorf("request %s from %s: %w", wire.Name(req), c.s.Remote.Abbrev(), e)
		}
		return resp, nil
	}
	ch := make(chan wire.Message, 1)
	c.mu.Lock()
	c.mu.pending[id] = pending{req: req, ch: ch}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.mu.pending, id)
		c.mu.Unlock()
	}()
	if err := c.enqueue(ctx, wire.Frame{ID: id, Msg: req}); err != nil {
		return nil, fmt.Errorf("request %s from %s: %w", wire.Name(req), c.s.Remote.Abbrev(), err)
	}
	select {
	case resp := <-ch:
		if e, ok := resp.(*wire.ErrorResponse); ok {
			return nil, fmt.Errorf("request %s from %s: %w", wire.Name(req), c.s.Remote.Abbrev(), e)
		}
		return resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.life.Done():
		return nil, fmt.Errorf("request %s from %s: %w", wire.Name(req), c.s.Remote.Abbrev(), context.Cause(c.life))
	}
}

// Call is Request for a known response type.
func Call[R wire.Message](ctx context.Context, c *Conn, req wire.Message) (R, error) {
	var zero R
	resp, err := c.Request(ctx, req)
	if err != nil {
		return zero, err
	}
	r, ok := resp.(R)
	if !ok {
		return zero, fmt.Errorf("request %s: answer is %s: %w", wire.Name(req), wire.Name(resp), ErrPeerMisbehaved)
	}
	return r, nil
}

// Messages given to Request and Send, or returned by a handler, must not be
// modified afterwards: a block payload is written from the caller's memory.

// Send queues a one-way message (ShareState, RecordPush, Ping). It waits while
// the send queue is full.
func (c *Conn) Send(ctx context.Context, msg wire.Message) error {
	switch msg.(type) {
	case *wire.ShareState, *wire.RecordPush, *wire.Ping, *wire.Have, *wire.PunchOffer, *wire.MembersChanged:
	default:
		return fmt.Errorf("send %s: not a one-way message", wire.Name(msg))
	}
	if err := c.enqueue(ctx, wire.Frame{Msg: msg}); err != nil {
		return fmt.Errorf("send %s to %s: %w", wire.Name(msg), c.s.Remote.Abbrev(), err)
	}
	return nil
}

// enqueue encodes f in the caller's goroutine and queues it for the writer.
func (c *Conn) enqueue(ctx context.Context, f wire.Frame) error {
	head, tail, err := wire.EncodeFrame(nil, f)
	if err != nil {
		return err
	}
	n := int64(min(len(head)+len(tail), c.opts.MaxQueue))
	if err := c.acquire(ctx, c.queued, n); err != nil {
		return err
	}
	select {
	case c.sendq <- outFrame{head, tail, n, wire.Written(f), !streamable(f.Msg, c.zblocks)}:
		return nil
	case <-ctx.Done():
		c.queued.Release(n)
		return ctx.Err()
	case <-c.life.Done():
		c.queued.Release(n)
		return context.Cause(c.life)
	}
}

// trySend queues f if there is room at once (Pong, Busy answers: the reader
// must never wait for the writer).
func (c *Conn) trySend(f wire.Frame) {
	b, err := wire.AppendFrame(nil, f)
	if err != nil {
		c.log.Error("encode frame", "err", err)
		return
	}
	n := int64(min(len(b), c.opts.MaxQueue))
	if !c.queued.TryAcquire(n) {
		return
	}
	select {
	case c.sendq <- outFrame{head: b, n: n}:
	default:
		c.queued.Release(n)
	}
}

// acquire takes n of sem, giving up when ctx or the connection ends.
func (c *Conn) acquire(ctx context.Context, sem *semaphore.Weighted, n int64) error {
	if err := c.life.Err(); err != nil {
		return context.Cause(c.life)
	}
	if sem.TryAcquire(n) {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	if err := sem.Acquire(ctx, n); err != nil {
		if c.life.Err() != nil {
			return context.Cause(c.life)
		}
		return err
	}
	return nil
}

// Run runs the connection until it ends: Close or ctx (Run returns nil), or
// an error (Run returns it: ErrPeerClosed, ErrTimeout, ErrLost,
// ErrPeerMisbehaved...). It returns after every goroutine it started exited,
// and the stream is then closed.
func (c *Conn) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.mu.running {
		c.mu.Unlock()
		return errors.New("run connection: already running")
	}
	if c.mu.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.running = true
	c.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopKill := context.AfterFunc(ctx, func() { c.kill(ErrClosed) })
	defer stopKill()
	stopCancel := context.AfterFunc(c.life, cancel)
	defer stopCancel()

	var wg sync.WaitGroup
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.fail(c.writeLoop())
	}()
	wg.Go(func() { c.fail(c.readLoop(ctx, &wg)) })
	wg.Go(func() { c.fail(c.messageLoop(ctx)) })
	wg.Go(func() { c.keepalive(ctx) })
	if c.s.qc != nil {
		wg.Go(func() { c.fail(c.acceptStreams(ctx, &wg)) })
	}

	<-c.life.Done()
	// The writer sends our Close first, within closeTimeout; one stuck in a
	// write to a peer that does not read is cut off by closing the stream,
	// so that ending never waits for the peer (a stopping daemon exits in
	// time whatever its peers do).
	cut := time.NewTimer(closeTimeout)
	select {
	case <-writerDone:
	case <-cut.C:
		c.log.Debug("peer does not read our goodbye; closing")
	}
	cut.Stop()
	c.s.Close()
	<-writerDone
	wg.Wait()

	err := context.Cause(c.life)
	if errors.Is(err, ErrClosed) {
		c.log.Debug("connection closed")
		return nil
	}
	c.log.Info("connection ended", "err", err)
	return err
}

// fail ends the connection because of err; nil (a loop that saw the end
// coming) changes nothing. The first cause stays.
func (c *Conn) fail(err error) {
	if err != nil {
		c.kill(err)
	}
}

func (c *Conn) writeLoop() error {
	dw := &deadlineWriter{c: c.s.Conn, timeout: c.opts.Timeout}
	bw := bufio.NewWriterSize(dw, ioBuffer)
	var z *zwriter
	if c.zout {
		var err error
		top := len(zLevels) - 1
		if !c.opts.CompressLoopback && loopback(c.s.RemoteAddr()) {
			top = zLocalTop
		}
		if z, err = newZwriter(top); err != nil {
			return err
		}
		defer z.Close()
	}
	// What went out, for the log when the connection ends: where a first
	// sync's bytes went is otherwise a guess.
	var frames, around int64
	defer func() {
		args := []any{"frames", frames, "raw_bytes", around}
		if z != nil {
			args = append(args, "stream_in", z.totalIn, "stream_out", z.totalOut)
		}
		c.log.Debug("sent", args...)
	}()
	for {
		select {
		case f := <-c.sendq:
			var err error
			frames++
			if z == nil || f.raw {
				around += int64(len(f.head) + len(f.tail))
			}
			switch {
			case z != nil && !f.raw:
				from := z.level
				err = z.write(bw, f.head, f.tail)
				if z.level != from {
					c.log.Debug("compression level", "level", zLevels[z.level].String(), "was", zLevels[from].String())
				}
			case z != nil:
				if err = z.flush(bw); err != nil {
					break
				}
				fallthrough
			default:
				_, err = bw.Write(f.head)
				if err == nil && f.tail != nil {
					_, err = bw.Write(f.tail)
				}
			}
			if f.written != nil {
				f.written() // bw or z copied or wrote tail: nothing refers to it now
			}
			c.queued.Release(f.n)
			if z != nil {
				z.adapt(dw.busy, time.Now())
			}
			if err == nil && len(c.sendq) == 0 {
				if z != nil {
					err = z.flush(bw)
				}
				if err == nil {
					err = bw.Flush()
				}
			}
			if err != nil {
				return fmt.Errorf("write to peer: %w", c.ioError(err))
			}
		case <-c.life.Done():
			c.sayGoodbye(bw)
			return nil
		}
	}
}

// sayGoodbye tells the peer why we close, unless the peer is gone or closed
// first.
func (c *Conn) sayGoodbye(bw *bufio.Writer) {
	cause := context.Cause(c.life)
	if errors.Is(cause, ErrPeerClosed) || errors.Is(cause, ErrLost) || errors.Is(cause, ErrTimeout) {
		return
	}
	reason := "closing"
	if !errors.Is(cause, ErrClosed) {
		reason = cause.Error()
	}
	c.s.SetWriteDeadline(time.Now().Add(min(closeTimeout, c.opts.Timeout)))
	bw.Reset(c.s.Conn) // drop what is queued; the deadline above bounds this write
	if wire.WriteFrame(bw, wire.Frame{Msg: &wire.Close{Reason: wire.Text(reason)}}) == nil {
		bw.Flush()
	}
}

func (c *Conn) readLoop(ctx context.Context, wg *sync.WaitGroup) error {
	r := &frames{r: wire.NewReader(c.br), zin: c.zin}
	defer r.Close()
	for {
		f, err := r.next()
		if err != nil {
			if c.life.Err() != nil {
				return nil // we closed the stream
			}
			return fmt.Errorf("read from peer: %w", c.ioError(err))
		}
		switch m := f.Msg.(type) {
		case *wire.Ping:
			c.trySend(wire.Frame{ID: f.ID, Msg: &wire.Pong{}})
		case *wire.Close:
			return &CloseError{Reason: m.Reason, Code: m.Code}
		case *wire.Hello:
			return fmt.Errorf("peer sent a second Hello: %w", ErrPeerMisbehaved)
		default:
			switch {
			case wire.IsResponse(m):
				if f.ID == 0 {
					continue // a Pong to an old keepalive Ping
				}
				if p := c.ping.Load(); p != nil && p.id == f.ID {
					if _, ok := m.(*wire.Pong); ok && c.ping.CompareAndSwap(p, nil) {
						c.rtt.Store(int64(time.Since(p.sent)))
					}
					continue
				}
				if err := c.deliver(f); err != nil {
					return err
				}
			case wire.IsRequest(m):
				c.serve(ctx, wg, f)
			default:
				select {
				case c.msgs <- m:
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

// deliver hands a response to the Request waiting for it. A response nobody
// waits for is dropped: its Request gave up (ctx).
func (c *Conn) deliver(f wire.Frame) error {
	c.mu.Lock()
	p, ok := c.mu.pending[f.ID]
	delete(c.mu.pending, f.ID)
	c.mu.Unlock()
	if !ok {
		return nil
	}
	if !wire.Answers(p.req, f.Msg) {
		return fmt.Errorf("peer answered %s with %s: %w", wire.Name(p.req), wire.Name(f.Msg), ErrPeerMisbehaved)
	}
	p.ch <- f.Msg
	return nil
}

// serve answers a peer's request in a new goroutine, or CodeBusy when
// MaxRequests are being served already.
func (c *Conn) serve(ctx context.Context, wg *sync.WaitGroup, f wire.Frame) {
	if !c.serving.TryAcquire(1) {
		c.trySend(wire.Frame{ID: f.ID, Msg: wire.Errorf(wire.CodeBusy, "more than %d requests in flight", c.opts.MaxRequests)})
		return
	}
	wg.Go(func() {
		defer c.serving.Release(1)
		resp := c.answer(ctx, f.Msg)
		if err := c.enqueue(ctx, wire.Frame{ID: f.ID, Msg: resp}); err != nil && c.life.Err() == nil {
			c.log.Warn("sending answer failed", "request", wire.Name(f.Msg), "err", err)
			resp = wire.Errorf(wire.CodeInternal, "answer could not be sent")
			c.enqueue(ctx, wire.Frame{ID: f.ID, Msg: resp})
		}
	})
}

// answer runs the handler on a peer's request and returns what to send
// back: its response, or the ErrorResponse its error calls for.
func (c *Conn) answer(ctx context.Context, req wire.Message) wire.Message {
	resp, err := c.h.HandleRequest(ctx, req)
	if err != nil {
		var e *wire.ErrorResponse
		if !errors.As(err, &e) {
			c.log.Warn("serving request failed", "request", wire.Name(req), "err", err)
			e = wire.Errorf(wire.CodeInternal, "internal error")
		}
		resp = e
	}
	if resp == nil || !wire.Answers(req, resp) {
		c.log.Error("handler answered wrongly", "request", wire.Name(req))
		resp = wire.Errorf(wire.CodeInternal, "internal error")
	}
	return resp
}

func (c *Conn) messageLoop(ctx context.Context) error {
	for {
		select {
		case m := <-c.msgs:
			if err := c.h.HandleMessage(ctx, m); err != nil {
				return fmt.Errorf("handle %s: %w", wire.Name(m), err)
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (c *Conn) keepalive(ctx context.Context) {
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	c.sendPing() // the round-trip time is known from the start
	for {
		select {
		case <-t.C:
			c.sendPing()
		case <-ctx.Done():
			return
		}
	}
}

// sendPing sends a keepalive Ping with a fresh ID; its Pong gives the
// round-trip time (peers answer Pong with the Ping's ID since version 1).
func (c *Conn) sendPing() {
	id := c.nextID.Add(1)
	c.ping.Store(&sentPing{id: id, sent: time.Now()})
	c.trySend(wire.Frame{ID: id, Msg: &wire.Ping{}})
}

// loopback reports whether a is an address on this machine.
func loopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UDPAddr:
		return a.IP.IsLoopback()
	}
	return false
}

// ioError classifies a stream error.
func (c *Conn) ioError(err error) error {
	switch {
	case errors.Is(err, wire.ErrMalformed):
		return fmt.Errorf("%w: %w", ErrPeerMisbehaved, err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no progress for %s: %w", c.opts.Timeout, ErrTimeout)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return fmt.Errorf("%w: %w", ErrLost, err)
	}
	return fmt.Errorf("%w: %w", ErrLost, err)
}

// deadlineConn reads with a deadline renewed as reads go on, so a peer is
// dead after Timeout of silence however long a frame takes to arrive. The
// deadline is moved at most every Timeout/8 (moving it costs a runtime timer
// update per TLS record otherwise), so the silence that kills is between 7/8
// of Timeout and Timeout. A zero timeout leaves the deadline alone (the Hello
// exchange sets its own).
type deadlineConn struct {
	Conn interface {
		io.Reader
		SetReadDeadline(time.Time) error
	}
	timeout time.Duration
	set     time.Time // when the deadline was last moved
}

func (d *deadlineConn) Read(p []byte) (int, error) {
	if d.timeout > 0 {
		if now := time.Now(); now.Sub(d.set) > d.timeout/8 {
			d.Conn.SetReadDeadline(now.Add(d.timeout))
			d.set = now
		}
	}
	return d.Conn.Read(p)
}

// deadlineWriter writes in pieces of at most ioBuffer bytes, each of which
// must go out within the timeout (moved at most every timeout/8, as above),
// so a slow peer that keeps reading survives and one that stopped does not.
type deadlineWriter struct {
	c interface {
		io.Writer
		SetWriteDeadline(time.Time) error
	}
	timeout time.Duration
	set     time.Time
	busy    time.Duration // in Write so far: how long the link keeps us waiting
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	defer func(t time.Time) { w.busy += time.Since(t) }(time.Now())
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), ioBuffer)]
		if now := time.Now(); now.Sub(w.set) > w.timeout/8 {
			w.c.SetWriteDeadline(now.Add(w.timeout))
			w.set = now
		}
		n, err := w.c.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}
