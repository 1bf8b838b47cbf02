package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// A send's swarm: the receiver of a one-off send (send.go) fetches its
// blocks from the sender's other devices too, those of the sender's
// keyring (keyring.go) that hold the same files in a share of their own,
// in parallel with the sender, and from them alone once the sender is
// gone.
//
//   - The receiver asks the sender, on their session, for a ticket
//     (SwarmTicketRequest). The sender answers with a ticket signed by its
//     device key (wire.SwarmTicket: the receiver's device ID, the send's
//     share, the send's expiry and the send's block hashes) and the devices
//     of its keyring that are members of a share holding those blocks, with
//     the addresses it knows of them.
//   - The receiver dials each such device as a guest (Hello capability
//     "swarm1"), shows the ticket (SwarmOpen) and asks it for blocks with
//     BlockRequests naming the send's share; the engine spreads the blocks
//     across the sender and these helpers (engine.SetHelpers) and checks
//     every one against its hash.
//   - A helper accepts a ticket only when its signature is good, its signer
//     is a current member of the helper's keyring (and not the helper), it
//     names the device that connected (TLS proves who that is) and has not
//     expired. It then serves exactly the ticket's blocks, to that device
//     only, until the expiry, from the files of its shares the signer is a
//     member of: what the signer could have sent itself. Any other request
//     of the guest gets nothing.

const (
	swarmAsk        = 2 * time.Second  // how often a receiver looks for receives to ask a ticket for
	swarmAskAgain   = 30 * time.Second // a sender that had no ticket to give is asked again after this
	swarmRedial     = 2 * time.Second  // a helper that could not be reached is tried again after this
	swarmDial       = 15 * time.Second // one dial and SwarmOpen
	swarmSample     = 256              // blocks of a send looked up to find the shares that hold them
	maxSwarmTickets = 16               // tickets a helper keeps at once (each up to 8 MiB of hashes)
	// swarmGuestCap in a guest's Hello says it comes to show a ticket.
	swarmGuestCap = "swarm-ticket"
)

// errTicket is the class of tickets a helper refuses.
var errTicket = errors.New("send ticket refused")

// swarmState is both sides of send swarms: the tickets this device accepted
// as a helper and the helpers of this device's receives.
type swarmState struct {
	mu      gosync.Mutex
	tickets map[ticketKey]*openTicket   // guarded by mu: accepted tickets
	recv    map[share.ID][]*swarmHelper // guarded by mu: helpers of each receive

	servedBytes, servedBlocks, fetchedBytes atomic.Int64
}

type ticketKey struct {
	remote identity.DeviceID
	share  share.ID
}

// openTicket is an accepted ticket: what may be served, from where.
type openTicket struct {
	hashes  map[block.Hash]bool
	shares  []share.ID // shares of this device the signer is a member of
	expires time.Time
}

// SwarmStats counts send swarm traffic since the daemon started.
type SwarmStats struct {
	// ServedBytes and ServedBlocks: blocks this device served under
	// tickets of its keyring's devices.
	ServedBytes  int64 `json:"served_bytes"`
	ServedBlocks int64 `json:"served_blocks"`
	// FetchedBytes: blocks this device's receives got from a sender's
	// other devices.
	FetchedBytes int64 `json:"fetched_bytes"`
	// Tickets is how many tickets this device holds open as a helper;
	// Helpers how many helpers its receives fetch from.
	Tickets int `json:"tickets"`
	Helpers int `json:"helpers"`
}

func (d *Daemon) swarmStats() SwarmStats {
	d.swarm.mu.Lock()
	defer d.swarm.mu.Unlock()
	st := SwarmStats{ServedBytes: d.swarm.servedBytes.Load(), ServedBlocks: d.swarm.servedBlocks.Load(),
		FetchedBytes: d.swarm.fetchedBytes.Load(), Tickets: len(d.swarm.tickets)}
	for _, hs := range d.swarm.recv {
		st.Helpers += len(hs)
	}
	return st
}

// ---- the sender

