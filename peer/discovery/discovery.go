// Package discovery finds paired devices on the local network with signed
// UDP multicast announcements, over IPv4 and IPv6, with no configuration.
//
// Nouns: an announcement says "the device with this public key listens on
// these addresses, as of this time", signed by that key (the packet format is
// drawn in packet.go). A Discovery sends its own announcements on every
// multicast interface and listens for others', filling an address cache that
// Lookup reads.
//
// Contracts:
//   - A device ID comes only from the key that signed the packet, so a forged
//     announcement cannot put an address under someone else's ID. Packets
//     older than MaxAge, dated more than MaxSkew ahead, or not newer than the
//     last accepted one from the same device on the same family are refused.
//     A replay or a forged source can at worst add an address that the pinned
//     TLS dial will then refuse: it can never redirect a device.
//   - An announced unspecified address ("0.0.0.0:P" or "[::]:P") means "the
//     source address of this packet, port P": a device need not know its own
//     address.
//   - Receiving is rate-limited per source and overall before any signature
//     is checked; sending happens every Interval and on SetAddresses, never
//     more often than MinInterval.
//   - Run owns every goroutine and socket and returns after they are gone.
//     Lookup and SetAddresses are safe to call concurrently with Run.
package discovery

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sync/errgroup"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
)

// Defaults, each overridable in Options.
const (
	DefaultPort        = 21127
	DefaultInterval    = 30 * time.Second
	DefaultMinInterval = 5 * time.Second
	DefaultMaxAge      = 2 * time.Minute
	DefaultMaxSkew     = time.Minute
	// DefaultTTL is how long an announced address stays in the cache: three
	// missed announcements.
	DefaultTTL = 3 * DefaultInterval

	maxDevices = 4096 // devices the cache remembers at most
	maxSources = 1024 // sources the rate limiter tracks at most
)

// Default multicast groups: organization-local IPv4 scope, link-local IPv6
// scope. Multicast TTL and hop limit are 1: announcements never leave the
// link.
var (
	DefaultGroup4 = netip.MustParseAddr("239.192.66.83")
	DefaultGroup6 = netip.MustParseAddr("ff12::6273")
)

var (
	perSourceRate = bucketSpec{rate: 1, burst: 10}
	globalRate    = bucketSpec{rate: 100, burst: 200}
)

// Sentinel errors for refused packets; the specifics are in the wrapping
// message.
var (
	ErrMalformed    = errors.New("malformed announcement")
	ErrBadSignature = errors.New("announcement signature does not verify")
	ErrStale        = errors.New("announcement too old or dated in the future")
	ErrReplay       = errors.New("announcement replayed")
	ErrRateLimited  = errors.New("announcement rate limit exceeded")
)

// errSelf marks our own announcement heard back through multicast loopback.
var errSelf = errors.New("own announcement")

// Signer is the device identity as discovery needs it; *identity.Identity
// is one.
type Signer interface {
	PublicKey() ed25519.PublicKey
	Sign(msg []byte) []byte // Ed25519
}

// Options configures a Discovery. Key is required; zero values elsewhere
// take the defaults.
type Options struct {
	// Key is the device's identity; announcements are signed with it.
	Key Signer
	// Addresses are the listening addresses to announce. Unspecified IPs
	// ("0.0.0.0:P") mean "my source address". SetAddresses changes them.
	Addresses []netip.AddrPort
	// Interfaces names the interfaces to use; empty means every interface
	// that is up, multicast-capable and not loopback, rescanned each round.
	Interfaces []string
	// Port is the UDP port announcements are sent to and heard on.
	Port int
	// Group4 and Group6 are the multicast groups. Disable4 and Disable6
	// turn a family off.
	Group4, Group6     netip.Addr
	Disable4, Disable6 bool
	// Interval is the time between announcements; MinInterval the least
	// time between two, even when the addresses change.
	Interval, MinInterval time.Duration
	// TTL is how long an announced address is kept.
	TTL time.Duration
	// MaxAge and MaxSkew bound an announcement's time: older than
	// now-MaxAge or newer than now+MaxSkew is refused.
	MaxAge, MaxSkew time.Duration
	// Now is the clock; time.Now if nil.
	Now func() time.Time
	// Logger gets refused packets at Debug; slog.DiscardHandler if nil.
	Logger *slog.Logger
	// OnUpdate, if set, is called when a device's announcement brings an
	// address the cache did not hold. It runs on a receive goroutine and
	// must not block for long.
	OnUpdate func(identity.DeviceID)
}

