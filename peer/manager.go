// Package peer keeps this device connected to its paired devices: exactly
// one authenticated connection per paired device, redialled with backoff
// when it drops.
//
// Nouns: a Manager holds the set of paired devices (AddPeer, RemovePeer),
// dials each one it has an address for (static addresses given to AddPeer,
// plus Options.Addresses, e.g. the LAN discovery cache), accepts incoming
// connections from a conn.Listener, and hands every connection it keeps to
// the sync engine through Options.Handler, OnConnect and Serve. A refused
// Attempt is a connection from a device that is not paired, or one that
// Options.Admit turned away; the last few are kept for status.
//
// Transports and reach: addresses are typed (transport.Addr: TCP, QUIC or
// both) and dialled through Options.Transport (a conn.Dialer: QUIC first,
// TCP as the fallback); Run accepts on every listener it is given (TCP and
// QUIC). Each Hello tells the peer the address we see it come from (its
// reflexive address over QUIC; Reflexive lists ours). A paired device that
// no address reaches is punched through NATs after an introduction by a
// connected peer both sides reach (punch.go); one that no punch gets
// through to either is reached through a connected peer that relays
// (relayed.go, peer/relay), and dialled and punched again later to replace
// the relayed connection with a direct one. Connected says per peer how it
// is reached (Reach: lan, direct, punched, relayed), over which transport,
// and the round-trip time. The engine never learns how a peer is reached:
// the manager takes the reach and relay messages off each connection.
//
// Pairing on first contact: with Options.Admit set, a stream from a device
// that is not paired (one the listener's AcceptFunc let in, e.g. while an
// invitation is open) gets its Hello exchange; Admit then reads the
// device's Hello (an invitation token in its capabilities) and pairs it
// with AddPeer, or returns why not. Admit sees every connection, paired or
// not, inbound or outbound, before it is kept.
//
// Contracts:
//   - One connection per pair. A connection without a relay beats a relayed
//     one. When both devices dial at once, both keep the
//     connection dialled by the device with the smaller device ID (bytewise)
//     and close the other; between two connections dialled by the same
//     device, the newer wins (the dialler only redials when it believes the
//     old one dead). Both sides apply the rule on their own and agree.
//   - Dial backoff per device: doubling from MinBackoff to MaxBackoff, each
//     wait drawn from [d/2, d]; reset on Kick, or when a kept connection
//     ends after lasting StableAfter (one the peer drops at once, such as a
//     refused invitation, keeps backing off instead of redialling each
//     second).
//   - OnConnect and OnDisconnect for one device come in order, never
//     overlapping: a connection's OnDisconnect comes before its successor's
//     OnConnect, whether the successor replaced it or came after it ended.
//     Serve runs between the two.
//   - Run owns every goroutine the manager starts (dialers, handshakes, one
//     per connection) and returns after all have exited. AddPeer,
//     RemovePeer, Kick, Allow, Connected and Refused are safe for concurrent
//     use, before and during Run.
package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/relay"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"golang.org/x/sync/semaphore"
)

// Defaults of Options.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	// StableAfter is how long a connection must last for its end to reset
	// the dial backoff.
	StableAfter    = 10 * time.Second
	DefaultRefused = 32 // refused attempts kept

	maxOpening = 32 // inbound Hello exchanges in progress at once
	maxGuests  = 4  // guest connections (ErrGuest) served at once
	// guestTimeout bounds a guest connection: a short code's exchange takes
	// one round trip.
	guestTimeout = 30 * time.Second
	lingerTime   = time.Second // how long a refused stream waits for the peer to read why
)

var (
	// ErrNotPaired: the device is not paired with this one.
	ErrNotPaired = errors.New("device is not paired")
	// ErrDuplicate: a connection lost to another one of the same pair.
	ErrDuplicate = errors.New("duplicate connection")
	// ErrGuest, from Admit (wrapped), keeps an unpaired device's inbound
	// connection open for a short exchange its Handler answers (a short
	// code's PAKE): no pairing, no session, at most guestTimeout, at most
	// maxGuests at once (beyond that it is refused).
	ErrGuest = errors.New("guest connection")
)

