package daemon

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// Membership, as the daemon runs it. Each share's signed membership log
// (index/members) lives in the device's Pebble database, not in
// config.toml: it changes at run time and every member must hold the same
// one. The daemon
//   - makes the log of a share this device holds the secret of and did not
//     join through a link, on first start (a migrated genesis naming the
//     share's configured peers), and adds configured peers the log does not
//     name yet (peers paired before logs existed);
//   - adds a device that redeems an invitation, at the invitation's level;
//   - relays the log to every connected member that speaks it (the Hello
//     capability members/1): each side asks the other for what it lacks on
//     connect, and again when told MembersChanged;
//   - syncs a share only with configured peers the log does not name as
//     removed or waiting for approval, and takes a record only if the log
//     says its maker may write (shareAccess);
//   - when the log removes a device: drops it from the share's peers (and
//     from its introduced members, known.go) and deletes the invitations it
//     joined with, and keeps the new epoch key when one is sealed to this
//     device.

const (
	membersTimeout = 20 * time.Second // one MembersRequest
	membersResync  = time.Minute      // a pull from each member even without news
)

// ErrMembers is the class of membership commands that cannot be done.
var ErrMembers = errors.New("membership change not possible")

// memberSync wakes the relays: changed is closed (and replaced) when a log
// changes here; kick[d] wakes the relay to device d when d says its changed.
type memberSync struct {
	mu struct {
		gosync.Mutex
		changed chan struct{}                       // guarded by mu
		kick    map[identity.DeviceID]chan struct{} // guarded by mu; cap 1 each
	}
}

func (m *memberSync) wait() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.changed == nil {
		m.mu.changed = make(chan struct{})
	}
	return m.mu.changed
}

func (m *memberSync) poke() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.changed != nil {
		close(m.mu.changed)
	}
	m.mu.changed = make(chan struct{})
}

func (m *memberSync) kicks(d identity.DeviceID) chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.kick == nil {
		m.mu.kick = map[identity.DeviceID]chan struct{}{}
	}
	k, ok := m.mu.kick[d]
	if !ok {
		k = make(chan struct{}, 1)
		m.mu.kick[d] = k
	}
	return k
}

func (m *memberSync) kick(d identity.DeviceID) {
	select {
	case m.kicks(d) <- struct{}{}:
	default:
	}
}

// MembersOf is what the share's log says: every device it names with its
// level, removed ones marked. Other parts (the mesh) use it to know whom
// to connect to; ok is false while the share has no log yet.
func (d *Daemon) MembersOf(id share.ID) (list []members.Info, ok bool) {
	key, _, err := d.shareByID(id)
	if err != nil {
		return nil, false
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil || st.Len() == 0 {
		return nil, false
	}
	return st.Members(), true
}

func (d *Daemon) shareByID(id share.ID) (share.Key, config.Share, error) {
	s, err := d.config().FindShare(id.String())
	if err != nil {
		return share.Key{}, config.Share{}, err
	}
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return share.Key{}, config.Share{}, fmt.Errorf("share %q: %w", s.Name, err)
	}
	return key, *s, nil
}

func (d *Daemon) devicePriv() ed25519.PrivateKey {
	return d.id.Certificate().PrivateKey.(ed25519.PrivateKey)
}

// sign makes the next entry of st, signed by this device.
func (d *Daemon) sign(st *members.State, id share.ID, b members.Body) (*members.Entry, error) {
	b.Share, b.Seq, b.Prev, b.Author, b.Time = id, uint64(st.Len()), st.Head(), members.Device(d.self), time.Now()
	e, err := members.NewEntry(b)
	if err != nil {
		return nil, err
	}
	e.Sign(d.devicePriv())
	return e, nil
}

// ensureLog starts the share's log if this device made the share (it holds
// the secret and did not join it through a link) and has none, and adds
// the configured peers the log does not name.
func (d *Daemon) ensureLog(id share.ID, key share.Key, s config.Share) {
	pub := key.PublicKey()
	_ = d.members.PutPublicKey(id, members.Device(d.self), d.id.PublicKey())
	st, err := d.members.State(id, pub)
	if err != nil {
		d.log.Warn("membership log", "share", s.Name, "err", err)
		return
	}
	if st.Len() == 0 {
		signer, ok := key.Signer()
		if !ok || s.JoinFrom != "" {
			return // it comes from the members
		}
		ms := []members.Member{{Device: members.Device(d.self), Level: members.ReadWrite}}
		for _, p := range membersOf(s) {
			if p != d.self {
				ms = append(ms, members.Member{Device: members.Device(p), Level: members.ReadWrite})
			}
		}
		e, err := d.sign(st, id, members.Body{Kind: members.KindGenesis, Members: ms, Migrated: len(ms) > 1})
		if err != nil {
			d.log.Warn("start the membership log", "share", s.Name, "err", err)
			return
		}
		e.SignShare(signer)
		if _, err := d.members.Append(id, pub, e); err != nil {
			d.log.Warn("start the membership log", "share", s.Name, "err", err)
			return
		}
		d.log.Info("started the share's membership log", "share", s.Name, "members", len(ms))
		d.msync.poke()
		return
	}
	d.importPeers(id, key, s, st)
}

