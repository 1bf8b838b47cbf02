package daemon

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/peer"
	"github.com/blueshift-sync/blueshift/peer/dht"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// TestDHTBootstrap: the public routers are used only when nothing else is
// given and the daemon is reachable beyond loopback.
func TestDHTBootstrap(t *testing.T) {
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22100}
	anyIP := &net.TCPAddr{IP: net.IPv6unspecified, Port: 22100}
	for _, tc := range []struct {
		name               string
		configured, option []string
		peer               net.Addr
		want               []string
		public             bool
	}{
		{"option wins", []string{"192.0.2.1:1"}, []string{"127.0.0.1:9"}, anyIP, []string{"127.0.0.1:9"}, false},
		{"then the configuration", []string{"192.0.2.1:1"}, nil, anyIP, []string{"192.0.2.1:1"}, false},
		{"loopback only: nobody", nil, nil, lo, nil, false},
		{"else the public routers", nil, nil, anyIP, PublicBootstrap, true},
	} {
		if got, public := dhtBootstrap(tc.configured, tc.option, tc.peer); !slices.Equal(got, tc.want) || public != tc.public {
			t.Errorf("%s: %v (public %v), want %v (public %v)", tc.name, got, public, tc.want, tc.public)
		}
	}
}

func TestDHTListen(t *testing.T) {
	lo := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	anyIP := &net.TCPAddr{IP: net.IPv6unspecified, Port: 22100}
	for _, tc := range []struct {
		configured, option, peerListen string
		peer                           net.Addr
		want                           string
		chosen                         bool
	}{
		{"", "127.0.0.1:0", ":22100", anyIP, "127.0.0.1:0", true},
		{":6000", "", ":22100", anyIP, ":6000", true},
		{"", "", ":22100", anyIP, ":22101", false},
		{"", "", "127.0.0.1:40000", lo, "127.0.0.1:40001", false},
		{"", "", "127.0.0.1:0", lo, "127.0.0.1:0", false}, // a random peer port: a random DHT port
	} {
		if got, chosen := dhtListen(tc.configured, tc.option, tc.peerListen, tc.peer); got != tc.want || chosen != tc.chosen {
			t.Errorf("dhtListen(%q, %q, %v) = %q, %v; want %q, %v", tc.configured, tc.option, tc.peer, got, chosen, tc.want, tc.chosen)
		}
	}
}

// TestPublishable: reflexive addresses come first, our own after, each
// once, names and bad ones dropped, at most dht.MaxAddrs.
func TestPublishable(t *testing.T) {
	own := []string{"10.0.0.2:22100", "192.168.1.5:22100"}
	got := publishable([]string{"203.0.113.7:40123", "10.0.0.2:22100", "example.com:1", "203.0.113.7:0"}, own)
	if want := []string{"203.0.113.7:40123", "10.0.0.2:22100", "192.168.1.5:22100"}; !slices.Equal(got, want) {
		t.Fatalf("publishable = %v, want %v", got, want)
	}
	var many []string
	for i := range 20 {
		many = append(many, net.JoinHostPort("192.0.2."+strconv.Itoa(i+1), "1"))
	}
	if got := publishable(many, nil); len(got) != dht.MaxAddrs {
		t.Fatalf("%d addresses published, want %d", len(got), dht.MaxAddrs)
	}
}

// TestReachedBy: a device reached through a relay is not counted as
// connected, so the DHT looks it up (its dialer tries what is found to
// replace the relayed connection); a direct or LAN one is.
func TestReachedBy(t *testing.T) {
	var lan, direct, relayed identity.DeviceID
	lan[0], direct[0], relayed[0] = 1, 2, 3
	d, r := reachedBy([]peer.Connection{
		{Device: lan, Reach: peer.ReachLAN},
		{Device: direct, Reach: peer.ReachDirect},
		{Device: relayed, Reach: peer.ReachRelayed, Via: lan},
	})
	if !d[lan] || !d[direct] || d[relayed] || len(d) != 2 {
		t.Errorf("connected directly: %v", d)
	}
	if !r[relayed] || len(r) != 1 {
		t.Errorf("relayed: %v", r)
	}
}

