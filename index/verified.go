package index

import (
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
)

// Hashing each byte once per device: a scan that hashed a file remembers,
// in memory, what the file's blocks were and the file's identity then
// (size, mtime, inode, ctime). A block read later from the same file, at an
// offset the scan cut, need not be hashed again to be served if the file's
// identity, checked on the open file before and after the read, is still
// the one the scan saw: a write, a truncate or a replacement changes the
// ctime (which no user call can set back) or the inode.
//
// One race remains, the one git calls "racy": a write in the same clock
// tick as the scan's own stat leaves the timestamps as they were. So a
// proof counts only for a file whose mtime and ctime were already older
// than the scan's start by more than racyMargin (coarser than any kernel
// clock tick; a file written that recently is hashed again when served).
// Platforms without ctime (see ctimeOf) never skip the hash. One writer
// escapes the timestamps for a while: a program writing through a shared
// writable mapping of the file, whose stores after the first one reach the
// page cache without a timestamp update until the kernel writes the pages
// back. Bytes served from such a file are still checked by the receiver,
// which verifies every block it gets, so they can cost a dropped connection,
// never a wrong file.
const (
	racyMargin = time.Second
	// minProofSize: smaller files are served whole in one or two blocks;
	// hashing them again costs little and keeps the memo small.
	minProofSize = 1 << 20
	// maxProofBlocks bounds the memo (40 bytes a block): 32 GiB of
	// content at the average block size. The oldest proofs go first.
	maxProofBlocks = 1 << 19
)

// proof is what a scan saw of one file: its identity and its blocks.
type proof struct {
	size, mtime, ctime int64
	inode              uint64
	starts             []int64 // offset of each block
	blocks             []record.BlockRef
}

// proofs is a share's memo of files its scans hashed. Safe for concurrent
// use.
type proofs struct {
	mu     sync.Mutex
	m      map[record.Path]*proof // guarded by mu
	order  []record.Path          // guarded by mu: oldest first, for eviction
	blocks int                    // guarded by mu: blocks held in m
	// byHash finds a proven copy of a block without a lookup in Pebble
	// (one per hash: the latest noted); guarded by mu.
	byHash map[block.Hash]provenAt
}

// provenAt is where a proof places a block.
type provenAt struct {
	path record.Path
	off  int64
	size uint32
}

// note remembers that the file at p, with identity fi (stat'd before it
// was read from at), held blocks. Files too small or too fresh are not
// remembered (and a stale proof of p is dropped).
func (ps *proofs) note(p record.Path, fi fs.FileInfo, started time.Time, blocks []record.BlockRef) {
	ctime, ok := ctimeOf(fi)
	pr := &proof{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: ctime, inode: inode(fi), blocks: blocks}
	limit := started.Add(-racyMargin).UnixNano()
	keep := ok && pr.size >= minProofSize && pr.mtime < limit && pr.ctime < limit && len(blocks) <= maxProofBlocks
	if keep {
		pr.starts = make([]int64, len(blocks))
		var off int64
		for i, b := range blocks {
			pr.starts[i] = off
			off += int64(b.Size)
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.m == nil {
		ps.m = make(map[record.Path]*proof)
		ps.byHash = make(map[block.Hash]provenAt)
	}
	ps.dropLocked(p)
	if !keep {
		return
	}
	ps.m[p] = pr
	ps.order = append(ps.order, p)
	ps.blocks += len(blocks)
	for i, b := range blocks {
		ps.byHash[b.Hash] = provenAt{path: p, off: pr.starts[i], size: b.Size}
	}
	for ps.blocks > maxProofBlocks && len(ps.order) > 0 {
		victim := ps.order[0]
		ps.order = ps.order[1:]
		if victim != p {
			ps.dropLocked(victim)
		}
	}
	if len(ps.order) > 2*len(ps.m)+64 { // drop names replaced or evicted
		ps.order = slices.DeleteFunc(ps.order, func(q record.Path) bool { _, ok := ps.m[q]; return !ok })
	}
}

// dropLocked forgets the proof of p, if any.
func (ps *proofs) dropLocked(p record.Path) {
	old, had := ps.m[p]
	if !had {
		return
	}
	ps.blocks -= len(old.blocks)
	delete(ps.m, p)
	for _, b := range old.blocks {
		if at, ok := ps.byHash[b.Hash]; ok && at.path == p {
			delete(ps.byHash, b.Hash)
		}
	}
}

// where returns a proven copy of block h of n bytes, if a proof has one.
func (ps *proofs) where(h block.Hash, n uint32) (provenAt, bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	at, ok := ps.byHash[h]
	return at, ok && at.size == n
}

// proves reports whether a scan proved that the file at p, while its
// identity is fi, holds block h of length n at off.
func (ps *proofs) proves(p record.Path, fi fs.FileInfo, off int64, n uint32, h block.Hash) bool {
	ctime, ok := ctimeOf(fi)
	if !ok {
		return false
	}
	ps.mu.Lock()
	pr := ps.m[p]
	ps.mu.Unlock()
	if pr == nil || pr.size != fi.Size() || pr.mtime != fi.ModTime().UnixNano() || pr.ctime != ctime || pr.inode != inode(fi) || pr.inode == 0 {
		return false
	}
	i, found := slices.BinarySearch(pr.starts, off)
	return found && pr.blocks[i].Size == n && pr.blocks[i].Hash == h
}

// Proves reports whether this share's last scan of p, hashing it, found
// block h (of n bytes) at off, and the file is still as that scan saw it:
// fi is the open file's Stat, taken before the read, and must be taken
// again after it (a write during the read changes it). When it does, the
// bytes read need not be hashed again (see proofs for why this is safe).
func (s *Share) Proves(p record.Path, fi fs.FileInfo, off int64, n uint32, h block.Hash) bool {
	return s.proofs.proves(p, fi, off, n, h)
}

// Proven returns where a scan of this share hashed block h (of n bytes):
// a file and offset to read it from without a lookup in Pebble. Like
// Locate's, the answer may be stale; Proves, on the file as it is opened,
// says whether the bytes read there still need no hash.
func (s *Share) Proven(h block.Hash, n uint32) (Location, bool) {
	at, ok := s.proofs.where(h, n)
	if !ok {
		return Location{}, false
	}
	return Location{Share: s.key.ID(), Path: at.path, PathKey: s.key.PathKey(string(at.path)), Offset: at.off, Length: at.size}, true
}

// SameFile reports whether two Stats of an open file show the same
// identity (size, mtime, ctime, inode): nothing wrote to it in between.
func SameFile(a, b fs.FileInfo) bool {
	ca, oka := ctimeOf(a)
	cb, okb := ctimeOf(b)
	return oka && okb && ca == cb && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) && inode(a) == inode(b)
}
