package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// A send across NATs. The receiver of a one-off send knows only the code;
// when sender and receiver are each behind a home router (NAT and a
// firewall that lets in replies only) and share nothing, neither can dial
// the other and no device of theirs can introduce them (introductions and
// relays are for members of a share). They meet at a rendezvous: a public
// device both can reach (`send` and `receive` --rendezvous HOST:PORT; it
// runs `blueshift run --rendezvous`), which forwards no data.
//
//   - The sender's daemon, from its QUIC socket, offers the send at each
//     rendezvous under the code's locator (RendezvousOffer, a long poll on
//     a guest connection, asked again for as long as the send is open).
//   - The receiver's daemon, from its QUIC socket, asks the rendezvous for
//     the offers under the locator (RendezvousFind): the answer is where
//     the rendezvous sees each sender, and each sender's poll is answered
//     with where it sees the receiver (knocks).
//   - The sender sends punch packets from its QUIC socket towards the
//     receiver for rendezvousPunch, which opens its NAT for the receiver's
//     packets; the receiver dials the sender there, runs the code's PAKE
//     and joins, and its daemon then connects to the sender at the same
//     address from the same socket. Both NATs must map endpoint-
//     independently (most home routers do); with a NAT that maps per
//     destination on both sides the receive fails, saying so.
//
// Only the locator (two characters, not secret) travels to the
// rendezvous, never anything of the code's password: the rendezvous can
// test no guess. It serves only guests that ask for this (Hello capability
// rdvGuestCap), keeps at most maxRendezvous offers, each for
// rendezvousLinger after its last poll, and answers a find with at most
// wire.MaxRendezvousAddrs of them.
const (
	rdvGuestCap      = "rendezvous-guest" // Hello capability of a guest that offers or finds
	rendezvousPoll   = 15 * time.Second   // longest wait of an offer's poll at the rendezvous
	rendezvousLinger = 30 * time.Second   // an offer is kept this long after its last poll
	rendezvousRedial = 2 * time.Second    // a sender dials a rendezvous it lost again after this
	rendezvousPunch  = 30 * time.Second   // how long a sender punches towards a knock
	rendezvousPunchI = 200 * time.Millisecond
	rendezvousFind   = 20 * time.Second // how long a receiver looks for the offer at a rendezvous
	maxRendezvous    = 256              // offers a rendezvous keeps at once
)

// rendezvousTable is both sides: the offers this device keeps as a
// rendezvous, and the offers this device's sends make. Its zero value is
// ready.
type rendezvousTable struct {
	mu     gosync.Mutex
	offers map[rdvKey]*rdvOffer          // guarded by mu: as a rendezvous
	sends  map[string]context.CancelFunc // guarded by mu: our sends' offer loops, by share ID
	punch  map[transport.Addr]time.Time  // guarded by mu: until when we punch towards each knock
}

type rdvKey struct {
	dev     string // the offering device's ID
	locator string
}

type rdvOffer struct {
	observed transport.Addr
	seen     time.Time        // the last poll
	knocks   []transport.Addr // not yet told
	wake     chan struct{}    // capacity 1: a knock came
}

// SetRemoteAddr is told, by the peer manager, where the connection's
// device is as this device sees it (a rendezvous tells others).
func (h *peerHandler) SetRemoteAddr(a transport.Addr) { h.addr = a }

// handleRendezvous answers a guest's (or a peer's) rendezvous requests;
// handled is false for other messages.
func (d *Daemon) handleRendezvous(ctx context.Context, h *peerHandler, m wire.Message) (resp wire.Message, handled bool) {
	switch m.(type) {
	case *wire.RendezvousOffer, *wire.RendezvousFind:
		if !d.opts.Rendezvous {
			return wire.Errorf(wire.CodeUnsupported, "device %s is not a rendezvous (run --rendezvous)", d.self.Abbrev()), true
		}
	}
	switch req := m.(type) {
	case *wire.RendezvousOffer:
		return d.rdv.offer(ctx, h.remote.String(), req.Locator, h.addr, time.Now()), true
	case *wire.RendezvousFind:
		found := d.rdv.find(req.Locator, h.addr, time.Now())
		d.log.Info("rendezvous: a device looked for an offer", "peer", h.remote.Abbrev(), "addr", h.addr, "offers", len(found))
		return &wire.RendezvousFound{Addrs: found}, true
	}
	return nil, false
}

