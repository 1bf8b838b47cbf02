package daemon

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// inviteCap is the Hello capability that carries an invitation token.
const inviteCap = "invite="

// errNotPaired is why an unknown device is turned away.
var errNotPaired = errors.New("this device does not know you: ask its owner for an invite link (`blueshift invite SHARE`)")

// peerConn is one open connection to a peer.
type peerConn struct {
	c        *conn.Conn
	outbound bool
	name     string // the name in its Hello: display only
	addr     string
	since    time.Time
	counted  *countedConn
}

// dialer keeps one configured peer connected.
type dialer struct {
	addrs []string
	stop  context.CancelFunc
	kick  chan struct{} // cap 1: the connection ended, try again now
}

// acceptable is the listener's AcceptFunc: known peers, and anyone while an
// invitation is open (the token in its Hello decides).
func (d *Daemon) acceptable(remote identity.DeviceID) error {
	cfg := d.config()
	if _, err := cfg.FindPeer(remote.String()); err == nil {
		return nil
	}
	now := time.Now()
	for _, in := range cfg.Invites {
		if in.Expires.After(now) {
			return nil
		}
	}
	return errNotPaired
}

func (d *Daemon) acceptLoop(ctx context.Context) {
	for {
		s, err := d.ln.Accept(ctx)
		if err != nil {
			var re *conn.RefusedError
			if errors.As(err, &re) {
				d.noteRefused(re.Remote, re.Addr, re.Err.Error())
				continue
			}
			return
		}
		d.wg.Go(func() { d.runConn(ctx, s) })
	}
}