// importPeers adds configured peers the log does not name (paired before
// the log existed; not introduced ones, known.go), when this device may:
// at rw, since their level was never written down (ro devices cannot sign
// records anyway).
func (d *Daemon) importPeers(id share.ID, key share.Key, s config.Share, st *members.State) {
	me, ok := st.Member(members.Device(d.self))
	if !ok || me.Removed || me.Level != members.ReadWrite || st.Threshold() > 1 {
		return
	}
	pending, _ := d.members.Pending(id, key.PublicKey())
	for _, p := range membersOf(s) {
		dev := members.Device(p)
		if _, named := st.Member(dev); named || slices.ContainsFunc(pending, func(e *members.Entry) bool { return e.Member.Device == dev }) {
			continue
		}
		if _, introduced, _ := d.known.Get(id, dev); introduced {
			continue // the log that admitted it names it; ours has not caught up
		}
		e, err := d.sign(st, id, members.Body{Kind: members.KindAdd, Member: members.Member{Device: dev, Level: members.ReadWrite}})
		if err == nil {
			_, err = d.members.Append(id, key.PublicKey(), e)
		}
		if err != nil {
			d.log.Warn("add a peer paired before the membership log", "share", s.Name, "peer", p.Abbrev(), "err", err)
			return
		}
		if st, err = d.members.State(id, key.PublicKey()); err != nil {
			return
		}
		d.msync.poke()
	}
}

// syncingMembers is who the engine syncs share s with: its configured
// peers, less those the log names as removed or as encrypted members (they
// hold no folder: vault.go syncs with them), and less those not in the log
// while a change adding them waits for approval.
func (d *Daemon) syncingMembers(id share.ID, s config.Share, ids []identity.DeviceID) []identity.DeviceID {
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return ids
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil || st.Len() == 0 {
		return ids
	}
	pending, _ := d.members.Pending(id, key.PublicKey())
	return slices.DeleteFunc(slices.Clone(ids), func(p identity.DeviceID) bool {
		in, named := st.Member(members.Device(p))
		if named {
			return in.Removed || in.Level == members.Encrypted
		}
		return slices.ContainsFunc(pending, func(e *members.Entry) bool { return e.Member.Device == members.Device(p) })
	})
}

// shareAccess is the engine's Access for one share: the log decides.
type shareAccess struct {
	d    *Daemon
	id   share.ID
	name string
}

func (a shareAccess) MayWrite(from identity.DeviceID, rec record.Record) bool {
	if m, ok := a.d.members.Mounted(a.id, string(rec.Path)); ok {
		// The folder is another share's (a signed mount entry): a member of
		// this one only, who sees a placeholder, writes nothing into it.
		err := fmt.Errorf("record %q is inside %q, where another share is mounted: only that share's members write there", rec.Path, m)
		a.d.log.Warn("refused a record", "share", a.name, "peer", from.Abbrev(), "path", string(rec.Path), "err", err)
		a.d.members.NoteRefused(a.id, from.String(), err, time.Now())
		return false
	}
	if a.d.members.MayWrite(a.id, uint64(rec.ModifiedBy), rec.Version.Get(rec.ModifiedBy)) {
		return true
	}
	err := fmt.Errorf("record %q made by device %016X, which the membership log does not let write", rec.Path, uint64(rec.ModifiedBy))
	a.d.log.Warn("refused a record", "share", a.name, "peer", from.Abbrev(), "path", string(rec.Path), "err", err)
	a.d.members.NoteRefused(a.id, from.String(), err, time.Now())
	return false
}

