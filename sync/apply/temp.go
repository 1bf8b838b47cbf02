package apply

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
)

// Sidecar format (.blueshift/tmp/<key>.done), all integers big-endian:
//
//	+----------+----------+--------------+
//	| "BSPART1\n" (8) | size (8) | file hash (32) |   header, 48 bytes
//	+----------+----------+--------------+
//	| off (8)  | len (8)  |   one record per range written and fsynced,
//	+----------+----------+   appended; a torn last record is ignored
//
// A record is appended only after the data it names was fsynced, so every
// record is true after a crash; a sidecar that does not decode is dropped and
// the pull starts over.
const (
	sidecarMagic  = "BSPART1\n"
	headerLen     = 8 + 8 + block.Size
	recordLen     = 16
	maxSidecarLen = 64 << 20 // 4M ranges; a temp needing more starts over
	maxTempSize   = 1 << 50  // 1 PiB
)

// Range is a run of bytes [Off, Off+Len).
type Range struct {
	Off, Len int64
}

// Temp is a resumable partial file for the content with hash want at path p.
// Reopening the same (p, want, size) after a restart finds the ranges already
// written (Done, Has) so they are not fetched again. WriteAt may be called
// from several goroutines; Sync makes what was written durable and recorded.
// Commit installs it; Discard throws it away; Close keeps it for later.
type Temp struct {
	r    *Root
	path record.Path
	hash block.Hash
	size int64
	part string // temp file name in the share root
	done string // sidecar name

	f    *os.File // the partial file
	side *os.File // the sidecar, append-only

	mu      sync.Mutex
	durable []Range // guarded by mu: recorded in the sidecar
	pending []Range // guarded by mu: written, not yet recorded
	closed  bool    // guarded by mu
}

// TempKey names the temp of content want at p: a hash, so names in the tmp
// folder reveal nothing and cannot be chosen by a peer.
func TempKey(p record.Path, want block.Hash) string {
	h := blake3.New()
	h.Write([]byte(p))
	h.Write([]byte{0})
	h.Write(want[:])
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// OpenTemp opens (or creates) the resumable temp for content want of length
// size at p.
func (r *Root) OpenTemp(p record.Path, want block.Hash, size int64) (*Temp, error) {
	name, err := checkPath(p)
	if err != nil {
		return nil, err
	}
	if _, err := r.checkParents(name, false); err != nil {
		return nil, fmt.Errorf("open temp for %q: %w", p, err)
	}
	if size < 0 || size > maxTempSize {
		return nil, fmt.Errorf("open temp for %q: size %d out of range", p, size)
	}
	key := TempKey(p, want)
	t := &Temp{
		r: r, path: p, hash: want, size: size,
		part: filepath.FromSlash(tmpDir + "/" + key + ".part"),
		done: filepath.FromSlash(tmpDir + "/" + key + ".done"),
	}
	if err := t.open(); err != nil {
		t.closeFiles()
		return nil, fmt.Errorf("open temp for %q: %w", p, err)
	}
	return t, nil
}

// open reads the sidecar (if it matches this content and the part file),
// rewrites it compacted, and opens both files.
func (t *Temp) open() error {
	r := t.r
	r.fs.Chmod(t.part, tempPerm) // a failed Commit may have applied the final mode
	f, err := r.fs.OpenFile(t.part, os.O_RDWR|os.O_CREATE, tempPerm)
	if err != nil {
		return err
	}
	t.f = f
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == t.size {
		t.durable = t.readSidecar()
	}
	if err := f.Truncate(t.size); err != nil {
		return err
	}
	// Rewrite the sidecar merged, via a temp and rename so a crash leaves
	// either the old one or the new one.
	buf := encodeSidecar(t.size, t.hash, t.durable)
	tmp := t.done + ".new"
	if err := r.fs.WriteFile(tmp, buf, tempPerm); err != nil {
		return err
	}
	if err := syncFile(r, tmp); err != nil {
		return err
	}
	if err := r.fs.Rename(tmp, t.done); err != nil {
		return err
	}
	t.side, err = r.fs.OpenFile(t.done, os.O_WRONLY|os.O_APPEND, tempPerm)
	return err
}

// readSidecar returns the recorded ranges, or none if the sidecar is
// missing, too big, broken or for other content.
func (t *Temp) readSidecar() []Range {
	fi, err := t.r.fs.Lstat(t.done)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxSidecarLen {
		return nil
	}
	b, err := t.r.fs.ReadFile(t.done)
	if err != nil {
		return nil
	}
	size, hash, ranges, err := decodeSidecar(b)
	if err != nil || size != t.size || hash != t.hash {
		if err != nil {
			t.r.log.Warn("partial download unusable, starting over", "path", string(t.path), "err", err)
		}
		return nil
	}
	return ranges
}

// Path is the target path.
func (t *Temp) Path() record.Path { return t.path }

// Size is the length of the content.
func (t *Temp) Size() int64 { return t.size }

// Done returns the ranges already written (durable or pending), merged.
func (t *Temp) Done() []Range {
	t.mu.Lock()
	defer t.mu.Unlock()
	return addRanges(append([]Range(nil), t.durable...), t.pending...)
}

// Has reports whether [off, off+n) was already written.
func (t *Temp) Has(off, n int64) bool {
	return covers(t.Done(), Range{off, n})
}

// Complete reports whether every byte was written.
func (t *Temp) Complete() bool {
	return t.size == 0 || t.Has(0, t.size)
}

// WriteAt writes b at off (within Size) and marks the range written.
func (t *Temp) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || int64(len(b)) > t.size-off {
		return 0, fmt.Errorf("write temp for %q: range %d+%d outside size %d", t.path, off, len(b), t.size)
	}
	n, err := t.f.WriteAt(b, off)
	if n > 0 {
		t.mu.Lock()
		t.pending = addRanges(t.pending, Range{off, int64(n)})
		t.mu.Unlock()
	}
	return n, err
}