// Options configures a Manager. Identity, Transport and Handler are required.
type Options struct {
	Identity *identity.Identity
	// Transport dials peers (a conn.Dialer: QUIC and TCP); the Listeners
	// given to Run accept them.
	Transport conn.Transport
	// Punch, if set, sends a hole-punching packet to an address from the
	// QUIC socket (conn.QUIC.Punch). Without it the manager neither asks for
	// introductions nor acts on them, and does not offer CapPunch.
	Punch func(netip.AddrPort) error
	// Relay, if set, reaches a paired device that neither a dial nor a
	// punch reaches, through a connected peer that relays (relayed.go), and
	// answers relays' invitations; give it to Run as a listener too.
	Relay *relay.Client
	// Relaying offers wire.CapRelay in our Hello: this device relays for
	// others (a relay.Server diverts the streams of its listeners).
	Relaying bool
	// DeviceName goes in our Hello, for display on the peer.
	DeviceName string
	// Capabilities, if set, returns the capabilities of our Hello to a
	// device (e.g. the invitation token it gave us).
	Capabilities func(identity.DeviceID) []string
	// Handler returns the handler of a new connection's incoming requests
	// and messages (the sync engine).
	Handler func(identity.DeviceID) conn.Handler
	// Admit, if set, is asked after the Hello exchange of every connection
	// whether to keep it; it may pair a device that is not paired yet
	// (AddPeer) from what its Hello carries. An error closes the connection
	// with the error as the reason told to the peer, and an inbound one is
	// listed as refused. Without Admit, only paired devices get a Hello.
	Admit func(identity.DeviceID, *wire.Hello) error
	// Serve, if set, runs with each kept connection from after OnConnect
	// until the connection ends, which cancels ctx; h is what Handler
	// returned for it. If Serve returns first, the connection is closed.
	// The sync engine's session loop runs here.
	Serve func(ctx context.Context, c *conn.Conn, h conn.Handler) error
	// Addresses, if set, returns more addresses to dial for a device, e.g.
	// from LAN discovery. Called before each attempt.
	Addresses func(identity.DeviceID) []transport.Addr
	// OnConnect is called with each connection the manager keeps, before
	// the manager waits for it to end; OnDisconnect after it ended, with
	// why (nil: closed by us). Both must return quickly.
	OnConnect    func(*conn.Conn)
	OnDisconnect func(identity.DeviceID, error)
	// OnRefusedBy, if set, is called when a device turns us away with a
	// Close marked refused (wire.CodeRefused): before its Hello (it does not
	// pair with us: beforeHello), or after it (its Admit refused what our
	// Hello carried, such as an invitation). reason is what it said. It
	// must return quickly.
	OnRefusedBy func(id identity.DeviceID, reason string, beforeHello bool)
	// MinBackoff and MaxBackoff bound the wait between failed dials.
	MinBackoff, MaxBackoff time.Duration
	// Refused is how many refused attempts to keep.
	Refused int
	// Conn tunes every connection (timeouts, limits, logger).
	Conn   conn.Options
	Logger *slog.Logger
	Now    func() time.Time
}

// Connection describes a kept connection, for status.
type Connection struct {
	Device   identity.DeviceID
	Name     string // the device name in its Hello: display only
	Addr     string // the peer's address
	Outbound bool   // we dialled
	Since    time.Time
	// Network is the transport the connection runs on (TCP or QUIC).
	Network transport.Network
	// Reach is how the peer is reached: on the LAN, directly, through a
	// punched hole (Via introduced us), or relayed by Via.
	Reach Reach
	Via   identity.DeviceID // the introducer or relay; zero otherwise
	// RTT is the round-trip time, 0 until measured.
	RTT time.Duration
	// BytesIn and BytesOut count the transport's bytes (TLS records) since
	// the connection opened.
	BytesIn, BytesOut int64
}