// logChanged follows a change of the share's log: peers told, removed
// devices dropped from the configuration with the invitations they joined
// with, epoch keys sealed to this device kept, and the engine given the
// new member set.
func (d *Daemon) logChanged(id share.ID) {
	d.msync.poke()
	key, s, err := d.shareByID(id)
	if err != nil {
		return
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return
	}
	for _, e := range st.Entries(0) {
		for _, sk := range e.Keys {
			if sk.Device == members.Device(d.self) {
				if k, err := members.OpenKey(sk.Box, d.devicePriv()); err == nil {
					_ = d.members.PutEpochKey(id, e.Epoch, k)
				}
			}
		}
	}
	invitees, _ := d.members.Invitees(id)
	removed := map[string]bool{}
	for _, in := range st.Members() {
		if in.Removed {
			removed[identity.DeviceID(in.Device).String()] = true
		}
	}
	gone := func(p string) bool { return removed[p] }
	dead := func(in config.Invite) bool {
		dev, ok := invitees[in.TokenHash]
		return in.Share == s.ID && ok && removed[identity.DeviceID(dev).String()]
	}
	d.forgetRemoved(id, st) // introduced ones (known.go)
	if slices.ContainsFunc(s.Peers, gone) || slices.ContainsFunc(d.config().Invites, dead) {
		err := EditConfig(d.home, func(c *config.Config) error {
			cs, err := c.FindShare(id.String())
			if (err != nil || !slices.ContainsFunc(cs.Peers, gone)) && !slices.ContainsFunc(c.Invites, dead) {
				return errNothingNew // only introduced: config.toml stays as the user wrote it
			}
			if err == nil {
				cs.Peers = slices.DeleteFunc(cs.Peers, gone)
			}
			c.Invites = slices.DeleteFunc(c.Invites, dead)
			return nil
		})
		if err != nil && !errors.Is(err, errNothingNew) {
			d.log.Warn("drop removed members from the configuration", "share", s.Name, "err", err)
		}
	}
	if err := d.Reload(); err != nil {
		d.log.Debug("reload after a membership change", "share", s.Name, "err", err)
	}
	d.importPeers(id, key, s, st)
	// Records the old log refused (a writer not yet in it, a folder then
	// mounted) may pass now: walk the peers' trees again.
	if err := d.eng.Reconsider(id); err != nil && !errors.Is(err, engine.ErrUnknownShare) {
		d.log.Debug("walk peers again after a membership change", "share", s.Name, "err", err)
	}
}

// admitted records that device remote joined share id through the
// invitation whose token hashes to tokenHash, at readOnly's level.
func (d *Daemon) admitted(id share.ID, remote identity.DeviceID, tokenHash string, level members.Level) {
	key, s, err := d.shareByID(id)
	if err != nil {
		return
	}
	_ = d.members.PutInvitee(id, tokenHash, members.Device(remote))
	st, err := d.members.State(id, key.PublicKey())
	if err != nil || st.Len() == 0 {
		return
	}
	if in, ok := st.Member(members.Device(remote)); ok && !in.Removed && in.Level >= level {
		return
	}
	e, err := d.sign(st, id, members.Body{Kind: members.KindAdd, Member: members.Member{Device: members.Device(remote), Level: level}})
	if err != nil {
		return
	}
	applied, err := d.members.Append(id, key.PublicKey(), e)
	switch {
	case err != nil:
		d.log.Warn("add the invited device to the membership log", "share", s.Name, "peer", remote.Abbrev(), "err", err)
	case !applied:
		d.log.Info("adding the invited device needs the other owners' approval", "share", s.Name, "peer", remote.Abbrev(),
			"change", changeID(e.Hash()))
	}
	d.msync.poke()
}

// refusedMember is why redeem turns away device remote for share id: it
// was removed, or the invitation admitted a device since removed.
func (d *Daemon) refusedMember(id share.ID, remote identity.DeviceID, tokenHash string) error {
	key, _, err := d.shareByID(id)
	if err != nil {
		return nil
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return nil
	}
	if in, ok := st.Member(members.Device(remote)); ok && in.Removed {
		return fmt.Errorf("this device was removed from the share: %w", ErrInvite)
	}
	invitees, _ := d.members.Invitees(id)
	if dev, ok := invitees[tokenHash]; ok {
		if in, ok := st.Member(dev); ok && in.Removed {
			return fmt.Errorf("the invitation was revoked (the device that joined with it was removed): %w; ask for a new link", ErrInvite)
		}
	}
	return nil
}

// revokedToken says why an invitation no longer in the configuration was
// taken back: it admitted a device since removed.
func (d *Daemon) revokedToken(tokenHash string) error {
	for _, s := range d.config().Shares {
		if id, err := share.ParseID(s.ID); err == nil {
			if err := d.refusedMember(id, identity.DeviceID{}, tokenHash); err != nil {
				return err
			}
		}
	}
	return nil
}

