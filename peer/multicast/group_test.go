package multicast

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// openLo opens a Group on loopback at a port of the test's own.
func openLo(t *testing.T, ctx context.Context, port int) *Group {
	t.Helper()
	g, err := Open(ctx, Options{Interfaces: []string{"lo"}, Port: port})
	if err != nil {
		t.Skipf("no multicast on loopback here: %v", err)
	}
	return g
}

func runGroups(t *testing.T, gs ...*Group) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, g := range gs {
		wg.Go(func() { g.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// Two receivers on real sockets each get every block of a session sent
// once, and refuse a stranger's datagrams.
func TestGroupDeliversToEveryReceiver(t *testing.T) {
	ctx := context.Background()
	const port = 21990
	send, a, b, stranger := openLo(t, ctx, port), openLo(t, ctx, port), openLo(t, ctx, port), openLo(t, ctx, port)
	runGroups(t, send, a, b, stranger)
	id, k := NewSession()
	ra, rb := a.Register(id, k), b.Register(id, k)
	defer a.Unregister(id)
	defer b.Unregister(id)
	fam := send.Families()[0]
	s := NewSealer(id, k)
	_, wrong := NewSession()
	forger := NewSealer(id, wrong)

	// Probe until both heard it (a datagram may be lost, even here).
	deadline := time.Now().Add(30 * time.Second)
	for heard := 0; heard < 2; {
		if time.Now().After(deadline) {
			t.Fatal("probes never arrived")
		}
		if err := send.Send(fam, s.Probe()); err != nil {
			t.Fatal(err)
		}
		for _, r := range []*Receiver{ra, rb} {
			select {
			case <-r.Probed():
				heard++
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	blocks := map[uint32][]byte{}
	pacer := NewPacer(50 << 20)
	for i := range uint32(20) {
		blocks[i] = randBytes(int(i)*997 + 100)
		shards, err := Encode(i, 0, blocks[i], 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards {
			pacer.Wait(ctx, MaxDatagram)
			if err := send.Send(fam, s.Shard(sh)); err != nil {
				t.Fatal(err)
			}
			// Forged shards of the same block, with the session's ID.
			stranger.Send(fam, forger.Shard(Shard{Block: i, Size: sh.Size, Group: sh.Group, Index: sh.Index, K: sh.K, M: sh.M, Data: bytes.Repeat([]byte{0xee}, ShardSize)}))
		}
	}
	send.Send(fam, s.End())
	for _, r := range []*Receiver{ra, rb} {
		got := map[uint32]bool{}
		for len(got) < len(blocks) {
			select {
			case p := <-r.Payloads():
				if !bytes.Equal(p.Data, blocks[p.Block]) {
					t.Fatalf("block %d differs from the one sent", p.Block)
				}
				got[p.Block] = true
			case <-time.After(30 * time.Second):
				t.Fatalf("got %d of %d blocks", len(got), len(blocks))
			}
		}
	}
	for _, g := range []*Group{a, b} {
		if st := g.Stats(); st.Refused == 0 {
			t.Fatalf("stats %+v: the forged datagrams were not refused", st)
		}
	}
}

// A receiver that joins a session under way counts as lost none of what
// was sent before its first datagram, and takes any authentic datagram
// (not only a probe) as proof that the group works.
func TestReceiverJoinsUnderWay(t *testing.T) {
	id, k := NewSession()
	s := NewSealer(id, k)
	for range 1000 {
		s.Probe() // sent before the receiver was there
	}
	r := newReceiver(id, k)
	shards, _ := Encode(0, 0, randBytes(5*ShardSize), 0)
	for i, sh := range shards {
		p := s.Shard(sh)
		if i == 2 {
			continue // one lost
		}
		if err := r.take(IPv4, p); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case fam := <-r.Probed():
		if fam != IPv4 {
			t.Fatalf("heard on %v", fam)
		}
	default:
		t.Fatal("a shard did not show the group works")
	}
	if loss, n := r.Loss(); n != 5 || loss != 0.2 {
		t.Fatalf("loss %.2f of %d datagrams; want 0.20 of 5 (one of the five since joining)", loss, n)
	}
}
