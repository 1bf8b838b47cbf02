package dht

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/torrent/bencode"
)

// testLogger sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startNode runs a node on 127.0.0.1 that bootstraps from the given
// nodes; the test's cleanup stops it.
func startNode(t *testing.T, bootstrap ...*Node) *Node {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var boot []string
	for _, b := range bootstrap {
		boot = append(boot, b.Addr().String())
	}
	n, err := New(Options{Conn: pc, Key: privKey{newKey(t)}, Bootstrap: boot, Refresh: 500 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: testLevel}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { n.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		n.Close()
	})
	return n
}

// network starts k nodes, the first alone and the others bootstrapping
// from it, and waits until every node knows another.
func network(t *testing.T, k int) []*Node {
	t.Helper()
	nodes := []*Node{startNode(t)}
	for range k - 1 {
		nodes = append(nodes, startNode(t, nodes[0]))
	}
	waitFor(t, "every node knows every other as good", func() bool {
		for _, n := range nodes {
			if n.srv.Stats().GoodNodes < k-1 {
				return false
			}
		}
		return true
	}, func() {
		for _, n := range nodes {
			var b strings.Builder
			n.srv.WriteStatus(&b)
			t.Log(b.String())
		}
	})
	return nodes
}

func waitFor(t *testing.T, what string, cond func() bool, explain ...func()) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range explain {
				f()
			}
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lookupCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func pubOf(n *Node) ed25519.PublicKey { return n.opts.Key.PublicKey() }

// privKey is a Signer from a raw key.
type privKey struct{ ed25519.PrivateKey }

func (k privKey) PublicKey() ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
func (k privKey) Sign(msg []byte) []byte       { return ed25519.Sign(k.PrivateKey, msg) }

// TestSignedBytes pins what our signature covers to the library's BEP 44
// signing, which every other node verifies with.
func TestSignedBytes(t *testing.T) {
	k := newKey(t)
	v := []byte("d1:al11:192.0.2.1:1ee")
	ours := ed25519.Sign(k, signedBytes([]byte(Salt), 1764720000123, v))
	if theirs := bep44.Sign(k, []byte(Salt), 1764720000123, v); !slices.Equal(ours, theirs) {
		t.Fatal("our BEP 44 signature differs from the library's")
	}
	if got := string(signedBytes([]byte("ab"), 7, []byte("1:x"))); got != "4:salt2:ab3:seqi7e1:v1:x" {
		t.Fatalf("signed bytes %q", got)
	}
}

func addrPorts(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

func TestPublishAndLookUp(t *testing.T) {
	nodes := network(t, 5)
	pub, look := nodes[1], nodes[4]
	if _, err := look.Lookup(lookupCtx(t), pubOf(pub)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("look up before publishing: %v, want ErrNotFound", err)
	}
	seq1, err := pub.Publish(lookupCtx(t), []string{"192.0.2.1:22100", "[2001:db8::1]:22100"})
	if err != nil {
		t.Fatal(err)
	}
	it, err := look.Lookup(lookupCtx(t), pubOf(pub))
	if err != nil {
		t.Fatal(err)
	}
	if want := addrPorts("192.0.2.1:22100", "[2001:db8::1]:22100"); !slices.Equal(it.Addrs, want) || it.Seq != seq1 {
		t.Fatalf("found %v seq %d, want %v seq %d", it.Addrs, it.Seq, want, seq1)
	}
	// The device moves: the new item replaces the old one.
	seq2, err := pub.Publish(lookupCtx(t), []string{"198.51.100.9:4000"})
	if err != nil {
		t.Fatal(err)
	}
	if seq2 <= seq1 {
		t.Fatalf("second publication has seq %d, not above %d", seq2, seq1)
	}
	for _, n := range []*Node{look, nodes[2], nodes[0]} {
		it, err = n.Lookup(lookupCtx(t), pubOf(pub))
		if err != nil {
			t.Fatal(err)
		}
		if want := addrPorts("198.51.100.9:4000"); !slices.Equal(it.Addrs, want) || it.Seq != seq2 {
			t.Fatalf("after the move found %v seq %d, want %v seq %d", it.Addrs, it.Seq, want, seq2)
		}
	}
}

// TestLookUpDialsAFew: an item listing MaxAddrs addresses (a victim's,
// say) gives a looker only MaxDial of them.
func TestLookUpDialsAFew(t *testing.T) {
	nodes := network(t, 3)
	var many []string
	for i := range MaxAddrs {
		many = append(many, netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), 80).String())
	}
	if _, err := nodes[1].Publish(lookupCtx(t), many); err != nil {
		t.Fatal(err)
	}
	it, err := nodes[2].Lookup(lookupCtx(t), pubOf(nodes[1]))
	if err != nil {
		t.Fatal(err)
	}
	if len(it.Addrs) != MaxDial {
		t.Fatalf("found %d addresses of an item listing %d, want %d", len(it.Addrs), MaxAddrs, MaxDial)
	}
}

