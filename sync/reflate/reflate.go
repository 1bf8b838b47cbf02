package reflate

import (
	"bytes"
	"compress/zlib"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// MaxSections bounds the sections of one Layout.
const MaxSections = 64

// Method is how a section's stream was written, and is written again.
type Method uint8

const (
	// GoFlate is Go's compress/zlib at BestSpeed, as the Go linker
	// compresses (cmd/link, compressSyms).
	GoFlate Method = 1 << iota
	// Zlib is C zlib's compress() (level 6), as GNU ld compresses with
	// --compress-debug-sections=zlib: the Go linker's host linker for
	// programs with cgo. Only where the system's zlib opens (Methods).
	Zlib
)

// Methods is what this build can compress again.
func Methods() Method {
	if haveZlib() {
		return GoFlate | Zlib
	}
	return GoFlate
}

// Section is one compressed section of a file: its zlib stream (after the
// compression header) at [Off, Off+Len) of the file, Size bytes once
// decompressed, written by Method.
type Section struct {
	Off, Len, Size int64
	Method         Method
}

// Layout is the sections of a file that are expanded, by ascending Off,
// none overlapping.
type Layout []Section

// ErrNotReproduced: compressing an expanded section again did not give
// the bytes of the file.
var ErrNotReproduced = errors.New("a section compressed again differs from the file's")

// growth is how many bytes expanding l adds to a file.
func (l Layout) growth() int64 {
	var n int64
	for _, s := range l {
		n += s.Size - s.Len
	}
	return n
}

// ExpandedSize is the size of the expansion by l of a file of size bytes.
func (l Layout) ExpandedSize(size int64) int64 { return size + l.growth() }

// Check reports whether l can be the layout of a file of size bytes whose
// expansion is at most limit bytes.
func (l Layout) Check(size, limit int64) error {
	if len(l) > MaxSections {
		return fmt.Errorf("check layout: %d sections, at most %d", len(l), MaxSections)
	}
	if size < 0 || size > limit {
		return fmt.Errorf("check layout: a file of %d bytes, at most %d", size, limit)
	}
	var end, total int64 = 0, size
	for i, s := range l {
		if s.Method != GoFlate && s.Method != Zlib {
			return fmt.Errorf("check layout: section %d compressed by method %d", i, s.Method)
		}
		if s.Off < end || s.Len <= 0 || s.Len > size-s.Off || s.Size < 0 || s.Size > limit {
			return fmt.Errorf("check layout: section %d at [%d, +%d) of %d bytes is out of order or outside a file of %d bytes", i, s.Off, s.Len, s.Size, size)
		}
		end = s.Off + s.Len
		if total += s.Size - s.Len; total > limit {
			return fmt.Errorf("check layout: expands past %d bytes", limit)
		}
	}
	return nil
}

// Find returns the layout of the zlib-compressed sections of the ELF file r
// (size bytes) that one of methods compresses again to their bytes
// exactly, with an expansion of at most limit bytes (sections beyond it
// are left out). At most MaxSections sections are tried, decompressing at
// most 2*limit bytes in all. A file that is not ELF has an empty layout;
// a section that cannot be read is left out.
func Find(r io.ReaderAt, size, limit int64, methods Method) (Layout, error) {
	if size > limit {
		return nil, nil
	}
	var magic [4]byte
	if n, _ := r.ReadAt(magic[:], 0); n < len(magic) || string(magic[:]) != elf.ELFMAG {
		return nil, nil
	}
	f, err := elf.NewFile(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, nil // not a program this package knows
	}
	var chdrLen int64 = 24
	if f.Class == elf.ELFCLASS32 {
		chdrLen = 12
	}
	var l Layout
	grown := size
	// A hostile file may hold many sections that do not reproduce: the
	// sections tried, and the bytes they decompress to, are bounded too.
	tried, spent := 0, int64(0)
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_COMPRESSED == 0 || s.Type == elf.SHT_NOBITS || tried == MaxSections {
			continue
		}
		off, n := int64(s.Offset), int64(s.FileSize)
		if off < 0 || n <= chdrLen || off > size || n > size-off {
			continue
		}
		typ, full, err := readChdr(r, off, f.Class, f.ByteOrder)
		room := limit - grown + n - chdrLen // the most this section may expand to
		if err != nil || typ != elf.COMPRESS_ZLIB || room < 0 || full > uint64(room) || int64(full) > 2*limit-spent {
			continue
		}
		sec := Section{Off: off + chdrLen, Len: n - chdrLen, Size: int64(full)}
		if sec.Method = methodOf(r, sec.Off) & methods & Methods(); sec.Method == 0 {
			continue
		}
		tried++
		spent += sec.Size
		if err := reproduces(r, sec); err != nil {
			continue
		}
		l = append(l, sec)
		grown += sec.Size - sec.Len
	}
	slices.SortFunc(l, func(a, b Section) int { return int(min(max(a.Off-b.Off, -1), 1)) })
	if l.Check(size, limit) != nil {
		return nil, nil // overlapping sections: a file no linker wrote
	}
	return l, nil
}

