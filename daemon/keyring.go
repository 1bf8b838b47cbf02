package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/keyring"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// The keyring: every device of one person shares a private keyring share
// whose files are sealed records of the person's other shares
// (index/keyring). It is a normal share, so that pairing, its membership
// log, removal with a new key epoch and the sync of its records are the
// ones every share has; its folder is KeyringDir in the device's home,
// which already holds every share's secret (config.toml), and each record
// is sealed under the keyring's own key besides.
//
//   - `blueshift pair` makes the keyring if this device has none, and an
//     invitation to it, printed as a pair link (pairPrefix, so `join` tells
//     it from a share's link) and a short code.
//   - `blueshift join PAIRLINK [DIR]` joins the keyring (Join hands pair
//     links to joinPair) and records DIR ([device] keyring_dir).
//   - The keyring loop (runKeyring) of each device writes a record for each
//     share it holds that the keyring lacks (or holds at a lower level),
//     takes each record whose share it lacks into DIR/<share name> as a
//     pending join presented to the record's writer, and, for each device
//     this device removed from the keyring, removes that device from every
//     share (a Remove in each share's log, which starts a new key epoch).
//   - A device asked to admit a keyring member to a share it holds
//     (handleJoin) admits it at its own level: the person's devices follow
//     every share at the access the person has.

const (
	// KeyringDir is the keyring share's folder, in the device's home.
	KeyringDir = "keyring"
	// KeyringName is the keyring share's name.
	KeyringName = "keyring"

	pairPrefix    = "bspair1-"
	keyringResync = 30 * time.Second // a look at the keyring even without news
)

// ErrKeyring is the class of keyring commands that cannot be done.
var ErrKeyring = errors.New("keyring operation not possible")

// keyringState wakes the keyring loop and serializes what it does with the
// commands and admissions that change the same logs.
type keyringState struct {
	wakeOnce gosync.Once
	wake     chan struct{} // cap 1; made by wakeOnce
	mu       gosync.Mutex  // held while the keyring changes configuration or logs
	// warned keeps the record files already reported unreadable, so a bad
	// file is logged once, not every pass. Guarded by mu.
	warned map[string]bool
}

func (k *keyringState) ch() chan struct{} {
	k.wakeOnce.Do(func() { k.wake = make(chan struct{}, 1) })
	return k.wake
}

// pokeKeyring wakes the keyring loop: the configuration, a log or the
// keyring's files changed.
func (d *Daemon) pokeKeyring() {
	select {
	case d.keyring.ch() <- struct{}{}:
	default:
	}
}

// KeyringPath is the keyring share's folder of the device whose home is home.
func KeyringPath(home string) string { return filepath.Join(filepath.Clean(home), KeyringDir) }

// isKeyringPath reports whether path is home's keyring folder.
func isKeyringPath(home, path string) bool {
	h, err := filepath.Abs(home)
	if err != nil {
		return false
	}
	return filepath.Clean(path) == KeyringPath(h)
}

// keyringOf is c's keyring share, or nil.
func keyringOf(home string, c *config.Config) *config.Share {
	for i := range c.Shares {
		if isKeyringPath(home, c.Shares[i].Path) {
			return &c.Shares[i]
		}
	}
	return nil
}

// IsPairLink reports whether text is a pair link (not a share's link).
func IsPairLink(text string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(text)), pairPrefix)
}

// PairLink is the text of a pair link: the invitation to the keyring l
// carries, marked as such.
func PairLink(l Link) string { return pairPrefix + strings.TrimPrefix(l.String(), linkPrefix) }

// ParsePairLink reads a pair link.
func ParsePairLink(text string) (Link, error) {
	t := strings.TrimSpace(text)
	if !IsPairLink(t) {
		return Link{}, fmt.Errorf("not a pair link (they start with %s): %w", pairPrefix, ErrBadLink)
	}
	return ParseLink(linkPrefix + t[len(pairPrefix):])
}