// Manager keeps one connection to each paired device it can reach. It
// starts goroutines only in Run.
type Manager struct {
	opts Options // defaults filled in
	// life is Run's context (a lifetime signal, set before Run starts any
	// goroutine): what punches started by a peer's offer run under.
	life    context.Context
	self    identity.DeviceID
	log     *slog.Logger
	refused refusedLog
	changed chan struct{} // AddPeer/RemovePeer -> Run; capacity 1
	guests  *semaphore.Weighted
	wg      sync.WaitGroup // every goroutine Run started

	mu struct {
		sync.Mutex
		peers map[identity.DeviceID]*peerState
		links map[identity.DeviceID]*link // the kept connection of each device
		// last is each device's newest kept link until its OnDisconnect has
		// run: a new link waits for it, even one that came after the old
		// one left links, so OnConnect never overtakes an OnDisconnect.
		last map[identity.DeviceID]*link
		ran  bool
		// punches are the devices being punched towards, until when and
		// through whom; a connection with one of them then is "punched".
		punches map[identity.DeviceID]punch
		// asked is when a punch towards a device was last asked for or
		// offered; introduced when we last introduced a pair.
		asked      map[identity.DeviceID]time.Time
		introduced map[[2]identity.DeviceID]time.Time
	}
}

// peerState is one paired device.
type peerState struct {
	static  []transport.Addr // guarded by Manager.mu
	kick    chan struct{}    // Kick -> dialer; capacity 1
	dropped chan struct{}    // its link ended -> dialer; capacity 1
}

// link is a kept connection. Its goroutine runs the Conn and reports its end.
type link struct {
	c        *conn.Conn
	h        conn.Handler // what Handler returned for it
	counted  *countedConn // its transport, counting bytes
	outbound bool
	addr     string
	remote   transport.Addr // the peer's address as we see it
	reach    Reach
	via      identity.DeviceID
	since    time.Time
	prev     *link         // the device's link before it, whose events come first
	done     chan struct{} // closed after OnDisconnect
	replaced bool          // guarded by Manager.mu
}

