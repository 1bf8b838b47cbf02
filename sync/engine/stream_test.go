package engine

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// wordsText is compressible text of n bytes, different for every seed, in
// a vocabulary every seed shares: files that compress far better together
// than alone.
func wordsText(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	for b.Len() < n {
		fmt.Fprintf(&b, "w%03x ", r.IntN(1500))
	}
	return []byte(b.String()[:n])
}

// streamed reports whether d's sessions send payloads into the connection's
// compressed stream.
func streamed(d *device) bool {
	ss := d.e.sessions()
	return len(ss) > 0 && ss[0].packing() == packStream
}

// TestStreamSync: through connections that compress everything in one
// stream (conn.Options.CompressLoopback), small text files, a large text
// file and an incompressible one arrive intact, and the link carries far
// fewer bytes than the files hold.
func TestStreamSync(t *testing.T) {
	key := newKey(t)
	a, b := newDevice(t, "A", key), newDevice(t, "B", key)
	a.compress, b.compress = true, true
	a.addShare(b)
	b.addShare(a)
	total := 0
	for i := range 300 {
		data := wordsText(uint64(i), 500+i*11)
		total += len(data)
		mustWrite(t, filepath.Join(a.dir, tinyName(i)), data)
	}
	big := wordsText(1000, 1<<20)
	random := randBytes(256 << 10)
	mustWrite(t, filepath.Join(a.dir, "big.txt"), big)
	mustWrite(t, filepath.Join(a.dir, "random.bin"), random)
	total += len(big) + len(random)
	a.rescan()
	var count wireCount
	linkCounted(t, a, b, &count)
	waitConverged(t, a, b)
	if !streamed(a) || !streamed(b) {
		t.Fatalf("the sessions do not use the compressed stream")
	}
	n := count.n.Load()
	t.Logf("%d bytes of files took %d bytes on the wire (%.2f)", total, n, float64(n)/float64(total))
	// The text compresses about 3x; the random file does not.
	if limit := int64(len(random)) + int64(total-len(random))/2; n > limit {
		t.Fatalf("%d bytes on the wire, want at most %d", n, limit)
	}
}

// TestTouchThroughStream: a touch of files the peer holds stays within
// touchBudget bytes a file through the compressed stream too.
func TestTouchThroughStream(t *testing.T) {
	_, _, per := batchedTouchOnWire(t, 300, true)
	t.Logf("a touch through the compressed stream cost %.0f bytes on the wire per file", per)
	if per > touchBudget {
		t.Errorf("a touch cost %.0f bytes on the wire per file, want <= %d", per, touchBudget)
	}
}
