package index

import (
	"io"
	"os"
)

// dataRange is a run [off, end) of a file that holds data; the rest of the
// file is holes, which read as zeros.
type dataRange struct{ off, end int64 }

// minSparse is the size from which a file's data ranges are looked up
// before it is read: a smaller file costs more in lookups than its holes
// could save.
const minSparse = 1 << 20

// maxDataRanges bounds the lookup: a file more fragmented than this is read
// in full, as if it had no holes.
const maxDataRanges = 1 << 16

// sparseReader returns a reader of f's first size bytes that fills its
// holes with zeros without reading them, or f itself when the system tells
// no holes (a file without any, or a system without SEEK_DATA). The caller
// reads from f's current offset 0 either way. A file changed while read is
// caught by the caller's comparison of its state before and after.
func sparseReader(f *os.File, size int64) io.Reader {
	if size < minSparse {
		return f
	}
	data, ok := dataRanges(f, size)
	if !ok || len(data) == 1 && data[0] == (dataRange{0, size}) {
		return f
	}
	return &holeReader{f: f, size: size, data: data}
}

// holeReader reads a file sequentially by its data ranges.
type holeReader struct {
	f    *os.File
	off  int64
	size int64
	data []dataRange // sorted, disjoint; those before off are dropped
}

func (r *holeReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.size-r.off)]
	for len(r.data) > 0 && r.data[0].end <= r.off {
		r.data = r.data[1:]
	}
	if len(r.data) == 0 || r.off < r.data[0].off {
		end := r.size
		if len(r.data) > 0 {
			end = r.data[0].off
		}
		n := int(min(int64(len(p)), end-r.off))
		clear(p[:n])
		r.off += int64(n)
		return n, nil
	}
	n := int(min(int64(len(p)), r.data[0].end-r.off))
	m, err := r.f.ReadAt(p[:n], r.off)
	r.off += int64(m)
	if err == io.EOF && m > 0 {
		err = nil // the next Read reports it
	}
	return m, err
}
