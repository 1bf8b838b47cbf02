package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/engine"
	"github.com/blueshift-sync/blueshift/watcher"
)

// runningShare is a share the engine syncs, with its watcher.
type runningShare struct {
	cfg     config.Share
	members []identity.DeviceID
	stop    context.CancelFunc // ends the watcher
	done    chan struct{}      // closed when the watcher's goroutine returned
	vault   bool               // kept as an encrypted member: not in the engine (vault.go)
}

// shareError is a share in the configuration that could not start.
type shareError struct {
	cfg config.Share
	err error
}

// applyShares starts, stops and updates shares to match cfg. A share that
// fails to start is logged and shown in Status; the others go on.
func (d *Daemon) applyShares(ctx context.Context, cfg *config.Config) {
	want := map[share.ID]config.Share{}
	for _, s := range cfg.Shares {
		if s.Paused || cfg.Device.Paused {
			continue
		}
		id, err := share.ParseID(s.ID)
		if err != nil {
			continue // Load checked it
		}
		want[id] = s
	}
	d.mu.Lock()
	var stop []*runningShare
	var stopIDs []share.ID
	for id, rs := range d.mu.shares {
		if w, ok := want[id]; !ok || w.Path != rs.cfg.Path || w.Key != rs.cfg.Key {
			stop = append(stop, rs)
			stopIDs = append(stopIDs, id)
			delete(d.mu.shares, id)
		}
	}
	d.mu.Unlock()
	for i, rs := range stop {
		rs.stop()
		<-rs.done
		if rs.vault {
			continue
		}
		if err := d.eng.RemoveShare(stopIDs[i]); err != nil {
			d.log.Warn("stop share", "share", rs.cfg.Name, "err", err)
		}
		d.log.Info("stopped syncing share; its files stay", "share", rs.cfg.Name, "path", rs.cfg.Path)
		d.rescanAround(rs.cfg.Path)
	}
	// Every share's root is marked before any share scans, so a share
	// around another one never takes the inner one's files for its own.
	for id, s := range want {
		d.mu.Lock()
		_, running := d.mu.shares[id]
		d.mu.Unlock()
		if !running {
			_ = markShareRoot(d.home, s.Path) // startShare reports what fails
		}
	}
	for id, s := range want {
		if ctx.Err() != nil {
			return // stopping: start nothing more
		}
		members := d.syncingMembers(id, s, membersOf(s))
		d.mu.Lock()
		rs, running := d.mu.shares[id]
		d.mu.Unlock()
		if running && rs.vault {
			continue // an encrypted member's share: the vault store answers for it
		}
		if running {
			if !slices.Equal(rs.members, members) {
				if err := d.eng.SetMembers(id, members); err != nil {
					d.log.Warn("update share members", "share", s.Name, "err", err)
				}
			}
			if s.MaxSendRate != rs.cfg.MaxSendRate || s.MaxRecvRate != rs.cfg.MaxRecvRate {
				d.eng.SetShareRates(id, int64(s.MaxSendRate), int64(s.MaxRecvRate))
			}
			d.mu.Lock()
			rs.cfg, rs.members = s, members
			d.mu.Unlock()
			continue
		}
		if err := d.startShare(ctx, id, s, members); err != nil {
			d.log.Error("share not started", "share", s.Name, "path", s.Path, "err", err)
			d.mu.Lock()
			d.mu.shareErrs[id] = shareError{cfg: s, err: err}
			d.mu.Unlock()
		}
	}
	d.mu.Lock()
	for id := range d.mu.shareErrs {
		if _, ok := want[id]; !ok {
			delete(d.mu.shareErrs, id)
		}
	}
	d.mu.Unlock()
}

// rescanAround asks every running share that holds folder path to look at
// it again: a share stopped there may have stopped being a nested share
// (`share remove` marks it so), and the share around it then syncs it.
func (d *Daemon) rescanAround(path string) {
	rels := map[share.ID]string{}
	d.mu.Lock()
	for id, rs := range d.mu.shares {
		if rel, err := filepath.Rel(rs.cfg.Path, path); err == nil && rel != "." && filepath.IsLocal(rel) {
			rels[id] = filepath.ToSlash(rel)
		}
	}
	d.mu.Unlock()
	for id, rel := range rels {
		if err := d.eng.Rescan(id, []string{rel}, false); err != nil {
			d.log.Debug("rescan", "share", id, "err", err)
		}
	}
}

