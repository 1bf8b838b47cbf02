package discovery

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func newClock(t time.Time) *clock        { return &clock{t: t} }
func idOf(k Signer) identity.DeviceID    { return identity.FromPublicKey(k.PublicKey()) }

func newTestDiscovery(t *testing.T, c *clock, onUpdate func(identity.DeviceID)) *Discovery {
	t.Helper()
	d, err := New(Options{
		Key:      testKey(9),
		Now:      c.Now,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnUpdate: onUpdate,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func packet(t *testing.T, key Signer, fam family, at time.Time, addrs ...string) []byte {
	t.Helper()
	a := announcement{family: fam, time: at}
	for _, s := range addrs {
		a.addresses = append(a.addresses, ap(s))
	}
	return mustEncode(t, key, a)
}

func TestHandleFillsCache(t *testing.T) {
	c := newClock(testTime)
	var updates []identity.DeviceID
	d := newTestDiscovery(t, c, func(id identity.DeviceID) { updates = append(updates, id) })
	alice := testKey(1)

	p := packet(t, alice, family4, c.Now(), "0.0.0.0:22000", "[::]:22000", "192.0.2.9:22001", "127.0.0.1:22002", "224.0.0.1:22003", "192.0.2.9:0")
	if _, err := d.handle(p, ap("192.0.2.1:40000"), family4); err != nil {
		t.Fatal(err)
	}
	// Unspecified of either family means the source; loopback, multicast
	// and port 0 are dropped; duplicates fold.
	want := []netip.AddrPort{ap("192.0.2.1:22000"), ap("192.0.2.9:22001")}
	if got := d.Lookup(idOf(alice)); !slices.Equal(got, want) {
		t.Fatalf("lookup %v, want %v", got, want)
	}

	// IPv6 link-local addresses take the zone of the interface they came in on.
	c.Advance(time.Second)
	p = packet(t, alice, family6, c.Now(), "[::]:22000", "[fe80::2]:22001")
	if _, err := d.handle(p, netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("eth0"), 40000), family6); err != nil {
		t.Fatal(err)
	}
	want = append(want, netip.AddrPortFrom(netip.MustParseAddr("fe80::1").WithZone("eth0"), 22000),
		netip.AddrPortFrom(netip.MustParseAddr("fe80::2").WithZone("eth0"), 22001))
	slices.SortFunc(want, func(a, b netip.AddrPort) int { return a.Compare(b) })
	if got := d.Lookup(idOf(alice)); !slices.Equal(got, want) {
		t.Fatalf("lookup %v, want %v", got, want)
	}
	if len(updates) != 2 {
		t.Fatalf("%d updates, want 2 (one per announcement with a new address)", len(updates))
	}

	// The same addresses again bring no update; they expire after the TTL
	// unless announced again.
	c.Advance(time.Second)
	if _, err := d.handle(packet(t, alice, family4, c.Now(), "0.0.0.0:22000"), ap("192.0.2.1:40000"), family4); err != nil {
		t.Fatal(err)
	}
	if len(updates) != 2 {
		t.Fatalf("%d updates after a repeat, want 2", len(updates))
	}
	c.Advance(DefaultTTL - time.Second)
	if got := d.Lookup(idOf(alice)); !slices.Equal(got, []netip.AddrPort{ap("192.0.2.1:22000")}) {
		t.Fatalf("after TTL of the others: lookup %v, want only the re-announced one", got)
	}
	c.Advance(2 * time.Second)
	if got := d.Lookup(idOf(alice)); len(got) != 0 {
		t.Fatalf("after TTL: lookup %v, want none", got)
	}
}

// TestForgeryCannotRedirect is the attacker's menu: none of it may put an
// address of the attacker's choosing under Alice's device ID.
func TestForgeryCannotRedirect(t *testing.T) {
	c := newClock(testTime)
	d := newTestDiscovery(t, c, nil)
	alice, mallory := testKey(1), testKey(2)
	aliceSrc, mallorySrc := ap("192.0.2.1:21127"), ap("192.0.2.66:21127")

	genuine := packet(t, alice, family4, c.Now(), "0.0.0.0:22000")
	if _, err := d.handle(genuine, aliceSrc, family4); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Second)

	// Alice's public key, Mallory's signature.
	forged := packet(t, mallory, family4, c.Now(), "192.0.2.66:22000")
	copy(forged[13:], alice.PublicKey())
	// Alice's packet with Mallory's address swapped in.
	tampered := packet(t, alice, family4, c.Now(), "192.0.2.1:22000")
	copy(tampered[headerSize+1:], []byte{192, 0, 2, 66})
	// A fresh packet of Alice's sent for IPv6, heard by Mallory and replayed
	// on IPv4 (each family keeps its own replay window).
	crossFamily := packet(t, alice, family6, c.Now(), "[::]:22000")

	tests := []struct {
		name string
		p    []byte
		fam  family
		want error
	}{
		{"someone else's key", forged, family4, ErrBadSignature},
		{"tampered address", tampered, family4, ErrBadSignature},
		{"replay from another source", genuine, family4, ErrReplay},
		{"replay on the other family", crossFamily, family4, ErrReplay},
		{"stale", packet(t, alice, family4, c.Now().Add(-DefaultMaxAge-time.Second), "0.0.0.0:22000"), family4, ErrStale},
		{"future", packet(t, alice, family4, c.Now().Add(DefaultMaxSkew+time.Second), "0.0.0.0:22000"), family4, ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := d.handle(tt.p, mallorySrc, tt.fam); !errors.Is(err, tt.want) {
				t.Fatalf("handle: %v, want %v", err, tt.want)
			}
			if got := d.Lookup(idOf(alice)); !slices.Equal(got, []netip.AddrPort{ap("192.0.2.1:22000")}) {
				t.Fatalf("alice's addresses are %v", got)
			}
		})
	}

	// Mallory's own, valid announcement lands under Mallory's ID only.
	if _, err := d.handle(packet(t, mallory, family4, c.Now(), "0.0.0.0:22000"), mallorySrc, family4); err != nil {
		t.Fatal(err)
	}
	if got := d.Lookup(idOf(mallory)); !slices.Equal(got, []netip.AddrPort{ap("192.0.2.66:22000")}) {
		t.Fatalf("mallory's addresses are %v", got)
	}
	if got := d.Lookup(idOf(alice)); !slices.Equal(got, []netip.AddrPort{ap("192.0.2.1:22000")}) {
		t.Fatalf("alice's addresses are %v", got)
	}
}