// handleSwarmTicket answers a member of a send's share asking for a
// ticket: empty (no body) when the sender has no other device that may
// hold the send's blocks.
func (d *Daemon) handleSwarmTicket(remote identity.DeviceID, req *wire.SwarmTicketRequest) wire.Message {
	cfg := d.config()
	now := time.Now()
	s, err := cfg.FindShare(req.Share.String())
	if err != nil || s.SendUntil.IsZero() || !slices.Contains(s.Peers, remote.String()) {
		return wire.Errorf(wire.CodeRefused, "no send of this device is offered to you")
	}
	if !s.SendUntil.After(now) {
		return wire.Errorf(wire.CodeRefused, "the send expired")
	}
	helpers, hashes, err := d.swarmHelpers(cfg, s, remote)
	if err != nil {
		d.log.Warn("make a send's ticket", "share", s.Name, "peer", remote.Abbrev(), "err", err)
		return wire.Errorf(wire.CodeInternal, "make a ticket: %v", err)
	}
	if len(helpers) == 0 {
		return &wire.SwarmTicketResponse{}
	}
	body, err := wire.EncodeSwarmTicket(wire.SwarmTicket{SignerKey: d.id.PublicKey(), Receiver: remote,
		Share: req.Share, Expires: s.SendUntil, Hashes: hashes})
	if err != nil {
		return wire.Errorf(wire.CodeInternal, "make a ticket: %v", err)
	}
	d.log.Info("gave a send's receiver a ticket to this device's other devices", "share", s.Name, "peer", remote.Abbrev(),
		"helpers", len(helpers), "blocks", len(hashes))
	return &wire.SwarmTicketResponse{Body: body, Signature: d.id.Sign(wire.SwarmSignedBytes(body)), Helpers: helpers}
}

// swarmHelpers finds the send's blocks (s's records) and the devices of
// this device's keyring, other than remote, that are members of a share
// here holding them, with their addresses.
func (d *Daemon) swarmHelpers(cfg *config.Config, s *config.Share, remote identity.DeviceID) ([]wire.SwarmHelper, []block.Hash, error) {
	ks := keyringOf(d.home, cfg)
	if ks == nil || ks.JoinFrom != "" {
		return nil, nil, nil
	}
	ring, err := share.ParseKey(ks.Key)
	if err != nil {
		return nil, nil, nil
	}
	rst, err := d.members.State(ring.ID(), ring.PublicKey())
	if err != nil {
		return nil, nil, err
	}
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return nil, nil, err
	}
	idx, err := d.db.Share(key, s.Path, d.self.Short())
	if err != nil {
		return nil, nil, err
	}
	var hashes []block.Hash
	seen := map[block.Hash]bool{}
	err = idx.Records(func(e index.Entry) error {
		for _, b := range e.Record.Blocks {
			if len(hashes) < wire.MaxSwarmHashes && !seen[b.Hash] && !block.IsZeros(b.Hash, b.Size) {
				seen[b.Hash] = true
				hashes = append(hashes, b.Hash)
			}
		}
		return nil
	})
	if err != nil || len(hashes) == 0 {
		return nil, nil, err
	}
	// The shares that hold the send's blocks here: their members among
	// this person's devices hold them too, or will.
	holding := map[share.ID]bool{}
	step := max(len(hashes)/swarmSample, 1)
	for i := 0; i < len(hashes); i += step {
		locs, err := d.db.Locate(hashes[i])
		if err != nil {
			continue
		}
		for _, l := range locs {
			if l.Share != key.ID() {
				holding[l.Share] = true
			}
		}
	}
	var out []wire.SwarmHelper
	for _, in := range rst.Members() {
		dev := identity.DeviceID(in.Device)
		if in.Removed || dev == d.self || dev == remote || len(out) == wire.MaxSwarmHelpers {
			continue
		}
		if !d.memberOfAny(cfg, holding, in.Device) {
			continue
		}
		var static []string
		if p, err := cfg.FindPeer(dev.String()); err == nil {
			static = slices.Clone(p.Addresses)
		}
		for _, a := range d.discovered(dev) { // LAN discovery's
			if a.AddrPort.IsValid() {
				static = append(static, a.AddrPort.String())
			}
		}
		if addrs := d.dialable(dev, static); len(addrs) > 0 {
			out = append(out, wire.SwarmHelper{Device: dev, Addresses: addrs})
		}
	}
	return out, hashes, nil
}

