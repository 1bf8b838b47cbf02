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

// zeros caches the hash of n zero bytes by n. Chunk sizes of a run of zeros
// are few (the chunker cuts one at its maximum size); the cache is emptied
// when it grows past maxZeros, so sizes a peer invents cost only time.
var zeros struct {
	sync.Mutex
	m map[uint32]Hash
}

const maxZeros = 256

var zeroPage [64 << 10]byte

func zerosHash(size uint32) Hash {
	zeros.Lock()
	h, ok := zeros.m[size]
	zeros.Unlock()
	if ok {
		return h
	}
	d := blake3.New()
	for n := int(size); n > 0; n -= len(zeroPage) {
		d.Write(zeroPage[:min(n, len(zeroPage))])
	}
	copy(h[:], d.Sum(nil))
	zeros.Lock()
	if zeros.m == nil || len(zeros.m) >= maxZeros {
		zeros.m = make(map[uint32]Hash)
	}
	zeros.m[size] = h
	zeros.Unlock()
	return h
}
