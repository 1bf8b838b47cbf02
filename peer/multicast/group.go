package multicast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sync/errgroup"

	"github.com/blueshift-sync/blueshift/peer/transport"
)

// Defaults, each overridable in Options. The groups are discovery's
// scopes (organization-local IPv4, link-local IPv6) at another address;
// TTL and hop limit are 1: datagrams never leave the link.
const DefaultPort = 21128

var (
	DefaultGroup4 = netip.MustParseAddr("239.192.66.84")
	DefaultGroup6 = netip.MustParseAddr("ff12::6274")
)

// receiveBuffer is the socket receive buffer asked for: a burst of
// datagrams must not overflow it while the engine writes a block.
const receiveBuffer = 4 << 20

// Family is an address family a Group sends on.
type Family uint8

// Families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// Options configure a Group.
type Options struct {
	// Interfaces names the interfaces to use (discovery's setting); empty
	// means every interface that is up, multicast and not loopback.
	Interfaces []string
	Group4     netip.Addr // default DefaultGroup4
	Group6     netip.Addr // default DefaultGroup6
	Port       int        // default DefaultPort
	Log        *slog.Logger
}

// Stats count what a Group received.
type Stats struct {
	Accepted int64 // datagrams that opened under a session's key
	Refused  int64 // datagrams of a registered session that did not open (forged, replayed, malformed)
	Unknown  int64 // datagrams of no registered session (others' sessions, strangers)
}

// Group is the multicast socket of each family, joined on the interfaces
// in use. Open it, then Run it; Run owns the readers.
type Group struct {
	opts  Options
	log   *slog.Logger
	socks []*socket

	accepted, refused, unknown atomic.Int64

	mu struct {
		sync.Mutex
		recv map[SessionID]*Receiver // guarded by mu
	}
}

type socket struct {
	fam    Family
	conn   net.PacketConn
	p4     *ipv4.PacketConn
	p6     *ipv6.PacketConn
	group  *net.UDPAddr
	ifaces []net.Interface // joined; set by Open
	sendMu sync.Mutex      // where a control message cannot pick the interface
}