// EnsureKeyring makes home's keyring share if it has none, and returns it.
func EnsureKeyring(home string) (config.Share, error) {
	abs, err := filepath.Abs(home)
	if err != nil {
		return config.Share{}, err
	}
	var out config.Share
	err = EditConfig(home, func(c *config.Config) error {
		if ks := keyringOf(abs, c); ks != nil {
			out = *ks
			return nil
		}
		secret, err := share.NewSecret()
		if err != nil {
			return fmt.Errorf("make the keyring's key: %w", err)
		}
		key := share.FromSecret(secret)
		s := config.NewShare(key.ID().String(), KeyringPath(abs), key.String())
		s.Name = KeyringName
		if _, err := c.FindShare(KeyringName); err == nil {
			s.Name = KeyringName + "-" + key.ID().Short()
		}
		if err := c.AddShare(s); err != nil {
			return err
		}
		out = s
		return os.MkdirAll(s.Path, 0o700)
	})
	return out, err
}

// PairResult is what `blueshift pair` prints.
type PairResult struct {
	Link    string    `json:"link"`
	Code    string    `json:"code"`
	Keyring string    `json:"keyring"` // the keyring share's ID
	Expires time.Time `json:"expires"`
}

// Pair makes an invitation for another device of the same person to this
// device's keyring (made first if missing): the pair link and its code.
func Pair(home string, opts InviteOptions) (PairResult, error) {
	if opts.ReadOnly {
		return PairResult{}, fmt.Errorf("pair: a keyring is joined read-write by the person's devices: %w", ErrKeyring)
	}
	ks, err := EnsureKeyring(home)
	if err != nil {
		return PairResult{}, fmt.Errorf("pair: %w", err)
	}
	l, code, err := Invite(home, ks.ID, opts)
	if err != nil {
		return PairResult{}, fmt.Errorf("pair: %w", err)
	}
	text := PairLink(l)
	// The short code hands out the pair link, not the plain one.
	err = EditConfig(home, func(c *config.Config) error {
		for i := range c.Invites {
			if c.Invites[i].Code == code && c.Invites[i].Share == ks.ID {
				c.Invites[i].Link = text
				return nil
			}
		}
		return fmt.Errorf("pair: the invitation is gone meanwhile: %w; run pair again", ErrKeyring)
	})
	if err != nil {
		return PairResult{}, err
	}
	return PairResult{Link: text, Code: code, Keyring: ks.ID, Expires: l.Expires}, nil
}

