package apply

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	unix "github.com/blueshift-sync/blueshift/sync/apply/internal/posix"

	"github.com/blueshift-sync/blueshift/index/record"
)

// stampLayout is the timestamp in version and conflict names, always UTC.
const stampLayout = "20060102-150405"

// maxSameSecond bounds the "-N" suffix when several versions of one path are
// made within one second.
const maxSameSecond = 1000

// versionRE splits STEM~STAMP[-N][.EXT]; the greedy stem takes the last stamp.
var versionRE = regexp.MustCompile(`^(.*)~(\d{8}-\d{6})(?:-(\d+))?(\.[^.]*)?$`)

// Version is one kept copy of a replaced or deleted file.
type Version struct {
	Path string    // share-relative slash path under .blueshift/versions
	Time time.Time // when it was replaced or deleted (UTC, second precision)
	Size int64
}

// Versions lists the kept versions of p, newest first.
func (r *Root) Versions(p record.Path) ([]Version, error) {
	name, err := checkPath(p)
	if err != nil {
		return nil, err
	}
	dir, base := path.Split(filepath.ToSlash(name))
	all, err := r.listVersions(path.Join(versionsDir, dir))
	if err != nil {
		return nil, fmt.Errorf("list versions of %q: %w", p, err)
	}
	return all[base], nil
}

// OpenVersion opens a kept version for reading (the engine reuses its blocks).
func (r *Root) OpenVersion(v Version) (*os.File, error) {
	if !strings.HasPrefix(v.Path, versionsDir+"/") || strings.Contains(v.Path, "..") {
		return nil, fmt.Errorf("open version %q: not under %s: %w", v.Path, versionsDir, ErrUnsafePath)
	}
	f, err := r.fs.Open(filepath.FromSlash(v.Path))
	if err != nil {
		return nil, fmt.Errorf("open version %q: %w", v.Path, err)
	}
	return f, nil
}

// PruneVersions applies the retention rules (VersionsKeep per path, none older
// than VersionsDays) to the whole versions folder and removes emptied
// directories. Writes prune the path they replace; this catches the rest
// (deleted paths, age), so run it now and then.
func (r *Root) PruneVersions(ctx context.Context) error {
	r.pruneMu.Lock()
	defer r.pruneMu.Unlock()
	return r.pruneLocked(ctx)
}

// pruneLocked is PruneVersions with pruneMu held.
func (r *Root) pruneLocked(ctx context.Context) error {
	var dirs []string
	err := fs.WalkDir(r.fs.FS(), versionsDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune versions: %w", err)
	}
	// Deepest first, so a directory emptied of subdirectories goes too.
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	var kept []Version
	for _, d := range dirs {
		all, err := r.listVersions(d)
		if err != nil {
			return fmt.Errorf("prune versions: %w", err)
		}
		for _, vs := range all {
			kept = append(kept, r.removeExpired(vs)...)
		}
		if d != versionsDir {
			r.fs.Remove(filepath.FromSlash(d)) // fails harmlessly unless empty
		}
	}
	r.versionBytes.Store(r.capVersions(kept))
	return nil
}

// capOnSave runs after a version of size bytes was kept: when the versions
// folder is now over VersionsMaxBytes (or its size is not known yet), it is
// pruned at once, so the cap holds at every save and not only at the
// daemon's start and hourly prunes. Failures are logged: a version left
// behind is not worth failing a write for.
func (r *Root) capOnSave(size int64) {
	if r.opts.VersionsMaxBytes <= 0 {
		return
	}
	if total := r.versionBytes.Load(); total >= 0 {
		if r.versionBytes.Add(size) <= r.opts.VersionsMaxBytes {
			return
		}
	}
	if !r.pruneMu.TryLock() {
		return // a prune is under way (it may miss this version: the next save over the cap prunes again)
	}
	defer r.pruneMu.Unlock()
	if err := r.pruneLocked(context.Background()); err != nil {
		r.log.Warn("prune versions over the size cap", "err", err)
	}
}

// capVersions removes the oldest of kept until their sizes add up to no
// more than VersionsMaxBytes, and returns the size of what is left.
func (r *Root) capVersions(kept []Version) int64 {
	var total int64
	for _, v := range kept {
		total += v.Size
	}
	if r.opts.VersionsMaxBytes <= 0 {
		return total
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].Time.Before(kept[j].Time) })
	for _, v := range kept {
		if total <= r.opts.VersionsMaxBytes {
			return total
		}
		if err := r.fs.Remove(filepath.FromSlash(v.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("remove old version", "path", v.Path, "err", err)
			continue
		}
		r.log.Debug("removed a version over the size cap", "version", v.Path)
		total -= v.Size
	}
	return total
}