// TestListenAt: only the listening addresses at the IP a connection comes
// from are kept, at most wire.MaxIntroAddrs, well-formed, no duplicates.
func TestListenAt(t *testing.T) {
	from := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		name string
		caps []string
		want []string
	}{
		{"at the IP it came from", []string{"key=x", listenCap + "192.0.2.7:22000"}, []string{"192.0.2.7:22000"}},
		{"another IP: another host, or behind a NAT", []string{listenCap + "198.51.100.1:22000", listenCap + "10.0.0.2:22000"}, nil},
		{"port 0 or garbage", []string{listenCap + "192.0.2.7:0", listenCap + "nope", listenCap}, nil},
		{"duplicates once", []string{listenCap + "192.0.2.7:1", listenCap + "192.0.2.7:1"}, []string{"192.0.2.7:1"}},
		{"IPv4 in IPv6", []string{listenCap + "[::ffff:192.0.2.7]:5"}, []string{"192.0.2.7:5"}},
		{"at most MaxIntroAddrs", []string{listenCap + "192.0.2.7:1", listenCap + "192.0.2.7:2", listenCap + "192.0.2.7:3", listenCap + "192.0.2.7:4", listenCap + "192.0.2.7:5"},
			[]string{"192.0.2.7:1", "192.0.2.7:2", "192.0.2.7:3", "192.0.2.7:4"}},
	} {
		if got := listenAt(tc.caps, from); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestNoPublicDHT: with NoPublicDHT, a daemon that would bootstrap from the
// public routers does not open (its error says what to pass instead), and
// one given a bootstrap of its own opens. Neither sends anything: Open
// fails before the DHT node exists, and the daemon that opens is stopped
// before it runs.
func TestNoPublicDHT(t *testing.T) {
	home := newHome(t)
	opts := Options{Home: home, Listen: "0.0.0.0:0", NoDiscovery: true, NoQUIC: true, UI: "off", NoPublicDHT: true,
		DHTListen: "127.0.0.1:0"}
	if d, err := Open(opts); err == nil || !strings.Contains(err.Error(), "--no-dht") {
		if d != nil {
			stopUnrun(t, d)
		}
		t.Fatalf("Open with the public routers: %v, want an error naming --no-dht", err)
	}
	opts.Bootstrap = []string{"127.0.0.1:9"}
	d, err := Open(opts)
	if err != nil {
		t.Fatalf("Open with a bootstrap of its own: %v", err)
	}
	stopUnrun(t, d)
}

// stopUnrun closes an opened daemon by running it with a context already
// done.
func stopUnrun(t *testing.T, d *Daemon) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := d.Run(ctx); err != nil {
		t.Errorf("Run with a done context: %v", err)
	}
}

// TestOpenDHTListenBusy: a DHT port that is taken fails Open with an error
// naming the way out, after the parts opened before it are closed (Open
// panicked there: its clean-up read the daemon it had just returned as
// nil), and the home is free again for the next Open.
func TestOpenDHTListenBusy(t *testing.T) {
	home := newHome(t)
	busy, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	opts := Options{Home: home, Listen: "127.0.0.1:0", NoDiscovery: true, UI: "off", DHTListen: busy.LocalAddr().String()}
	if d, err := Open(opts); err == nil || !strings.Contains(err.Error(), "--dht-listen") {
		if d != nil {
			stopUnrun(t, d)
		}
		t.Fatalf("Open with the DHT port taken: %v, want an error naming --dht-listen", err)
	}
	opts.DHTListen = "127.0.0.1:0"
	d, err := Open(opts)
	if err != nil {
		t.Fatalf("Open after a failed Open: %v", err)
	}
	stopUnrun(t, d)
}