// ReadAt reads back written bytes (to verify or to reuse them).
func (t *Temp) ReadAt(b []byte, off int64) (int, error) { return t.f.ReadAt(b, off) }

// Sync makes every completed WriteAt durable and records it in the sidecar:
// the ranges survive a crash from here on.
func (t *Temp) Sync() error {
	t.mu.Lock()
	snap := t.pending
	t.pending = nil
	t.mu.Unlock()
	if len(snap) == 0 {
		return nil
	}
	err := t.f.Sync() // data first: a record must never name unsynced bytes
	if err == nil {
		_, err = t.side.Write(encodeRecords(nil, snap))
	}
	if err == nil {
		err = t.side.Sync()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.pending = addRanges(t.pending, snap...)
		return fmt.Errorf("sync temp for %q: %w", t.path, err)
	}
	t.durable = addRanges(t.durable, snap...)
	return nil
}

// Close syncs and closes the temp, keeping it for a later OpenTemp.
func (t *Temp) Close() error {
	err := t.Sync()
	return errors.Join(err, t.closeFiles())
}

// Discard closes the temp and removes it and its sidecar.
func (t *Temp) Discard() error {
	t.closeFiles()
	err1 := t.r.fs.Remove(t.part)
	err2 := t.r.fs.Remove(t.done)
	if errors.Is(err1, fs.ErrNotExist) {
		err1 = nil
	}
	if errors.Is(err2, fs.ErrNotExist) {
		err2 = nil
	}
	return errors.Join(err1, err2)
}

func (t *Temp) closeFiles() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	var errs []error
	if t.f != nil {
		errs = append(errs, t.f.Close())
	}
	if t.side != nil {
		errs = append(errs, t.side.Close())
	}
	return errors.Join(errs...)
}

