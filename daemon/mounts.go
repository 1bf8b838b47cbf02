package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
)

// Mount entries: a share nested in another is recorded in the outer
// share's membership log as a signed mount entry (its share-relative path
// and the inner share's ID, never its files; index/members KindMount).
// Only a writer of the outer share may make one (the log refuses others'),
// and this device makes them only as an owner of the outer share that
// holds both shares, so two members do not race for the same entry. Its
// members who are not members of the inner share see the folder as an
// empty placeholder; `member list` shows the mounts. When the inner share
// is removed here (`share remove` marks its folder), the owner unmounts it.

// MountView is one mount of `blueshift member list`.
type MountView struct {
	Path  string `json:"path"`  // share-relative
	Share string `json:"share"` // the nested share's ID
}

// syncMounts makes each outer share's log name the shares nested in it on
// this device, and unmounts those removed here.
func (d *Daemon) syncMounts() {
	d.keyring.mu.Lock() // the loop's lock: one writer of this device's log entries at a time
	defer d.keyring.mu.Unlock()
	cfg := d.config()
	for _, outer := range cfg.Shares {
		if isKeyringPath(d.home, outer.Path) || outer.JoinFrom != "" {
			continue
		}
		id, err := share.ParseID(outer.ID)
		key, kerr := share.ParseKey(outer.Key)
		if err != nil || kerr != nil || key.Level() != share.ReadWrite {
			continue
		}
		st, err := d.members.State(id, key.PublicKey())
		if err != nil || st.Len() == 0 || !slices.Contains(st.Owners(), members.Device(d.self)) {
			continue
		}
		want := nestedIn(cfg, outer)
		have := st.Mounts()
		paths := make([]string, 0, len(want))
		for p := range want {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		for _, p := range paths {
			inner := want[p]
			if cur, ok := have[p]; ok && cur == inner {
				continue
			}
			for hp, hid := range have { // moved, or another share there before
				if hp == p || hid == inner {
					d.appendMount(id, key, outer.Name, members.Mount{Path: hp, Inner: hid, Unmount: true})
					delete(have, hp)
				}
			}
			d.appendMount(id, key, outer.Name, members.Mount{Path: p, Inner: inner})
		}
		for p, inner := range have {
			if _, ok := want[p]; ok {
				continue
			}
			// Unmount only what was removed here (marked by `share remove`)
			// or is gone: other members do not hold every nested share, and
			// must not take a mount back for that.
			dir := filepath.Join(outer.Path, filepath.FromSlash(p))
			_, marked := os.Stat(filepath.Join(dir, record.MetaDir, index.RemovedMarker))
			if _, err := os.Stat(dir); marked == nil || errors.Is(err, fs.ErrNotExist) {
				d.appendMount(id, key, outer.Name, members.Mount{Path: p, Inner: inner, Unmount: true})
			}
		}
	}
}

// appendMount signs and appends one mount entry to share id's log.
func (d *Daemon) appendMount(id share.ID, key share.Key, name string, m members.Mount) {
	st, err := d.members.State(id, key.PublicKey())
	if err != nil {
		return
	}
	e, err := d.sign(st, id, members.Body{Kind: members.KindMount, Mount: m})
	if err == nil {
		_, err = d.members.Append(id, key.PublicKey(), e)
	}
	what := "mounted a nested share"
	if m.Unmount {
		what = "unmounted a nested share"
	}
	if err != nil {
		d.log.Warn(what, "share", name, "path", m.Path, "err", err)
		return
	}
	d.log.Info(what, "share", name, "path", m.Path, "inner", share.ID(m.Inner).Short())
	d.msync.poke()
}

// nestedIn lists the shares of cfg whose folder is directly in outer's
// (outer is the innermost share around them), by share-relative path.
func nestedIn(cfg *config.Config, outer config.Share) map[string][32]byte {
	out := map[string][32]byte{}
	for _, in := range cfg.Shares {
		if !within(filepath.Clean(in.Path), filepath.Clean(outer.Path)) || !in.SendUntil.IsZero() || in.ReceiveInto != "" {
			continue // a one-off send's staging folder is no nested share
		}
		direct := true
		for _, mid := range cfg.Shares {
			if mid.ID != in.ID && mid.ID != outer.ID && within(filepath.Clean(mid.Path), filepath.Clean(outer.Path)) &&
				within(filepath.Clean(in.Path), filepath.Clean(mid.Path)) {
				direct = false
			}
		}
		id, err := share.ParseID(in.ID)
		rel, rerr := filepath.Rel(outer.Path, in.Path)
		if !direct || err != nil || rerr != nil {
			continue
		}
		out[filepath.ToSlash(rel)] = id
	}
	return out
}

// mountsOf is MemberList.Mounts of st.
func mountsOf(st *members.State) []MountView {
	out := []MountView{}
	for p, id := range st.Mounts() {
		out = append(out, MountView{Path: p, Share: share.ID(id).String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}
