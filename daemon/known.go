package daemon

import (
	"crypto/ed25519"
	"encoding/base64"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/known"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Introduced members, kept apart from what the user wrote. config.toml
// holds the peers the user paired (invite, join, `peer add`); the members
// the mesh introduced (mesh.go) live in Pebble (index/known), one entry per
// share and device with its key, name, last addresses, introducer and
// time. The configuration the daemon applies and every part reads
// (d.config()) is the union of the two, made by withKnown at each apply:
// dialling, accepting connections, the shares' peers the engine syncs
// with, status, the DHT lookups and introductions all see an introduced
// member as a peer of its share, and config.toml is never written for it.
// A device the share's membership log removes is forgotten (logChanged),
// and left out of the union while it is still stored.

// withKnown returns cfg (read from config.toml, not changed) with the
// devices introduced to each share added: as [[peer]] entries when
// config.toml has none for them (a public key filled in where it lacks
// one), and to the share's peers.
func (d *Daemon) withKnown(cfg *config.Config) *config.Config {
	out := *cfg
	out.Peers = slices.Clone(cfg.Peers)
	out.Shares = slices.Clone(cfg.Shares)
	for i := range out.Shares {
		s := &out.Shares[i]
		id, err := share.ParseID(s.ID)
		if err != nil {
			continue
		}
		list, err := d.known.List(id)
		if err != nil {
			d.log.Warn("read the share's introduced members", "share", s.Name, "err", err)
			continue
		}
		st := d.shareLog(*s)
		list = append(list, logOnly(st, list, *s, d.self, func(dev [32]byte) bool {
			gone, _ := d.known.Dismissed(id, dev)
			return gone
		}, func(dev [32]byte) ed25519.PublicKey {
			pub, _ := d.members.PublicKey(id, members.Device(dev))
			return pub
		})...)
		if len(list) == 0 {
			continue
		}
		s.Peers = slices.Clone(s.Peers)
		for _, k := range list {
			dev := identity.DeviceID(k.ID)
			if dev == d.self || removedIn(st, dev) {
				continue
			}
			if !slices.Contains(s.Peers, dev.String()) {
				s.Peers = append(s.Peers, dev.String())
			}
			pub := ""
			if k.PublicKey != nil {
				pub = base64.StdEncoding.EncodeToString(k.PublicKey)
			}
			j := slices.IndexFunc(out.Peers, func(p config.Peer) bool { return p.ID == dev.String() })
			switch {
			case j < 0:
				out.Peers = append(out.Peers, config.Peer{ID: dev.String(), Name: k.Name, Addresses: k.Addresses, PublicKey: pub})
			case out.Peers[j].PublicKey == "":
				out.Peers[j].PublicKey = pub
			}
		}
	}
	return &out
}

// logOnly returns, as introduced devices without addresses, the current
// members the share's log st names that neither config.toml (s.Peers) nor
// an introduction (introduced) does, and the user did not dismiss (`peer
// remove`): a member that joined through a device we never met, and that
// no writer introduced to us, is still one to sync with. Its public key
// (keyOf: the one the membership store kept from its join, else the one of
// its signature on an entry of the log) lets the DHT find it; else its
// first connection (through a relay, or its own dial) tells it
// (saveKnownKey).
func logOnly(st *members.State, introduced []known.Device, s config.Share, self identity.DeviceID,
	dismissed func([32]byte) bool, keyOf func([32]byte) ed25519.PublicKey) []known.Device {
	if st == nil {
		return nil
	}
	keys := map[members.Device]ed25519.PublicKey{}
	for _, e := range st.Entries(0) {
		for _, sig := range e.Sigs {
			keys[sig.Device] = sig.Pub // checked against the device when the entry was
		}
	}
	var out []known.Device
	for _, in := range st.Members() {
		dev := identity.DeviceID(in.Device)
		if in.Removed || dev == self || slices.Contains(s.Peers, dev.String()) ||
			slices.ContainsFunc(introduced, func(k known.Device) bool { return k.ID == in.Device }) || dismissed(in.Device) {
			continue
		}
		pub := keyOf(in.Device)
		if pub == nil {
			pub = keys[in.Device]
		}
		out = append(out, known.Device{ID: in.Device, PublicKey: pub, IntroducedBy: in.AddedBy, At: in.AddedAt})
	}
	return out
}

// keepIntroduced stores the members an introduction from remote names
// (already checked: mesh.go) as devices of share id; it returns how many
// are new to the share or brought something new (a public key).
func (d *Daemon) keepIntroduced(id share.ID, s config.Share, st *members.State, remote identity.DeviceID, body wire.IntroductionBody) int {
	cfg := d.config()
	added := 0
	for _, im := range body.Members {
		dev := identity.DeviceID(im.Device)
		if dev == d.self || dev.IsZero() || removedIn(st, dev) {
			continue // a removed member stays out, whoever still names it
		}
		k := known.Device{ID: im.Device, Name: validName(im.Name), IntroducedBy: remote, At: time.Now().UTC()}
		if p := peerKey(dev, encodeKey(im.PublicKey)); p != nil {
			k.PublicKey = p
		}
		for _, a := range im.Addresses {
			if ap, ok := introAddr(a); ok && len(k.Addresses) < known.MaxAddresses {
				k.Addresses = append(k.Addresses, ap)
			}
		}
		member := slices.Contains(s.Peers, dev.String())
		if p, err := cfg.FindPeer(dev.String()); err == nil && member && (p.PublicKey != "" || k.PublicKey == nil) && !d.newAddresses(id, s, k) {
			continue // nothing to learn
		}
		changed, err := d.known.Put(id, k)
		if err != nil {
			d.log.Warn("keep an introduced member", "share", s.Name, "peer", dev.Abbrev(), "by", remote.Abbrev(), "err", err)
			continue
		}
		if changed {
			added++
		}
		if !member {
			d.log.Info("member introduced", "share", s.Name, "peer", dev.Abbrev(), "by", remote.Abbrev())
		}
	}
	return added
}

// newAddresses reports whether k, introduced again, names an address its
// stored entry lacks (the introducer heard where it listens since: a
// member stored without addresses gets them, one that moved its new ones),
// or names any for a member only the log names. A device config.toml
// names has no entry: its addresses are the user's.
func (d *Daemon) newAddresses(id share.ID, s config.Share, k known.Device) bool {
	old, ok, err := d.known.Get(id, k.ID)
	if err != nil {
		return false
	}
	if !ok {
		return len(k.Addresses) > 0 && d.logOnlyMember(s, identity.DeviceID(k.ID))
	}
	return slices.ContainsFunc(k.Addresses, func(a string) bool { return !slices.Contains(old.Addresses, a) })
}

// forgetRemoved drops the devices the share's log removed from its
// introduced members; it reports whether any was dropped.
func (d *Daemon) forgetRemoved(id share.ID, st *members.State) bool {
	dropped := false
	for _, in := range st.Members() {
		if !in.Removed {
			continue
		}
		ok, err := d.known.Remove(id, in.Device)
		if err != nil {
			d.log.Warn("forget a removed member", "share", id.Short(), "peer", identity.DeviceID(in.Device).Abbrev(), "err", err)
		}
		dropped = dropped || ok
	}
	return dropped
}

// saveKnownKey keeps a public key learned from a connected device's Hello
// in its introduced entries (it has no [[peer]] in config.toml), making
// one for a member only a share's log names (logOnly); it reports whether
// the device is an introduced one.
func (d *Daemon) saveKnownKey(dev identity.DeviceID, text string) bool {
	pub := peerKey(dev, text)
	if pub == nil {
		return false
	}
	introduced, changed := false, false
	for _, s := range d.config().Shares {
		id, err := share.ParseID(s.ID)
		if err != nil {
			continue
		}
		k, ok, err := d.known.Get(id, dev)
		if err == nil && !ok && d.logOnlyMember(s, dev) {
			k, ok = known.Device{ID: dev}, true
		}
		if err != nil || !ok {
			continue
		}
		introduced = true
		k.PublicKey = pub
		if c, err := d.known.Put(id, k); err == nil && c {
			changed = true
		}
	}
	if changed {
		if err := d.Reload(); err != nil {
			d.log.Debug("reload after learning a key", "peer", dev.Abbrev(), "err", err)
		}
	}
	return introduced
}

// logOnlyMember reports whether dev is a current member of s by its log
// that config.toml does not name and the user did not dismiss (a peer of
// the union s is, from logOnly).
func (d *Daemon) logOnlyMember(s config.Share, dev identity.DeviceID) bool {
	id, err := share.ParseID(s.ID)
	if err != nil || !currentIn(d.shareLog(s), dev) {
		return false
	}
	if gone, err := d.known.Dismissed(id, dev); err != nil || gone {
		return false
	}
	raw, err := LoadConfig(d.opts.Home)
	if err != nil {
		return false
	}
	_, err = raw.FindPeer(dev.String())
	return err != nil
}

// shareLog is the membership log of s, or nil while it has none.
func (d *Daemon) shareLog(s config.Share) *members.State {
	id, err := share.ParseID(s.ID)
	if err != nil {
		return nil
	}
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return nil
	}
	st, err := d.members.State(id, key.PublicKey())
	if err != nil || st.Len() == 0 {
		return nil
	}
	return st
}

// removedIn reports whether log st (nil: none yet) names dev as removed.
func removedIn(st *members.State, dev identity.DeviceID) bool {
	if st == nil {
		return false
	}
	in, ok := st.Member(members.Device(dev))
	return ok && in.Removed
}

// currentIn reports whether log st names dev as a member not removed.
func currentIn(st *members.State, dev identity.DeviceID) bool {
	if st == nil {
		return false
	}
	in, ok := st.Member(members.Device(dev))
	return ok && !in.Removed
}

func encodeKey(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}