// joinPair is Join of a pair link: the keyring share joins home's
// KeyringDir, and dir ("" : the user's home folder) is where the shares
// taken from it go.
func joinPair(home, text, dir string, now time.Time) (JoinResult, error) {
	l, err := ParsePairLink(text)
	if err != nil {
		return JoinResult{}, err
	}
	if now.IsZero() {
		now = time.Now()
	}
	if !l.Expires.After(now) {
		return JoinResult{}, fmt.Errorf("join: the pair link expired at %s: %w; make a new one with `blueshift pair` on the other device", l.Expires.Local().Format(time.DateTime), ErrLinkExpired)
	}
	id, err := identity.Load(home)
	if err != nil {
		return JoinResult{}, err
	}
	if l.Device == id.ID() {
		return JoinResult{}, errors.New("join: this pair link was made by this device; use it on the new device")
	}
	if dir == "" {
		if dir, err = os.UserHomeDir(); err != nil {
			return JoinResult{}, fmt.Errorf("join: no home folder to put the shares in (%w): give a folder: blueshift join PAIRLINK DIR", err)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return JoinResult{}, fmt.Errorf("join: resolve %q: %w", dir, err)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return JoinResult{}, fmt.Errorf("join: %s is a file, not a folder: choose a folder for the shares", dir)
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return JoinResult{}, err
	}
	res := JoinResult{ShareID: l.Key.ID().String(), Path: KeyringPath(abs), Inviter: l.Device.String()}
	token := hex.EncodeToString(l.Token[:])
	err = EditConfig(home, func(c *config.Config) error {
		if ks := keyringOf(abs, c); ks != nil {
			if ks.ID != res.ShareID {
				return fmt.Errorf("join: this device already belongs to keyring %s (share %q): a device follows one person's keyring; "+
					"remove it first (`blueshift share remove %s`) to pair with another: %w", ks.ID, ks.Name, ks.Name, ErrKeyring)
			}
			if ks.JoinFrom != res.Inviter {
				return fmt.Errorf("join: this device already belongs to this keyring: %w", ErrKeyring)
			}
			ks.JoinToken, ks.JoinRefused = token, ""
			c.Device.KeyringDir = dir
			return nil
		}
		if s, err := c.FindShare(res.ShareID); err == nil {
			return fmt.Errorf("join: this device already has the keyring as share %q at %s: %w", s.Name, s.Path, ErrKeyring)
		}
		_, perr := c.FindPeer(res.Inviter)
		res.AddedPeer = perr != nil
		if err := c.AddPeer(config.Peer{ID: res.Inviter, Addresses: l.Addresses}); err != nil {
			return err
		}
		s := config.NewShare(res.ShareID, res.Path, l.Key.String())
		s.Name = KeyringName
		if _, err := c.FindShare(KeyringName); err == nil {
			s.Name = KeyringName + "-" + l.Key.ID().Short()
		}
		s.Peers = []string{res.Inviter}
		s.JoinFrom, s.JoinToken = res.Inviter, token
		if err := c.AddShare(s); err != nil {
			return err
		}
		c.Device.KeyringDir = dir
		return os.MkdirAll(res.Path, 0o700)
	})
	return res, err
}

// runKeyring is the keyring loop: it runs syncKeyring and syncMounts
// (mounts.go) when poked, and every keyringResync, until ctx ends.
func (d *Daemon) runKeyring(ctx context.Context) {
	t := time.NewTicker(keyringResync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.keyring.ch():
		case <-t.C:
		}
		d.syncKeyring(ctx)
		d.syncMounts()
	}
}

// syncKeyring writes missing records, follows shares this device lacks and
// removes the devices this device removed from the keyring from every share.
func (d *Daemon) syncKeyring(ctx context.Context) {
	d.keyring.mu.Lock()
	defer d.keyring.mu.Unlock()
	cfg := d.config()
	ks := keyringOf(d.home, cfg)
	if ks == nil || ks.JoinFrom != "" || ctx.Err() != nil {
		return // no keyring, or not accepted into it yet
	}
	ring, err := share.ParseKey(ks.Key)
	if err != nil {
		return
	}
	have := d.readRecords(ks, ring)
	if d.leaveDropped(cfg, ks, have) {
		if err := d.Reload(); err != nil {
			d.log.Debug("reload after leaving shares dropped from the keyring", "err", err)
		}
		cfg = d.config()
	}
	d.exportRecords(cfg, ks, ring, have)
	if d.importRecords(cfg, ks, have) {
		if err := d.Reload(); err != nil {
			d.log.Debug("reload after following shares from the keyring", "err", err)
		}
	}
	d.propagateRemovalsLocked(ring)
}

// readRecords reads every record in the keyring folder.
func (d *Daemon) readRecords(ks *config.Share, ring share.Key) map[share.ID]keyring.Record {
	out := map[share.ID]keyring.Record{}
	ents, err := os.ReadDir(ks.Path)
	if err != nil {
		d.log.Warn("read the keyring", "share", ks.Name, "path", ks.Path, "err", err)
		return out
	}
	if d.keyring.warned == nil {
		d.keyring.warned = map[string]bool{}
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !keyring.IsRecordName(e.Name()) {
			continue
		}
		p := filepath.Join(ks.Path, e.Name())
		b, err := readSmall(p, keyring.MaxRecord)
		var r keyring.Record
		if err == nil {
			r, err = keyring.Open(ring, e.Name(), b)
		}
		if err != nil {
			if !d.keyring.warned[p] {
				d.keyring.warned[p] = true
				d.log.Warn("a keyring record is not readable; it is left alone", "share", ks.Name, "path", p, "err", err)
			}
			continue
		}
		delete(d.keyring.warned, p)
		out[r.Share] = r
	}
	return out
}

