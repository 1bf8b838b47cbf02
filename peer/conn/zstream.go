package conn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/blueshift-sync/blueshift/peer/wire"
)

// The compressed stream (wire.Zstream, capability wire.CapZstream): each
// direction of a connection whose reader announced the capability carries
// one zstd stream, flushed whenever the send queue runs dry, so a message
// is compressed with the history of every message before it: records,
// paths and small files' contents that a frame of their own would
// compress alone (or not at all) share a window of zstdWindow bytes. Frames
// that do not compress (blocks zstd already squeezed or found
// incompressible, patches) go around it, raw, in order with the rest. To a
// peer on this machine, blocks go around it too: there the link outruns
// zstd, and only the records and small contents are worth compressing.
//
// The level follows the link and the CPU (zwriter.adapt): a writer that
// waits for the socket long enough that the next level's slower work would
// still fit in the link's time, or that compresses a trickle, steps up;
// one that compresses for more than half its time while the socket hardly
// ever makes it wait (the link goes idle) steps down. A writer that waits
// even a tenth of its time keeps the link busy: compressing longer than it
// waits is then no reason to squeeze less (on a loaded machine that sent
// the bench's 100 Mbit/s text at the fastest level, 0.42 of its size).
const (
	// zstdWindow is the encoder's window: as much history as 8 MiB gave on
	// the bench's text (within 0.3%), at half the memory per connection.
	// The decoder accepts up to maxZstdWindow, which bounds what a peer's
	// stream costs us.
	zstdWindow    = 2 << 20
	maxZstdWindow = 8 << 20
	// zPiece is the most compressed bytes we put in one Zstream (the
	// receiver reads each into a buffer of its own).
	zPiece = 256 << 10
	// adaptEvery is the uncompressed bytes between two level decisions.
	adaptEvery = 4 << 20
)

// zLevels are the levels the stream steps through, fastest first; it starts
// at zStartLevel.
var zLevels = [...]zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression, zstd.SpeedBestCompression}

// zSmallBlock is the largest block that goes into the stream to a peer on
// this machine too: a tiny file's block, whose frame is as much hash and
// header as content, costs zstd microseconds, and compresses with the
// records and contents around it (200,000 tiny files on loopback sent
// most of their contents raw in block frames).
const zSmallBlock = 4 << 10

// zSlower is how much longer each level takes than the one below it, on
// text (klauspost/compress v1.20, this machine): a level is tried only when
// the time it would take still fits the time the link takes.
var zSlower = [len(zLevels) - 1]float64{1.3, 1.8, 5}

// zStartLevel is where a stream starts, and zTrickleLevel the highest a
// stream that nothing limits rises to: most connections carry a trickle,
// and the best level's tables would cost each 34 MiB.
const zStartLevel, zTrickleLevel = 2, 2

// zLocalTop is the highest level of a stream to a peer on this machine.
// There the socket's waits are the peer's own work (its disk, its CPU:
// ours too), not a link's: the best level's slower work would take CPU
// from the peer, and its tables 34 MiB, for bytes that cost nothing to
// send. A first sync of 20,000 small files between two daemons stepped up
// to it on loopback.
const zLocalTop = zTrickleLevel

// streamable reports whether m goes inside the compressed stream: not a
// payload that is compressed already or said not to compress, nor a block
// larger than zSmallBlock unless blocks is set.
func streamable(m wire.Message, blocks bool) bool {
	switch m := m.(type) {
	case *wire.BlockResponse:
		return (blocks || len(m.Data) <= zSmallBlock) && (m.Encoding == wire.BlockRaw || m.Encoding == wire.BlockDelta) && !m.Incompressible
	case *wire.PatchResponse, *wire.Zstream, *wire.Close:
		return false
	}
	return true
}

// zwriter is the sending side of the stream. It is owned by the writer
// goroutine.
type zwriter struct {
	enc   *zstd.Encoder
	level int // index in zLevels of enc
	// encs keeps an encoder per level used so far: a level's tables are
	// made once (SpeedBestCompression's are 34 MiB), not at every change.
	encs [len(zLevels)]*zstd.Encoder
	// next is the level of the frame the next write starts, if it is not
	// level: the end of enc's frame travels with that write's bytes, so
	// that the peer's decoder never waits past a flushed piece for the
	// start of a frame while a raw frame comes.
	next  int
	top   int          // the highest level adapt steps up to
	out   bytes.Buffer // compressed bytes not yet sent
	dirty bool         // frames went into enc since its last flush
	frame []byte       // scratch for a Zstream frame

	// For adapt: uncompressed bytes and time spent compressing since the
	// last decision, and the socket's busy time then.
	in       int64
	encTime  time.Duration
	sockMark time.Duration
	since    time.Time // of the last decision

	// For the connection's account when it ends (Conn's "sent" log):
	// frame bytes into the stream and Zstream bytes out of it.
	totalIn, totalOut int64
}

