package multicast

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"testing"
)

func TestSealOpenRoundTrip(t *testing.T) {
	id, k := NewSession()
	s, o := NewSealer(id, k), NewOpener(id, k)
	payload := randBytes(3*ShardSize + 17)
	shards, err := Encode(7, 2, payload, 1)
	if err != nil {
		t.Fatal(err)
	}
	asm := NewAssembler()
	var got Payload
	var done bool
	for _, sh := range shards {
		d, err := o.Open(s.Shard(sh))
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != KindShard || d.Shard.Block != 7 {
			t.Fatalf("opened %+v", d)
		}
		if p, ok := asm.Add(d.Shard); ok {
			got, done = p, true
		}
	}
	if !done || got.Block != 7 || got.Enc != 2 || !bytes.Equal(got.Data, payload) {
		t.Fatalf("assembled block %d enc %d, %d bytes (done %v), want block 7 enc 2, %d bytes", got.Block, got.Enc, len(got.Data), done, len(payload))
	}
	for _, p := range [][]byte{s.Probe(), s.End()} {
		if _, err := o.Open(p); err != nil {
			t.Fatal(err)
		}
	}
}

// A stranger without the key can neither inject nor flip a bit, and a
// datagram heard twice is taken once.
func TestOpenRefusesForgedAndReplayed(t *testing.T) {
	id, k := NewSession()
	s, o := NewSealer(id, k), NewOpener(id, k)
	_, other := NewSession()
	stranger := NewSealer(id, other) // knows the session ID, not the key
	sh, _ := Encode(0, 0, randBytes(100), 0)
	good := s.Shard(sh[0])

	if _, err := o.Open(stranger.Shard(sh[0])); !errors.Is(err, ErrForged) {
		t.Fatalf("stranger's datagram: err %v, want ErrForged", err)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-40] ^= 1
	if _, err := o.Open(flipped); !errors.Is(err, ErrForged) {
		t.Fatalf("flipped datagram: err %v, want ErrForged", err)
	}
	hdr := bytes.Clone(good)
	hdr[20] ^= 1 // the sequence number, in the clear header
	if _, err := o.Open(hdr); !errors.Is(err, ErrForged) {
		t.Fatalf("datagram with a changed header: err %v, want ErrForged", err)
	}
	if _, err := o.Open(good); err != nil {
		t.Fatalf("the sender's datagram after forgeries: %v", err)
	}
	if _, err := o.Open(good); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed datagram: err %v, want ErrReplay", err)
	}
}

func TestReplayWindow(t *testing.T) {
	var w replayWindow
	for _, seq := range []uint64{1, 3, 2, 10, 9, 5000, 4000} {
		if w.seen(seq) {
			t.Fatalf("%d seen before it came", seq)
		}
		w.mark(seq)
		if !w.seen(seq) {
			t.Fatalf("%d not seen after it came", seq)
		}
	}
	if !w.seen(10) {
		t.Fatal("10 is more than the window behind 5000: must count as seen")
	}
	if w.seen(4999) || w.seen(4001) {
		t.Fatal("a sequence number inside the window that never came counts as seen")
	}
}

func TestPeekSessionRefusesBadLengths(t *testing.T) {
	for _, n := range []int{0, 4, headerLen + tagLen - 1, MaxDatagram + 1} {
		p := make([]byte, n)
		copy(p, magic[:])
		if n > 4 {
			p[4] = Version
		}
		if _, err := PeekSession(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%d bytes: err %v, want ErrMalformed", n, err)
		}
	}
}

