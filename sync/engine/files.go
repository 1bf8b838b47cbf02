package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// pruneEvery is how often a share's versions folder is pruned (age, count
// and size cap) besides the pruning each write does for its own path.
const pruneEvery = time.Hour

// Versions lists the kept versions of p in share id, newest first; an empty
// p lists every path's.
func (e *Engine) Versions(ctx context.Context, id share.ID, p record.Path) (map[record.Path][]apply.Version, error) {
	f := e.folder(id)
	if f == nil {
		return nil, fmt.Errorf("list versions of share %s: %w", id, ErrUnknownShare)
	}
	if p == "" {
		return f.root.AllVersions(ctx)
	}
	vs, err := f.root.Versions(p)
	if err != nil {
		return nil, err
	}
	return map[record.Path][]apply.Version{p: vs}, nil
}

// RestoreVersion puts back the newest version of p kept at or before at
// (zero: the newest) as a local edit, which then syncs like any other; what
// p held is kept as a version first. It returns the version restored.
func (e *Engine) RestoreVersion(ctx context.Context, id share.ID, p record.Path, at time.Time) (apply.Version, error) {
	f := e.folder(id)
	if f == nil {
		return apply.Version{}, fmt.Errorf("restore in share %s: %w", id, ErrUnknownShare)
	}
	v, err := f.root.FindVersion(p, at)
	if err != nil {
		return apply.Version{}, err
	}
	if _, err := f.root.Restore(ctx, p, v); err != nil {
		return apply.Version{}, err
	}
	f.requestScan([]string{string(p)}, false)
	return v, nil
}

// Conflicts lists the conflict copies in share id.
func (e *Engine) Conflicts(ctx context.Context, id share.ID) ([]apply.Conflict, error) {
	f := e.folder(id)
	if f == nil {
		return nil, fmt.Errorf("list conflicts of share %s: %w", id, ErrUnknownShare)
	}
	return f.root.Conflicts(ctx)
}

// ResolveConflict ends conflict c of share id as keep says, as a local
// edit that then syncs; nothing replaced or removed is lost (the versions
// folder keeps it).
func (e *Engine) ResolveConflict(ctx context.Context, id share.ID, c apply.Conflict, keep apply.ResolveKeep) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("resolve a conflict in share %s: %w", id, ErrUnknownShare)
	}
	changed, err := f.root.Resolve(ctx, c, keep)
	if len(changed) > 0 {
		paths := make([]string, len(changed))
		for i, p := range changed {
			paths[i] = string(p)
		}
		f.requestScan(paths, false)
	}
	return err
}

// LocalRecord returns the record this device holds for p in share id.
func (e *Engine) LocalRecord(id share.ID, p record.Path) (record.Record, bool, error) {
	f := e.folder(id)
	if f == nil {
		return record.Record{}, false, fmt.Errorf("look up %q in share %s: %w", p, id, ErrUnknownShare)
	}
	entry, ok, err := f.idx.Lookup(p)
	if err != nil || !ok {
		return record.Record{}, false, err
	}
	return entry.Record, true, nil
}

// pruneLoop prunes the versions folder now and every pruneEvery, until ctx
// is done; the puller's run owns it.
func (f *folder) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		if err := f.root.PruneVersions(ctx); err != nil && ctx.Err() == nil {
			f.log.Debug("prune versions", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
