package store

import (
	"encoding/binary"
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
)

// MaxStateBlocks bounds the block list of one FileState (2^26 blocks of the
// smallest chunk is far beyond any real file).
const MaxStateBlocks = 1 << 26

// FileState is what the index believes a path holds on this device's disk:
// enough to tell, without reading it, whether the file changed since it was
// last hashed.
//
// Blocks is set only when no record of this device describes the content on
// disk (a read-only share with local edits); otherwise the blocks are those
// of the path's record.
//
// Value layout (varints are Go's encoding/binary ones):
//
//	version[1]=1 kind[1] size[varint] mtime_ns[varint] inode[uvarint]
//	mode[uvarint] flags[1] (bit0: hash present)
//	[filehash[32]] nblocks[uvarint] (hash[32] size[uvarint])*nblocks
type FileState struct {
	Kind     record.Kind
	Size     int64
	ModTime  int64 // nanoseconds since the Unix epoch
	Inode    uint64
	Mode     uint32 // permission bits
	FileHash block.Hash
	Blocks   []record.BlockRef
}

const stateVersion = 1

// Same reports whether the disk attributes that reveal a change (kind, size,
// mtime, inode) are equal. Mode is compared separately: a mode change needs a
// new record but no rehash.
func (s FileState) Same(o FileState) bool {
	return s.Kind == o.Kind && s.Size == o.Size && s.ModTime == o.ModTime && s.Inode == o.Inode
}

// AppendState appends the encoding of s to b.
func AppendState(b []byte, s FileState) []byte {
	b = append(b, stateVersion, byte(s.Kind))
	b = binary.AppendVarint(b, s.Size)
	b = binary.AppendVarint(b, s.ModTime)
	b = binary.AppendUvarint(b, s.Inode)
	b = binary.AppendUvarint(b, uint64(s.Mode))
	var flags byte
	if !s.FileHash.IsZero() {
		flags |= 1
	}
	b = append(b, flags)
	if flags&1 != 0 {
		b = append(b, s.FileHash[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Blocks)))
	for _, r := range s.Blocks {
		b = append(b, r.Hash[:]...)
		b = binary.AppendUvarint(b, uint64(r.Size))
	}
	return b
}

// ParseState decodes a value written by AppendState. It never panics and
// checks every count against the bytes left before allocating.
func ParseState(v []byte) (FileState, error) {
	d := decoder{b: v}
	var s FileState
	if ver := d.byte(); d.err == nil && ver != stateVersion {
		return s, fmt.Errorf("%w: local state version %d", ErrCorrupt, ver)
	}
	s.Kind = record.Kind(d.byte())
	s.Size = d.varint()
	s.ModTime = d.varint()
	s.Inode = d.uvarint()
	mode := d.uvarint()
	if mode > 0xffffffff {
		d.fail("mode")
	}
	s.Mode = uint32(mode)
	flags := d.byte()
	if flags&1 != 0 {
		copy(s.FileHash[:], d.bytes(block.Size))
	}
	n := d.uvarint()
	if n > MaxStateBlocks || n > uint64(len(d.b))/(block.Size+1) {
		d.fail("block count")
	}
	if d.err == nil && n > 0 {
		s.Blocks = make([]record.BlockRef, n)
		for i := range s.Blocks {
			copy(s.Blocks[i].Hash[:], d.bytes(block.Size))
			sz := d.uvarint()
			if sz > 0xffffffff {
				d.fail("block size")
			}
			s.Blocks[i].Size = uint32(sz)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err == nil && (s.Kind < record.File || s.Kind > record.Symlink || s.Size < 0) {
		d.fail("kind or size")
	}
	if d.err != nil {
		return FileState{}, d.err
	}
	return s, nil
}

// decoder reads a value and keeps the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: local state: bad %s", ErrCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail("length")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.fail("length")
		return make([]byte, n)
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}
