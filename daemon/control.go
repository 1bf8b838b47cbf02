package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// listenControl opens the control socket, mode 0600. A socket left by a
// crashed daemon is removed: the caller holds the home's lock.
func listenControl(home string) (net.Listener, error) {
	path := filepath.Join(home, SocketFile)
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("open control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("open control socket %s: %w", path, err)
	}
	return ln, nil
}

// serveControl serves the control API (Handler) until Shutdown.
func (d *Daemon) serveControl(ctx context.Context) *http.Server {
	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	d.wg.Go(func() {
		if err := srv.Serve(d.ctl); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("control API stopped", "err", err)
		}
	})
	return srv
}

// Status is a snapshot of the whole daemon.
func (d *Daemon) Status() Status {
	cfg := d.config()
	st := Status{
		Device: d.self.String(), Name: cfg.Device.Name, Listen: d.ln.Addr().String(),
		Started: d.started.UTC(), Shares: []ShareStatus{}, Peers: []PeerStatus{}, Refused: []Refused{},
		DHT: d.dht.status(),
	}
	d.reachStatus(&st)
	d.relayStatus(&st)
	st.Hooks = d.hooks.Status()
	st.Multicast = d.eng.MulticastStatus()
	st.Swarm = d.swarmStats()
	es := d.eng.Status()
	byID := map[string]int{}
	for i, s := range es.Shares {
		byID[s.ID] = i
	}
	d.mu.Lock()
	shareErrs := map[string]error{}
	for id, se := range d.mu.shareErrs {
		shareErrs[id.String()] = se.err
	}
	d.mu.Unlock()
	conns := map[identity.DeviceID]peer.Connection{}
	for _, c := range d.peers.Connected() {
		conns[c.Device] = c
	}
	for _, a := range d.peers.Refused() {
		r := Refused{ID: a.Device.String(), Time: a.Time.UTC(), Reason: a.Reason}
		if a.Addr.IsValid() {
			r.Addr = a.Addr.String()
		}
		st.Refused = append(st.Refused, r)
	}

	for _, s := range cfg.Shares {
		ss := ShareStatus{ID: s.ID, Name: s.Name, Path: s.Path, Errors: []string{}, Peers: []string{}, Members: s.Peers}
		if ss.Members == nil {
			ss.Members = []string{}
		}
		if k, err := share.ParseKey(s.Key); err == nil {
			ss.Access = k.Level().String()
		}
		if i, ok := byID[s.ID]; ok {
			e := es.Shares[i]
			ss.Running = true
			ss.InSync, ss.NeedItems, ss.NeedBytes = e.InSync, e.NeedItems, e.NeedBytes
			ss.Records, ss.Conflicts = e.Records, e.Conflicts
			ss.Scanned = e.Scanned
			for _, r := range e.Reached {
				ss.Reached = append(ss.Reached, r.String())
			}
			ss.BytesIn, ss.BytesOut = e.BytesIn, e.BytesOut
			ss.Errors = append(ss.Errors, e.Errors...)
			if d := e.DiskFull; d != nil {
				ss.DiskFull = &DiskFull{Path: string(d.Path), NeedBytes: d.Need, FreeBytes: d.Free, Since: d.Since}
			}
			for _, p := range e.Peers {
				ss.Peers = append(ss.Peers, p.String())
			}
		}
		if err := shareErrs[s.ID]; err != nil {
			ss.Errors = append(ss.Errors, err.Error())
		}
		ss.MembershipRefused = d.membershipRefused(s.ID)
		ss.LocalChanges = d.localChanges(s.ID)
		if id, err := share.ParseID(s.ID); err == nil {
			d.vaultStatus(&ss, id, s, func(dev identity.DeviceID) bool { return conns[dev].Device == dev })
		}
		d.fillShare(&ss, s, cfg)
		switch ss.Join = d.joinStatus(s); {
		case ss.Join == nil:
		case ss.Join.Refused != "":
			ss.Errors = append(ss.Errors, fmt.Sprintf("device %s refused the invitation this share was joined with: %s; "+
				"ask for a new link and join again (`blueshift join LINK %s`)", s.JoinFrom, ss.Join.Refused, s.Path))
		default:
			why := "not connected to it so far"
			if id, err := identity.ParseDeviceID(s.JoinFrom); err == nil && conns[id].Device == id {
				why = "connected, waiting for its answer"
			}
			if ss.Join.LastErr != "" {
				why = ss.Join.LastErr
			}
			ss.Errors = append(ss.Errors, fmt.Sprintf("waiting for device %s, which invited this device, to accept it (%s); "+
				"the daemon keeps trying", s.JoinFrom, why))
		}
		st.Shares = append(st.Shares, ss)
	}
	st.Paused, st.MaxSendRate, st.MaxRecvRate = cfg.Device.Paused, int64(cfg.Device.MaxSendRate), int64(cfg.Device.MaxRecvRate)
	seen := map[string]bool{}
	for _, p := range cfg.Peers {
		ps := PeerStatus{ID: p.ID, Name: p.Name}
		seen[p.ID] = true
		if id, err := identity.ParseDeviceID(p.ID); err == nil {
			if pc, ok := conns[id]; ok {
				d.fillConn(&ps, pc)
			}
		}
		st.Peers = append(st.Peers, ps)
	}
	for id, pc := range conns {
		if !seen[id.String()] {
			ps := PeerStatus{ID: id.String()}
			d.fillConn(&ps, pc)
			st.Peers = append(st.Peers, ps)
		}
	}
	slices.SortStableFunc(st.Peers, func(a, b PeerStatus) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return st
}

func (d *Daemon) fillConn(ps *PeerStatus, c peer.Connection) {
	since := c.Since.UTC()
	ps.Connected, ps.Address, ps.Since = true, c.Addr, &since
	ps.BytesIn, ps.BytesOut = c.BytesIn, c.BytesOut
	ps.RateIn, ps.RateOut = d.rates.observe(c.Device, c.BytesIn, c.BytesOut, time.Now())
	ps.Transport, ps.Reach, ps.RTTMillis = c.Network.String(), string(c.Reach), float64(c.RTT.Microseconds())/1000
	if !c.Via.IsZero() {
		ps.Via, ps.ViaName = c.Via.String(), d.peerName(c.Via)
	}
	if ps.Name == "" {
		ps.Name = c.Name
	}
}
