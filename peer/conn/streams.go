package conn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Requests on streams of their own. On a QUIC connection whose two ends
// both announced wire.CapStreams, each request travels on a bidirectional
// stream the requester opens: it writes the request frame and finishes its
// side; the server writes the one response frame and finishes its side; each
// reads to the end of the other's. The frames are those of the first stream
// (the request's ID included). One-way messages, keepalive Pings and Close
// stay on the first stream. QUIC interleaves the streams, so a large
// response no longer holds up a small one queued behind it, and a stream
// the reader does not drain stalls only itself.
//
// Bounds are those of the first stream: our requests in flight wait for a
// slot of MaxRequests, and the peer may open at most QUIC.MaxRequests
// streams at once (QUIC's stream limit; beyond MaxRequests being served, it
// is answered CodeBusy); a frame being written holds its bytes of MaxQueue
// (shared with the first stream's queue) until QUIC took it, so a peer that
// reads nothing makes us buffer at most MaxQueue; every write must make
// progress within Timeout, as must the reading of a request the peer
// started to send, or the peer is dropped (ErrTimeout). Bytes arriving on
// any stream count as hearing from the peer: the first stream, quiet while
// streams carry the traffic, then times out only after Timeout of silence
// on all of them.

// ByteCounter is what a Stream's Conn may implement when it counts the
// bytes it carries (for status): Conn then adds those of the request
// streams, which do not pass through it.
type ByteCounter interface {
	CountBytes(in, out int64)
}

// QUIC stream error codes, sent in RESET_STREAM and STOP_SENDING.
const (
	streamCanceled quic.StreamErrorCode = 1 // the requester gave up, or the connection is ending
	streamRefused  quic.StreamErrorCode = 2 // a stream the peer may not open (no wire.CapStreams)
)

// streamReader is a frame reader whose source changes from one stream to
// the next (wire.Reader keeps released block buffers for its next frame).
type streamReader struct {
	src io.Reader
	r   *wire.Reader
}

func (s *streamReader) Read(p []byte) (int, error) { return s.src.Read(p) }

// heardStream is a request stream whose every read that brings bytes
// counts as hearing from the peer (Conn.heard).
type heardStream struct {
	c  *Conn
	st *quic.Stream
}

func (h heardStream) Read(p []byte) (int, error) {
	n, err := h.st.Read(p)
	if n > 0 {
		h.c.heard()
		if h.c.counter != nil {
			h.c.counter.CountBytes(int64(n), 0)
		}
	}
	return n, err
}

func (h heardStream) SetReadDeadline(t time.Time) error { return h.st.SetReadDeadline(t) }

// heard moves the first stream's read deadline to Timeout from now (at most
// every Timeout/8, as deadlineConn does): bytes came on a request stream.
func (c *Conn) heard() {
	now := time.Now().UnixNano()
	last := c.heardAt.Load()
	if now-last < int64(c.opts.Timeout/8) || !c.heardAt.CompareAndSwap(last, now) {
		return
	}
	c.s.SetReadDeadline(time.Unix(0, now).Add(c.opts.Timeout))
}

// reader returns a frame reader of src; give it back with putReader.
func (c *Conn) reader(src io.Reader) *streamReader {
	sr, ok := c.readers.Get().(*streamReader)
	if !ok {
		sr = &streamReader{}
		sr.r = wire.NewReader(sr)
	}
	sr.src = src
	return sr
}

func (c *Conn) putReader(sr *streamReader) {
	sr.src = nil
	c.readers.Put(sr)
}