// plant stores an item in a node's store with signature sig, whatever it
// is: what a hostile node would answer. (It is stored signed by signer
// first, as a node stores what it checked, then its signature replaced.)
func plant(t *testing.T, n *Node, signer ed25519.PrivateKey, seq int64, v []byte, sig []byte) {
	t.Helper()
	pub := signer.Public().(ed25519.PublicKey)
	it := &bep44.Item{V: bencode.Bytes(v), K: [32]byte(pub), Salt: []byte(Salt), Seq: seq}
	copy(it.Sig[:], signedBy(signer, seq, v))
	if err := bep44.NewWrapper(newStore(1), itemExpiry).Put(it); err != nil { // stamps it
		t.Fatal(err)
	}
	copy(it.Sig[:], sig)
	if err := n.store.Put(it); err != nil {
		t.Fatal(err)
	}
}

func signedBy(k ed25519.PrivateKey, seq int64, v []byte) []byte {
	return bep44.Sign(k, []byte(Salt), seq, v)
}

func TestSpoofedItemRefused(t *testing.T) {
	nodes := network(t, 4)
	evil, look := nodes[1], nodes[3]
	victim := newKey(t)
	pub := victim.Public().(ed25519.PublicKey)
	v, err := EncodeItem([]string{"203.0.113.66:80"})
	if err != nil {
		t.Fatal(err)
	}
	// Signed by another key, under the victim's public key.
	plant(t, evil, victim, 1<<50, v, signedBy(newKey(t), 1<<50, v))
	if it, err := look.Lookup(lookupCtx(t), pub); err == nil {
		t.Fatalf("a forged item was accepted: %v", it)
	}
	// Our own check, behind the library's: a forged item never passes.
	if it, err := look.accept([32]byte(pub), []byte(Salt), &found{v: v, seq: 1 << 50, sig: [64]byte(signedBy(newKey(t), 1<<50, v))}); !errors.Is(err, ErrSpoofed) {
		t.Fatalf("accept of a forged item: %v, %v; want ErrSpoofed", it, err)
	}
	// A node refuses to store it too.
	put := bep44.Put{V: bencode.Bytes(v), K: (*[32]byte)(pub), Salt: []byte(Salt), Seq: 7}
	copy(put.Sig[:], signedBy(newKey(t), 7, v))
	if err := bep44.Check(put.ToItem()); !errors.Is(err, bep44.ErrInvalidSignature) {
		t.Fatalf("check of a forged put: %v", err)
	}
}

func TestStaleItemRefused(t *testing.T) {
	nodes := network(t, 4)
	honest, replayer, look := nodes[1], nodes[2], nodes[3]
	device := newKey(t)
	pub := device.Public().(ed25519.PublicKey)
	oldV, _ := EncodeItem([]string{"192.0.2.1:1"})
	newV, _ := EncodeItem([]string{"192.0.2.2:2"})
	plant(t, replayer, device, 100, oldV, signedBy(device, 100, oldV))
	plant(t, honest, device, 200, newV, signedBy(device, 200, newV))
	it, err := look.Lookup(lookupCtx(t), pub)
	if err != nil {
		t.Fatal(err)
	}
	if want := addrPorts("192.0.2.2:2"); !slices.Equal(it.Addrs, want) || it.Seq != 200 {
		t.Fatalf("found %v seq %d, want the newer %v seq 200", it.Addrs, it.Seq, want)
	}
	// The honest node leaves; only the replayed older item is left.
	honest.Close()
	_, err = look.Lookup(lookupCtx(t), pub)
	if !errors.Is(err, ErrStale) {
		t.Fatalf("look up with only a replayed older item: %v, want ErrStale", err)
	}
}

// testLevel is Info; BLUESHIFT_TEST_DEBUG=1 shows the library's chatter.
var testLevel = func() slog.Level {
	if os.Getenv("BLUESHIFT_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}()