// newZwriter starts a stream that rises at most to level top (an index in
// zLevels).
func newZwriter(top int) (*zwriter, error) {
	z := &zwriter{level: zStartLevel, next: zStartLevel, top: top, since: time.Now()}
	if err := z.start(); err != nil {
		return nil, err
	}
	return z, nil
}

// start begins a new zstd frame at z.level (after the end of the last one,
// if any: the stream goes on, the history does not).
func (z *zwriter) start() error {
	if enc := z.encs[z.level]; enc != nil {
		enc.Reset(&z.out)
		z.enc = enc
		return nil
	}
	enc, err := zstd.NewWriter(&z.out, zstd.WithEncoderLevel(zLevels[z.level]), zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow), zstd.WithEncoderCRC(false))
	if err != nil {
		return fmt.Errorf("start zstd stream: %w", err)
	}
	z.enc, z.encs[z.level] = enc, enc
	return nil
}

// write puts a frame (its encoded parts) into the stream and sends the
// pieces that are full. The parts are copied: the caller may reuse them.
func (z *zwriter) write(w io.Writer, parts ...[]byte) error {
	t := time.Now()
	if z.next != z.level {
		if err := z.enc.Close(); err != nil {
			return fmt.Errorf("end zstd frame: %w", err)
		}
		z.level = z.next
		if err := z.start(); err != nil {
			return err
		}
	}
	// A zPiece of a part at a time, its full pieces sent before the next:
	// an 8 MiB frame (a records response with contents) compressed whole
	// first grew out to 16 MiB.
	// (encTime counts the compressing alone: adapt sets it against the
	// socket's time.)
	for _, p := range parts {
		for len(p) > 0 {
			n := min(len(p), zPiece)
			if _, err := z.enc.Write(p[:n]); err != nil {
				return fmt.Errorf("compress frame: %w", err)
			}
			z.in += int64(n)
			z.totalIn += int64(n)
			p = p[n:]
			z.dirty = true
			if z.out.Len() < zPiece {
				continue
			}
			z.encTime += time.Since(t)
			for z.out.Len() >= zPiece {
				if err := z.send(w, zPiece); err != nil {
					return err
				}
			}
			t = time.Now()
		}
	}
	z.encTime += time.Since(t)
	return nil
}

// flush compresses what the stream holds and sends it, so the peer can read
// every frame written so far.
func (z *zwriter) flush(w io.Writer) error {
	if z.dirty {
		t := time.Now()
		if err := z.enc.Flush(); err != nil {
			return fmt.Errorf("compress frames: %w", err)
		}
		z.encTime += time.Since(t)
		z.dirty = false
	}
	for z.out.Len() > 0 {
		if err := z.send(w, min(z.out.Len(), zPiece)); err != nil {
			return err
		}
	}
	return nil
}

// send writes the next n compressed bytes as a Zstream frame.
func (z *zwriter) send(w io.Writer, n int) error {
	f, err := wire.AppendFrame(z.frame[:0], wire.Frame{Msg: &wire.Zstream{Data: z.out.Next(n)}})
	if err != nil {
		return err
	}
	z.frame = f
	z.totalOut += int64(len(f))
	if cap(z.frame) > 2*zPiece {
		z.frame = nil
	}
	_, err = w.Write(f)
	return err
}

// adapt chooses the level for what comes next, once adaptEvery bytes went
// in since the last choice. sock is the writer's total time in socket
// writes so far.
func (z *zwriter) adapt(sock time.Duration, now time.Time) {
	if z.in < adaptEvery {
		return
	}
	waited, worked, took := sock-z.sockMark, z.encTime, now.Sub(z.since)
	z.in, z.encTime, z.sockMark, z.since = 0, 0, sock, now
	switch {
	case 10*waited < took && 2*worked > took && z.level > 0:
		z.next = z.level - 1 // compressing is what limits: the link hardly ever made us wait
	case z.level < z.top && float64(worked)*zSlower[z.level] < 0.8*float64(worked+waited):
		z.next = z.level + 1 // the link limits, and would still with the next level's slower work
	case 10*worked < took && z.level < zTrickleLevel:
		z.next = z.level + 1 // nothing limits: squeeze harder, within zTrickleLevel's memory
	}
}

// Close releases the encoders.
func (z *zwriter) Close() {
	for _, enc := range z.encs {
		if enc != nil {
			enc.Close()
		}
	}
}

