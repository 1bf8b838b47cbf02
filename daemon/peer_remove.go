package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/known"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// `peer remove` on a running daemon: the device goes whether the user
// paired it (config.toml) or the mesh made a peer of it (an introduction,
// or the share's membership log naming it: known.go). An introduced
// device is forgotten in Pebble and marked dismissed, so the log alone
// does not bring it back; the reload unpairs it, which closes its
// connection. It stays a member of the shares' logs, so a member's
// introduction may bring it back: `member remove` takes it out of a share.

// removePeer removes the device ref names (ID or name) from config.toml
// and from the introduced devices of every share.
func (d *Daemon) removePeer(ref string) (PeerEntry, error) {
	cfg := d.config()
	p, err := cfg.FindPeer(ref)
	if err != nil {
		return PeerEntry{}, fmt.Errorf("peer remove: %w", err)
	}
	dev, err := identity.ParseDeviceID(p.ID)
	if err != nil {
		return PeerEntry{}, fmt.Errorf("peer remove %s: %w", p.ID, err)
	}
	out := peerEntry(*p)
	raw, err := LoadConfig(d.home)
	if err != nil {
		return PeerEntry{}, fmt.Errorf("peer remove: %w", err)
	}
	if _, err := raw.FindPeer(p.ID); err == nil {
		if _, err := RemovePeer(d.home, p.ID); err != nil {
			return PeerEntry{}, err
		}
	} else if !errors.Is(err, config.ErrNotFound) {
		return PeerEntry{}, fmt.Errorf("peer remove: %w", err)
	}
	for _, s := range cfg.Shares {
		id, err := share.ParseID(s.ID)
		if err != nil || !slices.Contains(s.Peers, p.ID) {
			continue
		}
		_, introduced, err := d.known.Get(id, dev)
		if err != nil {
			return PeerEntry{}, fmt.Errorf("peer remove %s: %w", dev.Abbrev(), err)
		}
		if !introduced && !currentIn(d.shareLog(s), dev) {
			continue
		}
		if err := d.known.Dismiss(id, dev); err != nil {
			return PeerEntry{}, fmt.Errorf("peer remove %s: %w", dev.Abbrev(), err)
		}
		out.Member = append(out.Member, s.Name)
	}
	if len(out.Member) > 0 {
		out.Note = fmt.Sprintf("device %s stays a member of share %s by its membership log: a member may introduce it again; to take it out of a share, run `blueshift member remove SHARE %s`",
			dev.Abbrev(), strings.Join(out.Member, ", "), p.ID)
	}
	d.log.Info("peer removed", "peer", dev.Abbrev(), "member_of", out.Member)
	return out, nil
}

// undismiss takes back `peer remove`'s dismissal of a device on every
// share when the user adds it again with `peer add`: a member the shares'
// logs name is then a peer of those shares again, as before the removal.
func (d *Daemon) undismiss(ref string) error {
	dev, err := identity.ParseDeviceID(ref)
	if err != nil {
		return fmt.Errorf("peer add %s: %w", ref, err)
	}
	for _, s := range d.config().Shares {
		id, err := share.ParseID(s.ID)
		if err != nil {
			continue
		}
		if err := d.known.Undismiss(id, dev); err != nil {
			return fmt.Errorf("peer add %s: %w", dev.Abbrev(), err)
		}
	}
	return nil
}

// RemovePeerOffline is `peer remove` with no daemon running: it opens the
// home's database to remove an introduced device too, and to mark a
// member the shares' logs name as dismissed (else the next start would
// make a peer of it again from the log alone).
func RemovePeerOffline(home, ref string) (PeerEntry, error) {
	d, closeDB, err := offlineDaemon(home, "peer remove")
	if err != nil {
		return PeerEntry{}, err
	}
	defer closeDB()
	return d.removePeer(ref)
}

// AddPeerOffline is `peer add` with no daemon running: config.toml, and
// the dismissal of an earlier `peer remove` taken back in the database.
func AddPeerOffline(home string, req AddPeerRequest) (PeerEntry, error) {
	e, err := AddPeer(home, req)
	if err != nil {
		return e, err
	}
	d, closeDB, err := offlineDaemon(home, "peer add")
	if err != nil {
		return e, err
	}
	defer closeDB()
	return e, d.undismiss(e.ID)
}

// offlineDaemon is the part of a Daemon the peer verbs need with no daemon
// running: the home's identity, configuration and database.
func offlineDaemon(home, verb string) (*Daemon, func(), error) {
	id, err := identity.Load(home)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", verb, err)
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", verb, err)
	}
	db, err := index.Open(filepath.Join(home, DBDir), index.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: open the index of %s: %w (is a daemon starting? run %s again once it runs)", verb, home, err, verb)
	}
	discard := slog.New(slog.DiscardHandler)
	d := &Daemon{home: home, opts: Options{Home: home}, log: discard, id: id, self: id.ID(),
		members: members.Open(db.Pebble()), known: known.Open(db.Pebble())}
	d.mu.cfg = d.withKnown(cfg)
	return d, func() { db.Close() }, nil
}