// Commit installs a complete Temp at its path like WriteFile does (check
// expect, keep the old file as a version, rename, fsync) and returns the new
// state. The Temp is closed in every case. If Commit fails, ErrChanged
// included, the partial file and its sidecar stay so that a later OpenTemp
// finds the content already there (PruneTemps removes it if nobody does).
func (r *Root) Commit(ctx context.Context, t *Temp, expect FileState, meta Meta) (FileState, error) {
	name, err := checkPath(t.path)
	if err != nil {
		return FileState{}, err
	}
	if !t.Complete() {
		t.Close()
		return FileState{}, fmt.Errorf("commit %q: %w", t.path, ErrIncomplete)
	}
	if err := t.Sync(); err != nil {
		t.closeFiles()
		return FileState{}, fmt.Errorf("commit %q: %w", t.path, err)
	}
	t.mu.Lock()
	f := t.f
	t.closed = true
	t.mu.Unlock()
	t.side.Close()
	tf, err := r.heldTemp(f, t.part)
	if err != nil {
		return FileState{}, fmt.Errorf("commit %q: %w", t.path, err)
	}
	st, err := r.install(ctx, tf, name, expect, meta)
	if err != nil {
		tf.release() // the part stays for a later OpenTemp
		return FileState{}, fmt.Errorf("commit %q: %w", t.path, err)
	}
	r.fs.Remove(t.done)
	return st, nil
}

func syncFile(r *Root, name string) error {
	f, err := r.fs.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

func encodeSidecar(size int64, hash block.Hash, ranges []Range) []byte {
	b := make([]byte, 0, headerLen+recordLen*len(ranges))
	b = append(b, sidecarMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = append(b, hash[:]...)
	return encodeRecords(b, ranges)
}

func encodeRecords(b []byte, ranges []Range) []byte {
	for _, rg := range ranges {
		b = binary.BigEndian.AppendUint64(b, uint64(rg.Off))
		b = binary.BigEndian.AppendUint64(b, uint64(rg.Len))
	}
	return b
}

// decodeSidecar reads a sidecar from disk, which may be torn or garbage: it
// checks every length before use and returns the merged ranges.
func decodeSidecar(b []byte) (size int64, hash block.Hash, ranges []Range, err error) {
	if len(b) > maxSidecarLen {
		return 0, hash, nil, fmt.Errorf("sidecar of %d bytes exceeds %d", len(b), maxSidecarLen)
	}
	if len(b) < headerLen || string(b[:8]) != sidecarMagic {
		return 0, hash, nil, errors.New("sidecar header missing or wrong")
	}
	s := binary.BigEndian.Uint64(b[8:16])
	if s > maxTempSize {
		return 0, hash, nil, fmt.Errorf("sidecar size %d exceeds %d", s, int64(maxTempSize))
	}
	size = int64(s)
	copy(hash[:], b[16:headerLen])
	recs := b[headerLen:]
	for len(recs) >= recordLen { // a torn trailing record is ignored
		off := binary.BigEndian.Uint64(recs[0:8])
		n := binary.BigEndian.Uint64(recs[8:16])
		recs = recs[recordLen:]
		if off > s || n > s-off {
			return 0, hash, nil, fmt.Errorf("sidecar range %d+%d outside size %d", off, n, s)
		}
		if n > 0 {
			ranges = addRanges(ranges, Range{int64(off), int64(n)})
		}
	}
	return size, hash, ranges, nil
}

// addRanges merges add into the sorted, disjoint, non-adjacent set rs.
func addRanges(rs []Range, add ...Range) []Range {
	if len(add) == 0 {
		return rs
	}
	all := append(rs, add...)
	sort.Slice(all, func(i, j int) bool { return all[i].Off < all[j].Off })
	out := all[:0]
	for _, rg := range all {
		if rg.Len <= 0 {
			continue
		}
		if k := len(out) - 1; k >= 0 && rg.Off <= out[k].Off+out[k].Len {
			if end := rg.Off + rg.Len; end > out[k].Off+out[k].Len {
				out[k].Len = end - out[k].Off
			}
			continue
		}
		out = append(out, rg)
	}
	return out
}

// covers reports whether the merged set rs contains all of want.
func covers(rs []Range, want Range) bool {
	if want.Len <= 0 {
		return true
	}
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Off+rs[i].Len > want.Off })
	return i < len(rs) && rs[i].Off <= want.Off && want.Off+want.Len <= rs[i].Off+rs[i].Len
}