func TestHandleIgnoresSelf(t *testing.T) {
	c := newClock(testTime)
	d := newTestDiscovery(t, c, nil)
	if _, err := d.handle(packet(t, testKey(9), family4, c.Now(), "0.0.0.0:1"), ap("192.0.2.1:1"), family4); !errors.Is(err, errSelf) {
		t.Fatalf("own announcement: %v, want errSelf", err)
	}
	if got := d.Lookup(idOf(testKey(9))); len(got) != 0 {
		t.Fatalf("own addresses cached: %v", got)
	}
}

func TestHandleRateLimitsPerSource(t *testing.T) {
	c := newClock(testTime)
	d := newTestDiscovery(t, c, nil)
	noisy, quiet := ap("192.0.2.66:1"), ap("192.0.2.1:1")
	garbage := []byte("not an announcement")
	for i := range int(perSourceRate.burst) {
		if _, err := d.handle(garbage, noisy, family4); !errors.Is(err, ErrMalformed) {
			t.Fatalf("packet %d: %v, want ErrMalformed", i, err)
		}
	}
	if _, err := d.handle(garbage, noisy, family4); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("packet past the burst: %v, want ErrRateLimited", err)
	}
	// Another source is unaffected, and the noisy one gets a token back
	// after a second.
	if _, err := d.handle(packet(t, testKey(1), family4, c.Now(), "0.0.0.0:1"), quiet, family4); err != nil {
		t.Fatalf("other source: %v", err)
	}
	c.Advance(time.Second)
	if _, err := d.handle(garbage, noisy, family4); !errors.Is(err, ErrMalformed) {
		t.Fatalf("after a second: %v, want ErrMalformed", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	now := testTime
	c := newCache(time.Minute, time.Minute, 3)
	for i := range 10 {
		id := identity.DeviceID{byte(i)}
		now = now.Add(time.Second)
		if _, err := c.accept(id, family4, now, []netip.AddrPort{ap("192.0.2.1:1")}, now); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	n := len(c.mu.devices)
	c.mu.Unlock()
	if n > 3 {
		t.Fatalf("cache holds %d devices, bound is 3", n)
	}
	if got := c.lookup(identity.DeviceID{9}, now); len(got) != 1 {
		t.Fatalf("most recent device evicted: %v", got)
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"no key", Options{}},
		{"bad port", Options{Key: testKey(1), Port: 70000}},
		{"unicast group", Options{Key: testKey(1), Group4: netip.MustParseAddr("192.0.2.1")}},
		{"v4 group as v6", Options{Key: testKey(1), Group6: DefaultGroup4}},
		{"nothing enabled", Options{Key: testKey(1), Disable4: true, Disable6: true}},
	}
	for _, tt := range tests {
		if _, err := New(tt.opts); err == nil {
			t.Errorf("%s: New accepted it", tt.name)
		}
	}
}

// The daemon passes its *identity.Identity.
var _ Signer = (*identity.Identity)(nil)
