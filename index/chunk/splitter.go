package chunk

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/blueshift-sync/blueshift/index/block"
)

// Pipeline sizes. A slab is one read buffer; a stream that does not fit in the
// first slab is cut on the caller's goroutine while hashers hash the chunks of
// earlier slabs. nSlabs bounds the memory of one Splitter to nSlabs slabs.
const (
	minSlab    = 1 << 20 // at least 4*Max, see slabSize
	nSlabs     = 4
	firstRead  = 64 << 10 // the first slab grows from here, so small files stay cheap
	jobsBuffer = 256
)

// Splitter cuts and hashes streams with reusable buffers. Not safe for
// concurrent use. A Split on a stream larger than one slab (1 MiB, or 4*Max)
// starts runtime.GOMAXPROCS hashing goroutines and waits for all of them
// before it returns.
type Splitter struct {
	p     Params
	c     cutter
	size  int     // slab size
	slabs []*slab // nSlabs buffers, allocated on first use
}

// slab is one buffer of stream bytes and the chunks cut from it. The caller's
// goroutine owns it except for chunks[i].Hash between dispatch and wg.Wait,
// which belongs to the hasher handed job i.
type slab struct {
	buf    []byte
	chunks []Chunk
	starts []int // starts[i] is where chunks[i] begins in buf
	wg     sync.WaitGroup
}

// job asks a hasher to hash chunk i of s.
type job struct {
	s *slab
	i int
}

// NewSplitter returns a Splitter for p.
func NewSplitter(p Params) (*Splitter, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Splitter{p: p, c: newCutter(p), size: max(minSlab, 4*p.Max)}, nil
}

// SplitAll reads r to EOF and returns its chunks, hashed.
func (s *Splitter) SplitAll(ctx context.Context, r io.Reader) ([]Chunk, error) {
	var out []Chunk
	err := s.Split(ctx, r, func(c Chunk, _ []byte) error {
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Split reads r to EOF and calls fn once per chunk, in stream order, on the
// caller's goroutine. data is only valid during the call.
func (s *Splitter) Split(ctx context.Context, r io.Reader, fn func(c Chunk, data []byte) error) error {
	if s.slabs == nil {
		s.slabs = make([]*slab, nSlabs)
		for i := range s.slabs {
			s.slabs[i] = &slab{}
		}
	}
	first := s.slabs[0]
	n, eof, err := s.fillFirst(r, first)
	if err != nil {
		return err
	}
	if eof {
		return s.splitSmall(first.buf[:n], fn)
	}
	return s.splitLarge(ctx, r, n, fn)
}

// fillFirst reads into the first slab, growing it from firstRead up to the
// slab size, so a small file never costs a full slab.
func (s *Splitter) fillFirst(r io.Reader, sl *slab) (n int, eof bool, err error) {
	if len(sl.buf) == 0 {
		sl.buf = make([]byte, min(firstRead, s.size))
	}
	for {
		if n == len(sl.buf) {
			if n == s.size {
				return n, false, nil
			}
			grown := make([]byte, min(4*len(sl.buf), s.size))
			copy(grown, sl.buf[:n])
			sl.buf = grown
		}
		m, err := readFull(r, sl.buf[n:])
		n += m
		if err == io.EOF {
			return n, true, nil
		}
		if err != nil {
			return n, false, err
		}
	}
}

// splitSmall cuts and hashes a whole stream held in data, on this goroutine.
func (s *Splitter) splitSmall(data []byte, fn func(Chunk, []byte) error) error {
	var off int64
	for len(data) > 0 {
		l := s.c.cut(data)
		c := Chunk{Offset: off, Length: l, Hash: block.Sum(data[:l])}
		if err := fn(c, data[:l]); err != nil {
			return err
		}
		off += int64(l)
		data = data[l:]
	}
	return nil
}

// splitLarge runs the pipeline for a stream whose first slab (n bytes) is full.
func (s *Splitter) splitLarge(ctx context.Context, r io.Reader, n int, fn func(Chunk, []byte) error) (err error) {
	for _, sl := range s.slabs {
		if len(sl.buf) < s.size {
			sl.buf = make([]byte, s.size)
		}
	}
	jobs := make(chan job, jobsBuffer)
	var hashers sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		hashers.Go(func() {
			for j := range jobs {
				st := j.s.starts[j.i]
				j.s.chunks[j.i].Hash = block.Sum(j.s.buf[st : st+j.s.chunks[j.i].Length])
				j.s.wg.Done()
			}
		})
	}
	// inflight holds dispatched slabs, oldest first; each is delivered to fn
	// and reused once its hashes are in.
	inflight := make([]*slab, 0, nSlabs)
	defer func() {
		close(jobs)
		hashers.Wait()
	}()
	deliver := func() error {
		sl := inflight[0]
		copy(inflight, inflight[1:])
		inflight = inflight[:len(inflight)-1]
		sl.wg.Wait()
		for i, c := range sl.chunks {
			if err := fn(c, sl.buf[sl.starts[i]:sl.starts[i]+c.Length]); err != nil {
				return err
			}
		}
		return nil
	}

	var (
		next   = 1 // index in s.slabs of the next free slab, round robin
		cur    = s.slabs[0]
		off    int   // cut position in cur.buf
		stream int64 // stream offset of cur.buf[off]
		eof    bool
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		// Cut every chunk that is certainly complete in cur.
		cur.chunks, cur.starts = cur.chunks[:0], cur.starts[:0]
		for n-off >= s.p.Max || (eof && n > off) {
			l := s.c.cut(cur.buf[off:n])
			cur.chunks = append(cur.chunks, Chunk{Offset: stream, Length: l})
			cur.starts = append(cur.starts, off)
			off += l
			stream += int64(l)
		}
		cur.wg.Add(len(cur.chunks))
		for i := range cur.chunks {
			jobs <- job{cur, i}
		}
		inflight = append(inflight, cur)
		if eof {
			break
		}
		// Move the unfinished tail (< Max bytes) to the next slab, first
		// delivering the oldest slab if it is still in use.
		nxt := s.slabs[next]
		next = (next + 1) % nSlabs
		if len(inflight) == nSlabs {
			if err := deliver(); err != nil {
				return err
			}
		}
		n = copy(nxt.buf, cur.buf[off:n])
		cur, off = nxt, 0
		m, rerr := readFull(r, cur.buf[n:])
		n += m
		if rerr == io.EOF {
			eof = true
		} else if rerr != nil {
			return rerr
		}
	}
	for len(inflight) > 0 {
		if err := deliver(); err != nil {
			return err
		}
	}
	return nil
}

// readFull reads until p is full. It returns io.EOF, and only io.EOF, when the
// stream ended before p was full; other errors are wrapped.
func readFull(r io.Reader, p []byte) (int, error) {
	n, err := io.ReadFull(r, p)
	switch {
	case err == nil:
		return n, nil
	case err == io.EOF || err == io.ErrUnexpectedEOF: // exactly these, as io.ReadFull returns them
		return n, io.EOF
	default:
		return n, fmt.Errorf("read stream: %w", err)
	}
}