// New returns a Manager that does nothing until Run.
func New(opts Options) (*Manager, error) {
	if opts.Identity == nil || opts.Transport == nil || opts.Handler == nil {
		return nil, errors.New("new peer manager: Identity, Transport and Handler are required")
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.Refused <= 0 {
		opts.Refused = DefaultRefused
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Conn.Logger == nil {
		opts.Conn.Logger = opts.Logger
	}
	m := &Manager{
		opts:    opts,
		self:    opts.Identity.ID(),
		log:     opts.Logger,
		refused: refusedLog{n: opts.Refused},
		changed: make(chan struct{}, 1),
		guests:  semaphore.NewWeighted(maxGuests),
	}
	m.mu.peers = make(map[identity.DeviceID]*peerState)
	m.mu.links = make(map[identity.DeviceID]*link)
	m.mu.last = make(map[identity.DeviceID]*link)
	m.mu.punches = make(map[identity.DeviceID]punch)
	m.mu.asked = make(map[identity.DeviceID]time.Time)
	m.mu.introduced = make(map[[2]identity.DeviceID]time.Time)
	return m, nil
}

// AddPeer pairs a device, or replaces its static addresses. The manager
// starts dialling it (if it has an address) and accepts it.
func (m *Manager) AddPeer(id identity.DeviceID, static ...transport.Addr) {
	m.mu.Lock()
	if ps, ok := m.mu.peers[id]; ok {
		ps.static = slices.Clone(static)
		m.mu.Unlock()
		m.Kick(id)
		return
	}
	m.mu.peers[id] = &peerState{static: slices.Clone(static), kick: make(chan struct{}, 1), dropped: make(chan struct{}, 1)}
	m.mu.Unlock()
	m.signal(m.changed)
}

// RemovePeer unpairs a device: its connection is closed and it is refused
// from now on.
func (m *Manager) RemovePeer(id identity.DeviceID) {
	m.mu.Lock()
	delete(m.mu.peers, id)
	l := m.mu.links[id]
	m.mu.Unlock()
	if l != nil {
		l.c.Close()
	}
	m.signal(m.changed)
}

// Kick makes the manager dial the device now, skipping the backoff (e.g.
// discovery just heard of it).
func (m *Manager) Kick(id identity.DeviceID) {
	m.mu.Lock()
	ps := m.mu.peers[id]
	m.mu.Unlock()
	if ps != nil {
		m.signal(ps.kick)
	}
}

// Allow is the conn.AcceptFunc to give the listener: it lets paired devices
// in.
func (m *Manager) Allow(remote identity.DeviceID) error {
	if !m.paired(remote) {
		return ErrNotPaired
	}
	return nil
}

// Connected lists the kept connections, sorted by device.
func (m *Manager) Connected() []Connection {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Connection, 0, len(m.mu.links))
	for id, l := range m.mu.links {
		out = append(out, Connection{
			Device: id, Name: l.c.PeerHello().DeviceName, Addr: l.addr, Outbound: l.outbound, Since: l.since,
			Network: l.c.Network(), Reach: l.reach, Via: l.via, RTT: l.c.RTT(),
			BytesIn: l.counted.in.Load(), BytesOut: l.counted.out.Load(),
		})
	}
	slices.SortFunc(out, func(a, b Connection) int { return bytes.Compare(a.Device[:], b.Device[:]) })
	return out
}

// Refused lists the last refused attempts, oldest first.
func (m *Manager) Refused() []Attempt { return m.refused.list() }

// Run dials and accepts until ctx is done. It accepts on each listener
// (TCP and QUIC; none or nil: dial only), closes them when it returns,
// closes every connection, and returns after every goroutine it started has
// exited: nil once ctx is done.
func (m *Manager) Run(ctx context.Context, listeners ...conn.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	if m.mu.ran {
		m.mu.Unlock()
		return errors.New("run peer manager: already ran")
	}
	m.mu.ran = true
	m.life = ctx
	m.mu.Unlock()

	var lns []conn.Listener
	for _, ln := range listeners {
		if ln == nil {
			continue
		}
		lns = append(lns, ln)
		m.wg.Go(func() { m.acceptLoop(ctx, ln) })
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		defer stop()
	}
	dialers := make(map[identity.DeviceID]context.CancelFunc)
	for {
		m.reconcileDialers(ctx, dialers)
		select {
		case <-m.changed:
			continue
		case <-ctx.Done():
		}
		break
	}
	for _, ln := range lns {
		ln.Close()
	}
	m.wg.Wait()
	return nil
}

// reconcileDialers starts a dialer for each paired device that has none and
// stops those of devices no longer paired.
func (m *Manager) reconcileDialers(ctx context.Context, dialers map[identity.DeviceID]context.CancelFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, stop := range dialers {
		if _, ok := m.mu.peers[id]; !ok {
			stop()
			delete(dialers, id)
		}
	}
	for id, ps := range m.mu.peers {
		if _, ok := dialers[id]; ok {
			continue
		}
		dctx, stop := context.WithCancel(ctx)
		dialers[id] = stop
		m.wg.Go(func() { m.dialer(dctx, ctx, id, ps) })
	}
}

// dialer keeps one device connected: while there is no connection, it dials
// the device's addresses in turn, waiting with backoff between rounds. dctx
// ends when the device is unpaired; runCtx is what its connections run
// under.
func (m *Manager) dialer(dctx, runCtx context.Context, id identity.DeviceID, ps *peerState) {
	bo := backoff{min: m.opts.MinBackoff, max: m.opts.MaxBackoff}
	timer := time.NewTimer(0) // the first round at once
	defer timer.Stop()
	failed := 0 // rounds in a row that reached nothing: a relay is asked from the second on
	for {
		kicked := false
		select {
		case <-dctx.Done():
			return
		case <-ps.kick:
			bo.reset()
			kicked = true
		case <-timer.C:
		}
		if since, ok := m.connectedSince(id); ok {
			upgrade, stopUpgrade := m.upgradeTimer(id)
			if kicked && upgrade != nil {
				stopUpgrade()
				m.upgrade(dctx, runCtx, id, ps) // a kick while relayed: try without the relay now
				timer.Reset(0)
				continue
			}
			select {
			case <-dctx.Done():
				stopUpgrade()
				return
			case <-upgrade:
				m.upgrade(dctx, runCtx, id, ps)
				timer.Reset(0)
			case <-ps.kick:
				if upgrade != nil { // new addresses, or a peer heard of it: try them
					m.upgrade(dctx, runCtx, id, ps)
				}
				timer.Reset(0)
			case <-ps.dropped:
				// A connection that lasted starts the backoff over; one the
				// peer dropped at once (it refused us after the Hello) goes
				// on doubling it, so the peer is not hammered.
				if m.opts.Now().Sub(since) >= StableAfter {
					bo.reset()
				}
				timer.Reset(bo.next())
			}
			stopUpgrade()
			continue
		}
		if m.dialRound(dctx, runCtx, id, ps) || m.askPunch(dctx, runCtx, id) || (failed > 0 && m.askRelay(dctx, runCtx, id)) {
			failed = 0
			timer.Reset(0) // on to waiting for it to end
			continue
		}
		failed++
		timer.Reset(bo.next())
	}
}

// dialRound tries each address of the device once; true if a connection
// was kept.
func (m *Manager) dialRound(dctx, runCtx context.Context, id identity.DeviceID, ps *peerState) bool {
	for _, addr := range m.addresses(id, ps) {
		if dctx.Err() != nil || m.connectedDirect(id) {
			return false
		}
		s, err := m.opts.Transport.Dial(dctx, addr, id)
		if err != nil {
			m.log.Debug("dial failed", "peer", id.Abbrev(), "addr", addr, "err", err)
			continue
		}
		if err := m.offer(runCtx, s); err != nil {
			m.log.Debug("connection not kept", "peer", id.Abbrev(), "addr", addr, "err", err)
			m.refusedBy(id, err, true)
			continue
		}
		return true
	}
	return false
}

// addresses returns the static addresses, then the others, without
// duplicates.
func (m *Manager) addresses(id identity.DeviceID, ps *peerState) []transport.Addr {
	m.mu.Lock()
	out := slices.Clone(ps.static)
	m.mu.Unlock()
	if m.opts.Addresses != nil {
		for _, a := range m.opts.Addresses(id) {
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
		}
	}
	return out
}

// acceptLoop takes inbound streams from ln and opens each in its own
// goroutine (at most maxOpening at once), so a slow Hello holds no one up.
func (m *Manager) acceptLoop(ctx context.Context, ln conn.Listener) {
	slots := make(chan struct{}, maxOpening)
	for {
		s, err := ln.Accept(ctx)
		var refused *conn.RefusedError
		switch {
		case errors.As(err, &refused):
			m.refuse(refused)
			continue
		case err != nil:
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				m.log.Warn("stopped accepting connections", "addr", ln.Addr(), "err", err)
			}
			return
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			s.Close()
			return
		}
		m.wg.Go(func() {
			defer func() { <-slots }()
			if err := m.offer(ctx, s); err != nil {
				m.log.Debug("inbound connection not kept", "peer", s.Remote.Abbrev(), "addr", s.RemoteAddr(), "err", err)
			}
		})
	}
}

