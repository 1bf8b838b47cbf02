package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
)

// LocalChanges lists a read-only share's local edits, which stay local
// (index.Share.LocalChanges); n counts them all. While the share is still
// pulling nothing is listed: a record not applied yet is not a deletion.
func (e *Engine) LocalChanges(id share.ID) (list []index.LocalChange, n int, err error) {
	f := e.folder(id)
	if f == nil {
		return nil, 0, fmt.Errorf("local changes of share %s: %w", id, ErrUnknownShare)
	}
	if f.pulling() {
		return nil, 0, nil
	}
	return f.idx.LocalChanges()
}

// Revert puts the share's version back at each local change of a share
// this device cannot sign, at or below paths (all of them when paths is
// empty): a changed or deleted path gets the record's content again (the
// local copy goes to the versions folder, as any replaced file), a path the
// share does not have goes to the versions folder. It returns how many
// paths it reverted; the puller writes them after Revert returns.
func (e *Engine) Revert(ctx context.Context, id share.ID, paths []string) (int, error) {
	f := e.folder(id)
	if f == nil {
		return 0, fmt.Errorf("revert share %s: %w", id, ErrUnknownShare)
	}
	if f.cfg.Key.Level() == share.ReadWrite {
		return 0, fmt.Errorf("revert share %s: this device writes it, so its edits are shared, not local", f.cfg.Name)
	}
	changes, _, err := f.idx.LocalChanges()
	if err != nil {
		return 0, err
	}
	var batch []incoming
	n := 0
	for _, c := range changes {
		if !under(c.Path, paths) {
			continue
		}
		entry, has, err := f.idx.Lookup(c.Path)
		if err != nil {
			return n, err
		}
		if !has {
			// Nothing of the share's there: the local file goes to the
			// versions folder.
			disk, err := f.root.Stat(c.Path)
			if err != nil {
				return n, err
			}
			if disk.Exists && !disk.Mode.IsDir() {
				if err := f.root.Remove(c.Path, disk); err != nil {
					return n, fmt.Errorf("revert %q: %w", c.Path, err)
				}
				n++
				f.requestScan([]string{string(c.Path)}, false)
			}
			continue
		}
		batch = append(batch, incoming{env: entry.Envelope, rec: entry.Record, from: e.self, revert: true})
		n++
	}
	if len(batch) > 0 {
		if err := f.deliver(ctx, batch); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// under reports whether p is one of paths or below one; no paths: all.
func under(p record.Path, paths []string) bool {
	if len(paths) == 0 {
		return true
	}
	for _, q := range paths {
		q = strings.Trim(q, "/")
		if q == "" || string(p) == q || strings.HasPrefix(string(p), q+"/") {
			return true
		}
	}
	return false
}
