package peer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

func quicNode(t *testing.T, name string) *node {
	n := newNode(t, name)
	n.quic = true
	return n
}

func connection(n *node, peer *node) (Connection, bool) {
	for _, c := range n.m.Connected() {
		if c.Device == peer.ID() {
			return c, true
		}
	}
	return Connection{}, false
}

// TestManagersOverQUIC: two managers whose only address for each other is a
// QUIC one connect over QUIC, once, and report the transport, the reach,
// the round-trip time and each other's reflexive address.
func TestManagersOverQUIC(t *testing.T) {
	a, b := quicNode(t, "a"), quicNode(t, "b")
	b.start(nil)
	b.m.AddPeer(a.ID())
	a.start(map[identity.DeviceID][]string{b.ID(): {b.qaddr}})
	waitFor(t, "a and b connected", func() bool {
		ca, okA := connection(a, b)
		cb, okB := connection(b, a)
		return okA && okB && ca.RTT > 0 && cb.RTT > 0
	})
	ca, _ := connection(a, b)
	cb, _ := connection(b, a)
	for _, c := range []Connection{ca, cb} {
		if c.Network != transport.QUIC || c.Reach != ReachLAN {
			t.Errorf("connection %+v: want QUIC on the LAN (loopback)", c)
		}
	}
	if len(a.m.Connected()) != 1 || len(b.m.Connected()) != 1 {
		t.Fatalf("more than one connection: %+v / %+v", a.m.Connected(), b.m.Connected())
	}
	// a's reflexive address, as b saw it, is a's QUIC socket.
	if r := a.m.Reflexive(); len(r) != 1 || r[0].String() != a.qaddr {
		t.Fatalf("a's reflexive addresses %v, want [%s]", r, a.qaddr)
	}
}

// TestPunchIntroduction: a and b are paired but have no address for each
// other; both are connected to p over QUIC. a asks p to introduce it, both
// act on the introduction, and they connect directly (punched, via p). A
// device that is not paired with b gets no introduction acted on.
func TestPunchIntroduction(t *testing.T) {
	p, a, b := quicNode(t, "p"), quicNode(t, "a"), quicNode(t, "b")
	p.start(nil)
	p.m.AddPeer(a.ID())
	p.m.AddPeer(b.ID())
	b.start(map[identity.DeviceID][]string{p.ID(): {p.qaddr}, a.ID(): nil})
	a.start(map[identity.DeviceID][]string{p.ID(): {p.qaddr}, b.ID(): nil})
	waitFor(t, "a and b connected", func() bool {
		_, ok := connection(a, b)
		_, ok2 := connection(b, a)
		return ok && ok2
	})
	for _, pair := range [][2]*node{{a, b}, {b, a}} {
		c, _ := connection(pair[0], pair[1])
		if c.Reach != ReachPunched || c.Via != p.ID() || c.Network != transport.QUIC {
			t.Errorf("%s's connection to %s: %+v, want punched via p over QUIC", pair[0].name, pair[1].name, c)
		}
	}
}

// TestPunchRefusals: an introduction is answered only for a connected
// device, not twice in a row for one pair, and an offer about a device that
// is not paired is ignored.
func TestPunchRefusals(t *testing.T) {
	p, a, b := quicNode(t, "p"), quicNode(t, "a"), quicNode(t, "b")
	p.start(nil)
	p.m.AddPeer(a.ID())
	p.m.AddPeer(b.ID())
	a.start(map[identity.DeviceID][]string{p.ID(): {p.qaddr}})
	var blog logLines
	b.startWith(map[identity.DeviceID][]string{p.ID(): {p.qaddr}}, func(o *Options) { // b does not know a
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(tlog{t}, &blog), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}, nil)
	var pc *conn.Conn
	waitFor(t, "a and b connected to p, on both sides", func() bool {
		_, okA := connection(a, p)
		_, okB := connection(b, p)
		a.m.mu.Lock()
		if l := a.m.mu.links[p.ID()]; l != nil {
			pc = l.c
		}
		a.m.mu.Unlock()
		return okA && okB && len(p.m.Connected()) == 2 && pc != nil
	})
	ca, _ := connection(a, p)
	ctx := context.Background()
	stranger, _ := identity.Generate()
	if _, err := conn.Call[*wire.PunchResponse](ctx, pc, &wire.PunchRequest{Device: stranger.ID()}); !isCode(err, wire.CodeNotFound) {
		t.Fatalf("introduction to a device p is not connected to: %v, want not found", err)
	}
	resp, err := conn.Call[*wire.PunchResponse](ctx, pc, &wire.PunchRequest{Device: b.ID()})
	if err != nil || len(resp.Addrs) != 1 {
		t.Fatalf("introduction to b: %v, %v", resp, err)
	}
	if _, err := conn.Call[*wire.PunchResponse](ctx, pc, &wire.PunchRequest{Device: b.ID()}); !isCode(err, wire.CodeBusy) {
		t.Fatalf("second introduction at once: %v, want busy", err)
	}
	// b got an offer about a, which it is not paired with: no punch starts.
	waitFor(t, "b ignored the offer", func() bool { return blog.has("ignored a punch offer") })
	b.m.mu.Lock()
	_, punching := b.m.mu.punches[a.ID()]
	_, asked := b.m.mu.asked[a.ID()]
	b.m.mu.Unlock()
	if punching || asked {
		t.Fatal("b acted on an offer about a device it is not paired with")
	}
	if _, ok := connection(b, a); ok || ca.Device != p.ID() {
		t.Fatal("b connected to a")
	}
}

func isCode(err error, code wire.ErrorCode) bool {
	var e *wire.ErrorResponse
	return errors.As(err, &e) && e.Code == code
}

// logLines keeps what a logger wrote, for a test to look for a line.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logLines) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.b.String(), s)
}