func (m *Manager) refuse(r *conn.RefusedError) {
	a := Attempt{Device: r.Remote, Time: m.opts.Now(), Reason: r.Err.Error()}
	if ta, ok := r.Addr.(*net.TCPAddr); ok {
		a.Addr = ta.AddrPort()
	} else if r.Addr != nil {
		a.Addr, _ = netip.ParseAddrPort(r.Addr.String())
	}
	level := slog.LevelDebug // a device knocking again is logged once
	if m.refused.add(a) {
		level = slog.LevelInfo
	}
	m.log.Log(context.Background(), level, "refused connection; pair the device to let it in",
		"peer", r.Remote.String(), "addr", r.Addr, "err", r.Err)
}

// offer decides whether to keep a new authenticated stream. A stream that
// loses to the connection already kept is told why and closed before any
// Hello; one that wins is opened (Hello), admitted, kept, and replaces the
// old one.
func (m *Manager) offer(ctx context.Context, s conn.Stream) error {
	id := s.Remote
	if !m.paired(id) && m.opts.Admit == nil {
		refuseStream(s, m.notPairedReason(), wire.CodeRefused)
		return ErrNotPaired
	}
	if !m.wouldKeep(id, s.Outbound, s.Net == transport.Relay) {
		refuseStream(s, m.duplicateReason(), 0)
		return ErrDuplicate
	}
	remote, _ := transport.FromNet(s.RemoteAddr())
	counted := &countedConn{Conn: s.Conn}
	s.Conn = counted
	hello := wire.Hello{DeviceName: m.opts.DeviceName, Observed: remote}
	if m.opts.Capabilities != nil {
		hello.Capabilities = m.opts.Capabilities(id)
	}
	if m.opts.Punch != nil {
		hello.Capabilities = append(slices.Clip(hello.Capabilities), wire.CapPunch)
	}
	if m.opts.Relaying {
		hello.Capabilities = append(slices.Clip(hello.Capabilities), wire.CapRelay)
	}
	h := m.opts.Handler(id)
	if ra, ok := h.(interface{ SetRemoteAddr(transport.Addr) }); ok {
		ra.SetRemoteAddr(remote) // a handler that tells others where a device is
	}
	c, err := conn.Open(ctx, s, hello, &reachHandler{Handler: h, m: m, from: id}, m.opts.Conn)
	if err != nil {
		return err
	}
	if err := m.admit(id, c); err != nil {
		if errors.Is(err, ErrGuest) && !s.Outbound {
			if m.guests.TryAcquire(1) {
				m.wg.Go(func() { m.serveGuest(ctx, id, c) })
				return nil
			}
			err = errors.New("busy with other short-code exchanges: try again in a minute")
		}
		// c never runs: its stream is ours to close, telling the peer why.
		if !s.Outbound {
			m.refuse(&conn.RefusedError{Remote: id, Addr: s.RemoteAddr(), Err: err})
		}
		refuseStream(s, err.Error(), wire.CodeRefused)
		return err
	}
	l := &link{c: c, h: h, counted: counted, outbound: s.Outbound, addr: s.RemoteAddr().String(), remote: remote, since: m.opts.Now(), done: make(chan struct{})}

	m.mu.Lock()
	l.reach, l.via = m.reachLocked(id, remote)
	if s.Net == transport.Relay {
		l.reach, l.via = ReachRelayed, s.Via
	}
	ps := m.mu.peers[id]
	old := m.mu.links[id]
	switch {
	case ps == nil:
		m.mu.Unlock()
		c.Close()
		return ErrNotPaired
	case old != nil && !m.wins(id, l.outbound, old.outbound, l.relayed(), old.relayed()):
		m.mu.Unlock()
		c.Close()
		return ErrDuplicate
	}
	m.mu.links[id] = l
	if old != nil {
		old.replaced = true
	}
	l.prev = m.mu.last[id] // the old link, or one that ended and may not have said so yet
	m.mu.last[id] = l
	m.mu.Unlock()
	if old != nil {
		old.c.Close()
	}
	m.wg.Go(func() { m.run(ctx, id, l, ps) })
	return nil
}

