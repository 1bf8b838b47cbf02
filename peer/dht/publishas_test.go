package dht

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// TestPublishAsLookUpAs: items of a key that is not the node's, under two
// salts, are found apart from each other, by a node that did not publish
// them, and leave the node's own address item alone.
func TestPublishAsLookUpAs(t *testing.T) {
	nodes := network(t, 4)
	sender, receiver := nodes[1], nodes[3]
	if _, err := sender.Publish(lookupCtx(t), []string{"192.0.2.7:22100"}); err != nil {
		t.Fatal(err)
	}
	shared := privKey{newKey(t)}
	if _, err := receiver.LookupAs(lookupCtx(t), shared.PublicKey(), "send"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("look up before publishing: %v, want ErrNotFound", err)
	}
	if _, err := sender.PublishAs(lookupCtx(t), shared, "send", []string{"192.0.2.1:22100"}); err != nil {
		t.Fatal(err)
	}
	if _, err := receiver.PublishAs(lookupCtx(t), shared, "recv", []string{"198.51.100.2:22100"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		n          *Node
		salt, want string
	}{{receiver, "send", "192.0.2.1:22100"}, {sender, "recv", "198.51.100.2:22100"}, {nodes[2], "send", "192.0.2.1:22100"}} {
		it, err := c.n.LookupAs(lookupCtx(t), shared.PublicKey(), c.salt)
		if err != nil {
			t.Fatalf("look up salt %q: %v", c.salt, err)
		}
		if want := addrPorts(c.want); !slices.Equal(it.Addrs, want) {
			t.Fatalf("salt %q: found %v, want %v", c.salt, it.Addrs, want)
		}
	}
	it, err := receiver.Lookup(lookupCtx(t), pubOf(sender))
	if err != nil || !slices.Equal(it.Addrs, addrPorts("192.0.2.7:22100")) {
		t.Fatalf("the sender's own item after PublishAs: %v, %v", it.Addrs, err)
	}
	if _, err := sender.PublishAs(lookupCtx(t), shared, Salt, []string{"192.0.2.1:22100"}); err == nil {
		t.Fatal("PublishAs under the address item's salt was accepted")
	}
}

// TestObservedIn: a ping sent from a socket of its own to a node comes
// back saying where the node saw that socket.
func TestObservedIn(t *testing.T) {
	n := startNode(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// The node may also send queries of its own to a socket it has just
	// heard from, and a loaded machine may drop a datagram: ask again each
	// second and read past anything that is not the reply, as publicIP does.
	deadline := time.Now().Add(30 * time.Second)
	b := make([]byte, 1500)
	var k int
	for {
		if _, err := pc.WriteTo(PingQuery("t1"), n.Addr()); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(time.Second))
		var err error
		k, _, err = pc.ReadFrom(b)
		if err == nil {
			var m krpc.Msg
			if bencode.Unmarshal(b[:k], &m) == nil && m.T == "t1" && m.Y == "r" {
				break
			}
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reply to the ping in 30 s: %v", err)
		}
	}
	if _, ok := ObservedIn(b[:k], "t2"); ok {
		t.Fatal("a reply to another transaction was taken")
	}
	got, ok := ObservedIn(b[:k], "t1")
	if want := pc.LocalAddr().(*net.UDPAddr).AddrPort(); !ok || got != netip.AddrPortFrom(want.Addr().Unmap(), want.Port()) {
		t.Fatalf("observed %v (%v), want %v", got, ok, want)
	}
}