// memberOfAny reports whether dev is a current member of one of shares
// (held here, by their membership logs).
func (d *Daemon) memberOfAny(cfg *config.Config, shares map[share.ID]bool, dev members.Device) bool {
	for id := range shares {
		s, err := cfg.FindShare(id.String())
		if err != nil {
			continue
		}
		if d.isMemberOf(s, id, dev) {
			return true
		}
	}
	return false
}

// isMemberOf reports whether dev is a current member of share s: by its
// membership log, or, for a share without one, by its peers.
func (d *Daemon) isMemberOf(s *config.Share, id share.ID, dev members.Device) bool {
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return false
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return false
	}
	if st.Len() == 0 {
		return slices.Contains(s.Peers, identity.DeviceID(dev).String())
	}
	in, ok := st.Member(dev)
	return ok && !in.Removed
}

// ---- the helper

// mayHelp reports whether this device may serve send tickets: it is in a
// keyring (accepted into it).
func (d *Daemon) mayHelp() bool {
	ks := keyringOf(d.home, d.config())
	return ks != nil && ks.JoinFrom == ""
}

// swarmGuest decides about an unpaired device whose Hello offers the swarm
// capability: a guest (it may show a ticket) when this device may help.
func (d *Daemon) swarmGuest(hello *wire.Hello) bool {
	return slices.Contains(hello.Capabilities, swarmGuestCap) && d.mayHelp()
}

// handleSwarm answers the swarm requests of any device, paired or a
// guest; handled is false for what is not one (the session's then).
func (d *Daemon) handleSwarm(remote identity.DeviceID, m wire.Message) (resp wire.Message, handled bool) {
	switch req := m.(type) {
	case *wire.SwarmOpen:
		resp, err := d.openTicket(remote, req, time.Now())
		if err != nil {
			d.log.Info("refused a send ticket", "peer", remote.Abbrev(), "err", err)
			return wire.Errorf(wire.CodeRefused, "%v", err), true
		}
		return resp, true
	case *wire.SwarmTicketRequest:
		if !d.isPeer(remote) {
			return wire.Errorf(wire.CodeRefused, "%v", errNotPaired), true
		}
		return d.handleSwarmTicket(remote, req), true
	case *wire.BlockRequest:
		return d.serveTicket(remote, req, time.Now())
	}
	return nil, false
}

