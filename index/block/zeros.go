package block

import (
	"sync"

	"github.com/zeebo/blake3"
)

// IsZeros reports whether h is the hash of size zero bytes: a block that is
// all hole (or all zeros) in a sparse file. Its content is known without
// asking anyone, so a puller neither fetches nor writes it, and the file it
// builds keeps a hole there.
func IsZeros(h Hash, size uint32) bool {
	return size > 0 && h == zerosHash(size)
}

// zeros caches the hash of n zero bytes by n. A file's blocks have as many
// sizes as blocks, and IsZeros is asked of every block of a file at each
// status (the bytes still needed) as well as by its pull: the cache holds
// the sizes of a large file (maxZeros, ~1 MiB), and past that an entry
// goes at random for each new one, so sizes a peer invents cost only time.
var zeros struct {
	sync.Mutex
	m map[uint32]Hash
}

const maxZeros = 1 << 14

// A size not in the cache is hashed from a ladder (hashing size zero bytes
// for each block of a file hashed the whole file again): hasher states that
// have taken in i*rungStep zero bytes (i = 1..len(rungs)), so the hash of
// any size costs a clone of the highest rung below it and at most rungStep
// more bytes, up to ladderTop (the chunker's default maximum block size;
// larger sizes are rare and hashed on from the top rung). ~330 KiB in all.
const (
	rungStep  = 8 << 10
	ladderTop = 256 << 10
)

var ladder struct {
	once  sync.Once
	rungs [ladderTop / rungStep]*blake3.Hasher // read-only once built
}

var zeroPage [64 << 10]byte

func zerosHash(size uint32) Hash {
	zeros.Lock()
	h, ok := zeros.m[size]
	zeros.Unlock()
	if ok {
		return h
	}
	ladder.once.Do(buildLadder)
	d := blake3.New()
	n := int(size)
	if k := min(n/rungStep, len(ladder.rungs)); k > 0 {
		d = ladder.rungs[k-1].Clone()
		n -= k * rungStep
	}
	writeZeros(d, n)
	copy(h[:], d.Sum(nil))
	zeros.Lock()
	if zeros.m == nil {
		zeros.m = make(map[uint32]Hash)
	}
	for n := range zeros.m {
		if len(zeros.m) < maxZeros {
			break
		}
		delete(zeros.m, n)
	}
	zeros.m[size] = h
	zeros.Unlock()
	return h
}

func buildLadder() {
	d := blake3.New()
	for i := range ladder.rungs {
		writeZeros(d, rungStep)
		ladder.rungs[i] = d.Clone()
	}
}

// writeZeros writes n zero bytes to d.
func writeZeros(d *blake3.Hasher, n int) {
	for ; n > 0; n -= len(zeroPage) {
		d.Write(zeroPage[:min(n, len(zeroPage))])
	}
}