// exportRecords writes a record of each share cfg holds (settled, not a
// send) that the keyring lacks or holds at a lower level than this device.
func (d *Daemon) exportRecords(cfg *config.Config, ks *config.Share, ring share.Key, have map[share.ID]keyring.Record) {
	for _, s := range cfg.Shares {
		if s.ID == ks.ID || s.JoinFrom != "" || !s.SendUntil.IsZero() || s.ReceiveInto != "" {
			continue
		}
		key, err := share.ParseKey(s.Key)
		if err != nil {
			continue
		}
		if r, ok := have[key.ID()]; ok && r.Key.Level() >= key.Level() {
			continue
		}
		name := s.Name
		if !keyring.ValidName(name) {
			name = key.ID().Short()
		}
		r := keyring.Record{Share: key.ID(), Name: name, Key: key, From: d.self}
		b, err := keyring.Seal(ring, r)
		if err == nil {
			err = d.writeRecord(ks.Path, keyring.FileName(r.Share), b)
		}
		if err != nil {
			d.log.Warn("write a share's record into the keyring", "share", s.Name, "err", err)
			continue
		}
		have[r.Share] = r
		d.log.Info("added the share to the keyring", "share", s.Name, "level", key.Level().String())
	}
}

// writeRecord puts b at dir/name whole: written beside the home's files,
// then renamed in, so the keyring's watcher never sees half a record.
func (d *Daemon) writeRecord(dir, name string, b []byte) error {
	f, err := os.CreateTemp(d.home, ".keyring-*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// importRecords follows each share of have this device lacks and never
// followed before (one the user removed stays removed): it joins
// DIR/<name> as a pending join presented to the record's writer. True if
// the configuration changed.
func (d *Daemon) importRecords(cfg *config.Config, ks *config.Share, have map[share.ID]keyring.Record) bool {
	followed := keyring.OpenFollowed(d.db.Pebble())
	dir := cfg.Device.KeyringDir
	if dir == "" {
		var err error
		if dir, err = os.UserHomeDir(); err != nil {
			d.log.Warn("no folder for the keyring's shares: set [device] keyring_dir", "err", err)
			return false
		}
	}
	changed := false
	for id, r := range have {
		if _, err := cfg.FindShare(id.String()); err == nil || r.From == d.self {
			continue // held already, or written here and removed since
		}
		if done, err := followed.Has(id); err != nil || done {
			continue
		}
		from := r.From.String()
		if _, err := cfg.FindPeer(from); err != nil && len(ks.Peers) > 0 {
			from = ks.Peers[0] // a device we know that holds the keyring, and so the share
		}
		tok := make([]byte, TokenSize)
		if _, err := rand.Read(tok); err != nil {
			return changed
		}
		var path string
		err := EditConfig(d.home, func(c *config.Config) error {
			if _, err := c.FindShare(id.String()); err == nil {
				return nil
			}
			var err error
			if path, err = d.followPath(c, dir, r); err != nil {
				return err
			}
			s := config.NewShare(id.String(), path, r.Key.String())
			s.Name = r.Name
			if _, err := c.FindShare(r.Name); err == nil {
				s.Name = r.Name + "-" + id.Short()
			}
			s.Peers = []string{from}
			s.JoinFrom, s.JoinToken = from, hex.EncodeToString(tok)
			if err := c.AddShare(s); err != nil {
				return err
			}
			return os.MkdirAll(path, 0o755)
		})
		if err == nil {
			err = followed.Add(id)
		}
		if err != nil {
			d.log.Warn("follow a share from the keyring", "share", r.Name, "err", err)
			continue
		}
		changed = true
		d.log.Info("following a share from the keyring", "share", r.Name, "path", path, "level", r.Key.Level().String(), "peer", from)
	}
	return changed
}

// followPath is where a share taken from the keyring goes: dir/<name>, or
// dir/<name>-<short ID> when that is a file or another share's folder.
func (d *Daemon) followPath(c *config.Config, dir string, r keyring.Record) (string, error) {
	for _, p := range []string{filepath.Join(dir, r.Name), filepath.Join(dir, r.Name+"-"+r.Share.Short())} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			continue
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if slices.ContainsFunc(c.Shares, func(s config.Share) bool { return filepath.Clean(s.Path) == p }) {
			continue
		}
		if err := CheckSharePath(d.home, p); err != nil {
			return "", err
		}
		return p, nil
	}
	return "", fmt.Errorf("%s is taken by a file or another share, and so is %s-%s: %w; move one away", filepath.Join(dir, r.Name), r.Name, r.Share.Short(), ErrKeyring)
}

// keyringAdmit answers a JoinRequest for share sid from remote: if remote
// is a current member of this device's keyring and sid a share this device
// holds, remote becomes a member at this device's level (handled); a
// device removed from the share is refused.
func (d *Daemon) keyringAdmit(remote identity.DeviceID, sid share.ID) (handled bool, err error) {
	d.keyring.mu.Lock()
	defer d.keyring.mu.Unlock()
	cfg := d.config()
	ks := keyringOf(d.home, cfg)
	if ks == nil || ks.JoinFrom != "" || ks.ID == sid.String() {
		return false, nil
	}
	s, err := cfg.FindShare(sid.String())
	if err != nil || s.JoinFrom != "" || !s.SendUntil.IsZero() || s.ReceiveInto != "" {
		return false, nil
	}
	ring, err := share.ParseKey(ks.Key)
	if err != nil {
		return false, nil
	}
	rst, err := d.members.State(ring.ID(), ring.PublicKey())
	if err != nil {
		return false, nil
	}
	if in, ok := rst.Member(members.Device(remote)); !ok || in.Removed {
		return false, nil
	}
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return false, nil
	}
	st, err := d.members.State(sid, key.PublicKey())
	if err != nil {
		return true, fmt.Errorf("membership log of share %q: %w", s.Name, err)
	}
	level := members.Level(key.Level())
	if in, ok := st.Member(members.Device(remote)); ok && in.Removed {
		return true, fmt.Errorf("this device was removed from share %q: %w", s.Name, ErrInvite)
	} else if st.Len() > 0 && (!ok || in.Level < level) {
		e, err := d.sign(st, sid, members.Body{Kind: members.KindAdd, Member: members.Member{Device: members.Device(remote), Level: level}})
		if err == nil {
			_, err = d.members.Append(sid, key.PublicKey(), e)
		}
		if err != nil {
			return true, fmt.Errorf("add keyring device %s to share %q: %w", remote.Abbrev(), s.Name, err)
		}
		d.msync.poke()
	}
	err = EditConfig(d.home, func(c *config.Config) error {
		cs, err := c.FindShare(sid.String())
		if err != nil {
			return err
		}
		if !slices.Contains(cs.Peers, remote.String()) {
			cs.Peers = append(cs.Peers, remote.String())
		}
		return nil
	})
	if err != nil {
		return true, err
	}
	d.log.Info("admitted a device of the keyring to a share", "peer", remote.Abbrev(), "share", s.Name, "level", key.Level().String())
	return true, d.Reload()
}

