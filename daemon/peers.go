package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/discovery"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// inviteCap is the Hello capability that carries an invitation token.
const inviteCap = "invite="

// errNotPaired is why an unknown device is turned away.
var errNotPaired = errors.New("this device does not know you: ask its owner for an invite link (`blueshift invite SHARE`)")

// errNoInvitation is why an unknown device is turned away before its Hello:
// no invitation is open, so whatever token it holds is not valid.
var errNoInvitation = errors.New("this device does not know you and has no open invitation (it expired, or a single-use link was used already): ask its owner for a new link (`blueshift invite SHARE`)")

// newManager makes the connection manager: the configured peers, the
// invitation rules, LAN discovery's addresses and the engine's sessions.
func (d *Daemon) newManager(cfg *config.Config) (*peer.Manager, error) {
	var punch func(netip.AddrPort) error
	if d.quic != nil {
		punch = d.quic.Punch
	}
	dialer := &conn.Dialer{TCP: d.tls, QUIC: d.quic}
	relaying, _ := d.relaying(cfg)
	d.relayc = d.newRelayClient(dialer)
	return peer.New(peer.Options{
		Identity:     d.id,
		Transport:    dialer,
		Punch:        punch,
		Relay:        d.relayc,
		Relaying:     relaying,
		DeviceName:   cfg.Device.Name,
		Capabilities: d.capabilities,
		Handler:      d.newHandler,
		Admit:        d.admit,
		Serve:        d.serveSession,
		OnRefusedBy:  d.joinRefusedBy,
		Addresses:    d.peerAddresses,
		MinBackoff:   d.opts.DialMin,
		MaxBackoff:   d.opts.DialMax,
		Refused:      maxRefused,
		Logger:       d.log,
	})
}

// newDiscovery makes the LAN discovery that announces the port we listen
// on, or nil when it is off: by configuration, by Options, or because we
// listen on loopback only (nothing on the LAN could reach us).
func (d *Daemon) newDiscovery(cfg *config.Config) (*discovery.Discovery, error) {
	if !cfg.Device.Discovery || d.opts.NoDiscovery {
		d.log.Info("LAN discovery off; peers are dialled at their configured addresses")
		return nil, nil
	}
	ta, ok := d.ln.Addr().(*net.TCPAddr)
	if !ok {
		return nil, nil
	}
	ifaces := discoveryInterfaces(cfg, d.opts.DiscoveryInterfaces)
	at := ta.AddrPort()
	ip := at.Addr().Unmap()
	switch {
	case ip.IsLoopback() && !allLoopback(ifaces):
		d.log.Info("LAN discovery off: listening on loopback only", "listen", at.String())
		return nil, nil
	case ip.IsUnspecified():
		ip = netip.IPv4Unspecified() // "the source address of the announcement", on either family
	}
	for _, name := range ifaces {
		if _, err := net.InterfaceByName(name); err != nil {
			d.log.Warn("LAN discovery: no such interface (yet); it is used once it exists", "iface", name, "err", err)
		}
	}
	if len(ifaces) > 0 {
		d.log.Info("LAN discovery on the chosen interfaces only", "interfaces", strings.Join(ifaces, ","))
	}
	return discovery.New(discovery.Options{
		Key:        d.id,
		Addresses:  []netip.AddrPort{netip.AddrPortFrom(ip, at.Port())},
		Interfaces: ifaces,
		Logger:     d.log.With("part", "discovery"),
		OnUpdate:   func(id identity.DeviceID) { d.peers.Kick(id) },
	})
}

// discoveryInterfaces is the interfaces LAN discovery may use: the
// daemon's option when given, else [discovery] interfaces; empty: every
// multicast interface but loopback.
func discoveryInterfaces(cfg *config.Config, override []string) []string {
	if len(override) > 0 {
		return override
	}
	return cfg.Discovery.Interfaces
}

// allLoopback reports whether ifaces is not empty and names loopback
// interfaces only: announcing a loopback address there makes sense.
func allLoopback(ifaces []string) bool {
	for _, name := range ifaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil || ifi.Flags&net.FlagLoopback == 0 {
			return false
		}
	}
	return len(ifaces) > 0
}

// discovered is the manager's Addresses: what LAN discovery heard from the
// device (the configured addresses come first, from AddPeer).
func (d *Daemon) discovered(id identity.DeviceID) []transport.Addr {
	if d.disc == nil {
		return nil
	}
	var out []transport.Addr
	for _, ap := range d.disc.Lookup(id) {
		out = append(out, transport.From(transport.Any, ap))
	}
	return out
}

// acceptable is the listener's AcceptFunc: known peers, and anyone while an
// invitation is open (the token in its Hello decides, in admit).
func (d *Daemon) acceptable(remote identity.DeviceID) error {
	cfg := d.config()
	if _, err := cfg.FindPeer(remote.String()); err == nil {
		return nil
	}
	if d.mayHelp() || d.opts.Rendezvous {
		return nil // a send's receiver may show a ticket (sendswarm.go), a stranger come to a rendezvous (sendrendezvous.go); admit decides
	}
	now := time.Now()
	for _, in := range cfg.Invites {
		if in.Expires.After(now) {
			return nil
		}
	}
	return errNoInvitation
}

