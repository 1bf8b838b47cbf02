package daemon

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

func quicAddr(t *testing.T, s string) transport.Addr {
	t.Helper()
	a, err := transport.Parse("quic://" + s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestRendezvousTable: an offer's poll is answered with the address of a
// device that looked for it under its locator (and only that locator),
// that device gets the offer's address, an offer unpolled for longer than
// rendezvousLinger is forgotten, and the table keeps maxRendezvous offers.
func TestRendezvousTable(t *testing.T) {
	var rt rendezvousTable
	sender, receiver := quicAddr(t, "203.0.113.1:22100"), quicAddr(t, "203.0.113.2:40000")
	now := time.Now()
	// A first poll with nobody looking: noted, answered when cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if ack, ok := rt.offer(ctx, "dev-a", "7Q", sender, now).(*wire.RendezvousAck); !ok || len(ack.Knocks) != 0 || ack.Observed != sender {
		t.Fatalf("first poll: %+v", ack)
	}
	if got := rt.find("XX", receiver, now); len(got) != 0 {
		t.Fatalf("another locator finds %v", got)
	}
	got := rt.find("7Q", receiver, now)
	if len(got) != 1 || got[0] != sender {
		t.Fatalf("find: %v, want [%v]", got, sender)
	}
	// The next poll is answered at once with the knock, then it is spent.
	done := make(chan wire.Message, 1)
	go func() { done <- rt.offer(context.Background(), "dev-a", "7Q", sender, now) }()
	select {
	case m := <-done:
		ack := m.(*wire.RendezvousAck)
		if len(ack.Knocks) != 1 || ack.Knocks[0] != receiver {
			t.Fatalf("poll after a find: knocks %v, want [%v]", ack.Knocks, receiver)
		}
	case <-time.After(rendezvousPoll - time.Second):
		t.Fatal("a poll with a knock waiting was not answered at once")
	}
	// A waiting poll is woken by a find.
	go func() { done <- rt.offer(context.Background(), "dev-a", "7Q", sender, now) }()
	for {
		rt.mu.Lock()
		waiting := len(rt.offers[rdvKey{"dev-a", "7Q"}].knocks) == 0
		rt.mu.Unlock()
		if waiting {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	rt.find("7Q", receiver, time.Now())
	if ack := (<-done).(*wire.RendezvousAck); len(ack.Knocks) != 1 {
		t.Fatalf("a waiting poll woken by a find: knocks %v", ack.Knocks)
	}
	// Forgotten after rendezvousLinger without a poll.
	if got := rt.find("7Q", receiver, time.Now().Add(2*rendezvousLinger)); len(got) != 0 {
		t.Fatalf("an offer not polled for %v is still found: %v", 2*rendezvousLinger, got)
	}
	// Bounded.
	var full rendezvousTable
	for i := range maxRendezvous {
		full.offer(ctx, fmt.Sprint("dev", i), "7Q", sender, now)
	}
	if m, ok := full.offer(ctx, "one-more", "7Q", sender, now).(*wire.ErrorResponse); !ok || m.Code != wire.CodeBusy {
		t.Fatalf("offer %d: %v, want busy", maxRendezvous+1, m)
	}
	if got := full.find("7Q", receiver, now); len(got) != wire.MaxRendezvousAddrs {
		t.Fatalf("a find answers %d offers, want at most %d", len(got), wire.MaxRendezvousAddrs)
	}
}
