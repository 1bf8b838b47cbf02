package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer"
	"github.com/blueshift-sync/blueshift/peer/dht"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
)

// Finding devices in the mainline DHT (peer/dht): each daemon is a node,
// publishes where it listens and looks up the paired devices it is not
// connected to.
//
// Bound: a device that moves (its addresses change) is connected again
// within 60 s. It republishes within addrPoll of the change; a peer that
// lost it notices within the connection timeout (15 s), looks it up at
// once and then with backoff doubling to lookupMax, and dials what it
// found at once (Kick). TestE2EDHTMovedDeviceFoundAgain shows it.
const (
	// DefaultDHTPortOffset: with [dht] listen empty, the node listens on the
	// peer port plus this (the peer port's UDP belongs to QUIC).
	DefaultDHTPortOffset = 1
	addrPoll             = 5 * time.Second  // how often our addresses are compared with what we published
	lookupMin            = 2 * time.Second  // first wait between look-ups of a device not found
	lookupMax            = 20 * time.Second // longest, for lookupEager after the loss
	lookupEager          = 5 * time.Minute  // then a device still not found is looked up
	lookupIdle           = 5 * time.Minute  // this often (the DHT is not ours to flood)
	lookupTimeout        = 20 * time.Second // one look-up
	publishTimeout       = 30 * time.Second // one publication
	maxLookups           = 8                // look-ups at once
)

// keyCap is the Hello capability that carries our Ed25519 public key:
// peers that have it can find us in the DHT.
const keyCap = "key="

// PublicBootstrap is the default bootstrap list: the public mainline
// routers. Used only when neither the command line nor [dht] bootstrap
// gives one and the daemon listens beyond loopback.
var PublicBootstrap = []string{
	"router.bittorrent.com:6881",
	"router.utorrent.com:6881",
	"dht.transmissionbt.com:6881",
	"dht.libtorrent.org:25401",
}

// dhtPart is the daemon's DHT node and what it found. Run owns its
// goroutines.
type dhtPart struct {
	d    *Daemon
	node *dht.Node

	wake chan struct{} // observed addresses changed -> publishLoop; capacity 1

	mu struct {
		gosync.Mutex
		observed  []string                       // reflexive addresses others saw us at (setObserved)
		found     map[identity.DeviceID][]string // addresses found per device
		published []string                       // what we published last
		seq       int64
	}
}

// newDHT opens the DHT node, or returns nil when it is off (by
// configuration or Options.NoDHT).
func (d *Daemon) newDHT(cfg *config.Config) (*dhtPart, error) {
	if !cfg.DHT.Enabled || d.opts.NoDHT {
		d.log.Info("DHT off: peers are found on the LAN and at their configured addresses only")
		return nil, nil
	}
	boot, public := dhtBootstrap(cfg.DHT.Bootstrap, d.opts.Bootstrap, d.ln.Addr())
	if public && d.opts.NoPublicDHT {
		return nil, fmt.Errorf("start the DHT node: it would ask the public routers (%s), which this daemon may not: pass --no-dht, or --bootstrap HOST:PORT of a node of your own",
			strings.Join(PublicBootstrap, ", "))
	}
	peerListen := cfg.Device.Listen
	if d.opts.Listen != "" {
		peerListen = d.opts.Listen
	}
	listen, chosen := dhtListen(cfg.DHT.Listen, d.opts.DHTListen, peerListen, d.ln.Addr())
	pc, err := net.ListenPacket("udp", listen)
	if err != nil && !chosen {
		// The default port (the peer port + 1) is taken: any port will
		// do, the DHT learns it from our packets.
		d.log.Info("DHT: the default port is taken; using a free one", "tried", listen, "err", err)
		host, _, _ := net.SplitHostPort(listen)
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	}
	if err != nil {
		return nil, fmt.Errorf("open the DHT node on UDP %s: %w: pass --dht-listen HOST:PORT with a free port, or --no-dht", listen, err)
	}
	node, err := dht.New(dht.Options{
		Conn: pc, Key: d.id, Bootstrap: boot,
		Logger: d.log.With("part", "dht"),
	})
	if err != nil {
		return nil, err
	}
	d.log.Info("DHT node", "listen", node.Addr().String(), "bootstrap", len(boot))
	p := &dhtPart{d: d, node: node, wake: make(chan struct{}, 1)}
	p.mu.found = make(map[identity.DeviceID][]string)
	return p, nil
}

