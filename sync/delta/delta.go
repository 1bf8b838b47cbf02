// Package delta is rsync's algorithm applied inside one block: a pure codec
// that lets the transfer engine send a small edit inside a large block without
// sending the whole block.
//
// The receiver holds an old block, the basis; the sender holds the new one,
// the target. The receiver sends Signature(basis) (a weak rolling checksum and
// a short BLAKE3 prefix per fixed window); the sender answers with
// Delta(sig, target), copy runs of basis windows and literal bytes; the
// receiver rebuilds the target with Apply(basis, delta, maxSize) and must then
// check the result against the block hash it asked for. The basis may be any
// bytes the receiver has (the old block at the same place, or several
// neighbouring old blocks concatenated).
//
// Literal bytes are stored raw, so the caller's zstd pass compresses them;
// this package never compresses.
//
// # Signature format
//
//	+---------+-----------+------------------+--------------------+----------------------------------+
//	| version | strongLen | uvarint window   | uvarint basis len  | n × ( weak u32 LE | strong[sl] ) |
//	| 1 byte  | 1 byte    | bytes per window | bytes              | n = ceil(basis len / window)     |
//	+---------+-----------+------------------+--------------------+----------------------------------+
//
// The last window is short when the basis length is not a multiple of the
// window; its checksums cover just its bytes.
//
// # Delta format
//
//	+---------+----------------+-------------------+--------------------+-------+
//	| version | uvarint window | uvarint basis len | uvarint target len | ops…  |
//	+---------+----------------+-------------------+--------------------+-------+
//
//	op = uvarint tag, then
//	  tag&1 == 0: literal of tag>>1 (>= 1) bytes, which follow
//	  tag&1 == 1: copy of tag>>1 (>= 1) consecutive basis windows, starting at
//	              next + zigzag varint, where next is the window after the
//	              previous copy (0 at first), so an in-place run costs 2 bytes
//
// The ops must produce exactly target len bytes; Apply checks every length
// against the basis, the remaining input and maxSize before it copies or
// allocates.
//
// # Weak checksum
//
// A polynomial rolling hash mod 2^32, h = Σ x_i·B^(W-1-i), rolled in O(1)
// per byte. It spreads better than rsync's Adler-style sums on text and on
// runs of equal bytes; a weak hit is confirmed with the strong prefix, and
// the caller's hash check catches the rest.
package delta

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/zeebo/blake3"
)

// Limits on what ParseSignature and Apply accept.
const (
	MinWindow  = 16
	MaxWindow  = 1 << 20
	MaxWindows = 1 << 20    // windows per signature
	MaxBasis   = 64 << 20   // bytes of basis a signature may describe
	StrongLen  = 8          // default bytes of BLAKE3 per window
	maxStrong  = 32         // longest strong prefix: all of BLAKE3-256
	version    = 1          // of both formats
	weakBase   = 0x01000193 // odd multiplier of the rolling hash (FNV prime)
)

// Sentinel errors for the callers' errors.Is.
var (
	// ErrCorrupt marks a signature or delta that does not decode.
	ErrCorrupt = errors.New("corrupt delta data")
	// ErrTooLarge marks a delta whose target exceeds the caller's maxSize.
	ErrTooLarge = errors.New("delta target too large")
	// ErrBasisMismatch marks a delta made against a basis of another length.
	ErrBasisMismatch = errors.New("delta made for another basis")
)

// Sig is the signature of a basis: one weak checksum and one strong prefix per
// window. The zero Sig describes an empty basis. A Sig is read-only once made.
type Sig struct {
	window    int
	basisLen  int
	strongLen int
	weak      []uint32
	strong    []byte // window i's prefix is strong[i*strongLen:(i+1)*strongLen]
}

// WindowFor returns the window size Signature uses for a basis of n bytes
// when asked for 0: the power of two nearest sqrt(n * (4+StrongLen)), which
// minimizes signature plus literal bytes for a small edit (one window of
// literals against n/W entries of 4+StrongLen bytes), clamped to
// [256, MaxWindow]. BenchmarkWindow measured (random block, edit off any
// window boundary; signature + delta bytes):
//
//	block    edit             W=512   W=1024  W=2048  W=4096   WindowFor
//	64 KiB   1-byte insert     2072    1815    2455    4311    1024: 775 + 1040
//	64 KiB   4 KiB overwrite   6166    5910    6550    8407    1024: 775 + 5135
//	128 KiB  1-byte insert     3609    2584    2839    4503    1024: 1543 + 1041
//	128 KiB  4 KiB overwrite   7704    6678    6934    8599    1024
//	256 KiB  1-byte insert     6681    4121    3608    4887    2048: 1543 + 2065
//	256 KiB  4 KiB overwrite  10776    8216    7702    8983    2048
//
// so WindowFor picks the measured optimum at each size.
func WindowFor(n int) int {
	w := 256
	for w < MaxWindow && w*w < n*(4+StrongLen) {
		w *= 2
	}
	// Take the power of two below when it is closer (in the product).
	if w > 256 && (w/2)*w > n*(4+StrongLen) {
		w /= 2
	}
	return w
}