// serveGuest runs a guest's connection (Admit said ErrGuest) for at most
// guestTimeout: its Handler answers what it asks; it is never paired, has
// no session and no OnConnect.
func (m *Manager) serveGuest(ctx context.Context, id identity.DeviceID, c *conn.Conn) {
	defer m.guests.Release(1)
	ctx, cancel := context.WithTimeout(ctx, guestTimeout)
	defer cancel()
	m.log.Debug("guest connected", "peer", id.String(), "addr", c.RemoteAddr())
	err := c.Run(ctx)
	m.log.Debug("guest left", "peer", id.String(), "err", err)
}

// admit asks Admit about a connection that has exchanged Hellos; the device
// must be paired afterwards.
func (m *Manager) admit(id identity.DeviceID, c *conn.Conn) error {
	if m.opts.Admit != nil {
		if err := m.opts.Admit(id, c.PeerHello()); err != nil {
			return err
		}
	}
	if !m.paired(id) {
		return fmt.Errorf("%s: %w", m.notPairedReason(), ErrNotPaired)
	}
	return nil
}

// run runs a kept connection, with its OnConnect before, Serve alongside
// and OnDisconnect after, and forgets it when it ends.
func (m *Manager) run(ctx context.Context, id identity.DeviceID, l *link, ps *peerState) {
	defer close(l.done)
	ended := make(chan error, 1)
	go func() { ended <- l.c.Run(ctx) }() // waited for below
	if l.prev != nil {
		<-l.prev.done
		l.prev = nil
	}
	m.log.Info("connected", "peer", id.Abbrev(), "name", l.c.PeerHello().DeviceName, "addr", l.addr, "outbound", l.outbound,
		"transport", l.c.Network().String(), "reach", string(l.reach))
	if m.opts.OnConnect != nil {
		m.opts.OnConnect(l.c)
	}
	m.kickForIntroducer(l)
	served := make(chan struct{})
	sctx, stopServe := context.WithCancel(ctx)
	if m.opts.Serve != nil {
		go func() { // waited for below
			defer close(served)
			if err := m.opts.Serve(sctx, l.c, l.h); err != nil && sctx.Err() == nil {
				m.log.Info("session ended", "peer", id.Abbrev(), "err", err)
			}
			l.c.Close()
		}()
	} else {
		close(served)
	}
	err := <-ended
	stopServe()
	<-served

	m.mu.Lock()
	if l.replaced {
		err = ErrDuplicate
	}
	if m.mu.links[id] == l {
		delete(m.mu.links, id)
	}
	m.mu.Unlock()
	m.log.Info("disconnected", "peer", id.Abbrev(), "addr", l.addr, "err", err)
	m.refusedBy(id, err, false)
	if m.opts.OnDisconnect != nil {
		m.opts.OnDisconnect(id, err)
	}
	m.mu.Lock()
	if m.mu.last[id] == l {
		delete(m.mu.last, id)
	}
	m.mu.Unlock()
	m.signal(ps.dropped)
}

