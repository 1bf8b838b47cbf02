package transport

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"go.uber.org/goleak"
)

func TestParse(t *testing.T) {
	good := []struct {
		in, out string
		net     Network
		local   bool
	}{
		{"192.0.2.7:22100", "192.0.2.7:22100", Any, false},
		{"quic://192.0.2.7:22100", "quic://192.0.2.7:22100", QUIC, false},
		{"QUIC://192.0.2.7:1", "quic://192.0.2.7:1", QUIC, false},
		{"udp://192.0.2.7:1", "quic://192.0.2.7:1", QUIC, false},
		{"tcp://10.0.0.1:22100", "tcp://10.0.0.1:22100", TCP, true},
		{"[2001:db8::7]:22100", "[2001:db8::7]:22100", Any, false},
		{"[::ffff:192.168.1.2]:5", "192.168.1.2:5", Any, true},
		{"127.0.0.1:0", "127.0.0.1:0", Any, true},
		{"host.example:22100", "host.example:22100", Any, false},
		{"tcp://localhost:9", "tcp://localhost:9", TCP, false},
	}
	for _, g := range good {
		a, err := Parse(g.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", g.in, err)
			continue
		}
		if a.String() != g.out || a.Net != g.net || a.IsLocal() != g.local {
			t.Errorf("Parse(%q) = %q net %v local %v, want %q %v %v", g.in, a, a.Net, a.IsLocal(), g.out, g.net, g.local)
		}
		if b, err := Parse(a.String()); err != nil || b != a {
			t.Errorf("round trip of %q: %v, %v", g.in, b, err)
		}
	}
	bad := []string{"", "192.0.2.7", "sctp://1.2.3.4:5", "1.2.3.4:99999", "1.2.3.4:x", "quic://", ":5", "[fe80::1%eth0]:5", "a b:5", string(make([]byte, 400))}
	for _, b := range bad {
		if a, err := Parse(b); !errors.Is(err, ErrBadAddr) {
			t.Errorf("Parse(%q) = %v, %v; want ErrBadAddr", b, a, err)
		}
	}
}

func TestFromNet(t *testing.T) {
	u := &net.UDPAddr{IP: net.ParseIP("203.0.113.9"), Port: 4}
	if a, ok := FromNet(u); !ok || a.String() != "quic://203.0.113.9:4" {
		t.Errorf("FromNet(udp) = %v %v", a, ok)
	}
	tc := &net.TCPAddr{IP: net.ParseIP("203.0.113.9"), Port: 4}
	if a, ok := FromNet(tc); !ok || a.String() != "tcp://203.0.113.9:4" || !a.Has(TCP) || a.Has(QUIC) {
		t.Errorf("FromNet(tcp) = %v %v", a, ok)
	}
	if a := From(Any, netip.MustParseAddrPort("1.2.3.4:5")); !a.Has(TCP) || !a.Has(QUIC) {
		t.Errorf("any address %v must have both networks", a)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.2.3.4:5", "quic://[::1]:9", "tcp://h:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Fatalf("round trip of %q: %q -> %v, %v", s, a.String(), b, err)
		}
	})
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
