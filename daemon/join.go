package daemon

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/engine"
	"github.com/blueshift-sync/blueshift/sync/vault"
)

// A pending join is a share joined through a link whose inviter has not
// answered yet ([[share]] join_from and join_token). The joiner presents
// its token in two ways:
//   - in its Hello, when it connects to the inviter: an inviter that does
//     not know the device yet admits it only with a valid token, and a
//     refusal comes back as a Close marked refused (peer.Options.OnRefusedBy);
//   - in a JoinRequest on every open connection to the inviter (protocol
//     version 2), for each pending join, again whenever the configuration
//     changes: so a second share of a device we are connected to is joined
//     without reconnecting, and the answer (accepted, or refused with why)
//     is explicit.
//
// Accepted clears join_from and join_token; refused keeps why in
// join_refused and clears the token, so it is not presented again; both
// are saved, so `status` shows them after a restart too.

const (
	joinTimeout = 20 * time.Second // one JoinRequest
	joinRetry   = 10 * time.Second // after a JoinRequest failed without an answer
)

// joins is the daemon's record of pending joins. Its zero value is ready.
type joins struct {
	mu struct {
		gosync.Mutex
		changed chan struct{}                       // closed and replaced on every applied configuration
		hello   map[identity.DeviceID]string        // the token our last Hello to a device carried
		lastErr map[share.ID]string                 // why the last presentation got no answer
		busy    map[identity.DeviceID]*gosync.Mutex // one presenter at a time per device
	}
}

// wait returns a channel closed at the next configuration change.
func (j *joins) wait() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.changed == nil {
		j.mu.changed = make(chan struct{})
	}
	return j.mu.changed
}

// poke wakes every presenter: the configuration changed.
func (j *joins) poke() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.changed != nil {
		close(j.mu.changed)
	}
	j.mu.changed = make(chan struct{})
}

func (j *joins) setHello(id identity.DeviceID, token string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.hello == nil {
		j.mu.hello = map[identity.DeviceID]string{}
	}
	j.mu.hello[id] = token
}

func (j *joins) helloToken(id identity.DeviceID) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.mu.hello[id]
}

func (j *joins) setErr(id share.ID, msg string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.lastErr == nil {
		j.mu.lastErr = map[share.ID]string{}
	}
	if msg == "" {
		delete(j.mu.lastErr, id)
	} else {
		j.mu.lastErr[id] = msg
	}
}

func (j *joins) lastErr(id share.ID) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.mu.lastErr[id]
}

