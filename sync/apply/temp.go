package apply

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
)

// Sidecar format (.blueshift/tmp/<key>.done), all integers big-endian:
//
//	+-----------------+----------+----------------+
//	| "BSPART1\n" (8) | size (8) | file hash (32) |   header, 48 bytes
//	+-----------------+----------+----------------+
//	| off (8) | U | len (63 bits) |   one record per range, appended;
//	+---------+---+---------------+   a torn last record is ignored
//
// U clear: the range was written and fsynced before the record was
// appended, so the record is true after a crash. U set ("unsure"): the
// range was written, not yet fsynced. It is appended right after each
// write, so a process killed mid-pull (kill -9, the OOM killer) loses no
// block it had received: the bytes are in the page cache. After a power cut
// they may not be, so a reopened temp uses an unsure range only once its
// bytes check out against the block's hash (Salvage). A sidecar that does
// not decode is dropped and the pull starts over.
//
// The part file is not preallocated: it grows as blocks arrive (holes
// where they have not), so a pull into a nearly full disk takes only the
// space of what it received, and a temp never holds more than its content.
const (
	sidecarMagic  = "BSPART1\n"
	headerLen     = 8 + 8 + block.Size
	recordLen     = 16
	unsureBit     = 1 << 63
	maxSidecarLen = 64 << 20 // 4M ranges; a temp needing more starts over
	compactAt     = 1 << 20  // a sidecar longer than this is rewritten merged at the next Sync
	maxTempSize   = 1 << 50  // 1 PiB
	// syncEvery bounds what a power cut can cost a pull: after this many
	// bytes written since the last Sync, the writer syncs.
	syncEvery = 64 << 20
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

	f *os.File // the partial file

	syncMu sync.Mutex // serializes Sync (and the sidecar's compaction)

	mu       sync.Mutex
	side     *os.File // guarded by mu: the sidecar, append-only; replaced when compacted
	sideLen  int64    // guarded by mu: its length, about
	durable  []Range  // guarded by mu: recorded in the sidecar as synced
	pending  []Range  // guarded by mu: written (noted unsure in the sidecar), not yet synced
	unsure   []Range  // guarded by mu: written before the temp was reopened, not known durable (see Salvage)
	holes    []Range  // guarded by mu: all zeros, left unwritten (see Hole); not in the sidecar
	unsynced int64    // guarded by mu: bytes written since the last Sync
	syncing  bool     // guarded by mu: a writer is running the periodic Sync
	closed   bool     // guarded by mu
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
// size at p. It fails with ENOSPC (IsNoSpace) at once, writing nothing, if
// the share's file system has less room than the content still needs.
func (r *Root) OpenTemp(p record.Path, want block.Hash, size int64) (*Temp, error) {
	return r.OpenSparseTemp(p, want, size, size)
}

// OpenSparseTemp is OpenTemp for content of which only data bytes are
// written, the rest being holes (Hole): the free-space check asks for room
// for those only.
func (r *Root) OpenSparseTemp(p record.Path, want block.Hash, size, data int64) (*Temp, error) {
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
	// A pull that cannot finish does not start: its partial file would
	// only take space that files which fit could use.
	if need := min(data, size) - r.TempWritten(p, want, size); need > 0 {
		if free, err := r.FreeSpace(); err == nil && free < need {
			return nil, fmt.Errorf("open temp for %q: it needs %d more bytes, %d are free: %w", p, need, free, syscall.ENOSPC)
		}
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
	if fi.Size() <= t.size {
		t.durable, t.unsure = t.readSidecar()
		// A range past the end of the part file never reached it.
		t.durable = clipRanges(t.durable, fi.Size())
		t.unsure = clipRanges(t.unsure, fi.Size())
	}
	if len(t.durable) == 0 && len(t.unsure) == 0 && fi.Size() > 0 {
		// Nothing usable: free the space the old bytes hold.
		if err := f.Truncate(0); err != nil {
			return err
		}
	}
	return t.rewriteSidecar(t.durable, t.unsure)
}

// rewriteSidecar replaces the sidecar with one holding just these ranges,
// via a temp and rename so a crash leaves either the old one or the new
// one, and makes it the one appended to.
func (t *Temp) rewriteSidecar(durable, unsure []Range) error {
	r := t.r
	buf := encodeSidecar(t.size, t.hash, durable, unsure)
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
	side, err := r.fs.OpenFile(t.done, os.O_WRONLY|os.O_APPEND, tempPerm)
	if err != nil {
		return err
	}
	t.mu.Lock()
	old := t.side
	t.side, t.sideLen = side, int64(len(buf))
	closed := t.closed
	t.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if closed {
		side.Close() // closed meanwhile: nothing appends any more
	}
	return nil
}

// readSidecar returns the recorded ranges, durable and unsure, or none if
// the sidecar is missing, too big, broken or for other content.
func (t *Temp) readSidecar() (durable, unsure []Range) {
	fi, err := t.r.fs.Lstat(t.done)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > maxSidecarLen {
		return nil, nil
	}
	b, err := t.r.fs.ReadFile(t.done)
	if err != nil {
		return nil, nil
	}
	size, hash, durable, unsure, err := decodeSidecar(b)
	if err != nil || size != t.size || hash != t.hash {
		if err != nil {
			t.r.log.Warn("partial download unusable, starting over", "path", string(t.path), "err", err)
		}
		return nil, nil
	}
	return durable, unsure
}

// TempWritten returns how many bytes of the content want at p a kept
// temp already holds (what a resumed pull need not write again); 0 if
// there is none.
func (r *Root) TempWritten(p record.Path, want block.Hash, size int64) int64 {
	key := TempKey(p, want)
	t := &Temp{r: r, path: p, hash: want, size: size,
		part: filepath.FromSlash(tmpDir + "/" + key + ".part"),
		done: filepath.FromSlash(tmpDir + "/" + key + ".done"),
	}
	fi, err := r.fs.Lstat(t.part)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > size {
		return 0
	}
	durable, unsure := t.readSidecar()
	var n int64
	for _, rg := range clipRanges(addRanges(durable, unsure...), fi.Size()) {
		n += rg.Len
	}
	return n
}

// RemoveTempsExcept removes the resumable temps whose key keep refuses
// (content no pull wants any more) and returns the bytes that freed. Call
// it only while no Temp of r is open: it is for a disk that filled up, so
// that partial downloads hold no space beyond what the pulls still to come
// need.
func (r *Root) RemoveTempsExcept(keep func(key string) bool) (freed int64, err error) {
	err = r.removeTemps(func(e fs.FileInfo) bool {
		n := e.Name()
		key, _, _ := strings.Cut(n, ".")
		if !strings.HasSuffix(n, ".part") && !strings.HasSuffix(n, ".done") || keep(key) {
			return false
		}
		freed += e.Size()
		return true
	})
	return freed, err
}

// Path is the target path.
func (t *Temp) Path() record.Path { return t.path }

// Size is the length of the content.
func (t *Temp) Size() int64 { return t.size }

// Done returns the ranges already written (durable or pending) or left
// as holes, merged.
func (t *Temp) Done() []Range {
	t.mu.Lock()
	defer t.mu.Unlock()
	return addRanges(append([]Range(nil), t.durable...), slices.Concat(t.pending, t.holes)...)
}

// Hole marks [off, off+n) as all zeros: nothing is written there, so the
// file keeps a hole (the part file grows only where data is written, and
// Commit extends it to Size by truncation, which allocates nothing). The
// caller knows the range is zeros in the content (block.IsZeros); the part
// file only ever holds this content's bytes at their offsets, so whatever
// lies there is a hole or zeros. A hole costs nothing to redo, so it is kept
// in memory only.
func (t *Temp) Hole(off, n int64) error {
	if off < 0 || n <= 0 || n > t.size-off {
		return fmt.Errorf("hole in temp for %q: range %d+%d outside size %d", t.path, off, n, t.size)
	}
	t.mu.Lock()
	t.holes = addRanges(t.holes, Range{off, n})
	t.mu.Unlock()
	return nil
}

// Has reports whether [off, off+n) was already written.
func (t *Temp) Has(off, n int64) bool {
	return covers(t.Done(), Range{off, n})
}

// Complete reports whether every byte was written.
func (t *Temp) Complete() bool {
	return t.size == 0 || t.Has(0, t.size)
}

// WriteAt writes b at off (within Size) and marks the range written. Every
// syncEvery bytes, the caller that crosses the mark also runs Sync.
func (t *Temp) WriteAt(b []byte, off int64) (int, error) {
	if off < 0 || int64(len(b)) > t.size-off {
		return 0, fmt.Errorf("write temp for %q: range %d+%d outside size %d", t.path, off, len(b), t.size)
	}
	n, err := t.f.WriteAt(b, off)
	if n <= 0 {
		return n, err
	}
	rg := Range{off, int64(n)}
	t.mu.Lock()
	t.pending = addRanges(t.pending, rg)
	t.unsynced += int64(n)
	syncNow := t.unsynced >= syncEvery && !t.syncing && err == nil
	if syncNow {
		t.syncing = true
	}
	side := t.side
	t.sideLen += recordLen
	t.mu.Unlock()
	// Note the write, unsure, at once: a kill before the next Sync then
	// costs no block that arrived (see the sidecar format). A failed note
	// only means the block is fetched again after a crash.
	if side != nil {
		side.Write(encodeRecords(nil, unsureBit, rg))
	}
	if syncNow {
		serr := t.Sync()
		t.mu.Lock()
		t.syncing = false
		t.mu.Unlock()
		if serr != nil {
			return n, serr
		}
	}
	return n, err
}

// Salvage reports whether [off, off+n) was written before this temp was
// reopened (a crash or kill came before its Sync) and its bytes pass check
// (the block's hash): then it counts as written, like a WriteAt, and need
// not be fetched again.
func (t *Temp) Salvage(off, n int64, check func([]byte) bool) bool {
	t.mu.Lock()
	ok := n > 0 && covers(t.unsure, Range{off, n})
	t.mu.Unlock()
	if !ok {
		return false
	}
	buf := make([]byte, n)
	if m, err := t.f.ReadAt(buf, off); m != len(buf) || (err != nil && !errors.Is(err, io.EOF)) || !check(buf) {
		return false
	}
	t.mu.Lock()
	t.pending = addRanges(t.pending, Range{off, n})
	t.mu.Unlock()
	return true
}

// ReadAt reads back written bytes (to verify or to reuse them).
func (t *Temp) ReadAt(b []byte, off int64) (int, error) { return t.f.ReadAt(b, off) }

// Sync makes every completed WriteAt durable and records it in the sidecar:
// the ranges survive a crash from here on. A sidecar grown long with
// unsure notes is rewritten merged.
func (t *Temp) Sync() error {
	t.syncMu.Lock()
	defer t.syncMu.Unlock()
	t.mu.Lock()
	snap := t.pending
	t.pending = nil
	t.unsynced = 0
	side := t.side
	t.mu.Unlock()
	if len(snap) == 0 {
		return nil
	}
	err := t.f.Sync() // data first: a record must never name unsynced bytes
	if err == nil && side != nil {
		_, err = side.Write(encodeRecords(nil, 0, snap...))
	}
	if err == nil && side != nil {
		err = side.Sync()
	}
	t.mu.Lock()
	if err != nil {
		t.pending = addRanges(t.pending, snap...)
		t.mu.Unlock()
		return fmt.Errorf("sync temp for %q: %w", t.path, err)
	}
	t.durable = addRanges(t.durable, snap...)
	compact := t.sideLen > compactAt && !t.closed
	durable := slices.Clone(t.durable)
	unsure := addRanges(slices.Clone(t.unsure), t.pending...)
	t.mu.Unlock()
	if compact {
		// Writes noted in the old sidecar meanwhile are in pending (unsure
		// here) or were just made durable; a note lost in the swap costs at
		// most a refetch after a crash.
		if err := t.rewriteSidecar(durable, unsure); err != nil {
			t.r.log.Debug("compact partial download's sidecar", "path", string(t.path), "err", err)
		}
	}
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
	side := t.side
	t.mu.Unlock()
	if side != nil {
		side.Close()
	}
	// Holes at the end were never written: the file takes its full length
	// by truncation, which leaves them holes.
	if fi, err := f.Stat(); err != nil || fi.Size() < t.size {
		if err == nil {
			err = f.Truncate(t.size)
		}
		if err != nil {
			f.Close()
			return FileState{}, fmt.Errorf("commit %q: extend to %d bytes: %w", t.path, t.size, err)
		}
	}
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

func encodeSidecar(size int64, hash block.Hash, durable, unsure []Range) []byte {
	b := make([]byte, 0, headerLen+recordLen*(len(durable)+len(unsure)))
	b = append(b, sidecarMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = append(b, hash[:]...)
	b = encodeRecords(b, 0, durable...)
	return encodeRecords(b, unsureBit, unsure...)
}

// encodeRecords appends one record per range, flag (0 or unsureBit) set in
// each length.
func encodeRecords(b []byte, flag uint64, ranges ...Range) []byte {
	for _, rg := range ranges {
		b = binary.BigEndian.AppendUint64(b, uint64(rg.Off))
		b = binary.BigEndian.AppendUint64(b, uint64(rg.Len)|flag)
	}
	return b
}

// decodeSidecar reads a sidecar from disk, which may be torn or garbage: it
// checks every length before use and returns the merged ranges, durable and
// unsure (an unsure range may overlap a durable one).
func decodeSidecar(b []byte) (size int64, hash block.Hash, durable, unsure []Range, err error) {
	if len(b) > maxSidecarLen {
		return 0, hash, nil, nil, fmt.Errorf("sidecar of %d bytes exceeds %d", len(b), maxSidecarLen)
	}
	if len(b) < headerLen || string(b[:8]) != sidecarMagic {
		return 0, hash, nil, nil, errors.New("sidecar header missing or wrong")
	}
	s := binary.BigEndian.Uint64(b[8:16])
	if s > maxTempSize {
		return 0, hash, nil, nil, fmt.Errorf("sidecar size %d exceeds %d", s, int64(maxTempSize))
	}
	size = int64(s)
	copy(hash[:], b[16:headerLen])
	recs := b[headerLen:]
	for len(recs) >= recordLen { // a torn trailing record is ignored
		off := binary.BigEndian.Uint64(recs[0:8])
		n := binary.BigEndian.Uint64(recs[8:16])
		recs = recs[recordLen:]
		sure := n&unsureBit == 0
		n &^= unsureBit
		if off > s || n > s-off {
			return 0, hash, nil, nil, fmt.Errorf("sidecar range %d+%d outside size %d", off, n, s)
		}
		switch {
		case n == 0:
		case sure:
			durable = addRanges(durable, Range{int64(off), int64(n)})
		default:
			unsure = addRanges(unsure, Range{int64(off), int64(n)})
		}
	}
	return size, hash, durable, unsure, nil
}

// clipRanges drops from the merged set rs what lies at or past end.
func clipRanges(rs []Range, end int64) []Range {
	out := rs[:0]
	for _, rg := range rs {
		if rg.Off >= end {
			break
		}
		rg.Len = min(rg.Len, end-rg.Off)
		out = append(out, rg)
	}
	return out
}

// addRanges merges add into the sorted, disjoint, non-adjacent set rs.
func addRanges(rs []Range, add ...Range) []Range {
	if len(add) == 0 {
		return rs
	}
	if len(add) == 1 {
		return addRange(rs, add[0])
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

// addRange is addRanges of one range: a WriteAt notes each block so, and
// blocks arrive in no order, so sorting the whole set each time cost more
// than the writes (O(n log n) per block of a pull).
func addRange(rs []Range, rg Range) []Range {
	if rg.Len <= 0 {
		return rs
	}
	// i: the first range that ends at or after rg starts (may merge);
	// j: the first that starts after rg ends (may not).
	i := sort.Search(len(rs), func(k int) bool { return rs[k].Off+rs[k].Len >= rg.Off })
	j := i + sort.Search(len(rs)-i, func(k int) bool { return rs[i+k].Off > rg.Off+rg.Len })
	if i == j {
		return slices.Insert(rs, i, rg)
	}
	start, end := min(rs[i].Off, rg.Off), max(rs[j-1].Off+rs[j-1].Len, rg.Off+rg.Len)
	rs[i] = Range{start, end - start}
	return slices.Delete(rs, i+1, j)
}

// covers reports whether the merged set rs contains all of want.
func covers(rs []Range, want Range) bool {
	if want.Len <= 0 {
		return true
	}
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Off+rs[i].Len > want.Off })
	return i < len(rs) && rs[i].Off <= want.Off && want.Off+want.Len <= rs[i].Off+rs[i].Len
}