// readChdr reads the compression header at off.
func readChdr(r io.ReaderAt, off int64, class elf.Class, order binary.ByteOrder) (elf.CompressionType, uint64, error) {
	var b [24]byte
	if class == elf.ELFCLASS32 {
		if _, err := r.ReadAt(b[:12], off); err != nil {
			return 0, 0, err
		}
		return elf.CompressionType(order.Uint32(b[0:])), uint64(order.Uint32(b[4:])), nil
	}
	if _, err := r.ReadAt(b[:], off); err != nil {
		return 0, 0, err
	}
	return elf.CompressionType(order.Uint32(b[0:])), order.Uint64(b[8:]), nil
}

// methodOf tells from the zlib header at off (its level bits) which
// method may have written the stream.
func methodOf(r io.ReaderAt, off int64) Method {
	var h [2]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return 0
	}
	switch string(h[:]) {
	case "\x78\x01": // level 0-1: compress/zlib's BestSpeed writes this
		return GoFlate
	case "\x78\x9c": // the default level
		return Zlib
	}
	return 0
}

// reproduces checks that s decompresses to s.Size bytes which compress
// again by s.Method to s's stream.
func reproduces(r io.ReaderAt, s Section) error {
	if s.Method == Zlib {
		return reproducesZlib(r, s)
	}
	zr, err := zlib.NewReader(io.NewSectionReader(r, s.Off, s.Len))
	if err != nil {
		return err
	}
	defer zr.Close()
	cmp := &comparer{r: io.NewSectionReader(r, s.Off, s.Len)}
	zw, err := zlib.NewWriterLevel(cmp, zlib.BestSpeed)
	if err != nil {
		return err
	}
	n, err := io.Copy(zw, io.LimitReader(zr, s.Size+1))
	if err != nil {
		return err
	}
	if n != s.Size {
		return fmt.Errorf("section of %d bytes decompresses to %d", s.Size, n)
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if cmp.differs || cmp.n != s.Len {
		return ErrNotReproduced
	}
	return nil
}

// reproducesZlib is reproduces for Zlib, which compresses a section whole.
func reproducesZlib(r io.ReaderAt, s Section) error {
	data := make([]byte, s.Size)
	if err := inflate(r, s, data); err != nil {
		return err
	}
	z, ok := zlibCompress(data)
	if !ok {
		return fmt.Errorf("zlib failed on %d bytes", s.Size)
	}
	if int64(len(z)) != s.Len {
		return ErrNotReproduced
	}
	stream := data[:0]
	if s.Len > s.Size {
		stream = nil
	}
	stream = append(stream, make([]byte, s.Len)...)
	if _, err := r.ReadAt(stream, s.Off); err != nil {
		return err
	}
	if !bytes.Equal(stream, z) {
		return ErrNotReproduced
	}
	return nil
}

// inflate decompresses s into out, which must be s.Size bytes, and checks
// that the stream ends there, checksum included.
func inflate(r io.ReaderAt, s Section, out []byte) error {
	zr, err := zlib.NewReader(io.NewSectionReader(r, s.Off, s.Len))
	if err != nil {
		return err
	}
	defer zr.Close()
	if _, err := io.ReadFull(zr, out); err != nil {
		return err
	}
	var one [1]byte
	if n, err := zr.Read(one[:]); n != 0 || err != io.EOF {
		return fmt.Errorf("longer than %d bytes", s.Size)
	}
	return nil
}

// comparer is a writer that compares what it is given with r.
type comparer struct {
	r       io.Reader
	n       int64
	buf     []byte
	differs bool
}

func (c *comparer) Write(p []byte) (int, error) {
	if c.differs {
		return 0, ErrNotReproduced
	}
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	if _, err := io.ReadFull(c.r, b); err != nil || !bytes.Equal(b, p) {
		c.differs = true
		return 0, ErrNotReproduced
	}
	c.n += int64(len(p))
	return len(p), nil
}

// Expand returns the file r (size bytes) with each section of l
// decompressed in place. l must have passed Check for size.
func Expand(r io.ReaderAt, size int64, l Layout) ([]byte, error) {
	out := make([]byte, l.ExpandedSize(size))
	var from, at int64
	for i, s := range l {
		if _, err := r.ReadAt(out[at:at+s.Off-from], from); err != nil {
			return nil, fmt.Errorf("expand: read before section %d: %w", i, err)
		}
		at += s.Off - from
		if err := inflate(r, s, out[at:at+s.Size]); err != nil {
			return nil, fmt.Errorf("expand section %d: %w", i, err)
		}
		at += s.Size
		from = s.Off + s.Len
	}
	if _, err := r.ReadAt(out[at:], from); err != nil && !(errors.Is(err, io.EOF) && at == int64(len(out))) {
		return nil, fmt.Errorf("expand: read after the sections: %w", err)
	}
	return out, nil
}

// Contract returns the file whose expansion by l is x: each section
// compressed again, which must give back its length. l must have passed
// Check for the size of the file, ContractedSize.
func Contract(x []byte, l Layout) ([]byte, error) {
	size := int64(len(x)) - l.growth()
	if size < 0 {
		return nil, fmt.Errorf("contract: %d bytes cannot be an expansion by this layout", len(x))
	}
	out := bytes.NewBuffer(make([]byte, 0, size))
	var from, at int64 // from: in the file; at: in x
	for i, s := range l {
		if at+s.Off-from+s.Size > int64(len(x)) {
			return nil, fmt.Errorf("contract: section %d past the end of %d bytes", i, len(x))
		}
		out.Write(x[at : at+s.Off-from])
		at += s.Off - from
		if err := compress(out, x[at:at+s.Size], s.Method); err != nil {
			return nil, fmt.Errorf("contract section %d: %w", i, err)
		}
		if int64(out.Len()) != s.Off+s.Len {
			return nil, fmt.Errorf("contract section %d: %w", i, ErrNotReproduced)
		}
		at += s.Size
		from = s.Off + s.Len
	}
	out.Write(x[at:])
	if int64(out.Len()) != size {
		return nil, fmt.Errorf("contract: %d bytes, want %d", out.Len(), size)
	}
	return out.Bytes(), nil
}

// compress writes data compressed by m to out.
func compress(out *bytes.Buffer, data []byte, m Method) error {
	if m == Zlib {
		z, ok := zlibCompress(data)
		if !ok {
			return errors.New("this build has no zlib of C's")
		}
		out.Write(z)
		return nil
	}
	zw, _ := zlib.NewWriterLevel(out, zlib.BestSpeed)
	zw.Write(data)
	return zw.Close()
}