// membershipRefused is ShareStatus.MembershipRefused of share sid.
func (d *Daemon) membershipRefused(sid string) []string {
	id, err := share.ParseID(sid)
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range d.members.Refused(id) {
		out = append(out, fmt.Sprintf("%s from %s: %s", r.At.UTC().Format(time.RFC3339), r.From, r.Reason))
	}
	return out
}

// localChangesEvery bounds how often a share's local changes are listed
// for status (it reads every record; status is polled several times a
// second by the events stream).
const localChangesEvery = 5 * time.Second

// localCache keeps each share's local changes for localChangesEvery.
type localCache struct {
	mu struct {
		gosync.Mutex
		at   map[share.ID]time.Time     // guarded by mu
		last map[share.ID]*LocalChanges // guarded by mu
	}
}

// localChanges is ShareStatus.LocalChanges of share sid.
func (d *Daemon) localChanges(sid string) *LocalChanges {
	id, err := share.ParseID(sid)
	if err != nil {
		return nil
	}
	c := &d.local
	c.mu.Lock()
	if c.mu.at == nil {
		c.mu.at, c.mu.last = map[share.ID]time.Time{}, map[share.ID]*LocalChanges{}
	}
	if time.Since(c.mu.at[id]) < localChangesEvery {
		defer c.mu.Unlock()
		return c.mu.last[id]
	}
	c.mu.Unlock()
	var out *LocalChanges
	if list, n, err := d.eng.LocalChanges(id); err == nil && n > 0 {
		out = &LocalChanges{Count: n, Paths: list}
	}
	c.mu.Lock()
	c.mu.at[id], c.mu.last[id] = time.Now(), out
	c.mu.Unlock()
	return out
}

// forgetLocal makes the next status list share id's local changes afresh.
func (d *Daemon) forgetLocal(id share.ID) {
	d.local.mu.Lock()
	delete(d.local.mu.at, id)
	d.local.mu.Unlock()
}

// RevertResult is what `blueshift revert` prints.
type RevertResult struct {
	Reverted int `json:"reverted"`
}

// Revert puts the share's version back over this device's local edits of
// the share ref names, at or below paths (all when empty).
func (d *Daemon) Revert(ctx context.Context, ref string, paths []string) (RevertResult, error) {
	s, err := d.config().FindShare(ref)
	if err != nil {
		return RevertResult{}, err
	}
	id, err := share.ParseID(s.ID)
	if err != nil {
		return RevertResult{}, err
	}
	n, err := d.eng.Revert(ctx, id, paths)
	d.forgetLocal(id)
	return RevertResult{Reverted: n}, err
}

func changeID(h members.Hash) string { return hex.EncodeToString(h[:8]) }

// speaksMembers reports whether c's device relays membership logs.
func speaksMembers(c *conn.Conn) bool {
	h := c.PeerHello()
	return h != nil && slices.Contains(h.Capabilities, wire.MembersCapability)
}

// relayMembers runs beside the session of every connection: it pulls the
// logs of the shares both devices have, tells the peer when one changes
// here, and pulls again when the peer says one changed there.
func (d *Daemon) relayMembers(ctx context.Context, c *conn.Conn) {
	if !speaksMembers(c) {
		return
	}
	remote := c.Remote()
	kick := d.msync.kicks(remote)
	resync := time.NewTicker(membersResync)
	defer resync.Stop()
	pull := true
	for {
		changed := d.msync.wait()
		if pull {
			for _, id := range d.sharedWith(remote) {
				if err := d.pullMembers(ctx, c, id); err != nil && ctx.Err() == nil {
					d.log.Info("membership log from peer", "peer", remote.Abbrev(), "share", id.String(), "err", err)
				}
			}
		}
		pull = false
		select {
		case <-ctx.Done():
			return
		case <-changed:
			d.log.Debug("membership changed here: telling the peer", "peer", remote.Abbrev())
			for _, id := range d.sharedWith(remote) {
				if err := c.Send(ctx, &wire.MembersChanged{Share: id}); err != nil {
					if ctx.Err() == nil {
						d.log.Warn("tell a peer of a membership change", "peer", remote.Abbrev(), "err", err)
					}
					return
				}
			}
		case <-kick:
			d.log.Debug("the peer's membership changed: asking it", "peer", remote.Abbrev())
			pull = true
		case <-resync.C:
			pull = true
		}
	}
}

// sharedWith lists the shares whose configured peers include remote.
func (d *Daemon) sharedWith(remote identity.DeviceID) []share.ID {
	var out []share.ID
	for _, s := range d.config().Shares {
		if id, err := share.ParseID(s.ID); err == nil && slices.Contains(s.Peers, remote.String()) {
			out = append(out, id)
		}
	}
	return out
}