// openTicket checks a ticket a device shows and keeps it (see the top).
func (d *Daemon) openTicket(remote identity.DeviceID, req *wire.SwarmOpen, now time.Time) (*wire.SwarmOpened, error) {
	t, err := wire.DecodeSwarmTicket(req.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errTicket, err)
	}
	signer := identity.FromPublicKey(t.SignerKey)
	if !identity.Verify(signer, t.SignerKey, wire.SwarmSignedBytes(req.Body), req.Signature) {
		return nil, fmt.Errorf("%w: its signature is not its signer's", errTicket)
	}
	if identity.DeviceID(t.Receiver) != remote {
		return nil, fmt.Errorf("%w: it was made for device %s, not for you", errTicket, identity.DeviceID(t.Receiver).Abbrev())
	}
	if !t.Expires.After(now) {
		return nil, fmt.Errorf("%w: it expired at %s", errTicket, t.Expires.UTC().Format(time.DateTime))
	}
	cfg := d.config()
	ks := keyringOf(d.home, cfg)
	if ks == nil || ks.JoinFrom != "" || signer == d.self {
		return nil, fmt.Errorf("%w: this device serves tickets of its keyring's other devices only", errTicket)
	}
	ring, err := share.ParseKey(ks.Key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errTicket, err)
	}
	rst, err := d.members.State(ring.ID(), ring.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errTicket, err)
	}
	if in, ok := rst.Member(members.Device(signer)); !ok || in.Removed {
		return nil, fmt.Errorf("%w: device %s, which signed it, is not in this device's keyring", errTicket, signer.Abbrev())
	}
	var shares []share.ID
	for i := range cfg.Shares {
		s := &cfg.Shares[i]
		id, err := share.ParseID(s.ID)
		if err != nil || s.ID == ks.ID || !s.SendUntil.IsZero() || s.ReceiveInto != "" || s.JoinFrom != "" {
			continue
		}
		if d.isMemberOf(s, id, members.Device(signer)) {
			shares = append(shares, id)
		}
	}
	if len(shares) == 0 {
		return nil, fmt.Errorf("%w: this device holds no share of device %s", errTicket, signer.Abbrev())
	}
	ot := &openTicket{hashes: make(map[block.Hash]bool, len(t.Hashes)), shares: shares, expires: t.Expires}
	for _, h := range t.Hashes {
		ot.hashes[h] = true
	}
	d.swarm.mu.Lock()
	for k, o := range d.swarm.tickets {
		if !o.expires.After(now) {
			delete(d.swarm.tickets, k)
		}
	}
	key := ticketKey{remote, t.Share}
	if _, ok := d.swarm.tickets[key]; !ok && len(d.swarm.tickets) >= maxSwarmTickets {
		d.swarm.mu.Unlock()
		return nil, fmt.Errorf("%w: this device serves %d tickets already; try again later", errTicket, maxSwarmTickets)
	}
	if d.swarm.tickets == nil {
		d.swarm.tickets = map[ticketKey]*openTicket{}
	}
	_, again := d.swarm.tickets[key]
	d.swarm.tickets[key] = ot
	d.swarm.mu.Unlock()
	held := 0
	if h, err := d.db.Holds(t.Hashes); err == nil {
		held = len(h)
	}
	if !again {
		d.log.Info("serving a send of another device of yours to its receiver", "peer", remote.Abbrev(), "signer", signer.Abbrev(),
			"blocks", len(t.Hashes), "held", held, "until", t.Expires.UTC().Format(time.DateTime))
	}
	return &wire.SwarmOpened{Held: uint32(held)}, nil
}

// serveTicket answers a BlockRequest under a ticket remote showed for the
// request's share: a block the ticket names, from a share the signer is a
// member of. handled is false when remote showed no ticket for it.
func (d *Daemon) serveTicket(remote identity.DeviceID, req *wire.BlockRequest, now time.Time) (wire.Message, bool) {
	d.swarm.mu.Lock()
	t := d.swarm.tickets[ticketKey{remote, req.Share}]
	d.swarm.mu.Unlock()
	if t == nil {
		return nil, false
	}
	if !t.expires.After(now) {
		return wire.Errorf(wire.CodeRefused, "%v: the ticket expired", errTicket), true
	}
	if !t.hashes[req.Hash] {
		return wire.Errorf(wire.CodeRefused, "%v: the ticket does not name this block", errTicket), true
	}
	for _, id := range t.shares {
		if data, ok := d.eng.ReadBlock(id, req.Hash, req.Size); ok {
			d.swarm.servedBytes.Add(int64(len(data)))
			d.swarm.servedBlocks.Add(1)
			return &wire.BlockResponse{Encoding: wire.BlockRaw, Data: data}, true
		}
	}
	return wire.Errorf(wire.CodeNotFound, "block not held here"), true
}

// ---- the receiver

