package multicast

import (
	"bytes"
	"testing"
)

// FuzzOpen feeds the decoder arbitrary datagrams under a key the fuzzer
// knows, so it reaches the body decoder: no input panics, and what opens
// re-seals to the same bytes.
func FuzzOpen(f *testing.F) {
	id := SessionID{1, 2, 3, 4, 5, 6, 7, 8}
	k := Key{9}
	s := NewSealer(id, k)
	shards, _ := Encode(1, 0, bytes.Repeat([]byte("blueshift"), 300), 1)
	f.Add(s.Probe())
	f.Add(s.Shard(shards[0]))
	f.Add(s.End())
	f.Add([]byte("BSMC\x01\x02"))
	f.Fuzz(func(t *testing.T, p []byte) {
		o := NewOpener(id, k)
		d, err := o.Open(p)
		if err != nil {
			return
		}
		if d.Kind == KindShard {
			re := &Sealer{id: id, aead: s.aead, seq: d.Seq - 1}
			if got := re.Shard(d.Shard); !bytes.Equal(got, p) {
				t.Fatalf("re-sealed shard differs")
			}
			NewAssembler().Add(d.Shard)
		}
	})
}

// FuzzShard feeds the shard body decoder directly (no AEAD in the way).
func FuzzShard(f *testing.F) {
	shards, _ := Encode(1, 0, bytes.Repeat([]byte("x"), 3000), 2)
	for _, sh := range shards[:2] {
		b := make([]byte, shardHead)
		b[8] = sh.Enc
		f.Add(append(b, sh.Data...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sh, err := decodeShard(b)
		if err != nil {
			return
		}
		a := NewAssembler()
		a.Add(sh)
	})
}