// pullMembers asks c's device for share id's log after ours and takes it.
func (d *Daemon) pullMembers(ctx context.Context, c *conn.Conn, id share.ID) error {
	key, s, err := d.shareByID(id)
	if err != nil {
		return nil
	}
	pub := key.PublicKey()
	st, err := d.members.State(id, pub)
	if err != nil {
		return err
	}
	req := &wire.MembersRequest{Share: id, Have: uint64(st.Len()), Head: st.Head()}
	copy(req.PublicKey[:], d.id.PublicKey())
	rctx, cancel := context.WithTimeout(ctx, membersTimeout)
	resp, err := conn.Call[*wire.MembersResponse](rctx, c, req)
	cancel()
	if err != nil {
		return err
	}
	from := c.Remote()
	added, err := d.members.Merge(id, pub, resp.Entries)
	if err != nil {
		d.log.Warn("refused a membership change", "share", s.Name, "peer", from.Abbrev(), "err", err)
		d.members.NoteRefused(id, from.String(), err, time.Now())
	}
	before, _ := d.members.Pending(id, pub)
	if err := d.members.MergePending(id, pub, resp.Pending); err != nil {
		d.log.Info("a pending membership change from peer", "share", s.Name, "peer", from.Abbrev(), "err", err)
	}
	after, _ := d.members.Pending(id, pub)
	now, _ := d.members.State(id, pub)
	for _, k := range resp.Keys {
		if ek, err := members.OpenKey(k.Box, d.devicePriv()); err == nil && k.Epoch <= now.Epoch() {
			_ = d.members.PutEpochKey(id, k.Epoch, ek)
		}
	}
	if added > 0 || now.Len() != st.Len() || now.Head() != st.Head() || !samePending(before, after) {
		d.logChanged(id)
	}
	return nil
}

func samePending(a, b []*members.Entry) bool {
	return slices.EqualFunc(a, b, func(x, y *members.Entry) bool { return x.Hash() == y.Hash() && len(x.Sigs) == len(y.Sigs) })
}

// handleMembers answers a MembersRequest from remote: only a configured
// peer of the share the log does not name as removed is answered.
func (d *Daemon) handleMembers(remote identity.DeviceID, req *wire.MembersRequest) (wire.Message, error) {
	key, s, err := d.shareByID(req.Share)
	if err != nil || !slices.Contains(s.Peers, remote.String()) {
		return nil, wire.Errorf(wire.CodeRefused, "not a member of share %s", req.Share.Short())
	}
	pub := key.PublicKey()
	st, err := d.members.State(req.Share, pub)
	if err != nil {
		return nil, wire.Errorf(wire.CodeInternal, "membership log of share %s: %v", req.Share.Short(), err)
	}
	in, named := st.Member(members.Device(remote))
	if named && in.Removed {
		return nil, wire.Errorf(wire.CodeRefused, "device removed from share %s", req.Share.Short())
	}
	_ = d.members.PutPublicKey(req.Share, members.Device(remote), req.PublicKey[:])
	from := 0
	if h := req.Have; h > 0 && h <= uint64(st.Len()) && st.Entries(int(h) - 1)[0].Hash() == req.Head {
		from = int(h)
	}
	resp := &wire.MembersResponse{}
	for _, e := range st.Entries(from) {
		resp.Entries = append(resp.Entries, e.Encode())
	}
	pending, _ := d.members.Pending(req.Share, pub)
	for _, e := range pending {
		resp.Pending = append(resp.Pending, e.Encode())
	}
	if named && in.Level >= members.ReadOnly && len(resp.Entries) <= wire.MaxMemberEntries {
		// Not to an encrypted member: the epoch keys read what it keeps.
		keys, _ := d.members.EpochKeys(req.Share)
		for ep, k := range keys {
			if box, err := members.SealKey(k, req.PublicKey[:]); err == nil && len(resp.Keys) < wire.MaxEpochKeys {
				resp.Keys = append(resp.Keys, wire.SealedEpochKey{Epoch: ep, Box: box})
			}
		}
	}
	if len(resp.Entries) > wire.MaxMemberEntries {
		resp.Entries = resp.Entries[:wire.MaxMemberEntries] // the rest on the next pull
	}
	return resp, nil
}

// HandleMessage takes MembersChanged; everything else is the session's.
// A guest's (asking about a short code) one-way messages mean nothing.
func (h *peerHandler) HandleMessage(ctx context.Context, m wire.Message) error {
	if !h.d.isPeer(h.remote) {
		return nil
	}
	if mc, ok := m.(*wire.MembersChanged); ok {
		h.d.log.Debug("peer says a membership log changed", "peer", h.remote.Abbrev(), "share", mc.Share.Short())
		if slices.Contains(h.d.sharedWith(h.remote), mc.Share) {
			h.d.msync.kick(h.remote)
		}
		return nil
	}
	return h.Session.HandleMessage(ctx, m)
}