// applyPeers starts a dialer for every configured peer with addresses and
// stops the dialers of peers that are gone; a removed peer is disconnected.
func (d *Daemon) applyPeers(ctx context.Context, cfg *config.Config) {
	want := map[identity.DeviceID][]string{}
	for _, p := range cfg.Peers {
		id, err := identity.ParseDeviceID(p.ID)
		if err != nil {
			continue
		}
		want[id] = p.Addresses
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, dl := range d.mu.dialers {
		if addrs, ok := want[id]; !ok || !slices.Equal(addrs, dl.addrs) {
			dl.stop()
			delete(d.mu.dialers, id)
		}
	}
	for id, pc := range d.mu.conns {
		if _, ok := want[id]; !ok && !d.pairingLocked(id, cfg) {
			pc.c.Close()
		}
	}
	for id, addrs := range want {
		if _, ok := d.mu.dialers[id]; ok || len(addrs) == 0 {
			continue
		}
		dctx, stop := context.WithCancel(ctx)
		dl := &dialer{addrs: addrs, stop: stop, kick: make(chan struct{}, 1)}
		d.mu.dialers[id] = dl
		d.wg.Go(func() { d.dialLoop(dctx, id, dl) })
	}
}

// pairingLocked: a device we do not list but that holds an open connection
// is one being paired right now; reload must not cut it.
func (d *Daemon) pairingLocked(id identity.DeviceID, cfg *config.Config) bool {
	_, err := cfg.FindPeer(id.String())
	return err == nil
}

// dialLoop dials the peer while it is not connected, with backoff.
func (d *Daemon) dialLoop(ctx context.Context, id identity.DeviceID, dl *dialer) {
	wait := time.Duration(0)
	for {
		if wait > 0 {
			t := time.NewTimer(wait/2 + rand.N(wait/2+1))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-dl.kick:
			case <-t.C:
			}
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		if d.connected(id) {
			wait = d.opts.DialMin
			continue
		}
		var s conn.Stream
		var err error
		for _, a := range dl.addrs {
			s, err = d.tls.Dial(ctx, a, id)
			if err == nil {
				break
			}
		}
		if err != nil {
			d.log.Debug("dial failed", "peer", id.Abbrev(), "err", err)
			wait = min(max(2*wait, d.opts.DialMin), d.opts.DialMax)
			continue
		}
		d.runConn(ctx, s)
		wait = d.opts.DialMin
	}
}

func (d *Daemon) connected(id identity.DeviceID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.mu.conns[id]
	return ok
}

// runConn runs the protocol on an authenticated stream until it ends.
func (d *Daemon) runConn(ctx context.Context, s conn.Stream) {
	remote := s.Remote
	log := d.log.With("peer", remote.Abbrev())
	cc := &countedConn{Conn: s.Conn}
	s.Conn = cc
	cfg := d.config()
	hello := wire.Hello{DeviceName: cfg.Device.Name}
	if p, err := cfg.FindPeer(remote.String()); err == nil && p.Invite != "" {
		hello.Capabilities = append(hello.Capabilities, inviteCap+p.Invite)
	}
	sess := d.eng.NewSession(remote)
	c, err := conn.Open(ctx, s, hello, sess, conn.Options{Logger: log})
	if err != nil {
		if ctx.Err() == nil {
			log.Info("connection failed", "err", err)
		}
		return
	}
	if err := d.admit(c); err != nil {
		log.Warn("refused device", "err", err)
		d.noteRefused(remote, s.RemoteAddr(), err.Error())
		c.Close()
		return
	}
	pc := &peerConn{c: c, outbound: s.Outbound, name: c.PeerHello().DeviceName, addr: s.RemoteAddr().String(), since: time.Now().UTC(), counted: cc}
	if !d.register(remote, pc) {
		c.Close()
		return
	}
	defer d.unregister(remote, pc)
	log.Info("connected", "addr", pc.addr, "outbound", pc.outbound, "name", c.PeerHello().DeviceName)

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() {
		runDone <- c.Run(cctx)
		cancel()
	}()
	if err := sess.Serve(cctx, c); err != nil && cctx.Err() == nil {
		log.Info("sync session ended", "err", err)
	}
	c.Close()
	cancel()
	if err := <-runDone; err != nil {
		log.Info("disconnected", "err", err)
	} else {
		log.Info("disconnected")
	}
}

// register makes pc the connection to remote, unless a better one exists.
// When both devices dial at once, both keep the connection the device with
// the smaller ID dialed, so exactly one survives.
func (d *Daemon) register(remote identity.DeviceID, pc *peerConn) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.mu.conns[remote]; ok {
		selfDials := bytes.Compare(d.self[:], remote[:]) < 0
		if old.outbound != pc.outbound && pc.outbound != selfDials {
			return false
		}
		old.c.Close()
	}
	d.mu.conns[remote] = pc
	return true
}

func (d *Daemon) unregister(remote identity.DeviceID, pc *peerConn) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.conns[remote] == pc {
		delete(d.mu.conns, remote)
		if dl, ok := d.mu.dialers[remote]; ok {
			select {
			case dl.kick <- struct{}{}:
			default:
			}
		}
	}
}

// admit decides, after the Hello, whether the peer may stay: a known peer
// may; a token in its Hello pairs it (or fails it, when not valid).
func (d *Daemon) admit(c *conn.Conn) error {
	remote := c.Remote()
	var token string
	for _, cp := range c.PeerHello().Capabilities {
		if t, ok := cutPrefix(cp, inviteCap); ok {
			token = t
		}
	}
	if token != "" {
		err := d.redeem(remote, c.PeerHello().DeviceName, token)
		if err != nil && d.isPeer(remote) {
			// A stale token of a device paired earlier: it stays.
			return nil
		}
		return err
	}
	if d.isPeer(remote) {
		return nil
	}
	return errNotPaired
}

func (d *Daemon) isPeer(id identity.DeviceID) bool {
	_, err := d.config().FindPeer(id.String())
	return err == nil
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

// countedConn counts the bytes of a connection, for Status.
type countedConn struct {
	net.Conn
	in, out atomic.Int64
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.in.Add(int64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.out.Add(int64(n))
	return n, err
}