// lock serializes presenters to one device (a replaced connection's and
// its successor's).
func (j *joins) lock(id identity.DeviceID) func() {
	j.mu.Lock()
	if j.mu.busy == nil {
		j.mu.busy = map[identity.DeviceID]*gosync.Mutex{}
	}
	m := j.mu.busy[id]
	if m == nil {
		m = &gosync.Mutex{}
		j.mu.busy[id] = m
	}
	j.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// pendingJoin is one share waiting for its inviter's answer.
type pendingJoin struct {
	share share.ID
	name  string
	token [wire.TokenSize]byte
}

// pendingJoins lists the shares of cfg waiting for an answer from remote,
// in configuration order.
func pendingJoins(cfg *config.Config, remote identity.DeviceID) []pendingJoin {
	var out []pendingJoin
	for _, s := range cfg.Shares {
		if s.JoinFrom != remote.String() || s.JoinToken == "" {
			continue
		}
		id, err := share.ParseID(s.ID)
		tok, terr := hex.DecodeString(s.JoinToken)
		if err != nil || terr != nil || len(tok) != wire.TokenSize {
			continue // Load validated both; a hand-edited file gets no join
		}
		p := pendingJoin{share: id, name: s.Name}
		copy(p.token[:], tok)
		out = append(out, p)
	}
	return out
}

// presentJoins runs beside the engine session of every connection: it
// presents each pending join to the device at the other end, and again
// after each configuration change, until ctx ends with the connection.
func (d *Daemon) presentJoins(ctx context.Context, c *conn.Conn) {
	retry := time.NewTimer(joinRetry)
	defer retry.Stop()
	for {
		changed := d.joins.wait()
		var again <-chan time.Time // nil: wait for a change only
		if d.presentJoinsOnce(ctx, c) {
			retry.Reset(joinRetry)
			again = retry.C
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-again:
		}
	}
}

// presentJoinsOnce presents every pending join to c's device; true if one
// got no answer and should be presented again later.
func (d *Daemon) presentJoinsOnce(ctx context.Context, c *conn.Conn) (retry bool) {
	remote := c.Remote()
	unlock := d.joins.lock(remote)
	defer unlock()
	for _, p := range pendingJoins(d.config(), remote) {
		if ctx.Err() != nil {
			return false
		}
		if c.Version() < 2 {
			// A version 1 inviter takes tokens in the Hello only, and keeps
			// the connection only if it accepted ours: this one is kept. A
			// token our Hello did not carry waits for a new connection.
			if hex.EncodeToString(p.token[:]) == d.joins.helloToken(remote) {
				d.settleJoin(p.share, remote, "")
			}
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, joinTimeout)
		_, err := conn.Call[*wire.JoinResponse](rctx, c, &wire.JoinRequest{Token: p.token, Share: p.share})
		cancel()
		switch {
		case err == nil:
			d.log.Info("the inviter accepted this device into the share", "peer", remote.Abbrev(), "share", p.name)
			d.settleJoin(p.share, remote, "")
			// A pull of the share's membership log may have run on this
			// connection before the inviter knew us, and been refused:
			// pull it now, not at the next resync a minute away.
			d.msync.kick(remote)
		case errors.Is(err, wire.CodeRefused):
			var er *wire.ErrorResponse
			reason := err.Error()
			if errors.As(err, &er) && er.Message != "" {
				reason = er.Message
			}
			d.log.Warn("the inviter refused the invitation", "peer", remote.Abbrev(), "share", p.name, "err", reason)
			d.settleJoin(p.share, remote, reason)
		default:
			if ctx.Err() == nil {
				d.joins.setErr(p.share, fmt.Sprintf("the invitation got no answer: %v", err))
				d.log.Info("present an invitation", "peer", remote.Abbrev(), "share", p.name, "err", err)
				retry = true
			}
		}
	}
	return retry
}

// joinRefusedBy is the manager's OnRefusedBy: a device turned us away.
// Before its Hello, it does not pair with us at all, so every token we
// hold from it is refused; after, its Admit refused the token our Hello
// carried. A refusal from a device we hold no pending token of changes
// nothing here (the manager keeps redialling it).
func (d *Daemon) joinRefusedBy(remote identity.DeviceID, reason string, beforeHello bool) {
	pend := pendingJoins(d.config(), remote)
	hello := d.joins.helloToken(remote)
	var refused []share.ID
	for _, p := range pend {
		if beforeHello || hex.EncodeToString(p.token[:]) == hello {
			refused = append(refused, p.share)
		}
	}
	if len(refused) == 0 {
		return
	}
	d.log.Warn("the inviter refused the invitation", "peer", remote.Abbrev(), "err", reason)
	// Saving and reloading may take a while: not on the manager's goroutine.
	d.wg.Go(func() {
		for _, id := range refused {
			d.settleJoin(id, remote, reason)
		}
	})
}

// settleJoin saves the inviter's answer to a pending join: accepted when
// refused is "", else refused with that reason. A join already settled, or
// whose token changed meanwhile (joined again with a new link), is left.
func (d *Daemon) settleJoin(id share.ID, from identity.DeviceID, refused string) {
	d.joins.setErr(id, "")
	err := EditConfig(d.home, func(c *config.Config) error {
		s, err := c.FindShare(id.String())
		if err != nil || s.JoinFrom != from.String() || s.JoinToken == "" {
			return errSettled
		}
		s.JoinToken = ""
		if refused == "" {
			s.JoinFrom, s.JoinRefused = "", ""
		} else {
			s.JoinRefused = wire.Text(refused)
		}
		return nil
	})
	if errors.Is(err, errSettled) {
		return
	}
	if err == nil {
		err = d.Reload()
	}
	if err != nil {
		d.log.Warn("save the answer to an invitation", "peer", from.Abbrev(), "share", id.String(), "err", err)
	}
}

var errSettled = errors.New("join already settled")

// handleJoin answers a JoinRequest from remote, as the inviter: a member
// of the share is accepted at once; else the token must be a valid
// invitation to that share.
func (d *Daemon) handleJoin(remote identity.DeviceID, name string, req *wire.JoinRequest) (wire.Message, error) {
	if s, err := d.config().FindShare(req.Share.String()); err == nil && slices.Contains(s.Peers, remote.String()) {
		return &wire.JoinResponse{}, nil
	}
	if ok, err := d.keyringAdmit(remote, req.Share); ok {
		// A device of this person's keyring follows every share it holds.
		if err != nil {
			d.log.Warn("admit a device of the keyring", "peer", remote.Abbrev(), "share", req.Share.Short(), "err", err)
			return nil, wire.Errorf(wire.CodeRefused, "%v", err)
		}
		return &wire.JoinResponse{}, nil
	}
	err := d.redeem(remote, name, hex.EncodeToString(req.Token[:]), req.Share)
	switch {
	case errors.Is(err, ErrInvite):
		return nil, wire.Errorf(wire.CodeRefused, "%v", err)
	case err != nil:
		d.log.Warn("accept an invitation", "peer", remote.Abbrev(), "err", err)
		return nil, wire.Errorf(wire.CodeInternal, "the invitation could not be saved; try again later")
	}
	return &wire.JoinResponse{}, nil
}

// peerHandler is the handler of every peer connection: the engine's
// session, with JoinRequest answered by the daemon.
type peerHandler struct {
	*engine.Session
	d      *Daemon
	remote identity.DeviceID
	addr   transport.Addr // where the device is as we see it (SetRemoteAddr)
}

// newHandler is the manager's Handler.
func (d *Daemon) newHandler(id identity.DeviceID) conn.Handler {
	return &peerHandler{Session: d.eng.NewSession(id), d: d, remote: id}
}

func (h *peerHandler) HandleRequest(ctx context.Context, m wire.Message) (wire.Message, error) {
	if req, ok := m.(*wire.CodeRequest); ok {
		return h.d.handleCode(h.remote, req)
	}
	if resp, ok := h.d.handleSwarm(h.remote, m); ok {
		return resp, nil // a send's ticket and its blocks (sendswarm.go)
	}
	if resp, ok := h.d.handleRendezvous(ctx, h, m); ok {
		return resp, nil // sends across NATs (sendrendezvous.go)
	}
	if !h.d.isPeer(h.remote) {
		// A guest (asking about a short code) gets nothing else.
		return wire.Errorf(wire.CodeRefused, "%v", errNotPaired), nil
	}
	if req, ok := m.(*wire.JoinRequest); ok {
		return h.d.handleJoin(h.remote, "", req)
	}
	if req, ok := m.(*wire.MembersRequest); ok {
		return h.d.handleMembers(h.remote, req)
	}
	if in, ok := m.(*wire.Introduction); ok {
		return h.d.handleIntroduction(h.remote, in)
	}
	if vault.IsRequest(m) {
		return h.d.handleVault(h.remote, m), nil
	}
	return h.Session.HandleRequest(ctx, m)
}

// JoinStatus is a share's pending join, for Status.
type JoinStatus struct {
	From    string `json:"from"`              // the inviting device
	Refused string `json:"refused,omitempty"` // why the inviter refused; empty: waiting for its answer
	LastErr string `json:"last_error,omitempty"`
}

// JoinStatusOf is what the configuration says of s's join: nil when it has
// none pending or refused.
func JoinStatusOf(s config.Share) *JoinStatus {
	if s.JoinFrom == "" {
		return nil
	}
	return &JoinStatus{From: s.JoinFrom, Refused: s.JoinRefused}
}

// joinStatus is JoinStatusOf with why the last presentation got no answer.
func (d *Daemon) joinStatus(s config.Share) *JoinStatus {
	js := JoinStatusOf(s)
	if id, err := share.ParseID(s.ID); err == nil && js != nil && js.Refused == "" {
		js.LastErr = d.joins.lastErr(id)
	}
	return js
}