// capabilities puts the token of a pending join in our Hello to the device
// that made it (the first one; the others follow as JoinRequests once the
// connection is kept), or the token of a [[peer]] invite written by an
// older version.
func (d *Daemon) capabilities(remote identity.DeviceID) []string {
	cfg := d.config()
	token := ""
	if pend := pendingJoins(cfg, remote); len(pend) > 0 {
		token = hex.EncodeToString(pend[0].token[:])
	} else if p, err := cfg.FindPeer(remote.String()); err == nil && p.Invite != "" {
		token = p.Invite
	}
	d.joins.setHello(remote, token)
	caps := append(append(d.meshCapabilities(), wire.MembersCapability, wire.VaultCapability, wire.VaultListedCapability, wire.PatchCapability, wire.ReflateCapability, wire.SwarmCapability, wire.BatchSigCapability, wire.ContentAskCapability), d.multicastCapabilities()...)
	caps = append(caps, d.listenCapabilities()...) // listening.go
	if d.opts.Rendezvous {
		caps = append(caps, wire.RendezvousCapability)
	}
	if token == "" {
		return caps
	}
	return append(caps, inviteCap+token)
}

// admit is the manager's Admit, after the Hello of every connection: a
// known peer stays; a token in the Hello pairs the device (redeem saves it
// as a peer and reloads, which pairs it in the manager) or turns it away
// with why, when not valid.
func (d *Daemon) admit(remote identity.DeviceID, hello *wire.Hello) error {
	var token string
	for _, cp := range hello.Capabilities {
		if t, ok := strings.CutPrefix(cp, inviteCap); ok {
			token = t
		}
	}
	if token != "" {
		err := d.redeem(remote, hello.DeviceName, token, share.ID{})
		if err != nil && d.isPeer(remote) {
			// A stale token of a device paired earlier: it stays.
			return nil
		}
		return err
	}
	if d.isPeer(remote) {
		return nil
	}
	if d.swarmGuest(hello) {
		return errGuestSwarm
	}
	return d.admitGuest(hello)
}

func (d *Daemon) isPeer(id identity.DeviceID) bool {
	_, err := d.config().FindPeer(id.String())
	return err == nil
}

// applyPeers pairs the manager with the configured peers and their static
// addresses, and unpairs (disconnects) the peers that are gone. Applies are
// serialized, so two reloads cannot interleave their changes.
func (d *Daemon) applyPeers(cfg *config.Config) {
	want := map[identity.DeviceID][]string{}
	for _, p := range cfg.Peers {
		if id, err := identity.ParseDeviceID(p.ID); err == nil {
			want[id] = p.Addresses
		}
	}
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	for id := range d.paired {
		if _, ok := want[id]; !ok {
			d.peers.RemovePeer(id)
			delete(d.paired, id)
		}
	}
	for id, addrs := range want {
		if old, ok := d.paired[id]; ok && slices.Equal(old, addrs) {
			continue
		}
		d.peers.AddPeer(id, d.parseAddrs(id, addrs)...)
		d.paired[id] = addrs
	}
	d.joins.poke() // pending joins may have changed: present them
	d.mesh.poke()  // so may the members to introduce
	for _, s := range cfg.Shares {
		if id, err := identity.ParseDeviceID(s.JoinFrom); err == nil && s.JoinToken != "" {
			d.peers.Kick(id) // a new token is worth a dial now, whatever the backoff
		}
	}
}

// serveSession runs the engine's session on a connection the manager
// keeps, and beside it presents the pending joins to the device.
func (d *Daemon) serveSession(ctx context.Context, c *conn.Conn, h conn.Handler) error {
	ph, ok := h.(*peerHandler)
	if !ok {
		return fmt.Errorf("serve peer %s: the handler is %T, not a sync session", c.Remote().Abbrev(), h)
	}
	d.forgetToken(c.Remote())
	d.learnKey(c.Remote(), c.PeerHello().Capabilities)
	d.learnListen(c) // before introduce: its first round passes them on
	ctx, cancel := context.WithCancel(ctx)
	var wg gosync.WaitGroup
	wg.Go(func() { d.presentJoins(ctx, c) })
	wg.Go(func() { d.relayMembers(ctx, c) })
	wg.Go(func() { d.introduce(ctx, c) })
	wg.Go(func() { d.vaultSession(ctx, c) })
	wg.Go(func() { d.swarmSession(ctx, c) })
	defer wg.Wait()
	defer cancel()
	return ph.Session.Serve(ctx, c)
}

// forgetToken drops a [[peer]] invite token (written by an older version)
// once its maker has kept our connection: we are paired now, and showing the
// token on every reconnect would only make the inviter redeem it again.
// Joins of this version are settled by the inviter's answer (join.go).
func (d *Daemon) forgetToken(remote identity.DeviceID) {
	if p, err := d.config().FindPeer(remote.String()); err != nil || p.Invite == "" {
		return
	}
	err := EditConfig(d.opts.Home, func(c *config.Config) error {
		if p, err := c.FindPeer(remote.String()); err == nil {
			p.Invite = ""
		}
		return nil
	})
	if err == nil {
		err = d.Reload()
	}
	if err != nil {
		d.log.Warn("forget a used invitation token", "peer", remote.Abbrev(), "err", err)
	}
}
