package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// When the share's disk fills up, the record that could not be written
// stays pending (status counts it as needed) and the folder remembers why
// (diskFull). watchSpace then polls the free space of the share's file
// system and has the puller retry as soon as the file fits, or every
// spaceRetry at the latest (where free space cannot be read, or a user
// frees space in steps). A temp is never preallocated and a pull that
// cannot fit does not start (apply.OpenTemp), so partial downloads hold
// only what arrived. They are kept while pending records want them (their
// bytes are part of what is needed, and would be fetched again), except
// where they keep the file nearest to done from finishing (makeRoom).
const (
	spacePoll  = time.Second      // how often free space is read while the disk is full
	spaceRetry = 15 * time.Second // the longest a full disk waits between retries
)

// diskFull is why a record waits: writing path ran out of space.
type diskFull struct {
	key   merkle.Key
	path  record.Path
	need  int64     // bytes path still needs on disk
	free  int64     // bytes free at the last check; -1: unknown
	since time.Time // first failure for this path
	tried time.Time // last retry (or failure)
	freed int64     // free space when last tried: a retry needs more than that
}

// DiskFull is the status of a share whose disk has no room for a pull.
type DiskFull struct {
	Path  record.Path // the file that could not be written
	Need  int64       // bytes it still needs on disk
	Free  int64       // bytes free on the share's file system (-1: unknown)
	Since time.Time
}

// String is the message status shows (the share is named beside it).
func (d DiskFull) String() string {
	free := "free space unknown"
	if d.Free >= 0 {
		free = SizeText(d.Free) + " free"
	}
	return fmt.Sprintf("disk full: cannot write %q: it needs %s more, %s on the share's disk; "+
		"free some space there and the pull resumes by itself", d.Path, SizeText(d.Need), free)
}

// noSpace describes the failure of in for lack of space.
func (f *folder) noSpace(in incoming) *diskFull {
	rec := in.rec
	need := dataBytes(rec) - f.root.TempWritten(rec.Path, rec.FileHash, rec.Size)
	free, err := f.root.FreeSpace()
	if err != nil {
		free = -1
	}
	now := f.e.clock()
	return &diskFull{key: in.env.Key(), path: rec.Path, need: max(need, 1), free: free, since: now, tried: now, freed: free}
}

// watchSpace, while the disk is full, reads the free space every spacePoll
// and asks the puller to retry once the file that needs least fits (and
// more is free than when it failed), or spaceRetry after the last try.
func (f *folder) watchSpace(ctx context.Context) {
	tick := time.NewTicker(spacePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		waiting := f.fullLocked() != nil
		f.mu.Unlock()
		if !waiting {
			continue
		}
		free, err := f.root.FreeSpace()
		if err != nil {
			free = -1
		}
		now := f.e.clock()
		retry := false
		f.mu.Lock()
		if w := f.fullLocked(); w != nil { // not settled meanwhile
			fits := free >= w.need && free > w.freed
			retry = fits || now.Sub(w.tried) >= spaceRetry
			for _, d := range f.mu.full {
				d.free = free
				if retry {
					d.tried, d.freed = now, free
				}
			}
		}
		f.mu.Unlock()
		if retry {
			f.log.Debug("retrying after a full disk", "free", free)
			select {
			case f.retry <- struct{}{}:
			default:
			}
		}
	}
}

// settleSpaceLocked notes how applying the record at key ended, for the
// full-disk state: full (nil unless it failed for lack of space) replaces
// what was noted for key. paused reports the first record to fail for
// space, resumed that the last one waiting went through.
func (f *folder) settleSpaceLocked(key merkle.Key, full *diskFull, ok bool) (paused, resumed bool) {
	had := len(f.mu.full) > 0
	old := f.mu.full[key]
	if full == nil {
		delete(f.mu.full, key)
		return false, ok && old != nil && len(f.mu.full) == 0
	}
	if f.mu.full == nil {
		f.mu.full = make(map[merkle.Key]*diskFull)
	}
	if old != nil {
		full.since = old.since
	}
	f.mu.full[key] = full
	return !had, false
}

// makeRoom, while the disk is full, removes the partial downloads that
// stand in the way: first those no pending record wants; then, if the file
// that needs least would fit without the partial downloads of other
// pending files, as many of those (largest first) as it takes. A complete
// file is worth more than several partial ones that block each other; what
// is dropped is fetched again later. Only the puller calls it, between
// batches: no Temp is open then.
func (f *folder) makeRoom() {
	f.mu.Lock()
	if f.fullLocked() == nil {
		f.mu.Unlock()
		return
	}
	var files []record.Record
	for _, in := range f.mu.pending {
		if !in.rec.Deleted && in.rec.Kind == record.File {
			files = append(files, in.rec)
		}
	}
	f.mu.Unlock()
	type part struct {
		key           string
		path          record.Path
		written, need int64
	}
	parts := make([]part, 0, len(files))
	keep := make(map[string]bool, len(files))
	for _, rec := range files {
		k := apply.TempKey(rec.Path, rec.FileHash)
		w := f.root.TempWritten(rec.Path, rec.FileHash, rec.Size)
		parts = append(parts, part{key: k, path: rec.Path, written: w, need: dataBytes(rec) - w})
		keep[k] = true
	}
	if free, err := f.root.FreeSpace(); err == nil && len(parts) > 1 {
		slices.SortFunc(parts, func(a, b part) int { return cmp.Compare(a.need, b.need) })
		first := parts[0]
		others := slices.Clone(parts[1:])
		slices.SortFunc(others, func(a, b part) int { return cmp.Compare(b.written, a.written) })
		var reclaim int64
		for _, o := range others {
			reclaim += o.written
		}
		for _, o := range others {
			if first.need <= free || first.need > free+reclaim || o.written == 0 {
				break // fits already, or would not fit even so
			}
			reclaim -= o.written
			keep[o.key] = false
			free += o.written
			f.log.Info("disk full: dropped a partial download so that another file can finish",
				"path", o.path, "bytes", o.written, "finishing", first.path)
		}
	}
	freed, err := f.root.RemoveTempsExcept(func(k string) bool { return keep[k] })
	if err != nil {
		f.log.Warn("remove partial downloads to make room", "err", err)
	}
	if freed > 0 {
		f.log.Info("disk full: removed partial downloads", "bytes", freed)
	}
}

// fullLocked returns, of the records that failed for lack of space and
// still wait, the one that needs least (the first that will fit), or nil.
// A record may have gone meanwhile (its sender moved on).
func (f *folder) fullLocked() *diskFull {
	var least *diskFull
	for k, d := range f.mu.full {
		if _, ok := f.mu.pending[k]; !ok {
			delete(f.mu.full, k)
			continue
		}
		if least == nil || d.need < least.need || (d.need == least.need && d.path < least.path) {
			least = d
		}
	}
	return least
}

// SizeText is n bytes for a person to read (1.5 MiB), as status and the
// command line show sizes.
func SizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
