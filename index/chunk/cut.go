package chunk

import "math/bits"

// cutter finds chunk boundaries. It is FastCDC (Xia et al., USENIX ATC 2016)
// with normalized chunking: a gear rolling hash, no boundary test in the first
// Min bytes, a harder mask (log2(Avg)+2 bits) until Avg bytes and an easier one
// (log2(Avg)-2 bits) after it, and a forced cut at Max.
//
// The fingerprint is fp = fp<<1 + gear[b], so bit k of fp depends on the last
// k+1 bytes only. The masks take their bits from the top of the word below bit
// 63 (bits 62, 61, ...), so every tested bit covers at least 46 bytes of
// context. Keeping bit 63 out of the masks lets the loop consume two bytes per
// step (see cut) and still test every position exactly as the one-byte
// definition (cutRef) does.
type cutter struct {
	min, avg, max int
	maskS, maskL  uint64       // harder (before avg) and easier (after avg) masks
	gear          *[256]uint64 // the frozen table, or one keyed by Params.Key
}

func newCutter(p Params) cutter {
	b := bits.Len(uint(p.Avg)) - 1 // log2(Avg); Validate demands a power of two
	c := cutter{
		min: p.Min, avg: p.Avg, max: p.Max,
		maskS: topMask(b + 2),
		maskL: topMask(b - 2),
		gear:  &gear,
	}
	if p.Key != nil {
		c.gear = keyedGear(p.Key)
	}
	return c
}

// topMask returns n one bits at positions 62, 61, ..., 63-n.
func topMask(n int) uint64 {
	return (^uint64(0) << (64 - n)) >> 1
}

// cut returns the length of the first chunk of data. data must hold at least
// Max bytes unless it is the rest of the stream.
func (c *cutter) cut(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	if n > c.max {
		n = c.max
	}
	normal := c.avg
	if normal > n {
		normal = n
	}
	var fp uint64
	gear := c.gear
	i := c.min
	// Two bytes per step: after the first byte fp holds the one-byte
	// fingerprint shifted left by one, so it is tested against mask<<1.
	sS, sL := c.maskS<<1, c.maskL<<1
	for ; i+2 <= normal; i += 2 {
		fp = fp<<2 + gear[data[i]]<<1
		if fp&sS == 0 {
			return i + 1
		}
		fp += gear[data[i+1]]
		if fp&c.maskS == 0 {
			return i + 2
		}
	}
	if i < normal {
		fp = fp<<1 + gear[data[i]]
		if fp&c.maskS == 0 {
			return i + 1
		}
		i++
	}
	for ; i+2 <= n; i += 2 {
		fp = fp<<2 + gear[data[i]]<<1
		if fp&sL == 0 {
			return i + 1
		}
		fp += gear[data[i+1]]
		if fp&c.maskL == 0 {
			return i + 2
		}
	}
	if i < n {
		fp = fp<<1 + gear[data[i]]
		if fp&c.maskL == 0 {
			return i + 1
		}
	}
	return n
}