// Open binds and joins the group of each family on the interfaces in
// use. A family that cannot be used (no IPv6, say) is left out; Open fails
// only when neither can.
func Open(ctx context.Context, opts Options) (*Group, error) {
	if !opts.Group4.IsValid() {
		opts.Group4 = DefaultGroup4
	}
	if !opts.Group6.IsValid() {
		opts.Group6 = DefaultGroup6
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	g := &Group{opts: opts, log: opts.Log}
	g.mu.recv = make(map[SessionID]*Receiver)
	ifaces, err := interfaces(opts.Interfaces)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, fam := range []Family{IPv4, IPv6} {
		s, err := g.listen(ctx, fam, ifaces)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		g.socks = append(g.socks, s)
	}
	if len(g.socks) == 0 {
		return nil, fmt.Errorf("open multicast group on %v: %w; turn LAN multicast off or name an interface that has multicast", names(ifaces), errors.Join(errs...))
	}
	return g, nil
}

// Families returns the families the Group can send on.
func (g *Group) Families() []Family {
	var out []Family
	for _, s := range g.socks {
		out = append(out, s.fam)
	}
	return out
}

// Run reads datagrams until ctx ends, then closes the sockets and returns
// once its readers have stopped.
func (g *Group) Run(ctx context.Context) error {
	eg, ctx := errgroup.WithContext(ctx)
	for _, s := range g.socks {
		eg.Go(func() error { g.read(s); return nil })
	}
	<-ctx.Done()
	for _, s := range g.socks {
		s.conn.Close()
	}
	return eg.Wait()
}

// Close closes the sockets of a Group that was never Run.
func (g *Group) Close() {
	for _, s := range g.socks {
		s.conn.Close()
	}
}

// Stats returns what the Group received so far.
func (g *Group) Stats() Stats {
	return Stats{Accepted: g.accepted.Load(), Refused: g.refused.Load(), Unknown: g.unknown.Load()}
}

// Send sends datagram p to the group of family fam on every interface in
// use. It fails only when no interface took it.
func (g *Group) Send(fam Family, p []byte) error {
	for _, s := range g.socks {
		if s.fam == fam {
			return s.send(p)
		}
	}
	return fmt.Errorf("send multicast datagram: no IPv%d socket", fam)
}

// Register starts taking session id's datagrams, opened under key k, into
// a new Receiver. The caller Unregisters it when done.
func (g *Group) Register(id SessionID, k Key) *Receiver {
	r := newReceiver(id, k)
	g.mu.Lock()
	g.mu.recv[id] = r
	g.mu.Unlock()
	return r
}

// Unregister stops taking the session's datagrams.
func (g *Group) Unregister(id SessionID) {
	g.mu.Lock()
	delete(g.mu.recv, id)
	g.mu.Unlock()
}

func (g *Group) read(s *socket) {
	buf := make([]byte, MaxDatagram+1)
	for {
		n, _, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		id, err := PeekSession(buf[:n])
		if err != nil {
			g.unknown.Add(1)
			continue
		}
		g.mu.Lock()
		r := g.mu.recv[id]
		g.mu.Unlock()
		if r == nil {
			g.unknown.Add(1)
			continue
		}
		if r.take(s.fam, buf[:n]) != nil {
			g.refused.Add(1) // counted, not logged: a stranger may send many
			continue
		}
		g.accepted.Add(1)
	}
}

func (g *Group) listen(ctx context.Context, fam Family, ifaces []net.Interface) (*socket, error) {
	group := g.opts.Group4
	if fam == IPv6 {
		group = g.opts.Group6
	}
	gc, err := transport.ListenGroup(ctx, group, g.opts.Port)
	if err != nil {
		return nil, err
	}
	c := gc.Conn
	if uc, ok := c.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(receiveBuffer) // the kernel may cap it: best effort
	}
	forceReadBuffer(c, receiveBuffer)
	s := &socket{fam: fam, conn: c, p4: gc.P4, p6: gc.P6, group: gc.Group}
	for _, ifi := range ifaces {
		if fam == IPv4 {
			err = s.p4.JoinGroup(&ifi, s.group)
		} else {
			err = s.p6.JoinGroup(&ifi, s.group)
		}
		if err != nil {
			g.log.Debug("join multicast group", "iface", ifi.Name, "group", s.group, "err", err)
			continue
		}
		s.ifaces = append(s.ifaces, ifi)
	}
	if len(s.ifaces) == 0 {
		c.Close()
		return nil, fmt.Errorf("join %s on %v: no interface took it", group, names(ifaces))
	}
	return s, nil
}

// send writes p to the group on each joined interface: by a control
// message naming the interface, else by setting it (under sendMu).
func (s *socket) send(p []byte) error {
	var errs []error
	sent := false
	for _, ifi := range s.ifaces {
		var err error
		if s.p4 != nil {
			if _, err = s.p4.WriteTo(p, &ipv4.ControlMessage{IfIndex: ifi.Index}, s.group); err != nil {
				s.sendMu.Lock()
				if err = s.p4.SetMulticastInterface(&ifi); err == nil {
					_, err = s.p4.WriteTo(p, nil, s.group)
				}
				s.sendMu.Unlock()
			}
		} else {
			if _, err = s.p6.WriteTo(p, &ipv6.ControlMessage{IfIndex: ifi.Index}, s.group); err != nil {
				s.sendMu.Lock()
				if err = s.p6.SetMulticastInterface(&ifi); err == nil {
					_, err = s.p6.WriteTo(p, nil, s.group)
				}
				s.sendMu.Unlock()
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ifi.Name, err))
			continue
		}
		sent = true
	}
	if !sent {
		return fmt.Errorf("send to %s: %w", s.group, errors.Join(errs...))
	}
	return nil
}

// interfaces lists the interfaces named, or every one that is up,
// multicast and not loopback.
func interfaces(named []string) ([]net.Interface, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list network interfaces: %w", err)
	}
	var out []net.Interface
	for _, ifi := range all {
		if len(named) > 0 {
			if slices.Contains(named, ifi.Name) {
				out = append(out, ifi)
			}
			continue
		}
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no multicast interface among %v: name one in [discovery] interfaces", named)
	}
	return out, nil
}

func names(ifaces []net.Interface) []string {
	var out []string
	for _, ifi := range ifaces {
		out = append(out, ifi.Name)
	}
	return out
}
