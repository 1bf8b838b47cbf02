package delta

import (
	"bytes"
	"encoding/binary"
)

// maxProbe bounds the table entries examined per position, so a basis with
// many equal weak checksums cannot make Delta quadratic.
const maxProbe = 16

// Delta encodes target as copies of sig's basis windows and literal bytes.
func Delta(sig Sig, target []byte) []byte {
	d := differ{sig: sig, target: target}
	return d.encode()
}

// differ is the state of one Delta call.
type differ struct {
	sig    Sig
	target []byte
	out    []byte
	table  []int32 // window index + 1, 0 = empty; unique (weak, strong) only
	shift  uint
	next   int // window after the last copy, the format's implicit start
	run    struct{ start, count int }
	strong [maxStrong]byte // the current position's strong prefix
}

func (d *differ) encode() []byte {
	s, t := d.sig, d.target
	d.out = append(d.out, version)
	w := max(s.window, MinWindow) // the zero Sig has no window
	d.out = binary.AppendUvarint(d.out, uint64(w))
	d.out = binary.AppendUvarint(d.out, uint64(s.basisLen))
	d.out = binary.AppendUvarint(d.out, uint64(len(t)))
	full := s.basisLen / w // windows of full length
	if full == 0 || len(t) < w {
		d.finish(0)
		return d.out
	}
	d.build(full)
	out := powBase(w)
	lit := 0 // start of pending literal bytes
	pos := 0
	h := weakSum(t[:w])
	for {
		if i := d.match(h, t[pos:pos+w], full); i >= 0 {
			d.literal(t[lit:pos])
			d.copyWindow(i)
			pos += w
			lit = pos
			if pos+w > len(t) {
				break
			}
			h = weakSum(t[pos : pos+w])
			continue
		}
		if pos+w >= len(t) {
			break
		}
		h = h*weakBase - uint32(t[pos])*out + uint32(t[pos+w])
		pos++
	}
	d.finish(lit)
	return d.out
}

// build indexes the full-length windows by weak checksum.
func (d *differ) build(full int) {
	b := tableBits(full)
	d.table = make([]int32, 1<<b)
	d.shift = uint(32 - b)
	mask := len(d.table) - 1
	sl := d.sig.strongLen
outer:
	for i := range full {
		slot := int(d.sig.weak[i] * 0x9E3779B1 >> d.shift)
		for probe := 0; ; probe++ {
			e := d.table[slot]
			if e == 0 {
				d.table[slot] = int32(i + 1)
				break
			}
			j := int(e - 1)
			if d.sig.weak[j] == d.sig.weak[i] && bytes.Equal(d.sig.strong[j*sl:(j+1)*sl], d.sig.strong[i*sl:(i+1)*sl]) {
				continue outer // a duplicate window: the first one serves
			}
			slot = (slot + 1) & mask
		}
	}
}

// match returns the basis window equal to win (weak checksum h), or -1. It
// prefers the window after the current copy run, so runs stay contiguous.
func (d *differ) match(h uint32, win []byte, full int) int {
	s := d.sig
	sl := s.strongLen
	computed := false
	strong := func() []byte {
		if !computed {
			strongSum(d.strong[:sl], win)
			computed = true
		}
		return d.strong[:sl]
	}
	if c := d.run.start + d.run.count; d.run.count > 0 && c < full && s.weak[c] == h &&
		bytes.Equal(strong(), s.strong[c*sl:(c+1)*sl]) {
		return c
	}
	mask := len(d.table) - 1
	slot := int(h * 0x9E3779B1 >> d.shift)
	for range maxProbe {
		e := d.table[slot]
		if e == 0 {
			return -1
		}
		j := int(e - 1)
		if s.weak[j] == h && bytes.Equal(strong(), s.strong[j*sl:(j+1)*sl]) {
			return j
		}
		slot = (slot + 1) & mask
	}
	return -1
}

// finish matches the basis's short last window against the end of the
// target, then flushes everything after lit as literals.
func (d *differ) finish(lit int) {
	s, t := d.sig, d.target
	if last := s.basisLen % max(s.window, 1); last > 0 && len(t)-lit >= last {
		i := s.basisLen / s.window
		tail := t[len(t)-last:]
		sl := s.strongLen
		if weakSum(tail) == s.weak[i] {
			strongSum(d.strong[:sl], tail)
			if bytes.Equal(d.strong[:sl], s.strong[i*sl:(i+1)*sl]) {
				d.literal(t[lit : len(t)-last])
				d.copyWindow(i)
				lit = len(t)
			}
		}
	}
	d.literal(t[lit:])
	d.flushCopy()
}

// copyWindow adds basis window i to the pending copy run.
func (d *differ) copyWindow(i int) {
	if d.run.count > 0 && d.run.start+d.run.count == i {
		d.run.count++
		return
	}
	d.flushCopy()
	d.run.start, d.run.count = i, 1
}

func (d *differ) flushCopy() {
	if d.run.count == 0 {
		return
	}
	d.out = binary.AppendUvarint(d.out, uint64(d.run.count)<<1|1)
	d.out = binary.AppendVarint(d.out, int64(d.run.start-d.next))
	d.next = d.run.start + d.run.count
	d.run.count = 0
}

func (d *differ) literal(b []byte) {
	if len(b) == 0 {
		return
	}
	d.flushCopy()
	d.out = binary.AppendUvarint(d.out, uint64(len(b))<<1)
	d.out = append(d.out, b...)
}