// frames yields the peer's frames in order: those on the connection and
// those inside its compressed stream. It is owned by the reader goroutine.
type frames struct {
	r   *wire.Reader
	zin bool     // we offered wire.CapZstream
	z   *zreader // from the first Zstream on
}

func (s *frames) next() (wire.Frame, error) {
	if s.z != nil && s.z.pending() {
		return s.z.next(nil)
	}
	f, err := s.r.ReadFrame()
	if err != nil {
		return f, err
	}
	m, ok := f.Msg.(*wire.Zstream)
	if !ok {
		return f, nil
	}
	if s.z == nil {
		if !s.zin {
			return wire.Frame{}, fmt.Errorf("zstream from a peer we did not offer %s: %w", wire.CapZstream, wire.ErrMalformed)
		}
		if s.z, err = newZreader(s.r); err != nil {
			return wire.Frame{}, err
		}
	}
	return s.z.next(m.Data)
}

// Close releases the decoder.
func (s *frames) Close() {
	if s.z != nil {
		s.z.dec.Close()
	}
}

// zreader is the receiving side: frames from the peer's stream, in order
// with those that came around it. It is owned by the reader goroutine.
//
// The decoder holds what it decoded of a block until it is read, so the
// frames of a piece are decoded into plain as soon as the piece comes, a
// block at a time: once piece and plain are empty, the next frame is on
// the connection.
type zreader struct {
	src   pieces
	dec   *zstd.Decoder
	buf   []byte       // a decoded block
	plain []byte       // decoded bytes not yet read (in buf)
	inner *wire.Reader // frames out of plain
}

// zBlockMax is the most a zstd block decodes to: a read of this size
// takes all of a block.
const zBlockMax = 128 << 10

func newZreader(outer *wire.Reader) (*zreader, error) {
	z := &zreader{src: pieces{outer: outer}, buf: make([]byte, zBlockMax)}
	dec, err := zstd.NewReader(&z.src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow),
		zstd.WithDecoderMaxMemory(maxZstdWindow), zstd.WithDecoderLowmem(true))
	if err != nil {
		return nil, fmt.Errorf("start zstd stream reader: %w", err)
	}
	z.dec = dec
	z.inner = wire.NewReader(z)
	return z, nil
}

// next returns the next frame inside the stream: the one piece (a
// Zstream's data) starts or continues, or with piece nil, the next one in
// what the last piece brought.
func (z *zreader) next(piece []byte) (wire.Frame, error) {
	if piece != nil {
		z.src.piece = piece
	}
	f, err := z.inner.ReadFrame()
	switch {
	case z.src.err != nil:
		return wire.Frame{}, z.src.err
	case errors.Is(err, wire.ErrMalformed):
		return wire.Frame{}, fmt.Errorf("read compressed stream: %w", err)
	case err != nil:
		return wire.Frame{}, fmt.Errorf("read compressed stream: %v: %w", err, wire.ErrMalformed)
	}
	if _, ok := f.Msg.(*wire.Zstream); ok {
		return wire.Frame{}, fmt.Errorf("zstream inside the compressed stream: %w", wire.ErrMalformed)
	}
	return f, nil
}

// pending reports whether the pieces that came hold more: the next frame
// comes from the stream, not from the connection.
func (z *zreader) pending() bool { return len(z.plain) > 0 || len(z.src.piece) > 0 }

// Read gives the inner reader decoded bytes: those of the last block, else
// the next block's.
func (z *zreader) Read(p []byte) (int, error) {
	for len(z.plain) == 0 {
		n, err := z.dec.Read(z.buf)
		z.plain = z.buf[:n]
		if n == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(p, z.plain)
	z.plain = z.plain[n:]
	return n, nil
}

// pieces feeds the decoder: the rest of the piece, else the next piece
// from the connection. A frame inside the stream is never cut by another
// frame, so anything but a Zstream there is a broken stream.
type pieces struct {
	outer *wire.Reader // the connection's frames
	piece []byte       // compressed bytes not yet given to the decoder
	// err is why the connection failed under the decoder, if it did: any
	// other failure inside the stream is the peer's.
	err error
}

func (s *pieces) Read(p []byte) (int, error) {
	if len(s.piece) == 0 {
		f, err := s.outer.ReadFrame()
		if err != nil {
			s.err = err
			return 0, err
		}
		m, ok := f.Msg.(*wire.Zstream)
		if !ok {
			return 0, fmt.Errorf("%s inside a compressed frame: %w", wire.Name(f.Msg), wire.ErrMalformed)
		}
		s.piece = m.Data
	}
	n := copy(p, s.piece)
	s.piece = s.piece[n:]
	return n, nil
}