// Discovery announces this device and caches the announcements of others.
// It starts goroutines only inside Run.
type Discovery struct {
	opts    Options // with defaults filled in
	self    identity.DeviceID
	log     *slog.Logger
	cache   *cache
	limiter *limiter
	changed chan struct{} // SetAddresses -> sender; capacity 1

	mu struct {
		sync.Mutex
		addresses []netip.AddrPort // what we announce
	}
}

// New checks the options and returns a Discovery that does nothing until Run.
func New(opts Options) (*Discovery, error) {
	if opts.Key == nil || len(opts.Key.PublicKey()) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("new discovery: no Ed25519 device key")
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("new discovery: port %d out of range", opts.Port)
	}
	if !opts.Group4.IsValid() {
		opts.Group4 = DefaultGroup4
	}
	if !opts.Group6.IsValid() {
		opts.Group6 = DefaultGroup6
	}
	if !opts.Group4.Is4() || !opts.Group4.IsMulticast() {
		return nil, fmt.Errorf("new discovery: %v is not an IPv4 multicast group", opts.Group4)
	}
	if !opts.Group6.Is6() || !opts.Group6.IsMulticast() {
		return nil, fmt.Errorf("new discovery: %v is not an IPv6 multicast group", opts.Group6)
	}
	if opts.Disable4 && opts.Disable6 {
		return nil, fmt.Errorf("new discovery: both IPv4 and IPv6 are disabled")
	}
	if len(opts.Addresses) > MaxAddresses {
		return nil, fmt.Errorf("new discovery: %d addresses, at most %d", len(opts.Addresses), MaxAddresses)
	}
	setDefault(&opts.Interval, DefaultInterval)
	setDefault(&opts.MinInterval, DefaultMinInterval)
	setDefault(&opts.TTL, 3*opts.Interval)
	setDefault(&opts.MaxAge, DefaultMaxAge)
	setDefault(&opts.MaxSkew, DefaultMaxSkew)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Discovery{
		opts:    opts,
		self:    identity.FromPublicKey(opts.Key.PublicKey()),
		log:     opts.Logger,
		cache:   newCache(opts.TTL, opts.MaxAge+opts.MaxSkew, maxDevices),
		limiter: newLimiter(perSourceRate, globalRate, maxSources),
		changed: make(chan struct{}, 1),
	}
	d.mu.addresses = slices.Clone(opts.Addresses)
	return d, nil
}

// Lookup returns the addresses the device announced that have not expired,
// sorted. The caller owns the slice.
func (d *Discovery) Lookup(id identity.DeviceID) []netip.AddrPort {
	return d.cache.lookup(id, d.opts.Now())
}

// SetAddresses changes the announced addresses and announces them soon
// (after MinInterval at most).
func (d *Discovery) SetAddresses(addrs []netip.AddrPort) error {
	if len(addrs) > MaxAddresses {
		return fmt.Errorf("set announced addresses: %d addresses, at most %d", len(addrs), MaxAddresses)
	}
	d.mu.Lock()
	d.mu.addresses = slices.Clone(addrs)
	d.mu.Unlock()
	select {
	case d.changed <- struct{}{}:
	default:
	}
	return nil
}