// ---- commands (control API) ----

// MemberView is one device of `blueshift member list`.
type MemberView struct {
	Device    string     `json:"device"`
	Name      string     `json:"name,omitempty"`
	Level     string     `json:"level"` // rw, ro, enc
	Owner     bool       `json:"owner"`
	Self      bool       `json:"self,omitempty"`
	AddedBy   string     `json:"added_by"`
	AddedAt   time.Time  `json:"added_at"`
	Online    bool       `json:"online"`
	Removed   bool       `json:"removed,omitempty"`
	RemovedBy string     `json:"removed_by,omitempty"`
	RemovedAt *time.Time `json:"removed_at,omitempty"`
}

// ChangeView is a change waiting for owner approvals.
type ChangeView struct {
	ID        string   `json:"id"`
	Summary   string   `json:"summary"`
	Author    string   `json:"author"`
	Approvals []string `json:"approvals"` // owners that signed it
	Need      int      `json:"need"`      // the threshold
}

// MemberList is what `blueshift member list` prints.
type MemberList struct {
	Share     string       `json:"share"`
	Name      string       `json:"name"`
	HasLog    bool         `json:"has_log"`
	Entries   int          `json:"entries"`
	Epoch     uint64       `json:"epoch"`
	EpochKeys []uint64     `json:"epoch_keys"` // the epochs whose key this device holds (epoch 0 needs none)
	Threshold int          `json:"threshold"`
	Members   []MemberView `json:"members"`
	Pending   []ChangeView `json:"pending"`
	Refused   []string     `json:"refused"` // membership changes and records refused lately, with the peer
	Mounts    []MountView  `json:"mounts"`  // shares nested in this one (mounts.go)
}

// Members returns the membership of the share ref names.
func (d *Daemon) Members(ref string) (MemberList, error) {
	cfg := d.config()
	s, err := cfg.FindShare(ref)
	if err != nil {
		return MemberList{}, err
	}
	id, _ := share.ParseID(s.ID)
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return MemberList{}, err
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return MemberList{}, err
	}
	out := MemberList{Share: s.ID, Name: s.Name, HasLog: st.Len() > 0, Entries: st.Len(), Epoch: st.Epoch(),
		Threshold: st.Threshold(), Members: []MemberView{}, Pending: []ChangeView{}, Refused: []string{}}
	online := map[identity.DeviceID]bool{d.self: true}
	for _, c := range d.peers.Connected() {
		online[c.Device] = true
	}
	name := func(dev members.Device) string {
		if identity.DeviceID(dev) == d.self {
			return cfg.Device.Name
		}
		if p, err := cfg.FindPeer(identity.DeviceID(dev).String()); err == nil {
			return p.Name
		}
		return ""
	}
	for _, in := range st.Members() {
		id := identity.DeviceID(in.Device)
		mv := MemberView{Device: id.String(), Name: name(in.Device), Level: in.Level.String(), Owner: in.Owner,
			Self: id == d.self, AddedBy: identity.DeviceID(in.AddedBy).String(), AddedAt: in.AddedAt,
			Online: online[id] && !in.Removed, Removed: in.Removed}
		if in.Removed {
			at := in.RemovedAt
			mv.RemovedBy, mv.RemovedAt = identity.DeviceID(in.RemovedBy).String(), &at
		}
		out.Members = append(out.Members, mv)
	}
	pending, _ := d.members.Pending(id, key.PublicKey())
	owners := st.Owners()
	for _, e := range pending {
		cv := ChangeView{ID: changeID(e.Hash()), Summary: summary(e), Author: identity.DeviceID(e.Author).String(),
			Approvals: []string{}, Need: st.Threshold()}
		for _, sg := range e.Signers() {
			if slices.Contains(owners, sg) {
				cv.Approvals = append(cv.Approvals, identity.DeviceID(sg).String())
			}
		}
		out.Pending = append(out.Pending, cv)
	}
	keys, _ := d.members.EpochKeys(id)
	out.EpochKeys = []uint64{}
	for ep := range keys {
		out.EpochKeys = append(out.EpochKeys, ep)
	}
	slices.Sort(out.EpochKeys)
	out.Refused = append(out.Refused, d.membershipRefused(s.ID)...)
	out.Mounts = mountsOf(st)
	return out, nil
}