func (d *Daemon) startShare(ctx context.Context, id share.ID, s config.Share, members []identity.DeviceID) error {
	key, err := share.ParseKey(s.Key)
	if err != nil {
		return fmt.Errorf("share key: %w", err)
	}
	if err := markShareRoot(d.home, s.Path); err != nil {
		return err
	}
	if key.Level() == share.Encrypted {
		return d.startVaultShare(id, key, s, members)
	}
	w, err := watcher.New(s.Path, watcher.Options{
		RescanInterval: d.config().Device.RescanInterval.Duration,
		Logger:         d.log.With("share", s.Name),
	})
	if err != nil {
		return fmt.Errorf("%w: check that the folder exists, or remove the share with `blueshift share remove %s`", err, s.Name)
	}
	d.ensureLog(id, key, s)
	wctx, stop := context.WithCancel(ctx)
	var watched chan error // w.Run's end
	// unwatch ends the watcher of a share that does not start after all.
	unwatch := func() {
		stop()
		if watched != nil {
			<-watched
		}
		w.Close()
	}
	var watching chan struct{} // closed when every watch is in place
	if s.Watch {
		watched = make(chan error, 1)
		watching = make(chan struct{})
		go func() { watched <- w.Run(wctx) }()
		// The watcher's first batch, a full rescan, says every watch is in
		// place. The engine scans everything when the share starts: it
		// reads its index while the watches are placed and walks the
		// folder after (ShareConfig.Watching), so nothing changed before
		// the watches is missed, and taking the batch here saves a second
		// scan of the whole share.
		go func() {
			defer close(watching)
			select {
			case <-w.Batches():
			case <-wctx.Done():
			}
		}()
	}
	days := s.VersionsDays
	if days == 0 {
		days = -1 // config.toml's 0 is "no age limit"; the engine's 0 is its default
	}
	err = d.eng.AddShare(engine.ShareConfig{
		Key: key, Name: s.Name, Path: s.Path, Members: d.syncingMembers(id, s, members),
		Access:       shareAccess{d: d, id: id, name: s.Name},
		VersionsKeep: s.VersionsKeep, VersionsDays: days, VersionsMaxMB: s.VersionsMaxMB,
		MaxSendRate: int64(s.MaxSendRate), MaxRecvRate: int64(s.MaxRecvRate),
		ChunkKey:    func() *[32]byte { return d.chunkKey(id, key) },
		NoMulticast: !s.Multicast,
		Watching:    watching,
	})
	if err != nil {
		unwatch()
		return err
	}
	rs := &runningShare{cfg: s, members: members, stop: stop, done: make(chan struct{})}
	d.mu.Lock()
	if d.mu.stopping {
		d.mu.Unlock()
		unwatch()
		d.eng.RemoveShare(id)
		return fmt.Errorf("start share %s: the daemon is stopping", s.Name)
	}
	d.mu.shares[id] = rs
	delete(d.mu.shareErrs, id)
	// Under mu with stopping unset: Run's wg.Wait has not begun.
	d.wg.Go(func() {
		defer close(rs.done)
		if !s.Watch {
			// Periodic full rescans only (the engine scanned once at start).
			w.Close()
			t := time.NewTicker(d.config().Device.RescanInterval.Duration)
			defer t.Stop()
			for {
				select {
				case <-wctx.Done():
					return
				case <-t.C:
					d.eng.Rescan(id, nil, true)
				}
			}
		}
		fwd := make(chan struct{})
		go func() {
			defer close(fwd)
			<-watching // the first batch is the one above
			for b := range w.Batches() {
				if err := d.eng.Rescan(id, b.Paths, b.Full); err != nil {
					d.log.Debug("rescan", "share", s.Name, "err", err)
				}
			}
		}()
		if err := <-watched; err != nil && wctx.Err() == nil {
			d.log.Warn("watcher stopped; changes are found by periodic rescans", "share", s.Name, "err", err)
		}
		<-fwd
	})
	d.mu.Unlock()
	d.log.Info("syncing share", "share", s.Name, "path", s.Path, "members", len(members))
	return nil
}

func membersOf(s config.Share) []identity.DeviceID {
	var out []identity.DeviceID
	for _, p := range s.Peers {
		if id, err := identity.ParseDeviceID(p); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// markShareRoot makes folder path a nested share boundary for any share
// around it: its .blueshift folder exists (sync/apply fills it) and holds
// no index.RemovedMarker (a share removed there once and added again).
func markShareRoot(home, path string) error {
	if err := CheckSharePath(home, path); err != nil {
		return err
	}
	if err := index.UnmarkRemoved(path); err != nil {
		return err
	}
	// 0o777 before umask, as sync/apply makes it; a missing share folder is
	// the watcher's to report.
	err := os.Mkdir(filepath.Join(path, record.MetaDir), 0o777)
	if err != nil && !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create %s: %w", filepath.Join(path, record.MetaDir), err)
	}
	return nil
}

// CheckSharePath refuses a folder that must not become a share of the
// device whose home is home: a file system's root, the home itself or a
// folder inside it (the home holds device.key and, in config.toml, every
// share's secret), and a folder holding the home. Symlinks are resolved
// first; path need not exist yet (join creates it).
func CheckSharePath(home, path string) error {
	if isKeyringPath(home, path) {
		return nil // the keyring's records are share secrets: the home is their place (keyring.go)
	}
	p, err := resolve(path)
	if err != nil {
		return fmt.Errorf("check folder %s: %w", path, err)
	}
	h, err := resolve(home)
	if err != nil {
		return fmt.Errorf("check the home %s: %w", home, err)
	}
	shown := path
	if p != filepath.Clean(path) {
		shown = fmt.Sprintf("%s (%s)", path, p)
	}
	switch {
	case filepath.Dir(p) == p:
		return fmt.Errorf("%s is the root of a file system: sharing it would sync everything on it, "+
			"this device's home with its keys included: %w; share a folder below it", shown, ErrUnsafeShare)
	case p == h || within(p, h):
		return fmt.Errorf("%s is inside this device's home %s, which holds device.key and the share secrets: "+
			"%w; share a folder outside the home", shown, h, ErrUnsafeShare)
	case within(h, p):
		return fmt.Errorf("%s holds this device's home %s (device.key and the share secrets): sharing it would "+
			"send them to every member: %w; share a folder that does not contain the home, or keep the home "+
			"elsewhere with --home", shown, h, ErrUnsafeShare)
	}
	return nil
}

// ErrUnsafeShare marks a folder that must not be shared (CheckSharePath).
var ErrUnsafeShare = errors.New("refused to share this folder")

// resolve returns path absolute, clean and with symlinks resolved as far as
// it exists.
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	var rest []string
	for p := abs; ; p = filepath.Dir(p) {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(p) == p {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
	}
}

// within reports whether path is strictly below dir; both are clean.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}