// offer notes (or refreshes) an offer and waits, at most rendezvousPoll,
// for knocks.
func (t *rendezvousTable) offer(ctx context.Context, dev, locator string, observed transport.Addr, now time.Time) wire.Message {
	if !observed.AddrPort.IsValid() {
		return wire.Errorf(wire.CodeUnsupported, "rendezvous: cannot tell where you are (not a connection over IP)")
	}
	observed = observed.With(transport.QUIC)
	k := rdvKey{dev: dev, locator: locator}
	t.mu.Lock()
	if t.offers == nil {
		t.offers = map[rdvKey]*rdvOffer{}
	}
	for key, o := range t.offers {
		if now.Sub(o.seen) > rendezvousLinger {
			delete(t.offers, key)
		}
	}
	o := t.offers[k]
	if o == nil {
		if len(t.offers) >= maxRendezvous {
			t.mu.Unlock()
			return wire.Errorf(wire.CodeBusy, "rendezvous: %d offers kept already; try again later", maxRendezvous)
		}
		o = &rdvOffer{wake: make(chan struct{}, 1)}
		t.offers[k] = o
	}
	o.observed, o.seen = observed, now
	wake := o.wake
	t.mu.Unlock()

	timer := time.NewTimer(rendezvousPoll)
	defer timer.Stop()
	select {
	case <-wake:
	case <-timer.C:
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	o.seen = time.Now()
	ack := &wire.RendezvousAck{Observed: observed, Knocks: o.knocks}
	o.knocks = nil
	return ack
}

// find returns where the offers under locator are, and knocks each with
// from.
func (t *rendezvousTable) find(locator string, from transport.Addr, now time.Time) []transport.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []transport.Addr
	for k, o := range t.offers {
		if k.locator != locator || now.Sub(o.seen) > rendezvousLinger || len(out) == wire.MaxRendezvousAddrs {
			continue
		}
		out = append(out, o.observed)
		if from.AddrPort.IsValid() && len(o.knocks) < wire.MaxRendezvousAddrs && !slices.Contains(o.knocks, from.With(transport.QUIC)) {
			o.knocks = append(o.knocks, from.With(transport.QUIC))
		}
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
	return out
}

// offerAtRendezvous offers send shareID's code at the rendezvous points
// until the send ends (it leaves the configuration) or the daemon stops.
// Run again for the same send, it replaces the loops of the earlier run.
func (d *Daemon) offerAtRendezvous(shareID, code string, points []string) {
	if len(points) == 0 {
		return
	}
	if d.quic == nil {
		d.log.Warn("send: a rendezvous needs QUIC, which is off; the receiver must reach this device directly", "rendezvous", points)
		return
	}
	c, err := parseCode(code)
	if err != nil {
		return
	}
	locator, _ := splitCode(c)
	d.mu.Lock()
	run := d.mu.runCtx
	d.mu.Unlock()
	if run == nil {
		return
	}
	ctx, cancel := context.WithCancel(run)
	d.rdv.mu.Lock()
	if d.rdv.sends == nil {
		d.rdv.sends = map[string]context.CancelFunc{}
	}
	if old := d.rdv.sends[shareID]; old != nil {
		old()
	}
	d.rdv.sends[shareID] = cancel
	d.rdv.mu.Unlock()
	for _, p := range points {
		d.wg.Go(func() { d.offerLoop(ctx, shareID, locator, p) })
	}
}

// sendOpen reports whether share id is still an open send.
func (d *Daemon) sendOpen(id string) bool {
	s, err := d.config().FindShare(id)
	return err == nil && !s.SendUntil.IsZero() && s.SendUntil.After(time.Now())
}

// offerLoop keeps one send's offer at one rendezvous; a send that ended
// loses its entry.
func (d *Daemon) offerLoop(ctx context.Context, shareID, locator, point string) {
	log := d.log.With("rendezvous", point, "share", shareID)
	defer func() {
		if !d.sendOpen(shareID) {
			d.endRendezvous(shareID)
		}
	}()
	for ctx.Err() == nil && d.sendOpen(shareID) {
		err := d.offerOnce(ctx, shareID, locator, point)
		if ctx.Err() != nil {
			return
		}
		log.Info("send: the rendezvous connection ended; dialling it again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(rendezvousRedial):
		}
	}
}

// offerOnce polls one rendezvous on one connection until it ends.
func (d *Daemon) offerOnce(ctx context.Context, shareID, locator, point string) error {
	c, stop, err := d.dialRendezvous(ctx, point)
	if err != nil {
		return err
	}
	defer stop()
	logged := false
	for ctx.Err() == nil && d.sendOpen(shareID) {
		rctx, cancel := context.WithTimeout(ctx, rendezvousPoll+10*time.Second)
		ack, err := conn.Call[*wire.RendezvousAck](rctx, c, &wire.RendezvousOffer{Locator: locator})
		cancel()
		if err != nil {
			return err
		}
		if !logged {
			d.log.Info("send: offered at the rendezvous", "rendezvous", point, "seen at", ack.Observed)
			logged = true
		}
		for _, k := range ack.Knocks {
			d.punchKnock(ctx, k)
		}
	}
	return nil
}

// dialRendezvous connects to a rendezvous as a guest from the QUIC socket;
// stop closes the connection and waits for it.
func (d *Daemon) dialRendezvous(ctx context.Context, point string) (*conn.Conn, func(), error) {
	s, err := d.quic.DialAny(ctx, point)
	if err != nil {
		return nil, nil, err
	}
	c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "send rendezvous", Capabilities: []string{rdvGuestCap}}, refuseAll{}, conn.Options{Timeout: 30 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(c.PeerHello().Capabilities, wire.RendezvousCapability) {
		c.Close()
		return nil, nil, fmt.Errorf("device %s at %s is not a rendezvous (an older version)", c.Remote().Abbrev(), point)
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg gosync.WaitGroup
	wg.Go(func() { c.Run(cctx) })
	return c, func() { c.Close(); cancel(); wg.Wait() }, nil
}

// punchKnock sends punch packets from the QUIC socket towards a knock for
// rendezvousPunch (once per knock at a time), so that the receiver's dial
// gets through our NAT.
func (d *Daemon) punchKnock(ctx context.Context, to transport.Addr) {
	now := time.Now()
	d.rdv.mu.Lock()
	if d.rdv.punch == nil {
		d.rdv.punch = map[transport.Addr]time.Time{}
	}
	busy := d.rdv.punch[to].After(now)
	d.rdv.punch[to] = now.Add(rendezvousPunch)
	d.rdv.mu.Unlock()
	if busy {
		return // the running loop punches until the new end
	}
	d.log.Info("send: a receiver knocked at the rendezvous; punching towards it", "addr", to)
	d.wg.Go(func() {
		t := time.NewTicker(rendezvousPunchI)
		defer t.Stop()
		for {
			d.rdv.mu.Lock()
			until := d.rdv.punch[to]
			over := !time.Now().Before(until) || ctx.Err() != nil
			if over {
				delete(d.rdv.punch, to)
			}
			d.rdv.mu.Unlock()
			if over {
				return
			}
			if err := d.quic.Punch(to.AddrPort); err != nil {
				d.log.Debug("punch packet not sent", "addr", to, "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// endRendezvous stops a send's offers.
func (d *Daemon) endRendezvous(shareID string) {
	d.rdv.mu.Lock()
	cancel := d.rdv.sends[shareID]
	delete(d.rdv.sends, shareID)
	d.rdv.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// findAtRendezvous asks a rendezvous, from dial's socket, for the offers
// under a code's locator, for up to rendezvousFind (the sender may be
// between two polls). It returns where the rendezvous sees them.
func findAtRendezvous(ctx context.Context, dial func(context.Context, string) (conn.Stream, error), point, locator string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, rendezvousFind)
	defer cancel()
	s, err := dial(ctx, point)
	if err != nil {
		return nil, fmt.Errorf("rendezvous %s: %w", point, err)
	}
	c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "receive rendezvous", Capabilities: []string{rdvGuestCap}}, refuseAll{}, conn.Options{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("rendezvous %s: %w", point, err)
	}
	var wg gosync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	defer wg.Wait()
	defer c.Close()
	if !slices.Contains(c.PeerHello().Capabilities, wire.RendezvousCapability) {
		return nil, fmt.Errorf("rendezvous %s: device %s there is not a rendezvous (an older version)", point, c.Remote().Abbrev())
	}
	for {
		found, err := conn.Call[*wire.RendezvousFound](ctx, c, &wire.RendezvousFind{Locator: locator})
		if err != nil {
			return nil, fmt.Errorf("rendezvous %s: %w", point, err)
		}
		if len(found.Addrs) > 0 {
			out := make([]string, len(found.Addrs))
			for i, a := range found.Addrs {
				out[i] = a.AddrPort.String()
			}
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("rendezvous %s: no device offers a send under this code there: check the code, and that the sender runs `blueshift send` with the same --rendezvous", point)
		case <-time.After(time.Second):
		}
	}
}

// errNoPath says why a receive that found its sender at a rendezvous did
// not reach it, and what to do.
func errNoPath(code string, found map[string][]string, tried []error) error {
	var at []string
	for point, addrs := range found {
		at = append(at, fmt.Sprintf("%s (seen by %s)", strings.Join(addrs, ", "), point))
	}
	slices.Sort(at)
	return tag(errUnreached, "the device offering code %s was found at %s but could not be reached: punching through both NATs failed (a router that maps each destination to its own port, a 'symmetric' NAT, defeats it), and no device relays between devices that share nothing: a public device relays only for members of its shares. "+
		"Forward a port to the sender on its router and receive with --addr HOST:PORT, or send from a network with a public address, or pair the devices with a share that a relaying member belongs to (%w)",
		code, strings.Join(at, "; "), errors.Join(tried...))
}

// addPeerAddress puts addr first in a peer's configured addresses: this
// device reached it there (a rendezvous told it where), and the sender
// punches towards us for rendezvousPunch only.
func addPeerAddress(home, id, addr string) error {
	return EditConfig(home, func(c *config.Config) error {
		p, err := c.FindPeer(id)
		if err != nil {
			return err
		}
		p.Addresses = append([]string{addr}, slices.DeleteFunc(p.Addresses, func(a string) bool { return a == addr })...)
		return nil
	})
}

// joinAtRendezvous finds the sender of code at opts.Rendezvous, reaches it
// from the daemon's QUIC socket (it punches towards us meanwhile), joins
// through the invitation the code opens, and keeps the address the sender
// was reached at for the daemon's connection.
func joinAtRendezvous(ctx context.Context, home, code, path string, self identity.DeviceID, opts CodeJoinOptions) (JoinResult, error) {
	if opts.QUIC == nil {
		return JoinResult{}, errors.New("a rendezvous needs QUIC, which is off on this device: turn it on ([device] quic), or give the sender's address with --addr HOST:PORT")
	}
	c, err := parseCode(code)
	if err != nil {
		return JoinResult{}, err
	}
	locator, _ := splitCode(c)
	found := map[string][]string{}
	var tried []error
	for _, point := range opts.Rendezvous {
		addrs, err := findAtRendezvous(ctx, opts.QUIC.DialAny, point, locator)
		if err != nil {
			tried = append(tried, err)
			continue
		}
		found[point] = addrs
		for _, a := range addrs {
			opts.Logger.Info("receive: the rendezvous knows an offer under this code", "rendezvous", point, "addr", a)
			link, err := askForInvitation(ctx, opts.QUIC.DialAny, self, a, code)
			if err != nil {
				tried = append(tried, fmt.Errorf("%s: %w", a, err))
				continue
			}
			res, err := Join(home, link, path, opts.Now)
			if err != nil {
				return res, err
			}
			if err := addPeerAddress(home, res.Inviter, "quic://"+a); err != nil {
				return res, fmt.Errorf("keep where the sender was reached: %w", err)
			}
			return res, nil
		}
	}
	if len(found) > 0 {
		return JoinResult{}, errNoPath(code, found, tried)
	}
	return JoinResult{}, tag(errNotOffered, "no rendezvous knows of a send under code %s: check the code, that the sender still runs `blueshift send` with the same --rendezvous, and that the offer has not expired (%w)", code, errors.Join(tried...))
}