// requestOnStream sends req with ID id on a new stream and reads the answer
// from it.
func (c *Conn) requestOnStream(ctx context.Context, id uint64, req wire.Message) (wire.Message, error) {
	head, tail, err := wire.EncodeFrame(nil, wire.Frame{ID: id, Msg: req})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopLife := context.AfterFunc(c.life, cancel)
	defer stopLife()
	// Waits while the peer has as many of our requests as it takes at once
	// (its QUIC stream limit).
	st, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, c.streamError(ctx, err, "open a stream")
	}
	// Giving up (ctx) or the connection ending resets the stream both ways,
	// which ends the reads and writes below. It is stopped before cancel
	// runs: a finished stream must not be reset (it would abort delivery).
	stopReset := context.AfterFunc(ctx, func() {
		st.CancelWrite(streamCanceled)
		st.CancelRead(streamCanceled)
	})
	defer stopReset()

	err = c.writeStream(ctx, st, head, tail)
	if err == nil {
		err = st.Close()
	}
	if err != nil {
		return nil, c.streamError(ctx, err, "send the request")
	}

	sr := c.reader(heardStream{c, st})
	defer c.putReader(sr)
	f, err := sr.r.ReadFrame()
	if err != nil {
		return nil, c.streamError(ctx, err, "read the answer")
	}
	if f.ID != id || !wire.IsResponse(f.Msg) || !wire.Answers(req, f.Msg) {
		err := fmt.Errorf("peer answered %s with %s (request %d on its stream, answer %d): %w",
			wire.Name(req), wire.Name(f.Msg), id, f.ID, ErrPeerMisbehaved)
		c.fail(err)
		return nil, err
	}
	if err := c.streamEnd(st); err != nil {
		c.fail(err)
		return nil, err
	}
	return f.Msg, nil
}

// acceptStreams takes the streams the peer opens, each served by a
// goroutine of wg, until the connection or ctx ends. A peer that did not
// announce wire.CapStreams has its streams refused.
func (c *Conn) acceptStreams(ctx context.Context, wg *sync.WaitGroup) error {
	for {
		st, err := c.s.qc.AcceptStream(ctx)
		if err != nil {
			return nil // the connection ends; the first stream's reader says why
		}
		if c.qc == nil {
			c.log.Debug("peer opened a stream without announcing " + wire.CapStreams + "; refused")
			st.CancelRead(streamRefused)
			st.CancelWrite(streamRefused)
			continue
		}
		wg.Go(func() { c.serveStream(ctx, st) })
	}
}

// serveStream reads the request on st and writes its answer there: the
// handler's, a Pong, or CodeBusy when MaxRequests are being served.
func (c *Conn) serveStream(ctx context.Context, st *quic.Stream) {
	done := false // st finished: it must not be reset now
	defer func() {
		if !done {
			st.CancelRead(streamCanceled)
			st.CancelWrite(streamCanceled)
		}
	}()
	sr := c.reader(&deadlineConn{Conn: heardStream{c, st}, timeout: c.opts.Timeout})
	f, err := sr.r.ReadFrame()
	c.putReader(sr)
	if err != nil {
		c.streamFailed(err, "read a request")
		return
	}
	if !wire.IsRequest(f.Msg) {
		c.fail(fmt.Errorf("peer sent %s on a request stream: %w", wire.Name(f.Msg), ErrPeerMisbehaved))
		return
	}
	if err := c.streamEnd(st); err != nil {
		c.fail(err)
		return
	}

	var resp wire.Message
	switch {
	case isPing(f.Msg):
		resp = &wire.Pong{}
	case !c.serving.TryAcquire(1):
		resp = wire.Errorf(wire.CodeBusy, "more than %d requests in flight", c.opts.MaxRequests)
	default:
		defer c.serving.Release(1)
		resp = c.answer(ctx, f.Msg)
	}
	head, tail, err := wire.EncodeFrame(nil, wire.Frame{ID: f.ID, Msg: resp})
	if err != nil {
		c.log.Error("encode answer", "request", wire.Name(f.Msg), "err", err)
		head, tail, _ = wire.EncodeFrame(nil, wire.Frame{ID: f.ID, Msg: wire.Errorf(wire.CodeInternal, "answer could not be sent")})
	}
	err = c.writeStream(ctx, st, head, tail)
	if written := wire.Written(wire.Frame{Msg: resp}); written != nil && !errors.Is(err, errNotWritten) {
		written() // QUIC copied or sent the payload: nothing refers to it now
	}
	if err == nil {
		err = st.Close()
		done = err == nil
	}
	if err != nil {
		c.streamFailed(err, "send an answer")
	}
}