// dhtListen is the node's UDP address: the option, else [dht] listen
// (chosen: a failure to listen there is an error), else the peer
// listener's host with the next port, or any free port when the peer port
// was picked at random (port 0): the next port may then be another
// daemon's, whose QUIC wants its UDP.
func dhtListen(configured, override, peerListen string, peer net.Addr) (addr string, chosen bool) {
	if override != "" {
		return override, true
	}
	if configured != "" {
		return configured, true
	}
	ta, ok := peer.(*net.TCPAddr)
	if !ok {
		return ":0", false
	}
	host := ""
	if !ta.IP.IsUnspecified() {
		host = ta.IP.String()
	}
	if _, port, err := net.SplitHostPort(peerListen); err != nil || port == "0" {
		return net.JoinHostPort(host, "0"), false
	}
	return net.JoinHostPort(host, strconv.Itoa(ta.Port+DefaultDHTPortOffset)), false
}

// dhtBootstrap is the bootstrap list: the option (--bootstrap), else
// [dht] bootstrap, else the public routers, unless the daemon listens on
// loopback only: nobody on the internet could reach it, so it asks nobody
// there (tests, which must never contact the public DHT, listen so).
// public says the list is PublicBootstrap.
func dhtBootstrap(configured, override []string, peer net.Addr) (boot []string, public bool) {
	switch {
	case len(override) > 0:
		return override, false
	case len(configured) > 0:
		return configured, false
	}
	if ta, ok := peer.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return nil, false
	}
	return PublicBootstrap, true
}

// run keeps the node's table, our publication and the look-ups going until
// ctx ends, then closes the node.
func (p *dhtPart) run(ctx context.Context) {
	var wg gosync.WaitGroup
	wg.Go(func() { p.node.Run(ctx) })
	wg.Go(func() { p.publishLoop(ctx) })
	wg.Go(func() { p.lookupLoop(ctx) })
	wg.Wait()
	p.node.Close()
}