// Run announces and listens until ctx is done, then closes its sockets and
// returns nil once every goroutine it started has exited. It fails at once
// only if no family could open its socket.
func (d *Discovery) Run(ctx context.Context) error {
	var socks []*socket
	for _, fam := range []family{family4, family6} {
		if (fam == family4 && d.opts.Disable4) || (fam == family6 && d.opts.Disable6) {
			continue
		}
		s, err := d.listen(ctx, fam)
		if err != nil {
			d.log.Warn("lan discovery unavailable on one family", "family", fmt.Sprintf("IPv%d", fam), "err", err)
			continue
		}
		socks = append(socks, s)
	}
	if len(socks) == 0 {
		return fmt.Errorf("run lan discovery: no socket could be opened on port %d", d.opts.Port)
	}
	g, ctx := errgroup.WithContext(ctx)
	for _, s := range socks {
		g.Go(func() error { d.receive(s); return nil })
	}
	g.Go(func() error { d.announce(ctx, socks); return nil })
	g.Go(func() error {
		<-ctx.Done()
		for _, s := range socks {
			s.conn.Close() // unblocks receive
		}
		return nil
	})
	return g.Wait()
}

// handle verifies one received packet and records it. src is the packet's
// source; fam the family of the socket it came in on.
func (d *Discovery) handle(p []byte, src netip.AddrPort, fam family) (identity.DeviceID, error) {
	now := d.opts.Now()
	if !d.limiter.allow(src.Addr().Unmap(), now) {
		return identity.DeviceID{}, ErrRateLimited
	}
	a, err := decodePacket(p)
	if err != nil {
		return identity.DeviceID{}, err
	}
	id := identity.FromPublicKey(a.publicKey)
	if id == d.self {
		return id, errSelf
	}
	if a.family != fam {
		return id, fmt.Errorf("%w: sent for IPv%d, heard on IPv%d", ErrReplay, a.family, fam)
	}
	if a.time.Before(now.Add(-d.opts.MaxAge)) {
		return id, fmt.Errorf("%w: dated %v, %v ago", ErrStale, a.time.UTC(), now.Sub(a.time))
	}
	if a.time.After(now.Add(d.opts.MaxSkew)) {
		return id, fmt.Errorf("%w: dated %v, %v ahead", ErrStale, a.time.UTC(), a.time.Sub(now))
	}
	added, err := d.cache.accept(id, fam, a.time, resolve(a.addresses, src), now)
	if err != nil {
		return id, err
	}
	if added && d.opts.OnUpdate != nil {
		d.opts.OnUpdate(id)
	}
	return id, nil
}