// wouldKeep reports whether a new connection to id, dialled by us if
// outbound, would win against the one kept now (if any).
func (m *Manager) wouldKeep(id identity.DeviceID, outbound, relayed bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.mu.links[id]
	return old == nil || m.wins(id, outbound, old.outbound, relayed, old.relayed())
}

// wins is the one-connection-per-pair rule for a new connection against the
// kept one: a connection without a relay beats a relayed one; otherwise
// the connection dialled by the smaller device ID is preferred; between
// two of the same dialler, the newer wins. Both ends know which are
// relayed, so they agree.
func (m *Manager) wins(remote identity.DeviceID, newOutbound, oldOutbound, newRelayed, oldRelayed bool) bool {
	if newRelayed != oldRelayed {
		return oldRelayed
	}
	return m.preferred(remote, newOutbound) || !m.preferred(remote, oldOutbound)
}

// preferred reports whether a connection with remote, dialled by us if
// outbound, is the one the pair keeps: the one dialled by the device with
// the smaller ID. The remote computes the same answer for the same
// connection, with outbound and the comparison both flipped.
func (m *Manager) preferred(remote identity.DeviceID, outbound bool) bool {
	weAreSmaller := bytes.Compare(m.self[:], remote[:]) < 0
	return outbound == weAreSmaller
}

func (m *Manager) notPairedReason() string {
	return "device " + m.self.Abbrev() + " is not paired with you"
}

func (m *Manager) duplicateReason() string {
	return "duplicate connection: keeping the one dialled by the device with the smaller ID"
}

func (m *Manager) paired(id identity.DeviceID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.mu.peers[id]
	return ok
}

// connectedSince returns when the device's current connection began.
func (m *Manager) connectedSince(id identity.DeviceID) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.mu.links[id]; l != nil {
		return l.since, true
	}
	return time.Time{}, false
}

func (m *Manager) connected(id identity.DeviceID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.links[id] != nil
}

func (m *Manager) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// refusedBy calls OnRefusedBy when err is the peer's Close marked refused.
func (m *Manager) refusedBy(id identity.DeviceID, err error, beforeHello bool) {
	var ce *conn.CloseError
	if m.opts.OnRefusedBy != nil && errors.As(err, &ce) && ce.Code == wire.CodeRefused {
		m.opts.OnRefusedBy(id, ce.Reason, beforeHello)
	}
}

// refuseStream tells the peer why in a Close frame instead of a Hello (code
// wire.CodeRefused when we turn the device away), reads what it sent (its
// Hello) so that closing does not reset the connection before the Close is
// read, and closes.
func refuseStream(s conn.Stream, reason string, code wire.ErrorCode) {
	s.SetDeadline(time.Now().Add(lingerTime))
	if err := wire.WriteFrame(s, wire.Frame{Msg: &wire.Close{Reason: wire.Text(reason), Code: code}}); err == nil {
		io.Copy(io.Discard, io.LimitReader(s, wire.MaxFrameSize))
	}
	s.Close()
}

// countedConn counts the bytes of a connection's transport, for status.
type countedConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

// CountBytes adds the bytes of a connection's other QUIC streams
// (conn.ByteCounter).
func (c *countedConn) CountBytes(in, out int64) {
	c.in.Add(in)
	c.out.Add(out)
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}