// swarmSession asks the sender of each receive that c's device sends for
// a ticket, until ctx ends (the connection's session).
func (d *Daemon) swarmSession(ctx context.Context, c *conn.Conn) {
	if !slices.Contains(c.PeerHello().Capabilities, wire.SwarmCapability) {
		return // an older device: no tickets
	}
	asked := map[share.ID]time.Time{}
	t := time.NewTicker(swarmAsk)
	defer t.Stop()
	for {
		for _, s := range d.config().Shares {
			id, err := share.ParseID(s.ID)
			if err != nil || s.ReceiveInto == "" || s.JoinFrom != "" || !slices.Contains(s.Peers, c.Remote().String()) || d.swarming(id) {
				continue
			}
			if at, ok := asked[id]; ok && time.Since(at) < swarmAskAgain {
				continue
			}
			asked[id] = time.Now()
			d.askTicket(ctx, c, id, s.Name)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Daemon) swarming(id share.ID) bool {
	d.swarm.mu.Lock()
	defer d.swarm.mu.Unlock()
	_, ok := d.swarm.recv[id]
	return ok
}

// askTicket asks c's device for a ticket to receive id from its other
// devices too, and starts fetching from them.
func (d *Daemon) askTicket(ctx context.Context, c *conn.Conn, id share.ID, name string) {
	ctx, cancel := context.WithTimeout(ctx, swarmDial)
	defer cancel()
	resp, err := c.Request(ctx, &wire.SwarmTicketRequest{Share: id})
	if err != nil {
		d.log.Debug("ask the sender for a ticket", "share", name, "peer", c.Remote().Abbrev(), "err", err)
		return
	}
	r, ok := resp.(*wire.SwarmTicketResponse)
	if !ok || len(r.Body) == 0 || len(r.Helpers) == 0 {
		d.log.Debug("the sender has no ticket to give", "share", name, "peer", c.Remote().Abbrev(), "answer", wire.Name(resp))
		return
	}
	t, err := wire.DecodeSwarmTicket(r.Body)
	if err != nil || t.Share != id || identity.DeviceID(t.Receiver) != d.self {
		d.log.Warn("the sender's ticket is not for this receive", "share", name, "peer", c.Remote().Abbrev(), "err", err)
		return
	}
	hs := make([]*swarmHelper, 0, len(r.Helpers))
	srcs := make([]engine.BlockSource, 0, len(r.Helpers))
	for _, h := range r.Helpers {
		sh := &swarmHelper{d: d, dev: h.Device, addrs: h.Addresses, share: id, open: wire.SwarmOpen{Body: r.Body, Signature: r.Signature}}
		hs = append(hs, sh)
		srcs = append(srcs, sh.fetch)
	}
	d.swarm.mu.Lock()
	if _, ok := d.swarm.recv[id]; ok {
		d.swarm.mu.Unlock()
		return // another connection's ask won
	}
	if d.swarm.recv == nil {
		d.swarm.recv = map[share.ID][]*swarmHelper{}
	}
	d.swarm.recv[id] = hs
	d.swarm.mu.Unlock()
	d.eng.SetHelpers(id, srcs)
	d.log.Info("fetching the send from the sender's other devices too", "share", name, "peer", c.Remote().Abbrev(), "helpers", len(hs))
}

// pruneSwarms ends the helpers of receives cfg no longer holds.
func (d *Daemon) pruneSwarms(cfg *config.Config) {
	d.swarm.mu.Lock()
	var gone []share.ID
	var closing []*swarmHelper
	for id, hs := range d.swarm.recv {
		if _, err := cfg.FindShare(id.String()); err != nil {
			gone = append(gone, id)
			closing = append(closing, hs...)
			delete(d.swarm.recv, id)
		}
	}
	d.swarm.mu.Unlock()
	for _, id := range gone {
		d.eng.SetHelpers(id, nil)
	}
	for _, h := range closing {
		h.close()
	}
}

// goRun runs fn(Run's context) as a goroutine Run waits for; false when
// Run is not running or is stopping.
func (d *Daemon) goRun(fn func(context.Context)) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.stopping || d.mu.runCtx == nil || d.mu.runCtx.Err() != nil {
		return false
	}
	ctx := d.mu.runCtx
	d.wg.Go(func() { fn(ctx) })
	return true
}

// swarmHelper is one of a sender's other devices a receive fetches from:
// a guest connection to it, dialled when first needed and again after it
// ends (a helper keeps a guest for a while only).
type swarmHelper struct {
	d     *Daemon
	dev   identity.DeviceID
	addrs []string
	share share.ID
	open  wire.SwarmOpen

	mu struct {
		gosync.Mutex
		c       *conn.Conn    // guarded by mu: the live connection, or nil
		dialing chan struct{} // guarded by mu: closed when the dial under way ends
		failed  time.Time     // guarded by mu: when the last dial failed
		closed  bool          // guarded by mu
	}
}

var errHelperDown = errors.New("the sender's other device is not reachable now")

// fetch is the helper's engine.BlockSource.
func (h *swarmHelper) fetch(ctx context.Context, hash block.Hash, size uint32) ([]byte, error) {
	c, err := h.conn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := c.Request(ctx, &wire.BlockRequest{Share: h.share, Hash: hash, Size: size})
	if err != nil {
		return nil, err
	}
	br, ok := resp.(*wire.BlockResponse)
	if !ok {
		return nil, fmt.Errorf("device %s: %s", h.dev.Abbrev(), wire.Name(resp))
	}
	defer br.Release()
	if br.Encoding != wire.BlockRaw {
		return nil, fmt.Errorf("device %s sent a block encoded %d", h.dev.Abbrev(), br.Encoding)
	}
	data := bytes.Clone(br.Data)
	h.d.swarm.fetchedBytes.Add(int64(len(data)))
	return data, nil
}

// conn returns the live connection, dialling it (once, whoever asks) when
// there is none.
func (h *swarmHelper) conn(ctx context.Context) (*conn.Conn, error) {
	h.mu.Lock()
	for {
		if h.mu.closed {
			h.mu.Unlock()
			return nil, errHelperDown
		}
		if c := h.mu.c; c != nil {
			select {
			case <-c.Done():
				h.mu.c = nil
				continue
			default:
			}
			h.mu.Unlock()
			return c, nil
		}
		if ch := h.mu.dialing; ch != nil {
			h.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			h.mu.Lock()
			if h.mu.c == nil && !h.mu.closed {
				h.mu.Unlock()
				return nil, errHelperDown // that dial failed
			}
			continue
		}
		if time.Since(h.mu.failed) < swarmRedial {
			h.mu.Unlock()
			return nil, errHelperDown
		}
		break
	}
	ch := make(chan struct{})
	h.mu.dialing = ch
	h.mu.Unlock()
	c, err := h.dial()
	h.mu.Lock()
	h.mu.dialing = nil
	close(ch)
	if err != nil {
		h.mu.failed = time.Now()
		h.mu.Unlock()
		h.d.log.Debug("dial a sender's other device", "peer", h.dev.Abbrev(), "err", err)
		return nil, fmt.Errorf("%w: %v", errHelperDown, err)
	}
	if h.mu.closed {
		h.mu.Unlock()
		c.Close()
		return nil, errHelperDown
	}
	h.mu.c = c
	h.mu.Unlock()
	return c, nil
}

// dial connects to the helper at one of its addresses as a guest and shows
// the ticket.
func (h *swarmHelper) dial() (*conn.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), swarmDial)
	defer cancel()
	var errs []error
	for _, addr := range h.addrs {
		s, err := h.d.tls.DialAny(ctx, addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		hello := wire.Hello{DeviceName: h.d.config().Device.Name, Capabilities: []string{wire.SwarmCapability, swarmGuestCap}}
		c, err := conn.Open(ctx, s, hello, refuseAll{}, conn.Options{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c.Remote() != h.dev {
			c.Close()
			errs = append(errs, fmt.Errorf("%s is device %s, not %s", addr, c.Remote().Abbrev(), h.dev.Abbrev()))
			continue
		}
		if !h.d.goRun(func(rctx context.Context) { c.Run(rctx) }) {
			c.Close()
			return nil, errors.New("stopping")
		}
		resp, err := c.Request(ctx, &h.open)
		if err == nil {
			if _, ok := resp.(*wire.SwarmOpened); !ok {
				err = fmt.Errorf("device %s: %s", h.dev.Abbrev(), wire.Name(resp))
				if e, ok := resp.(*wire.ErrorResponse); ok {
					err = fmt.Errorf("device %s: %s", h.dev.Abbrev(), e.Message)
				}
			}
		}
		if err != nil {
			c.Close()
			errs = append(errs, err)
			continue
		}
		return c, nil
	}
	return nil, errors.Join(errs...)
}

// close ends the helper's connection; it is not dialled again.
func (h *swarmHelper) close() {
	h.mu.Lock()
	c := h.mu.c
	h.mu.c, h.mu.closed = nil, true
	h.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// errGuestSwarm is why a guest showing the swarm capability stays.
var errGuestSwarm = fmt.Errorf("may show a send's ticket: %w", peer.ErrGuest)