// resolve turns announced addresses into dialable ones: an unspecified IP
// becomes the packet's source, an IPv6 link-local address takes the source's
// zone. It drops port 0, multicast, loopback (unless the packet came over
// loopback) and duplicates.
func resolve(announced []netip.AddrPort, src netip.AddrPort) []netip.AddrPort {
	from := src.Addr().Unmap()
	out := make([]netip.AddrPort, 0, len(announced))
	for _, ap := range announced {
		ip, port := ap.Addr().Unmap(), ap.Port()
		switch {
		case port == 0, ip.IsMulticast():
			continue
		case ip.IsUnspecified():
			ip = from
		case ip.IsLoopback() && !from.IsLoopback():
			continue
		case ip.Is6() && ip.IsLinkLocalUnicast():
			if from.Zone() == "" {
				continue
			}
			ip = ip.WithZone(from.Zone())
		}
		r := netip.AddrPortFrom(ip, port)
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// socket is one family's UDP socket, bound to the wildcard address on the
// discovery port, joined to the group on each interface in use. Only the
// announce goroutine joins and writes; only the receive goroutine reads.
type socket struct {
	fam    family
	conn   net.PacketConn
	p4     *ipv4.PacketConn // set for IPv4
	p6     *ipv6.PacketConn // set for IPv6
	group  *net.UDPAddr
	joined map[int]bool // interface index -> joined; announce goroutine only
}

func (d *Discovery) listen(ctx context.Context, fam family) (*socket, error) {
	group := d.opts.Group4
	if fam == family6 {
		group = d.opts.Group6
	}
	gc, err := transport.ListenGroup(ctx, group, d.opts.Port)
	if err != nil {
		return nil, err
	}
	return &socket{fam: fam, conn: gc.Conn, p4: gc.P4, p6: gc.P6, group: gc.Group, joined: map[int]bool{}}, nil
}

// receive reads packets until the socket is closed.
func (d *Discovery) receive(s *socket) {
	buf := make([]byte, MaxPacketSize+1)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Debug("read announcement", "err", err)
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		src := ua.AddrPort()
		id, err := d.handle(buf[:n], src, s.fam)
		switch {
		case errors.Is(err, errSelf):
		case err != nil:
			d.log.Debug("refused announcement", "addr", src, "err", err)
		default:
			d.log.Debug("heard announcement", "peer", fmt.Sprintf("%x", id[:8]), "addr", src)
		}
	}
}

// announce sends a round of announcements at once, then every Interval and
// after each SetAddresses, never two rounds within MinInterval.
func (d *Discovery) announce(ctx context.Context, socks []*socket) {
	var last time.Time // time of the last round; zero before the first
	var stamp time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.changed:
			timer.Reset(max(0, time.Until(last.Add(d.opts.MinInterval))))
			continue
		case <-timer.C:
		}
		last = time.Now()
		ifaces := d.interfaces()
		d.mu.Lock()
		addrs := slices.Clone(d.mu.addresses)
		d.mu.Unlock()
		for _, s := range socks {
			d.join(s, ifaces)
			if len(addrs) == 0 {
				continue
			}
			// Each family gets its own, strictly later timestamp: the
			// receiver's replay window is per family, and two packets of
			// one device must never share a time.
			stamp = later(d.opts.Now(), stamp)
			pkt, err := encodePacket(d.opts.Key, announcement{family: s.fam, time: stamp, addresses: addrs})
			if err != nil {
				d.log.Warn("encode announcement", "err", err)
				continue
			}
			d.send(s, ifaces, pkt)
		}
		timer.Reset(d.opts.Interval)
	}
}

func later(now, prev time.Time) time.Time {
	if now.After(prev) {
		return now
	}
	return prev.Add(time.Nanosecond)
}

// interfaces lists the interfaces to announce on this round.
func (d *Discovery) interfaces() []net.Interface {
	all, err := net.Interfaces()
	if err != nil {
		d.log.Debug("list network interfaces", "err", err)
		return nil
	}
	var out []net.Interface
	for _, ifi := range all {
		if len(d.opts.Interfaces) > 0 {
			if slices.Contains(d.opts.Interfaces, ifi.Name) {
				out = append(out, ifi)
			}
			continue
		}
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	return out
}

// join joins the group on interfaces the socket has not joined yet. An
// interface that vanished and came back under the same index stays joined
// in our book but not in the kernel's; the next failed send clears it.
func (d *Discovery) join(s *socket, ifaces []net.Interface) {
	for _, ifi := range ifaces {
		if s.joined[ifi.Index] {
			continue
		}
		var err error
		if s.p4 != nil {
			err = s.p4.JoinGroup(&ifi, s.group)
		} else {
			err = s.p6.JoinGroup(&ifi, s.group)
		}
		if err != nil {
			d.log.Debug("join multicast group", "iface", ifi.Name, "group", s.group, "err", err)
			continue
		}
		s.joined[ifi.Index] = true
	}
}

func (d *Discovery) send(s *socket, ifaces []net.Interface, pkt []byte) {
	for _, ifi := range ifaces {
		var err error
		if s.p4 != nil {
			if err = s.p4.SetMulticastInterface(&ifi); err == nil {
				_, err = s.p4.WriteTo(pkt, nil, s.group)
			}
		} else {
			if err = s.p6.SetMulticastInterface(&ifi); err == nil {
				_, err = s.p6.WriteTo(pkt, nil, s.group)
			}
		}
		if err != nil {
			delete(s.joined, ifi.Index)
			d.log.Debug("send announcement", "iface", ifi.Name, "group", s.group, "err", err)
		}
	}
}
