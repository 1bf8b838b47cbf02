package delta

import (
	"encoding/binary"
	"fmt"
)

// Apply rebuilds a target from basis and a delta that came off the network.
// It rejects a malformed delta, a delta made for a basis of another length,
// and a target longer than maxSize, with an error; it never allocates more
// than maxSize bytes. The caller verifies the result's hash.
func Apply(basis []byte, delta []byte, maxSize int) ([]byte, error) {
	bad := func(what string) ([]byte, error) {
		return nil, fmt.Errorf("apply delta: %s: %w", what, ErrCorrupt)
	}
	if len(delta) < 1 || delta[0] != version {
		return bad("bad version")
	}
	p := delta[1:]
	window, n := binary.Uvarint(p)
	if n <= 0 || window < MinWindow || window > MaxWindow {
		return bad("window size")
	}
	p = p[n:]
	basisLen, n := binary.Uvarint(p)
	if n <= 0 {
		return bad("basis length")
	}
	p = p[n:]
	if basisLen != uint64(len(basis)) {
		return nil, fmt.Errorf("apply delta: made for a %d-byte basis, have %d bytes: %w", basisLen, len(basis), ErrBasisMismatch)
	}
	targetLen, n := binary.Uvarint(p)
	if n <= 0 {
		return bad("target length")
	}
	p = p[n:]
	if targetLen > uint64(max(maxSize, 0)) {
		return nil, fmt.Errorf("apply delta: target of %d bytes, limit %d: %w", targetLen, maxSize, ErrTooLarge)
	}
	windows := (uint64(len(basis)) + window - 1) / window
	out := make([]byte, 0, targetLen)
	next := uint64(0)
	for len(p) > 0 {
		tag, n := binary.Uvarint(p)
		if n <= 0 {
			return bad("op tag")
		}
		p = p[n:]
		count := tag >> 1
		if count == 0 {
			return bad("empty op")
		}
		room := targetLen - uint64(len(out))
		if tag&1 == 0 {
			if count > room || count > uint64(len(p)) {
				return bad(fmt.Sprintf("literal of %d bytes", count))
			}
			out = append(out, p[:count]...)
			p = p[count:]
			continue
		}
		rel, n := binary.Varint(p)
		if n <= 0 {
			return bad("copy start")
		}
		p = p[n:]
		start := next + uint64(rel) // wraps for a negative rel; checked below
		if rel < 0 && uint64(-rel) > next || start >= windows || count > windows-start {
			return bad(fmt.Sprintf("copy of %d windows from window %d of %d", count, int64(next)+rel, windows))
		}
		from := start * window
		to := min((start+count)*window, uint64(len(basis)))
		if to-from > room {
			return bad(fmt.Sprintf("copy of %d bytes with %d left", to-from, room))
		}
		out = append(out, basis[from:to]...)
		next = start + count
	}
	if uint64(len(out)) != targetLen {
		return bad(fmt.Sprintf("ops make %d bytes, want %d", len(out), targetLen))
	}
	return out, nil
}