// RemovedFrom says what removing a device from the keyring did in one share.
type RemovedFrom struct {
	Share  string `json:"share"`
	Name   string `json:"name"`
	Result string `json:"result"` // "removed", "waits for approval", or why it failed
}

// KeyringRemoval is what `blueshift pair remove` prints.
type KeyringRemoval struct {
	Device  string        `json:"device"`
	Keyring ChangeResult  `json:"keyring"`
	Shares  []RemovedFrom `json:"shares"`
}

// RemoveFromKeyring removes device dev from the keyring and from every
// share this device holds that it is a member of (each a Remove in the
// share's log, which starts a new key epoch).
func (d *Daemon) RemoveFromKeyring(dev string) (KeyringRemoval, error) {
	ks := keyringOf(d.home, d.config())
	if ks == nil {
		return KeyringRemoval{}, fmt.Errorf("this device has no keyring: %w; `blueshift pair` makes one", ErrKeyring)
	}
	_, _, rst, err := d.memberShare(ks.ID)
	if err != nil {
		return KeyringRemoval{}, err
	}
	target, err := d.resolveMember(rst, dev)
	if err != nil {
		return KeyringRemoval{}, err
	}
	res, err := d.RemoveMember(ks.ID, identity.DeviceID(target).String())
	if err != nil {
		return KeyringRemoval{}, err
	}
	out := KeyringRemoval{Device: identity.DeviceID(target).String(), Keyring: res, Shares: []RemovedFrom{}}
	if !res.Applied {
		return out, nil // the other owners approve it first; the loop goes on then
	}
	ring, err := share.ParseKey(ks.Key)
	if err != nil {
		return out, err
	}
	d.keyring.mu.Lock()
	defer d.keyring.mu.Unlock()
	// The loop, woken by the change, may have done some shares already:
	// the report is what each share's log says now.
	tried := map[string]RemovedFrom{}
	for _, rf := range d.propagateRemovalsLocked(ring) {
		tried[rf.Share] = rf
	}
	for _, s := range d.config().Shares {
		id, err := share.ParseID(s.ID)
		key, kerr := share.ParseKey(s.Key)
		if err != nil || kerr != nil || id == ring.ID() {
			continue
		}
		if rf, ok := tried[s.ID]; ok {
			out.Shares = append(out.Shares, rf)
			continue
		}
		st, err := d.members.State(id, key.PublicKey())
		if err != nil {
			continue
		}
		if in, ok := st.Member(target); ok && in.Removed {
			out.Shares = append(out.Shares, RemovedFrom{Share: s.ID, Name: s.Name, Result: "removed"})
		}
	}
	return out, nil
}