// errNotWritten: the connection ended before a frame's first byte was
// handed to QUIC (its OnWritten function does not run).
var errNotWritten = errors.New("frame not written")

// writeStream writes a frame's head and tail on st in pieces of at most
// ioBuffer bytes. Each piece holds its bytes of MaxQueue while QUIC takes
// it (a quic.Stream keeps a reference to what it is given until it is
// sent), so the bytes handed to QUIC on all streams stay within MaxQueue
// while a small answer waits for one piece at most, not for a large frame
// ahead of it. Each piece must go out within Timeout.
func (c *Conn) writeStream(ctx context.Context, st *quic.Stream, head, tail []byte) error {
	w := &deadlineWriter{c: st, timeout: c.opts.Timeout}
	first := true
	for _, b := range [][]byte{head, tail} {
		for len(b) > 0 {
			p := b[:min(len(b), ioBuffer)]
			n := int64(min(len(p), c.opts.MaxQueue))
			if err := c.acquire(ctx, c.queued, n); err != nil {
				if first {
					return fmt.Errorf("%w: %w", errNotWritten, err)
				}
				return err
			}
			first = false
			k, err := w.Write(p)
			c.queued.Release(n)
			if c.counter != nil {
				c.counter.CountBytes(0, int64(k))
			}
			if err != nil {
				return err
			}
			b = b[len(p):]
		}
	}
	return nil
}

// streamEnd reads st to its end after the one frame it carries: the peer
// finishes its side right after writing that frame.
func (c *Conn) streamEnd(st *quic.Stream) error {
	st.SetReadDeadline(time.Now().Add(c.opts.Timeout))
	var b [1]byte
	k, err := st.Read(b[:])
	switch {
	case k > 0:
		return fmt.Errorf("peer sent more than one frame on a request stream: %w", ErrPeerMisbehaved)
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("peer did not finish a request stream within %s: %w", c.opts.Timeout, ErrTimeout)
	}
	return nil // reset or the connection ends: the frame arrived whole all the same
}

// streamError says why a request on its own stream failed: the caller's
// ctx, the connection's end, or err (a timeout or a broken frame ends the
// connection; a stream the peer reset fails this request only).
func (c *Conn) streamError(ctx context.Context, err error, doing string) error {
	if c.life.Err() != nil {
		return context.Cause(c.life)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if e := c.streamFailed(err, doing); e != nil {
		return e
	}
	// The peer resets a request stream when its connection ends, or the
	// connection itself ended: the first stream's reader tells why (the
	// peer's Close, say) as it sees the end too.
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-c.life.Done():
		return context.Cause(c.life)
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	var se *quic.StreamError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: peer reset its stream (code %d): %w", doing, se.ErrorCode, ErrLost)
	}
	c.fail(fmt.Errorf("%s: %w", doing, c.ioError(err)))
	return context.Cause(c.life)
}

// streamFailed ends the connection for an error on a request stream that
// breaks the protocol or its time bound, and returns it; a reset stream or
// the connection's end is not the stream's to judge (nil).
func (c *Conn) streamFailed(err error, doing string) error {
	var se *quic.StreamError
	switch {
	case c.life.Err() != nil, errors.As(err, &se):
		return nil
	case errors.Is(err, wire.ErrMalformed), errors.Is(err, os.ErrDeadlineExceeded):
		err = fmt.Errorf("%s: %w", doing, c.ioError(err))
		c.fail(err)
		return err
	}
	return nil
}

func isPing(m wire.Message) bool {
	_, ok := m.(*wire.Ping)
	return ok
}