func summary(e *members.Entry) string {
	dev := identity.DeviceID(e.Member.Device).String()
	switch e.Kind {
	case members.KindAdd:
		return fmt.Sprintf("add %s at %s", dev, e.Member.Level)
	case members.KindRemove:
		return fmt.Sprintf("remove %s", dev)
	case members.KindMount:
		if e.Mount.Unmount {
			return fmt.Sprintf("unmount share %s at %s", share.ID(e.Mount.Inner).Short(), e.Mount.Path)
		}
		return fmt.Sprintf("mount share %s at %s", share.ID(e.Mount.Inner).Short(), e.Mount.Path)
	case members.KindOwners:
		var os []string
		for _, o := range e.Owners {
			os = append(os, identity.DeviceID(o).String())
		}
		return fmt.Sprintf("owners %s, threshold %d", strings.Join(os, ", "), e.K)
	}
	return e.Kind.String()
}

// ChangeResult says what a membership command did.
type ChangeResult struct {
	Applied bool   `json:"applied"` // false: it waits for other owners' approval
	Change  string `json:"change"`  // its ID, for `blueshift member approve`
	Need    int    `json:"need"`
	Have    int    `json:"have"` // owner signatures so far
}

// memberShare resolves ref and the log for a command.
func (d *Daemon) memberShare(ref string) (share.ID, share.Key, *members.State, error) {
	s, err := d.config().FindShare(ref)
	if err != nil {
		return share.ID{}, share.Key{}, nil, err
	}
	id, _ := share.ParseID(s.ID)
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return share.ID{}, share.Key{}, nil, err
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return share.ID{}, share.Key{}, nil, err
	}
	if st.Len() == 0 {
		return share.ID{}, share.Key{}, nil, fmt.Errorf("share %q has no membership log yet: %w; connect to a member that has it, or start the daemon of the device that created the share", s.Name, ErrMembers)
	}
	return id, key, st, nil
}

// commit appends an entry this device made and reports what happened.
func (d *Daemon) commit(id share.ID, key share.Key, st *members.State, e *members.Entry) (ChangeResult, error) {
	applied, err := d.members.Append(id, key.PublicKey(), e)
	if err != nil {
		return ChangeResult{}, fmt.Errorf("%w: %w", ErrMembers, err)
	}
	res := ChangeResult{Applied: applied, Change: changeID(e.Hash()), Need: st.Threshold()}
	for _, sg := range e.Signers() {
		if slices.Contains(st.Owners(), sg) {
			res.Have++
		}
	}
	d.logChanged(id)
	return res, nil
}

// RemoveMember removes device dev from the share ref names and starts a
// new key epoch, sealed to the remaining members whose device keys this
// device knows (the others get it from any member that holds it).
func (d *Daemon) RemoveMember(ref, dev string) (ChangeResult, error) {
	id, key, st, err := d.memberShare(ref)
	if err != nil {
		return ChangeResult{}, err
	}
	target, err := d.resolveMember(st, dev)
	if err != nil {
		return ChangeResult{}, err
	}
	ek, err := members.NewEpochKey()
	if err != nil {
		return ChangeResult{}, err
	}
	var keys []members.SealedKey
	for _, in := range st.Members() {
		if in.Removed || in.Device == target || in.Level < members.ReadOnly {
			continue // an encrypted member never holds a key that reads
		}
		pub, ok := d.members.PublicKey(id, in.Device)
		if !ok {
			continue
		}
		if box, err := members.SealKey(ek, pub); err == nil {
			keys = append(keys, members.SealedKey{Device: in.Device, Box: box})
		}
	}
	e, err := d.sign(st, id, members.Body{Kind: members.KindRemove, Member: members.Member{Device: target}, Epoch: st.Epoch() + 1, Keys: keys})
	if err != nil {
		return ChangeResult{}, err
	}
	res, err := d.commit(id, key, st, e)
	if err == nil && res.Applied {
		_ = d.members.PutEpochKey(id, st.Epoch()+1, ek)
	}
	return res, err
}

// SetOwners makes the owners the current ones plus add, with threshold k
// (0: unchanged).
func (d *Daemon) SetOwners(ref string, add []string, k int) (ChangeResult, error) {
	id, key, st, err := d.memberShare(ref)
	if err != nil {
		return ChangeResult{}, err
	}
	owners := st.Owners()
	for _, a := range add {
		dev, err := d.resolveMember(st, a)
		if err != nil {
			return ChangeResult{}, err
		}
		if !slices.Contains(owners, dev) {
			owners = append(owners, dev)
		}
	}
	if k == 0 {
		k = st.Threshold()
	}
	if k < 1 || k > len(owners) {
		return ChangeResult{}, fmt.Errorf("threshold %d with %d owners: %w; give a threshold from 1 to %d", k, len(owners), ErrMembers, len(owners))
	}
	e, err := d.sign(st, id, members.Body{Kind: members.KindOwners, Owners: owners, K: k})
	if err != nil {
		return ChangeResult{}, err
	}
	return d.commit(id, key, st, e)
}