// propagateRemovalsLocked removes every device this device removed from
// the keyring from each share whose log still names it. Called with
// keyring.mu held.
func (d *Daemon) propagateRemovalsLocked(ring share.Key) []RemovedFrom {
	rst, err := d.members.State(ring.ID(), ring.PublicKey())
	if err != nil {
		return nil
	}
	var gone []members.Device
	for _, in := range rst.Members() {
		if in.Removed && identity.DeviceID(in.RemovedBy) == d.self {
			gone = append(gone, in.Device)
		}
	}
	var out []RemovedFrom
	for _, s := range d.config().Shares {
		id, err := share.ParseID(s.ID)
		if err != nil || id == ring.ID() {
			continue
		}
		key, err := share.ParseKey(s.Key)
		if err != nil {
			continue
		}
		st, err := d.members.State(id, key.PublicKey())
		if err != nil {
			continue
		}
		for _, dev := range gone {
			if in, ok := st.Member(dev); !ok || in.Removed {
				continue
			}
			did := identity.DeviceID(dev)
			rf := RemovedFrom{Share: s.ID, Name: s.Name, Result: "removed"}
			res, err := d.RemoveMember(s.ID, did.String())
			switch {
			case err != nil:
				rf.Result = err.Error()
				d.log.Warn("remove a device removed from the keyring from a share", "share", s.Name, "peer", did.Abbrev(), "err", err)
			case !res.Applied:
				rf.Result = "waits for approval (change " + res.Change + ")"
			default:
				d.log.Info("removed a device removed from the keyring from a share", "share", s.Name, "peer", did.Abbrev())
			}
			out = append(out, rf)
		}
	}
	return out
}

