package merkle

import (
	"encoding/hex"
	"slices"
)

// Prefix names a node: the first Len nibbles (4-bit digits) of a Key.
// The root is the zero Prefix.
type Prefix struct {
	Len     uint8
	Nibbles [32]byte // packed, high nibble first; bits past Len are zero
}

// Nibble returns the i-th nibble of k (0 <= i < MaxDepth).
func (k Key) Nibble(i int) byte {
	b := k[i/2]
	if i%2 == 0 {
		return b >> 4
	}
	return b & 0x0f
}

// Valid reports whether p is at most MaxDepth long and has no bits set past
// Len, the form every device must use so prefixes compare with ==.
func (p Prefix) Valid() bool {
	if p.Len > MaxDepth {
		return false
	}
	full := int(p.Len) / 2
	if p.Len%2 == 1 {
		if p.Nibbles[full]&0x0f != 0 {
			return false
		}
		full++
	}
	for _, b := range p.Nibbles[full:] {
		if b != 0 {
			return false
		}
	}
	return true
}

// Nibble returns the i-th nibble of p (i < p.Len).
func (p Prefix) Nibble(i int) byte { return Key(p.Nibbles).Nibble(i) }

// Child returns p extended by nibble c. p.Len must be below MaxDepth.
func (p Prefix) Child(c byte) Prefix {
	q := p
	if p.Len%2 == 0 {
		q.Nibbles[p.Len/2] = c << 4
	} else {
		q.Nibbles[p.Len/2] |= c & 0x0f
	}
	q.Len++
	return q
}

// Contains reports whether k starts with p.
func (p Prefix) Contains(k Key) bool {
	full := int(p.Len) / 2
	if string(k[:full]) != string(p.Nibbles[:full]) {
		return false
	}
	return p.Len%2 == 0 || k[full]>>4 == p.Nibbles[full]>>4
}

// PrefixOf returns the first n nibbles of k (n <= MaxDepth).
func PrefixOf(k Key, n int) Prefix {
	p := Prefix{Len: uint8(n)}
	copy(p.Nibbles[:n/2], k[:n/2])
	if n%2 == 1 {
		p.Nibbles[n/2] = k[n/2] & 0xf0
	}
	return p
}

// String shows p as hex nibbles, the root as "/".
func (p Prefix) String() string {
	if p.Len > MaxDepth {
		return "/invalid"
	}
	s := hex.EncodeToString(p.Nibbles[:(int(p.Len)+1)/2])
	return "/" + s[:min(int(p.Len), len(s))]
}

func sortEntries(entries []Entry) {
	slices.SortFunc(entries, func(a, b Entry) int { return compareKeys(a.Key, b.Key) })
}
