package chunk

import (
	"encoding/binary"

	"github.com/zeebo/blake3"
)

// ctxKeyedGear is the derivation context of a keyed gear table.
const ctxKeyedGear = "blueshift 2026 keyed chunk gear table v1"

// keyedGear returns the gear table of key: the BLAKE3 XOF of the key in
// derive-key mode under ctxKeyedGear, read as 256 little-endian words.
func keyedGear(key *[32]byte) *[256]uint64 {
	h := blake3.NewDeriveKey(ctxKeyedGear)
	h.Write(key[:])
	var buf [256 * 8]byte
	h.Digest().Read(buf[:])
	var g [256]uint64
	for i := range g {
		g[i] = binary.LittleEndian.Uint64(buf[8*i:])
	}
	return &g
}
