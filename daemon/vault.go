package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/engine"
	"github.com/blueshift-sync/blueshift/sync/vault"
)

// Encrypted members (sync/vault). A device holding a share's encrypted
// capability keeps no folder of it: it keeps what readers push, sealed, in
// its vault store (home/vault), and serves it back to members. A device
// that may read a share, connected to an encrypted member of it (by the
// membership log), pushes its records sealed (if it may write) and pulls
// the member's sealed records it lacks, every vaultEvery.

// vaultEvery is how often a connection to an encrypted member is brought
// up to date both ways.
const vaultEvery = 2 * time.Second

// openVault opens the vault store in home.
func openVault(home string, log *slog.Logger) (*vault.Store, error) {
	return vault.Open(filepath.Join(home, "vault"), log.With("part", "vault"))
}

// inviteLevel is the membership level an invitation admits at.
func inviteLevel(in config.Invite) members.Level {
	switch {
	case in.Encrypted:
		return members.Encrypted
	case in.ReadOnly:
		return members.ReadOnly
	}
	return members.ReadWrite
}

// startVaultShare runs a share this device holds the encrypted capability
// of: nothing to watch or scan, only the log to keep; the vault store
// answers for it (handleVault).
func (d *Daemon) startVaultShare(id share.ID, key share.Key, s config.Share, ids []identity.DeviceID) error {
	d.ensureLog(id, key, s)
	done := make(chan struct{})
	close(done)
	d.mu.Lock()
	d.mu.shares[id] = &runningShare{cfg: s, members: ids, stop: func() {}, done: done, vault: true}
	delete(d.mu.shareErrs, id)
	d.mu.Unlock()
	d.log.Info("keeping share as an encrypted member: sealed, unreadable here", "share", id.Short())
	return nil
}

