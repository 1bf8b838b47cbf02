package chunk

import (
	"hash/maphash"
	"math/rand/v2"
	"testing"
)

// chunkSet cuts data and returns the multiset of its chunks (by content).
func chunkSet(c *cutter, seed maphash.Seed, data []byte) (map[uint64]int, int) {
	set := map[uint64]int{}
	n := 0
	for d := data; len(d) > 0; n++ {
		l := c.cut(d)
		set[maphash.Bytes(seed, d[:l])]++
		d = d[l:]
	}
	return set, n
}

// newChunks counts the chunks of b that a does not have.
func newChunks(a, b map[uint64]int) int {
	n := 0
	for k, v := range b {
		if v > a[k] {
			n += v - a[k]
		}
	}
	return n
}

// randomEdit inserts or deletes 1..8 bytes at offset at.
func randomEdit(r *rand.Rand, data []byte, at int) []byte {
	k := 1 + r.IntN(8)
	out := append([]byte(nil), data[:at]...)
	if r.IntN(2) == 0 {
		for range k {
			out = append(out, byte(r.Uint32()))
		}
		return append(out, data[at:]...)
	}
	return append(out, data[min(at+k, len(data)):]...)
}

// TestEditStability is the property the sync engine relies on: inserting or
// deleting up to 8 bytes changes few chunks; every other chunk of the new
// version exists in the old one.
//
// An edit cannot move the boundary before it (a cut depends only on bytes
// since the previous cut). It replaces the chunk that holds it. Only if it
// lies in the 63-byte hash window before a boundary does it move or remove
// that boundary, and then the following cuts differ until the new chain of
// cuts lands on an old one again (the first Min bytes of every chunk are not
// tested, so a moved cut can hide an old boundary). Hence two bounds:
//
//   - random offsets (the window is hit with probability ~64/Avg = 0.1%):
//     at most 2 new chunks, in every one of the seeded trials;
//   - offsets aimed into the window before a boundary (the worst case):
//     at most 12 new chunks, most often 1 or 2; the histogram is logged.
func TestEditStability(t *testing.T) {
	trials := 400
	if testing.Short() || raceEnabled {
		trials = 150
	}
	p := DefaultParams()
	c := newCutter(p)
	seed := maphash.MakeSeed()
	data := randBytes(42, 2<<20)
	old, _ := chunkSet(&c, seed, data)
	var cuts []int
	for off := 0; off < len(data); {
		off += c.cut(data[off:])
		cuts = append(cuts, off)
	}
	for _, tc := range []struct {
		name      string
		maxNew    int
		placement func(r *rand.Rand) int
	}{
		{"random offset", 2, func(r *rand.Rand) int { return r.IntN(len(data)) }},
		{"before a boundary", 12, func(r *rand.Rand) int { return max(0, cuts[r.IntN(len(cuts))]-1-r.IntN(64)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			hist := make([]int, tc.maxNew+1)
			for trial := range trials {
				edited := randomEdit(r, data, tc.placement(r))
				nw, _ := chunkSet(&c, seed, edited)
				k := newChunks(old, nw)
				if k > tc.maxNew {
					t.Fatalf("trial %d: %d new chunks after a small edit, want <= %d", trial, k, tc.maxNew)
				}
				hist[k]++
			}
			t.Logf("new chunks per edit (0..%d): %v over %d trials", tc.maxNew, hist, trials)
		})
	}
}