// Approve signs the pending change whose ID starts with change.
func (d *Daemon) Approve(ref, change string) (ChangeResult, error) {
	id, key, st, err := d.memberShare(ref)
	if err != nil {
		return ChangeResult{}, err
	}
	pending, err := d.members.Pending(id, key.PublicKey())
	if err != nil {
		return ChangeResult{}, err
	}
	var found []*members.Entry
	for _, e := range pending {
		if change != "" && strings.HasPrefix(hex.EncodeToString(func() []byte { h := e.Hash(); return h[:] }()), strings.ToLower(change)) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		return ChangeResult{}, fmt.Errorf("no pending change %q: %w; `blueshift member list SHARE` shows the pending ones", change, ErrMembers)
	case 1:
	default:
		return ChangeResult{}, fmt.Errorf("%d pending changes start with %q: %w; give more of the ID", len(found), change, ErrMembers)
	}
	e := found[0]
	if !slices.Contains(st.Owners(), members.Device(d.self)) {
		return ChangeResult{}, fmt.Errorf("this device is not an owner of the share: %w; an owner approves", ErrMembers)
	}
	e.Sign(d.devicePriv())
	return d.commit(id, key, st, e)
}

// resolveMember finds the current member text names: a device ID, or a
// peer's name.
func (d *Daemon) resolveMember(st *members.State, text string) (members.Device, error) {
	dev, err := identity.ParseDeviceID(text)
	if err != nil {
		p, perr := d.config().FindPeer(text)
		if perr != nil {
			return members.Device{}, fmt.Errorf("%q is neither a device ID nor a peer's name: %w", text, ErrMembers)
		}
		if dev, err = identity.ParseDeviceID(p.ID); err != nil {
			return members.Device{}, err
		}
	}
	in, ok := st.Member(members.Device(dev))
	if !ok || in.Removed {
		return members.Device{}, fmt.Errorf("device %s is not a member of the share: %w; `blueshift member list SHARE` shows them", dev.Abbrev(), ErrMembers)
	}
	return members.Device(dev), nil
}

// memberRoutes registers the membership endpoints of the control API:
//
//	GET  /v1/members?share=REF
//	POST /v1/members/remove   {"share": REF, "device": DEVICE}
//	POST /v1/members/approve  {"share": REF, "change": ID}
//	POST /v1/members/owners   {"share": REF, "add": [DEVICE...], "threshold": K}
//	POST /v1/revert           {"share": REF, "paths": [PATH...]}
func (d *Daemon) memberRoutes(mux router) {
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		l, err := d.Members(r.URL.Query().Get("share"))
		answer(w, l, err)
	})
	type req struct {
		Share     string   `json:"share"`
		Device    string   `json:"device"`
		Change    string   `json:"change"`
		Add       []string `json:"add"`
		Threshold int      `json:"threshold"`
	}
	post := func(path string, do func(req) (ChangeResult, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			var q req
			if err := decodeBody(r, &q); err != nil {
				writeError(w, err)
				return
			}
			res, err := do(q)
			answer(w, res, err)
		})
	}
	mux.HandleFunc("POST /v1/revert", func(w http.ResponseWriter, r *http.Request) {
		var q struct {
			Share string   `json:"share"`
			Paths []string `json:"paths"`
		}
		if err := decodeBody(r, &q); err != nil {
			writeError(w, err)
			return
		}
		res, err := d.Revert(r.Context(), q.Share, q.Paths)
		answer(w, res, err)
	})
	post("/v1/members/remove", func(q req) (ChangeResult, error) { return d.RemoveMember(q.Share, q.Device) })
	post("/v1/members/approve", func(q req) (ChangeResult, error) { return d.Approve(q.Share, q.Change) })
	post("/v1/members/owners", func(q req) (ChangeResult, error) { return d.SetOwners(q.Share, q.Add, q.Threshold) })
}

func answer(w http.ResponseWriter, v any, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, config.ErrNotFound):
		writeJSON(w, http.StatusNotFound, APIError{Message: err.Error()})
	default:
		writeJSON(w, http.StatusBadRequest, APIError{Message: err.Error()})
	}
}