// AllVersions lists every kept version in the share, by the path it was
// kept for, each newest first.
func (r *Root) AllVersions(ctx context.Context) (map[record.Path][]Version, error) {
	out := make(map[record.Path][]Version)
	err := fs.WalkDir(r.fs.FS(), versionsDir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && p == versionsDir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		all, err := r.listVersions(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, versionsDir), "/")
		for base, vs := range all {
			out[record.Path(path.Join(rel, base))] = vs
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	return out, nil
}

// ErrNoVersion: no kept version matches what a restore asked for.
var ErrNoVersion = errors.New("no such version")

// FindVersion returns the version of p to restore for at: the newest one
// kept at or before at (zero at: the newest of all).
func (r *Root) FindVersion(p record.Path, at time.Time) (Version, error) {
	vs, err := r.Versions(p)
	if err != nil {
		return Version{}, err
	}
	for _, v := range vs { // newest first
		if at.IsZero() || !v.Time.After(at) {
			return v, nil
		}
	}
	if len(vs) == 0 {
		return Version{}, fmt.Errorf("restore %q: %w: the versions folder holds none of it (`blueshift versions list` shows what it holds)", p, ErrNoVersion)
	}
	return Version{}, fmt.Errorf("restore %q: %w kept at or before %s: the oldest is from %s", p, ErrNoVersion,
		at.UTC().Format(time.RFC3339), vs[len(vs)-1].Time.Format(time.RFC3339))
}

// Restore puts version v's content back at p, as a user's edit would:
// whatever p holds now is kept as a version first (WriteFile), and a change
// made to p meanwhile fails with ErrChanged. The version stays kept.
func (r *Root) Restore(ctx context.Context, p record.Path, v Version) (FileState, error) {
	src, err := r.OpenVersion(v)
	if err != nil {
		return FileState{}, fmt.Errorf("restore %q: %w: it may have been pruned; `blueshift versions list` shows what is kept", p, errors.Join(ErrNoVersion, err))
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return FileState{}, fmt.Errorf("restore %q: %w", p, err)
	}
	cur, err := r.Stat(p)
	if err != nil {
		return FileState{}, fmt.Errorf("restore %q: %w", p, err)
	}
	if cur.Exists && cur.Mode.IsDir() {
		return FileState{}, fmt.Errorf("restore %q: a folder is there now: move it away first: %w", p, ErrChanged)
	}
	meta := Meta{Mode: fi.Mode().Perm(), ModTime: r.opts.Clock()}
	return r.WriteFile(ctx, p, cur, meta, func(w Writer) error {
		_, err := io.Copy(w, src)
		return err
	})
}

// keepVersion puts the entry at name into the versions folder: by hard link
// when replacing (the rename that follows is then atomic), by rename when
// deleting or when the file system has no hard links. The versions directory
// is fsynced before the caller touches name again.
func (r *Root) keepVersion(name string, move bool) error {
	dir, base := splitDir(name)
	d, missing, err := r.openDir(dir, false, false)
	if err == nil && missing {
		err = fs.ErrNotExist
	}
	if err != nil {
		return fmt.Errorf("keep version of %q: %w", slashPath(name), err)
	}
	defer r.dirs.release(d)
	_, err = r.keepVersionIn(d, base, move)
	return err
}

// keepVersionIn is keepVersion for the entry base in the open directory d.
// linked reports that the entry is still at base too (a hard link was made).
func (r *Root) keepVersionIn(d *dir, base string, move bool) (linked bool, err error) {
	return r.keepVersionFrom(d, base, d, base, move)
}

// keepVersionFrom keeps the entry srcBase in src as a version of base in d:
// the name and folder of the version follow d and base.
func (r *Root) keepVersionFrom(src *dir, srcBase string, d *dir, base string, move bool) (linked bool, err error) {
	slash := joinSlash(d.path, base)
	vdir := versionsDir
	if d.path != "" {
		vdir += "/" + d.path
	}
	vd, missing, err := r.openDir(vdir, true, false)
	if err == nil && missing {
		err = fs.ErrNotExist
	}
	if err != nil {
		return false, fmt.Errorf("keep version of %q: %w", slash, err)
	}
	defer r.dirs.release(vd)
	stem, ext := splitExt(base)
	stamp := r.opts.Clock().UTC().Format(stampLayout)
	for n := 1; n <= maxSameSecond; n++ {
		vname := stem + "~" + stamp
		if n > 1 {
			vname += "-" + strconv.Itoa(n)
		}
		vname += ext
		var st unix.Stat_t
		if err := fstatat(vd.fd, vname, &st); !errors.Is(err, unix.ENOENT) {
			continue
		}
		var err error
		if !move {
			err = unix.Linkat(src.fd, srcBase, vd.fd, vname, 0)
			linked = err == nil
		}
		if move || err != nil {
			err = unix.Renameat(src.fd, srcBase, vd.fd, vname)
		}
		if err != nil {
			return false, fmt.Errorf("keep version of %q: %w", slash, err)
		}
		if err := fsyncFd(vd.fd); err != nil {
			return linked, fmt.Errorf("keep version of %q: sync directory %q: %w", slash, vd.path, err)
		}
		r.log.Debug("kept a version", "path", slash, "version", vdir+"/"+vname)
		if fstatat(vd.fd, vname, &st) == nil {
			defer r.capOnSave(st.Size)
		}
		return linked, nil
	}
	return false, fmt.Errorf("keep version of %q: %d versions made this second", slash, maxSameSecond)
}

// pruneVersionsOf applies retention to one path's versions, logging failures:
// a version left behind is not worth failing a write for.
func (r *Root) pruneVersionsOf(name string) {
	dir, base := path.Split(filepath.ToSlash(name))
	all, err := r.listVersions(path.Join(versionsDir, dir))
	if err != nil {
		r.log.Debug("prune versions", "path", name, "err", err)
		return
	}
	_ = r.removeExpired(all[base])
}

// removeExpired removes, from one path's versions sorted newest first, those
// beyond VersionsKeep or older than VersionsDays, and returns the others.
func (r *Root) removeExpired(vs []Version) (kept []Version) {
	cutoff := time.Time{}
	if r.opts.VersionsDays > 0 {
		cutoff = r.opts.Clock().Add(-time.Duration(r.opts.VersionsDays) * 24 * time.Hour)
	}
	for i, v := range vs {
		tooMany := r.opts.VersionsKeep > 0 && i >= r.opts.VersionsKeep
		tooOld := !cutoff.IsZero() && v.Time.Before(cutoff)
		if !tooMany && !tooOld {
			kept = append(kept, v)
			continue
		}
		r.log.Debug("removed an expired version", "version", v.Path)
		if err := r.fs.Remove(filepath.FromSlash(v.Path)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("remove old version", "path", v.Path, "err", err)
		}
	}
	return kept
}

// listVersions reads one versions directory and groups its versions by the
// original base name, each group newest first. A missing directory is empty.
func (r *Root) listVersions(vdir string) (map[string][]Version, error) {
	d, err := r.fs.Open(filepath.FromSlash(vdir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]Version)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		orig, t, ok := parseVersionName(e.Name())
		if !ok {
			continue
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		out[orig] = append(out[orig], Version{Path: path.Join(vdir, e.Name()), Time: t, Size: size})
	}
	for _, vs := range out {
		sort.Slice(vs, func(i, j int) bool {
			if !vs[i].Time.Equal(vs[j].Time) {
				return vs[i].Time.After(vs[j].Time)
			}
			return versionSeq(vs[i].Path) > versionSeq(vs[j].Path)
		})
	}
	return out, nil
}

// VersionName is the name under which base is kept when replaced at when:
// STEM~YYYYMMDD-HHMMSS.EXT in UTC, so the extension still tells its type.
func VersionName(base string, when time.Time) string {
	stem, ext := splitExt(base)
	return stem + "~" + when.UTC().Format(stampLayout) + ext
}

// parseVersionName inverts VersionName (with an optional "-N" suffix).
func parseVersionName(name string) (orig string, t time.Time, ok bool) {
	m := versionRE.FindStringSubmatch(name)
	if m == nil {
		return "", time.Time{}, false
	}
	t, err := time.Parse(stampLayout, m[2])
	if err != nil {
		return "", time.Time{}, false
	}
	return m[1] + m[4], t, true
}

func versionSeq(p string) int {
	m := versionRE.FindStringSubmatch(path.Base(p))
	if m == nil || m[3] == "" {
		return 1
	}
	n, _ := strconv.Atoi(m[3])
	return n
}

// splitExt splits "report.pdf" into "report", ".pdf". A dotfile without
// another dot (".bashrc") and a trailing dot have no extension.
func splitExt(base string) (stem, ext string) {
	ext = path.Ext(base)
	if ext == base || ext == "." {
		return base, ""
	}
	return strings.TrimSuffix(base, ext), ext
}