// collectVault deletes, every so often until ctx ends, the sealed blocks
// of each share kept here as an encrypted member that no item names any
// more and that were put (or asked about) more than the grace ago
// (Options.VaultGrace; vault.DefaultGrace).
func (d *Daemon) collectVault(ctx context.Context) {
	grace := d.opts.VaultGrace
	if grace <= 0 {
		grace = vault.DefaultGrace
	}
	t := time.NewTicker(min(max(grace/4, 500*time.Millisecond), 5*time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		var ids []share.ID
		for id, rs := range d.mu.shares {
			if rs.vault {
				ids = append(ids, id)
			}
		}
		d.mu.Unlock()
		for _, id := range ids {
			res, err := d.vault.Collect(id, grace)
			switch {
			case err != nil:
				d.log.Warn("collect sealed blocks no item names", "share", id.Short(), "err", err)
			case res.Blocks > 0:
				d.log.Info("collected sealed blocks no item names", "share", id.Short(), "blocks", res.Blocks, "bytes", res.Bytes)
			}
		}
	}
}

// introduceVault adds to addrs, the addresses an Introduction gives for
// dev, where dev can be dialled if the membership log of share id names it
// a current encrypted member: where it said it listens (VaultAddrs), and
// the address of its connection here if it came over QUIC (its one UDP
// socket dials and listens, so where it came from is where it answers, or
// its NAT's mapping of it). An encrypted member is an always-on box that
// usually dialled the writer that invited it; without this, a reader the
// writer invites later cannot find it once the writer is away, unless the
// DHT finds it.
func (d *Daemon) introduceVault(id share.ID, dev identity.DeviceID, addrs []string) []string {
	key, _, err := d.shareByID(id)
	if err != nil {
		return addrs
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return addrs
	}
	if in, ok := st.Member(members.Device(dev)); !ok || in.Removed || in.Level != members.Encrypted {
		return addrs
	}
	cands := d.vaddrs.of(dev)
	for _, c := range d.peers.Connected() {
		if c.Device == dev && !c.Outbound && c.Network == transport.QUIC {
			cands = append(cands, c.Addr)
		}
	}
	for _, a := range cands {
		if a, ok := introAddr(a); ok && !slices.Contains(addrs, a) && len(addrs) < wire.MaxIntroAddrs {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// handleVault answers a vault request from remote.
func (d *Daemon) handleVault(remote identity.DeviceID, m wire.Message) wire.Message {
	if m, ok := m.(*wire.VaultAddrs); ok {
		if !d.heardVaultAddrs(remote, m.Addrs) {
			return wire.Errorf(wire.CodeRefused, "not an encrypted member of a share we share (yet)")
		}
		return &wire.VaultAddrsAck{}
	}
	return d.vault.Answer(remote, m, vaultAccess{d})
}

// vaultAddrs remembers where encrypted members said they can be dialled
// (VaultAddrs), until the daemon stops: each says it again on each
// connection. The zero value is ready.
type vaultAddrs struct {
	mu gosync.Mutex
	m  map[identity.DeviceID][]string // guarded by mu
}

// set reports whether dev's addresses changed.
func (v *vaultAddrs) set(dev identity.DeviceID, addrs []string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if slices.Equal(v.m[dev], addrs) {
		return false
	}
	if v.m == nil {
		v.m = map[identity.DeviceID][]string{}
	}
	v.m[dev] = addrs
	return true
}

func (v *vaultAddrs) of(dev identity.DeviceID) []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.m[dev]
}

// heardVaultAddrs keeps what remote said of where it listens, if it is a
// current encrypted member of a share we share with it (else false), and
// has the introductions sent again.
func (d *Daemon) heardVaultAddrs(remote identity.DeviceID, addrs []string) bool {
	if !d.isVaultMember(remote) {
		return false
	}
	var keep []string
	for _, a := range addrs {
		if ap, ok := introAddr(a); ok && !slices.Contains(keep, ap) && len(keep) < wire.MaxIntroAddrs {
			keep = append(keep, ap)
		}
	}
	if d.vaddrs.set(remote, keep) {
		d.log.Debug("an encrypted member said where it listens", "peer", remote.Abbrev(), "addrs", keep)
		d.mesh.poke()
	}
	return true
}

// isVaultMember reports whether the log of a share we share with dev names
// it a current encrypted member.
func (d *Daemon) isVaultMember(dev identity.DeviceID) bool {
	for _, id := range d.sharedWith(dev) {
		key, _, err := d.shareByID(id)
		if err != nil {
			continue
		}
		st, err := d.members.State(id, key.PublicKey())
		if err != nil {
			continue
		}
		if in, ok := st.Member(members.Device(dev)); ok && !in.Removed && in.Level == members.Encrypted {
			return true
		}
	}
	return false
}

// announceVault tells c's device where this device can be dialled, if this
// device keeps a share it shares with it as an encrypted member: that
// device, if it writes, introduces us to the share's readers with it. It
// reports whether it is done (told, or nothing to tell that device).
func (d *Daemon) announceVault(ctx context.Context, c *conn.Conn) bool {
	if !slices.Contains(c.PeerHello().Capabilities, wire.VaultListedCapability) {
		return true
	}
	keeps := false
	for _, id := range d.sharedWith(c.Remote()) {
		if key, _, err := d.shareByID(id); err == nil && key.Level() == share.Encrypted {
			keeps = true
		}
	}
	if !keeps {
		return false // maybe not yet: a join in progress
	}
	addrs := d.ourAddresses()
	for _, a := range d.peers.Reflexive() {
		if s := a.AddrPort.String(); !slices.Contains(addrs, s) {
			addrs = append(addrs, s)
		}
	}
	if len(addrs) == 0 {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, introTimeout)
	defer cancel()
	if _, err := conn.Call[*wire.VaultAddrsAck](rctx, c, &wire.VaultAddrs{Addrs: addrs[:min(len(addrs), wire.MaxVaultAddrs)]}); err != nil {
		d.log.Debug("tell a member where this encrypted member listens", "peer", c.Remote().Abbrev(), "err", err)
		return false // its log may not name us yet: again next round
	}
	return true
}

// vaultAccess is the vault store's Access: shares this device keeps as an
// encrypted member, their configured peers the log does not name removed,
// and of those, for pushes, its current writers.
type vaultAccess struct{ d *Daemon }

func (a vaultAccess) standing(id share.ID, dev identity.DeviceID) (members.Info, bool) {
	key, s, err := a.d.shareByID(id)
	if err != nil || key.Level() != share.Encrypted || !slices.Contains(s.Peers, dev.String()) {
		return members.Info{}, false
	}
	st, err := a.d.members.State(id, key.PublicKey())
	if err != nil {
		return members.Info{}, false
	}
	in, named := st.Member(members.Device(dev))
	return in, named && !in.Removed
}

func (a vaultAccess) MayRead(id share.ID, dev identity.DeviceID) bool {
	_, ok := a.standing(id, dev)
	return ok
}

func (a vaultAccess) MayPush(id share.ID, dev identity.DeviceID) bool {
	in, ok := a.standing(id, dev)
	return ok && in.Level == members.ReadWrite
}

// vaultSession keeps the encrypted members among c's shares up to date and
// pulls from them, until ctx ends. A peer without the vault capability is
// left alone.
func (d *Daemon) vaultSession(ctx context.Context, c *conn.Conn) {
	if h := c.PeerHello(); h == nil || !slices.Contains(h.Capabilities, wire.VaultCapability) {
		return
	}
	remote := c.Remote()
	announced := false
	pushed := map[share.ID]merkle.Hash{}
	readers := map[share.ID]*vault.Reader{}
	t := time.NewTicker(vaultEvery)
	defer t.Stop()
	for {
		if !announced {
			announced = d.announceVault(ctx, c)
		}
		for _, id := range d.sharedWith(remote) {
			if err := d.vaultRound(ctx, c, id, pushed, readers); err != nil && ctx.Err() == nil {
				d.log.Warn("sync with an encrypted member", "share", id.Short(), "peer", remote.Abbrev(), "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// vaultRound pushes share id's records to c's device (if this device may
// write and the root moved since the last push) and pulls what it lacks,
// when the log names c's device a current encrypted member of the share.
func (d *Daemon) vaultRound(ctx context.Context, c *conn.Conn, id share.ID, pushed map[share.ID]merkle.Hash, readers map[share.ID]*vault.Reader) error {
	remote := c.Remote()
	key, s, err := d.shareByID(id)
	if err != nil || key.Level() < share.ReadOnly {
		return nil
	}
	d.mu.Lock()
	_, running := d.mu.shares[id]
	d.mu.Unlock()
	if !running {
		return nil
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return err
	}
	if in, ok := st.Member(members.Device(remote)); !ok || in.Removed || in.Level != members.Encrypted {
		return nil
	}
	idx, err := d.db.Share(key, s.Path, d.self.Short())
	if err != nil {
		return err
	}
	readKey, _ := key.ReadKey()
	base := seal.NewKeys(readKey)
	epochKeys, err := d.members.EpochKeys(id)
	if err != nil {
		return err
	}
	epoch := func(e uint64) (seal.Keys, bool) {
		if e == 0 {
			return base, true
		}
		k, ok := epochKeys[e]
		return seal.NewKeys(k), ok
	}
	var envs []record.Envelope
	collect := func() error {
		envs = envs[:0]
		return idx.Records(func(e index.Entry) error {
			envs = append(envs, e.Envelope)
			return nil
		})
	}
	if key.Level() == share.ReadWrite {
		root, _, err := idx.TreeRoot()
		if err != nil {
			return err
		}
		if root != pushed[id] {
			keys, ok := epoch(st.Epoch())
			if !ok {
				d.log.Warn("this device lacks the current key epoch of a share: nothing pushed to its encrypted members", "share", s.Name, "epoch", st.Epoch())
			} else {
				if err := collect(); err != nil {
					return err
				}
				w := &vault.Writer{Share: id, Base: base, Epoch: st.Epoch(), Keys: keys, Device: d.devicePriv(), Log: d.log,
					ReadBlock: func(h block.Hash, size uint32) ([]byte, bool) { return d.eng.ReadBlock(id, h, size) },
					OldItems:  !slices.Contains(c.PeerHello().Capabilities, wire.VaultListedCapability)}
				n, err := w.Push(ctx, c, envs)
				if err != nil {
					return err
				}
				d.log.Info("encrypted member up to date", "share", s.Name, "peer", remote.Abbrev(), "records", len(envs),
					"sent", n.Items, "blocks", n.Blocks, "bytes", n.Bytes, "epoch", st.Epoch(), "missing", n.Missing)
				if n.Skipped+n.Missing == 0 {
					pushed[id] = root // else tried again next round
				}
			}
		}
	}
	known := func() (map[[32]byte]bool, error) {
		if err := collect(); err != nil {
			return nil, err
		}
		tags := make(map[[32]byte]bool, len(envs))
		for _, e := range envs {
			tags[base.Tag(e.Bytes())] = true
		}
		return tags, nil
	}
	r := readers[id]
	if r == nil {
		r = &vault.Reader{Share: id, Base: base, Log: d.log}
		readers[id] = r
	}
	r.Epoch = epoch
	r.MayPush = func(dev identity.DeviceID) bool {
		in, ok := st.Member(members.Device(dev))
		return ok && in.Level == members.ReadWrite
	}
	n, err := r.Pull(ctx, c, known, func(envs []record.Envelope, f vault.Fetch) error {
		return d.eng.Offer(ctx, id, remote, envs, engine.BlockSource(f))
	})
	if err == nil {
		d.vpulls.record(id, remote, n, r.Generation(), time.Now())
	}
	if n.Items > 0 {
		d.log.Info("took sealed records from an encrypted member", "share", s.Name, "peer", remote.Abbrev(), "records", n.Items)
	}
	if n.Locked > 0 {
		d.log.Info("sealed records under a key epoch this device lacks were left shut", "share", s.Name, "peer", remote.Abbrev(), "records", n.Locked)
	}
	return err
}

// chunkKey is the key of share id's chunk boundaries: none (the unkeyed
// gear table, as every share had before) until the membership log names an
// encrypted member, from then on (even once it left) the read key's
// seal.Keys.ChunkKey, so the encrypted member cannot tell a known file by
// its chunk sizes. Files already chunked keep their blocks until they
// change (docs/security.md).
func (d *Daemon) chunkKey(id share.ID, key share.Key) *[32]byte {
	readKey, ok := key.ReadKey()
	if !ok {
		return nil
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return nil
	}
	if !slices.ContainsFunc(st.Members(), func(in members.Info) bool { return in.Level == members.Encrypted }) {
		return nil
	}
	k := seal.NewKeys(readKey).ChunkKey()
	return &k
}

// VaultStatus is, on an encrypted member, what it keeps of a share (the
// share's "vault" in status): sealed items and blocks with their bytes,
// the generation readers list against, and each pusher's items and last
// push.
type VaultStatus struct {
	Items      int           `json:"items"`
	ItemBytes  int64         `json:"item_bytes"`
	Blocks     int           `json:"blocks"`
	BlockBytes int64         `json:"block_bytes"`
	Generation uint64        `json:"generation"`
	Pushers    []VaultPusher `json:"pushers"`
}

// VaultPusher is one member that pushed to this encrypted member.
type VaultPusher struct {
	ID       string     `json:"id"`
	Name     string     `json:"name,omitempty"`
	Items    int        `json:"items"`               // sealed items it filled last at their slot
	LastPush *time.Time `json:"last_push,omitempty"` // its last push, replays included
}

// VaultPull is, on a reader, what it last took from one encrypted member
// of a share (the share's "vault_pulls" in status).
type VaultPull struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Connected bool   `json:"connected"`
	// Generation is the member's generation this device handled all of
	// (0: not yet); Checked when it last listed the member.
	Generation uint64    `json:"generation"`
	Checked    time.Time `json:"checked"`
	// Items is how many records the last pull that took any took, at
	// Pulled; Total since the daemon started; Locked how many the last
	// pull left shut (sealed under a key epoch this device lacks).
	Items  int        `json:"items"`
	Total  int        `json:"total"`
	Locked int        `json:"locked"`
	Pulled *time.Time `json:"pulled,omitempty"`
}

// vaultPulls remembers each share's pulls from its encrypted members, for
// status. The zero value is ready.
type vaultPulls struct {
	mu gosync.Mutex
	m  map[share.ID]map[identity.DeviceID]*VaultPull // guarded by mu
}

// record notes a pull from dev that ended without error.
func (v *vaultPulls) record(id share.ID, dev identity.DeviceID, n vault.Stats, gen uint64, now time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil {
		v.m = map[share.ID]map[identity.DeviceID]*VaultPull{}
	}
	if v.m[id] == nil {
		v.m[id] = map[identity.DeviceID]*VaultPull{}
	}
	p := v.m[id][dev]
	if p == nil {
		p = &VaultPull{ID: dev.String()}
		v.m[id][dev] = p
	}
	now = now.UTC()
	p.Generation, p.Checked, p.Locked = gen, now, n.Locked
	if n.Items > 0 {
		p.Items, p.Pulled = n.Items, &now
		p.Total += n.Items
	}
}

// of returns share id's pulls, by device ID.
func (v *vaultPulls) of(id share.ID) []VaultPull {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []VaultPull
	for _, p := range v.m[id] {
		c := *p
		if p.Pulled != nil {
			t := *p.Pulled
			c.Pulled = &t
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b VaultPull) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// vaultStatus fills ss for share id: on an encrypted member, what its store
// keeps and which members are connected; on a reader, its pulls from
// encrypted members.
func (d *Daemon) vaultStatus(ss *ShareStatus, id share.ID, s config.Share, connected func(identity.DeviceID) bool) {
	d.mu.Lock()
	rs := d.mu.shares[id]
	d.mu.Unlock()
	if rs == nil {
		return
	}
	if !rs.vault {
		for _, p := range d.vpulls.of(id) {
			if dev, err := identity.ParseDeviceID(p.ID); err == nil {
				p.Name, p.Connected = d.peerName(dev), connected(dev)
			}
			ss.VaultPulls = append(ss.VaultPulls, p)
		}
		return
	}
	// An encrypted member has no folder to bring into sync: it keeps
	// what members push, and is in sync with itself.
	ss.Running, ss.InSync = true, true
	for _, p := range s.Peers {
		if dev, err := identity.ParseDeviceID(p); err == nil && connected(dev) && (vaultAccess{d}).MayRead(id, dev) {
			ss.Peers = append(ss.Peers, dev.String())
		}
	}
	st, err := d.vault.Stats(id)
	if err != nil {
		ss.Errors = append(ss.Errors, fmt.Sprintf("read the encrypted member's store (%s): %v", filepath.Join(d.home, "vault"), err))
		return
	}
	vs := &VaultStatus{Items: st.Items, ItemBytes: st.ItemBytes, Blocks: st.Blocks, BlockBytes: st.BlockBytes,
		Generation: st.Generation, Pushers: []VaultPusher{}}
	for _, p := range st.Pushers {
		vp := VaultPusher{ID: p.Device.String(), Name: d.peerName(p.Device), Items: p.Items}
		if !p.LastPush.IsZero() {
			t := p.LastPush
			vp.LastPush = &t
		}
		vs.Pushers = append(vs.Pushers, vp)
	}
	ss.Vault = vs
}