// publishLoop publishes our addresses at start, whenever they change, when
// the node first finds other nodes, and every dht.RepublishEvery.
func (p *dhtPart) publishLoop(ctx context.Context) {
	var last time.Time
	hadNodes := false
	tick := time.NewTicker(addrPoll)
	defer tick.Stop()
	for {
		own := p.d.ourAddresses()
		var refl []string // what peers see us at over QUIC: our NAT's mappings
		for _, a := range p.d.peers.Reflexive() {
			refl = append(refl, a.AddrPort.String())
		}
		p.mu.Lock()
		if len(refl) > 0 {
			p.mu.observed = refl
		}
		addrs := publishable(p.mu.observed, own)
		changed := !slices.Equal(addrs, p.mu.published)
		p.mu.Unlock()
		nodes := p.node.Nodes() > 0
		if len(addrs) > 0 && (changed || nodes && !hadNodes || time.Since(last) > dht.RepublishEvery) {
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			seq, err := p.node.Publish(pctx, addrs)
			cancel()
			switch {
			case err != nil && ctx.Err() == nil:
				p.d.log.Warn("DHT: publish our addresses", "err", err)
			case err == nil:
				p.d.log.Info("DHT: published our addresses", "addrs", addrs, "seq", seq)
				last, hadNodes = time.Now(), nodes
				p.mu.Lock()
				p.mu.published, p.mu.seq = addrs, seq
				p.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-p.wake:
		}
	}
}

// SetObservedAddresses tells the daemon where other devices saw it
// (reflexive addresses, host:port of IPs): they are published in the DHT
// before its own, at once. For the transports that learn them.
func (d *Daemon) SetObservedAddresses(addrs []string) { d.dht.setObserved(addrs) }

// setObserved sets the addresses other devices saw us at (reflexive
// addresses, from whatever learns them: QUIC, NAT traversal); a change is
// published at once.
func (p *dhtPart) setObserved(addrs []string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	changed := !slices.Equal(p.mu.observed, addrs)
	p.mu.observed = slices.Clone(addrs)
	p.mu.Unlock()
	if changed {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// publishable is what we publish: the observed (reflexive) addresses
// first, as they are the ones reachable from afar, then our own; IP:port
// only, no duplicates, at most dht.MaxAddrs.
func publishable(observed, own []string) []string {
	var out []string
	for _, a := range append(slices.Clone(observed), own...) {
		ap, err := netip.ParseAddrPort(a)
		if err != nil || ap.Port() == 0 || slices.Contains(out, ap.String()) {
			continue
		}
		out = append(out, ap.String())
	}
	return out[:min(len(out), dht.MaxAddrs)]
}

// lookupLoop looks up, in rounds, the paired devices we have a public key
// of and no direct connection to: each at once when its connection is lost
// (or is relayed), then with backoff from lookupMin to lookupMax, and after
// lookupEager every lookupIdle. A device reached through a relay is looked
// up too: what the DHT finds is where its dialer tries to reach it without
// the relay (peer/relayed.go), and relays are asked within a second or two
// of an introduction, long before a first look-up could answer.
func (p *dhtPart) lookupLoop(ctx context.Context) {
	type state struct {
		since, next time.Time
		wait        time.Duration
	}
	states := map[identity.DeviceID]*state{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		connected, relayed := reachedBy(p.d.peers.Connected())
		now := time.Now()
		var due []identity.DeviceID
		keys := map[identity.DeviceID]ed25519.PublicKey{}
		for _, pr := range p.d.config().Peers {
			id, err := identity.ParseDeviceID(pr.ID)
			if err != nil {
				continue
			}
			pub := peerKey(id, pr.PublicKey)
			if pub == nil {
				continue
			}
			if connected[id] {
				delete(states, id) // once lost, looked up at once
				continue
			}
			st := states[id]
			if st == nil {
				st = &state{since: now, next: now, wait: lookupMin}
				states[id] = st
			}
			if !now.Before(st.next) && len(due) < maxLookups {
				due = append(due, id)
				keys[id] = pub
				st.next = now.Add(st.wait)
				st.wait = min(2*st.wait, lookupMax)
				if now.Sub(st.since) > lookupEager {
					st.wait = lookupIdle
				}
			}
		}
		var wg gosync.WaitGroup
		for _, id := range due {
			wg.Go(func() { p.lookup(ctx, id, keys[id], relayed[id]) })
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reachedBy splits the connected devices into those connected directly
// (not looked up) and those reached through a relay (looked up).
func reachedBy(conns []peer.Connection) (direct, relayed map[identity.DeviceID]bool) {
	direct, relayed = map[identity.DeviceID]bool{}, map[identity.DeviceID]bool{}
	for _, c := range conns {
		if c.Reach == peer.ReachRelayed {
			relayed[c.Device] = true
		} else {
			direct[c.Device] = true
		}
	}
	return direct, relayed
}

// lookup finds one device and has the manager dial it now: at once if it
// is not connected, else (relayed) when the addresses are new.
func (p *dhtPart) lookup(ctx context.Context, id identity.DeviceID, pub ed25519.PublicKey, relayed bool) {
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	it, err := p.node.Lookup(lctx, pub)
	if err != nil {
		p.d.log.Debug("DHT: look up a peer", "peer", id.Abbrev(), "err", err)
		return
	}
	addrs := make([]string, 0, len(it.Addrs))
	for _, a := range it.Addrs {
		addrs = append(addrs, a.String())
	}
	p.mu.Lock()
	changed := !slices.Equal(p.mu.found[id], addrs)
	p.mu.found[id] = addrs
	p.mu.Unlock()
	if changed {
		p.d.log.Info("DHT: found a peer", "peer", id.Abbrev(), "addrs", addrs, "seq", it.Seq)
	}
	if changed || !relayed {
		p.d.peers.Kick(id)
	}
}

// close closes the node when Open fails after opening it.
func (p *dhtPart) close() {
	if p != nil {
		p.node.Close()
	}
}

// status is the DHT part of Status.
func (p *dhtPart) status() *DHTStatus {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return &DHTStatus{Listen: p.node.Addr().String(), Nodes: p.node.Nodes(), Published: slices.Clone(p.mu.published), Seq: p.mu.seq}
}

// DHTStatus is the DHT node in Status.
type DHTStatus struct {
	Listen    string   `json:"listen"`    // its UDP address
	Nodes     int      `json:"nodes"`     // in its routing table
	Published []string `json:"published"` // our addresses, as last published
	Seq       int64    `json:"seq"`       // of that publication
}

// found returns the addresses the DHT gave for a device.
func (p *dhtPart) found(id identity.DeviceID) []string {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.mu.found[id])
}

// ourAddresses is what we publish: where peers can dial us, IP literals
// only, at most dht.MaxAddrs; loopback ones only when there is nothing
// else (a daemon listening on loopback: tests).
func (d *Daemon) ourAddresses() []string {
	all, err := Addresses(d.config().Device.Announce, d.ln.Addr().String())
	if err != nil {
		return nil
	}
	var out, loop []string
	for _, a := range all {
		ap, err := netip.ParseAddrPort(a)
		switch {
		case err != nil || slices.Contains(out, ap.String()) || slices.Contains(loop, ap.String()):
		case ap.Addr().IsLoopback():
			loop = append(loop, ap.String())
		default:
			out = append(out, ap.String())
		}
	}
	if len(out) == 0 {
		out = loop
	}
	return out[:min(len(out), dht.MaxAddrs)]
}

// peerAddresses is the manager's Addresses: every address a device may be
// found at beside its configured ones, from LAN discovery and the DHT.
// (The one place a transport change of address types would touch.)
func (d *Daemon) peerAddresses(id identity.DeviceID) []transport.Addr {
	out := d.discovered(id)
	for _, text := range d.dht.found(id) {
		a, err := transport.Parse(text)
		if err == nil && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// peerKey returns a peer's public key from its base64 text, if it is the
// key of id.
func peerKey(id identity.DeviceID, text string) ed25519.PublicKey {
	if text == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(b) != ed25519.PublicKeySize || identity.DeviceID(sha256.Sum256(b)) != id {
		return nil
	}
	return ed25519.PublicKey(b)
}

// keyCapability is the Hello capability with our public key.
func (d *Daemon) keyCapability() string {
	return keyCap + base64.StdEncoding.EncodeToString(d.id.PublicKey())
}

// learnKey keeps the public key a connected peer's Hello carries (checked
// against its proven device ID), so it can be found in the DHT later.
func (d *Daemon) learnKey(remote identity.DeviceID, caps []string) {
	for _, c := range caps {
		text, ok := strings.CutPrefix(c, keyCap)
		if !ok || peerKey(remote, text) == nil {
			continue
		}
		d.savePeerKey(remote, text)
		return
	}
}

// savePeerKey writes a peer's public key into its [[peer]] entry when it
// is not there yet.
func (d *Daemon) savePeerKey(id identity.DeviceID, text string) {
	if p, err := d.config().FindPeer(id.String()); err != nil || p.PublicKey == text || d.saveKnownKey(id, text) {
		return // an introduced device's key is kept beside it in Pebble
	}
	err := EditConfig(d.opts.Home, func(c *config.Config) error {
		if p, err := c.FindPeer(id.String()); err == nil {
			p.PublicKey = text
		}
		return nil
	})
	if err == nil {
		err = d.Reload()
	}
	if err != nil {
		d.log.Warn("save a peer's public key", "peer", id.Abbrev(), "err", err)
	}
}