// Every group rebuilds from any k of its k+m shards: losses up to the
// parity cost no repair.
func TestFECRebuildsLostShards(t *testing.T) {
	payload := randBytes(MaxGroupShards*ShardSize*2 + 500) // three groups, the last short
	const m = 4
	shards, err := Encode(3, 1, payload, m)
	if err != nil {
		t.Fatal(err)
	}
	asm := NewAssembler()
	lost := map[[2]int]int{}
	var got []byte
	for _, sh := range shards {
		g := int(sh.Group)
		// Lose m shards of each group, data ones first.
		if lost[[2]int{g, 0}] < m && int(sh.Index)%2 == 0 {
			lost[[2]int{g, 0}]++
			continue
		}
		if p, ok := asm.Add(sh); ok {
			got = p.Data
		}
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("rebuilt %d bytes, want the %d sent", len(got), len(payload))
	}
	// One more loss than parity: the block does not complete (unicast repairs it).
	asm = NewAssembler()
	for _, sh := range shards {
		if sh.Group == 0 && sh.Index <= m {
			continue
		}
		if _, ok := asm.Add(sh); ok {
			t.Fatal("a group missing more shards than its parity completed")
		}
	}
}

func TestAssemblerSkipsHeldBlocks(t *testing.T) {
	shards, _ := Encode(9, 0, randBytes(2000), 0)
	asm := NewAssembler()
	asm.Skip(9)
	for _, sh := range shards {
		if _, ok := asm.Add(sh); ok {
			t.Fatal("a skipped block was delivered")
		}
	}
}

func TestPacerBacksOffAndRecovers(t *testing.T) {
	p := NewPacer(10 << 20)
	if p.Parity(32) != 0 {
		t.Fatal("parity before any loss: a clean LAN pays no FEC")
	}
	p.Report(0.10)
	if r := p.Rate(); r != 5<<20 {
		t.Fatalf("rate after 10%% loss: %d, want half the cap", r)
	}
	if m := p.Parity(32); m < 2 {
		t.Fatalf("parity after 10%% loss: %d", m)
	}
	for range 40 {
		p.Report(0)
	}
	if r := p.Rate(); r != 10<<20 {
		t.Fatalf("rate after clean reports: %d, want the cap", r)
	}
	for range 20 {
		p.Report(1)
	}
	if r := p.Rate(); r < (10<<20)/64 {
		t.Fatalf("rate %d under the floor", r)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1})
	r.Read(b)
	return b
}

// TestDatagramGolden pins the datagram format: a shard of a fixed payload
// sealed under a fixed key, session and sequence number.
func TestDatagramGolden(t *testing.T) {
	s := NewSealer(SessionID{1, 2, 3, 4, 5, 6, 7, 8}, Key{9})
	s.seq = 41
	shards, err := Encode(5, 1, []byte("blueshift multicast"), 0)
	if err != nil {
		t.Fatal(err)
	}
	p := s.Shard(shards[0])
	if len(p) != MaxDatagram {
		t.Fatalf("shard datagram of %d bytes, want %d", len(p), MaxDatagram)
	}
	const head = "42534d43" + "01" + "02" + "0102030405060708" + "000000000000002a"
	if got := hex.EncodeToString(p[:headerLen]); got != head[:2*headerLen] {
		t.Fatalf("header %s, want %s", got, head[:2*headerLen])
	}
	sum := sha256.Sum256(p)
	if got := hex.EncodeToString(sum[:8]); got != goldenShard {
		t.Fatalf("sealed shard hashes to %s, want %s (the format changed: bump Version)", got, goldenShard)
	}
}

const goldenShard = "2f1df4625c23ef8c"

// A lossy receiver holds at most maxBlocksPending partial blocks: the
// oldest is given up (unicast repairs it), and newer blocks still complete.
func TestAssemblerBoundsPartialBlocks(t *testing.T) {
	asm := NewAssembler()
	for i := range uint32(200) {
		shards, _ := Encode(i, 0, randBytes(3*ShardSize), 0)
		asm.Add(shards[0]) // never completes: its other shards are lost
		if asm.Pending() > maxBlocksPending {
			t.Fatalf("%d partial blocks held after %d blocks; want at most %d", asm.Pending(), i+1, maxBlocksPending)
		}
	}
	payload := randBytes(2 * ShardSize)
	shards, _ := Encode(1000, 0, payload, 0)
	var got []byte
	for _, sh := range shards {
		if p, ok := asm.Add(sh); ok {
			got = p.Data
		}
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("a block sent whole after many partial ones did not complete")
	}
}