// dropRecord deletes share id's record from home's keyring, if there is
// one (`share remove`): the person's other devices stop following the
// share (leaveDropped), and a device paired later never follows it. It
// reports whether a record was deleted.
//
// holders are the other devices of the keyring among the share's peers
// (by name where known). The record goes all the same: a device that
// follows the share from the keyring leaves it; one that joined the share
// on its own keeps it, so the person still holds the share and that
// device writes its record back (exportRecords). That is right: the
// keyring lists what the person holds. This device does not follow it
// again from that record (keepRemoved).
func dropRecord(home, id string, peers []string) (removed bool, holders []string, err error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return false, nil, err
	}
	ks := keyringOf(home, cfg)
	sid, err := share.ParseID(id)
	if ks == nil || err != nil || ks.ID == id {
		return false, nil, nil
	}
	for _, p := range peers {
		if !slices.Contains(ks.Peers, p) {
			continue
		}
		name := p
		if pr, err := cfg.FindPeer(p); err == nil && pr.Name != "" {
			name = pr.Name
		}
		holders = append(holders, name)
	}
	err = os.Remove(filepath.Join(ks.Path, keyring.FileName(sid)))
	if errors.Is(err, fs.ErrNotExist) {
		return false, holders, nil
	}
	if err != nil {
		return false, holders, fmt.Errorf("remove the share's record from the keyring (other devices of yours keep following it): %w", err)
	}
	return true, holders, nil
}

// keepRemoved notes, before `share remove` of ref, that this device is done
// with the share: a record of it in the keyring (put back by a device of
// the person that holds it on its own) is not followed here again.
func (d *Daemon) keepRemoved(ref string) {
	s, err := d.config().FindShare(ref)
	if err != nil {
		return
	}
	id, err := share.ParseID(s.ID)
	if err != nil {
		return
	}
	if err := keyring.OpenFollowed(d.db.Pebble()).Add(id); err != nil {
		d.log.Warn("note a removed share so the keyring does not bring it back here", "share", s.Name, "err", err)
	}
}

// leaveDropped removes the shares this device took from the keyring whose
// record file is gone: another device of the person removed the share
// (dropRecord). Their files stay, as with `share remove`. A record that
// is there but unreadable is not a removal. True if the configuration
// changed.
func (d *Daemon) leaveDropped(cfg *config.Config, ks *config.Share, have map[share.ID]keyring.Record) bool {
	followed := keyring.OpenFollowed(d.db.Pebble())
	changed := false
	for _, s := range cfg.Shares {
		id, err := share.ParseID(s.ID)
		if err != nil || s.ID == ks.ID || !s.SendUntil.IsZero() || s.ReceiveInto != "" {
			continue
		}
		if _, ok := have[id]; ok {
			continue
		}
		if done, err := followed.Has(id); err != nil || !done {
			continue // not taken from the keyring: this device's own
		}
		if _, err := os.Lstat(filepath.Join(ks.Path, keyring.FileName(id))); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if _, err := RemoveShare(d.home, s.ID); err != nil {
			d.log.Warn("leave a share removed from the keyring", "share", s.Name, "err", err)
			continue
		}
		changed = true
		d.log.Info("left a share another device of yours removed from the keyring; its files stay", "share", s.Name, "path", s.Path)
	}
	return changed
}

// readSmall reads the file at path if it is at most limit bytes.
func readSmall(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, over %d: %w", path, fi.Size(), limit, keyring.ErrRecord)
	}
	return os.ReadFile(path)
}

// onEngineEventAndKeyring is the engine's OnEvent: the event stream's, and
// a record applied to the keyring wakes the keyring loop.
func (d *Daemon) onEngineEventAndKeyring(e engine.Event) {
	d.onEngineEvent(e)
	if e.Kind == engine.FileApplied && strings.HasSuffix(string(e.Path), keyring.Ext) {
		d.pokeKeyring()
	}
}
