package daemon

import (
	"cmp"
	"fmt"
	"net"
	"strconv"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
)

// listenQUIC opens the QUIC transport's UDP socket and listener, unless QUIC
// is off ([device] quic = false, or Options.NoQUIC). The socket is on the
// host of the TCP listener and on [device] quic_port, by default the port
// number TCP got; if that UDP port is taken, a free one is picked (peers
// then learn it from what they observe, or from a quic:// address).
func (d *Daemon) listenQUIC(cfg *config.Config) error {
	if !cfg.Device.QUIC || d.opts.NoQUIC {
		d.log.Info("QUIC off; peers are reached over TCP only")
		return nil
	}
	ta := d.ln.Addr().(*net.TCPAddr)
	host := ""
	if !ta.IP.IsUnspecified() {
		host = ta.IP.String()
	}
	port, explicit := ta.Port, false
	if p := cmp.Or(d.opts.QUICPort, cfg.Device.QUICPort); p != 0 {
		port, explicit = p, true
	}
	q, err := conn.ListenQUIC(d.id, net.JoinHostPort(host, strconv.Itoa(port)), d.log.With("part", "quic"))
	if err != nil && !explicit {
		d.log.Warn("UDP port of the TCP listener taken; QUIC picks a free one", "port", port, "err", err)
		q, err = conn.ListenQUIC(d.id, net.JoinHostPort(host, "0"), d.log.With("part", "quic"))
	}
	if err != nil {
		return fmt.Errorf("%w: pass --quic-port with a free UDP port, or --no-quic", err)
	}
	ql, err := q.Listen(d.acceptable)
	if err != nil {
		q.Close()
		return err
	}
	d.quic, d.qln = q, ql
	d.log.Info("QUIC listening", "addr", q.LocalAddr().String())
	return nil
}

// listeners are the listeners the peer manager accepts on: TCP, QUIC
// (each diverted to the relay server when this device relays), and the
// relay client's streams from relays' invitations.
func (d *Daemon) listeners() []conn.Listener {
	lns := []conn.Listener{d.ln}
	if d.qln != nil {
		lns = append(lns, d.qln)
	}
	if d.relay != nil {
		for i, ln := range lns {
			lns[i] = d.relay.Divert(ln)
		}
	}
	return append(lns, d.relayc)
}

// QUICAddr is the UDP address of QUIC, nil when QUIC is off.
func (d *Daemon) QUICAddr() net.Addr {
	if d.quic == nil {
		return nil
	}
	return d.quic.LocalAddr()
}

// parseAddrs reads a peer's configured addresses; ones that do not parse
// (validation makes that rare) are skipped with a warning.
func (d *Daemon) parseAddrs(id identity.DeviceID, ss []string) []transport.Addr {
	out := make([]transport.Addr, 0, len(ss))
	for _, s := range ss {
		a, err := transport.Parse(s)
		if err != nil {
			d.log.Warn("peer address skipped: fix it in config.toml", "peer", id.Abbrev(), "err", err)
			continue
		}
		out = append(out, a)
	}
	return out
}

// reachStatus fills the QUIC address and the reflexive addresses of st.
func (d *Daemon) reachStatus(st *Status) {
	if a := d.QUICAddr(); a != nil {
		st.QUIC = a.String()
	}
	for _, a := range d.peers.Reflexive() {
		st.Reflexive = append(st.Reflexive, a.String())
	}
}
