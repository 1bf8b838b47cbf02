package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// A directory this device moves while its files are still arriving: the
// files that arrive afterwards follow it. Without this, each would bring
// the old directory back, and both devices would end with two folders, old
// name and new, each holding part of the files.
//
// The puller remembers the inode of each directory it makes. A record for
// a path below such a directory that this device's own scan has since
// found gone (its record is this device's tombstone) while the index sees
// a directory with the same inode elsewhere is applied there instead: the
// content is written at the new path and scanned (a record of this device),
// and the peer's record at the old path is taken and at once superseded by
// this device's tombstone. Peers then see the move as this device made it.

// maxMadeDirs bounds how many directories the puller remembers.
const maxMadeDirs = 1 << 14

// noteDir remembers the inode of a directory the puller made at p.
func (f *folder) noteDir(p record.Path, ino uint64) {
	if ino == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.mu.madeDirs == nil {
		f.mu.madeDirs = make(map[record.Path]uint64)
	}
	if len(f.mu.madeDirs) < maxMadeDirs {
		f.mu.madeDirs[p] = ino
	}
}

// movedTo returns where p belongs if a directory above it that the puller
// made was moved by this device since (see above).
func (f *folder) movedTo(ctx context.Context, p record.Path) (record.Path, bool) {
	f.mu.Lock()
	none := len(f.mu.madeDirs) == 0
	f.mu.Unlock()
	if none {
		return "", false
	}
	parts := strings.Split(string(p), "/")
	// From the deepest directory above p up: the first the puller made that
	// is still there means nothing above it moved (one stat per file, not
	// one per level). The made ones gone from disk below it are looked at
	// from the top down: the highest that moved carries the rest.
	type madeDir struct {
		i   int // p's parts above it
		ino uint64
	}
	var gone []madeDir // missing from disk (not a directory there)
	for i := len(parts) - 1; i > 0; i-- {
		dir := record.Path(strings.Join(parts[:i], "/"))
		f.mu.Lock()
		ino, made := f.mu.madeDirs[dir]
		f.mu.Unlock()
		if !made {
			continue
		}
		disk, err := f.root.Stat(dir)
		if err == nil && disk.Exists && disk.Mode.IsDir() {
			break
		}
		if err == nil && !disk.Exists {
			gone = append(gone, madeDir{i, ino})
		}
	}
	for _, g := range slices.Backward(gone) {
		i, ino := g.i, g.ino
		dir := record.Path(strings.Join(parts[:i], "/"))
		if _, known, err := f.idx.LocalState(dir); err == nil && known {
			// Gone from disk, and the index has not seen it go: look at the
			// share now (rare: a directory the puller made went away), so
			// the move is recorded before anything is put under its old name.
			f.scan(ctx, scanRequest{full: true})
		}
		if to, ok := f.whereDirWent(dir, ino); ok {
			if np, err := record.ParsePath(string(to) + "/" + strings.Join(parts[i:], "/")); err == nil {
				return np, true
			}
		}
	}
	return "", false
}

// whereDirWent returns the path of directory dir (inode ino) if this device
// moved it: gone from dir, deleted by this device's scan, and the index
// sees a directory of that inode elsewhere, still there on disk.
func (f *folder) whereDirWent(dir record.Path, ino uint64) (record.Path, bool) {
	if disk, err := f.root.Stat(dir); err != nil || disk.Exists {
		return "", false
	}
	e, ok, err := f.idx.Lookup(dir)
	if err != nil || !ok || !e.Record.Deleted || e.Record.ModifiedBy != f.e.self.Short() {
		return "", false
	}
	to, ok, err := f.idx.DirWithInode(ino)
	if err != nil || !ok || to == dir {
		return "", false
	}
	if disk, err := f.root.Stat(to); err != nil || !disk.Exists || !disk.Mode.IsDir() || disk.Inode != ino {
		return "", false
	}
	return to, true
}

// mayMakeDir is the apply root's MayMakeDir: a directory the puller made
// that is missing as a file is put below it may have been moved by the user
// a moment ago, after this file's movedTo check. It is made again only once
// this device's scan has recorded it gone and no directory of its inode is
// found elsewhere: deleted, not moved (a peer's file outlives a deletion).
// Until then every write below it fails with apply.ErrChanged, and its
// record is decided again (settle), when movedTo, after a scan, sends it
// where the folder went. Every write, not only the first: several workers
// put files in place at once, and one let through would bring the old
// folder back.
func (f *folder) mayMakeDir(p record.Path) error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	ino, made := f.mu.madeDirs[p]
	f.mu.Unlock()
	if !made {
		return nil
	}
	to, moved := f.whereDirWent(p, ino)
	if !moved {
		if e, ok, err := f.idx.Lookup(p); err == nil && (!ok || e.Record.Deleted) {
			f.mu.Lock()
			delete(f.mu.madeDirs, p) // deleted: made again, as any other
			f.mu.Unlock()
			return nil
		}
		return fmt.Errorf("directory %q went away while a file was put in it, and no scan has seen it go yet: %w", p, apply.ErrChanged)
	}
	return fmt.Errorf("directory %q was moved to %q while a file was put in it: %w", p, to, apply.ErrChanged)
}

// dirMovedError: the directory a file was being pulled into moved (see
// above) while its content came; the file goes to to instead.
type dirMovedError struct{ from, to record.Path }

func (e *dirMovedError) Error() string {
	return fmt.Sprintf("put %q: its directory moved; it goes to %q", e.from, e.to)
}

// dirMoved returns a *dirMovedError if p's directory moved (see movedTo):
// checked once a file's content is complete, just before it is put in
// place, since a pull can take long enough for a user to move the folder.
func (f *folder) dirMoved(ctx context.Context, p record.Path) error {
	if to, ok := f.movedTo(ctx, p); ok {
		return &dirMovedError{from: p, to: to}
	}
	return nil
}

// errNotMoved: the path a record would follow its directory to is taken;
// the record is applied where it says.
var errNotMoved = errors.New("the moved directory already has that path")

// applyMoved applies in at to, where its directory went (see above).
func (f *folder) applyMoved(ctx context.Context, in incoming, to record.Path) error {
	disk, err := f.root.Stat(to)
	if err != nil {
		return err
	}
	if _, has, err := f.idx.Lookup(to); err != nil || has || disk.Exists {
		return errNotMoved
	}
	moved := in
	moved.rec.Path = to
	if _, err := f.materialize(ctx, moved, nil, disk, nil); err != nil {
		return err
	}
	f.log.Info("followed a directory moved here while its files arrived", "path", in.rec.Path, "to", to, "peer", peerName(in.from))
	f.scan(ctx, scanRequest{paths: []string{string(to)}})
	if err := f.idx.Commit(in.env, nil); err != nil {
		return fmt.Errorf("take the record of %q: %w", in.rec.Path, err)
	}
	return f.idx.Forget(in.rec.Path)
}
