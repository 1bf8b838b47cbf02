package engine

import (
	"context"
	"fmt"
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
// frees space in steps). Partial downloads of pending records are kept
// (their bytes are part of what is needed, and would be fetched again);
// those of records nobody wants any more are removed at the retry, so
// temps never hold more than the pulls still to come need.
const (
	spacePoll  = time.Second      // how often free space is read while the disk is full
	spaceRetry = 15 * time.Second // the longest a full disk waits between retries
)

// diskFull is why a folder's pulls stopped: writing path ran out of space.
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

// String is the message status shows and the log writes.
func (d DiskFull) String() string {
	free := "free space unknown"
	if d.Free >= 0 {
		free = sizeText(d.Free) + " free"
	}
	return fmt.Sprintf("disk full: cannot write %q: it needs %s more, %s on the share's disk; "+
		"free some space there and the pull resumes by itself", d.Path, sizeText(d.Need), free)
}

// noSpace describes the failure of in for lack of space.
func (f *folder) noSpace(in incoming) *diskFull {
	rec := in.rec
	need := rec.Size - f.root.TempWritten(rec.Path, rec.FileHash, rec.Size)
	free, err := f.root.FreeSpace()
	if err != nil {
		free = -1
	}
	now := f.e.clock()
	return &diskFull{key: in.env.Key(), path: rec.Path, need: max(need, 1), free: free, since: now, tried: now, freed: free}
}

// watchSpace, while the disk is full, reads the free space every spacePoll
// and asks the puller to retry once the file that failed fits (and more is
// free than when it failed), or spaceRetry after the last try.
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
		full := f.fullLocked()
		f.mu.Unlock()
		if full == nil {
			continue
		}
		free, err := f.root.FreeSpace()
		if err != nil {
			free = -1
		}
		now := f.e.clock()
		retry := false
		f.mu.Lock()
		if f.mu.full == full { // not settled meanwhile
			full.free = free
			fits := free >= full.need && free > full.freed
			if fits || now.Sub(full.tried) >= spaceRetry {
				full.tried, full.freed, retry = now, free, true
			}
		}
		f.mu.Unlock()
		if retry {
			f.log.Debug("retrying after a full disk", "path", full.path, "need", full.need, "free", free)
			select {
			case f.retry <- struct{}{}:
			default:
			}
		}
	}
}

// dropStaleTemps removes the partial downloads no pending record wants,
// when the disk is full. Only the puller calls it, between batches: no
// Temp is open then.
func (f *folder) dropStaleTemps() {
	f.mu.Lock()
	if f.fullLocked() == nil {
		f.mu.Unlock()
		return
	}
	keep := make(map[string]bool, len(f.mu.pending))
	for _, in := range f.mu.pending {
		keep[apply.TempKey(in.rec.Path, in.rec.FileHash)] = true
	}
	f.mu.Unlock()
	freed, err := f.root.RemoveTempsExcept(func(k string) bool { return keep[k] })
	if err != nil {
		f.log.Warn("remove partial downloads no longer wanted", "err", err)
	}
	if freed > 0 {
		f.log.Info("disk full: removed partial downloads no longer wanted", "bytes", freed)
	}
}

// fullLocked returns why pulls stopped for space, if they still are: the
// record that failed may have gone meanwhile (its sender moved on).
func (f *folder) fullLocked() *diskFull {
	if full := f.mu.full; full != nil {
		if _, ok := f.mu.pending[full.key]; !ok {
			f.mu.full = nil
		}
	}
	return f.mu.full
}

// sizeText is n bytes for a person to read.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