// Signature computes basis's signature with the given window size; 0 means
// WindowFor(len(basis)). The window is clamped to [MinWindow, MaxWindow] and
// grown when the basis would need more than MaxWindows windows.
func Signature(basis []byte, window int) Sig {
	if window == 0 {
		window = WindowFor(len(basis))
	}
	window = min(max(window, MinWindow), MaxWindow)
	for (len(basis)+window-1)/window > MaxWindows && window < MaxWindow {
		window *= 2
	}
	n := (len(basis) + window - 1) / window
	s := Sig{
		window: window, basisLen: len(basis), strongLen: StrongLen,
		weak: make([]uint32, n), strong: make([]byte, n*StrongLen),
	}
	for i := range n {
		w := basis[i*window : min((i+1)*window, len(basis))]
		s.weak[i] = weakSum(w)
		strongSum(s.strong[i*StrongLen:(i+1)*StrongLen], w)
	}
	return s
}

// Window returns the window size in bytes.
func (s Sig) Window() int { return s.window }

// BasisLen returns the length of the basis the signature describes.
func (s Sig) BasisLen() int { return s.basisLen }

// MarshalBinary encodes s in the signature format.
func (s Sig) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, 2+2*binary.MaxVarintLen64+len(s.weak)*(4+s.strongLen)))
}

// AppendBinary appends the encoding of s to b.
func (s Sig) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, version, byte(s.strongLen))
	b = binary.AppendUvarint(b, uint64(s.window))
	b = binary.AppendUvarint(b, uint64(s.basisLen))
	for i, w := range s.weak {
		b = binary.LittleEndian.AppendUint32(b, w)
		b = append(b, s.strong[i*s.strongLen:(i+1)*s.strongLen]...)
	}
	return b, nil
}

// minimalUvarint is binary.Uvarint that also refuses a varint longer than
// its value needs (n <= 0), so one signature has one encoding.
func minimalUvarint(b []byte) (v uint64, n int) {
	v, n = binary.Uvarint(b)
	if n > 0 && n != binary.PutUvarint(make([]byte, binary.MaxVarintLen64), v) {
		return 0, -n
	}
	return v, n
}

// ParseSignature decodes a signature that came off the network. It checks
// every field against the limits before allocating, and the allocation is
// never larger than the input.
func ParseSignature(b []byte) (Sig, error) {
	bad := func(what string) (Sig, error) {
		return Sig{}, fmt.Errorf("parse delta signature: %s: %w", what, ErrCorrupt)
	}
	if len(b) < 2 {
		return bad("short header")
	}
	if b[0] != version {
		return bad(fmt.Sprintf("version %d", b[0]))
	}
	sl := int(b[1])
	if sl < 1 || sl > maxStrong {
		return bad(fmt.Sprintf("strong length %d", sl))
	}
	b = b[2:]
	window, n1 := minimalUvarint(b)
	if n1 <= 0 || window < MinWindow || window > MaxWindow {
		return bad("window size")
	}
	b = b[n1:]
	basisLen, n2 := minimalUvarint(b)
	if n2 <= 0 || basisLen > MaxBasis {
		return bad("basis length")
	}
	b = b[n2:]
	n := (basisLen + window - 1) / window
	if n > MaxWindows || uint64(len(b)) != n*uint64(4+sl) {
		return bad(fmt.Sprintf("%d bytes of checksums for %d windows", len(b), n))
	}
	s := Sig{
		window: int(window), basisLen: int(basisLen), strongLen: sl,
		weak: make([]uint32, n), strong: make([]byte, 0, int(n)*sl),
	}
	for i := range s.weak {
		s.weak[i] = binary.LittleEndian.Uint32(b)
		s.strong = append(s.strong, b[4:4+sl]...)
		b = b[4+sl:]
	}
	return s, nil
}

// weakSum is the rolling checksum of w computed from scratch.
func weakSum(w []byte) uint32 {
	const b1, b2, b3 = weakBase, weakBase * weakBase, weakBase * weakBase * weakBase
	const b4 = uint32(b2 * b2 & 0xffffffff)
	var h uint32
	// Four bytes per step keep the multiplications off one dependency chain.
	for ; len(w) >= 4; w = w[4:] {
		h = h*b4 + uint32(w[0])*uint32(b3&0xffffffff) + uint32(w[1])*uint32(b2&0xffffffff) + uint32(w[2])*b1 + uint32(w[3])
	}
	for _, x := range w {
		h = h*weakBase + uint32(x)
	}
	return h
}

// powBase returns weakBase^n mod 2^32, the factor that rolls a byte out of an
// n-byte window.
func powBase(n int) uint32 {
	p, b := uint32(1), uint32(weakBase)
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			p *= b
		}
		b *= b
	}
	return p
}

// strongSum writes the first len(dst) bytes of BLAKE3(w) into dst.
func strongSum(dst, w []byte) {
	sum := blake3.Sum256(w)
	copy(dst, sum[:])
}

// tableBits returns the size (log2) of a hash table for n entries, half full.
func tableBits(n int) int {
	return max(4, bits.Len(uint(2*n)))
}
