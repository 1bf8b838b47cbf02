package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// Patches: the blocks of a changed file, fetched as zstd deltas against the
// receiver's previous version of it (zstd --patch-from). A program rebuilt
// after a small change differs from its last build nearly everywhere by a
// few bytes (addresses move): content-defined chunks then find nothing to
// reuse and the per-block rsync delta little, while zstd with the old
// version as a raw dictionary matches around every changed byte.
//
// The receiver asks the peer that sent the record (wire.PatchRequest) for
// a span of the blocks it lacks, naming its previous version by its block
// list and the byte range of it to use as the dictionary (the same offsets
// as the span, widened by patchMargin: a rebuilt file keeps its layout).
// The sender finds that range in its own files by block hash or in the
// versions it kept (basis.go), checks every block, and answers one zstd
// frame. The receiver decodes it with its own copy of the range, checks
// every block against the record before writing any, and fetches block by
// block what a patch did not bring (no capability, NotFound, a failure).
const (
	// minPatchLeft is the least a file must still need for a patch to be
	// asked: below it, the blocks' own deltas do as well for less work.
	minPatchLeft = 256 << 10
	// patchSpan is the most new bytes one patch carries.
	patchSpan = wire.MaxPatchWant
	// patchMargin widens a span's dictionary on each side: what moved in a
	// rebuild moved by far less.
	patchMargin = 2 << 20
	// patchParallel is how many patches of one file are asked at once; the
	// sender encodes each at zstd's best level, its CPU is the bound.
	patchParallel = 2
	// patchesEncoding bounds the patches one device encodes at once: each
	// holds a dictionary, a span and zstd's tables at its best level.
	patchesEncoding = 2
)

// patchPull fetches what it can of blocks left (indices of in.rec.Blocks)
// of the file being pulled into t as patches against old, the version the
// index holds here, and returns the blocks still to fetch.
func (f *folder) patchPull(ctx context.Context, in incoming, old *basis, t *apply.Temp, offs []int64, left []int, swarm *filePull) []int {
	if len(left) == 0 || len(old.blocks) == 0 || len(old.blocks) > wire.MaxPatchBlocks {
		return left
	}
	s := f.e.session(in.from)
	if s == nil || !s.speaksPatch() || (!s.squeeze.Load() && !f.e.opts.PatchOnThisMachine) {
		return left
	}
	// Blocks the index holds here are read here (getBlock), not patched.
	rec := in.rec
	var want, rest []int
	var need int64
	for _, i := range left {
		if old.held != nil && old.held[rec.Blocks[i].Hash] {
			rest = append(rest, i)
			continue
		}
		want = append(want, i)
		need += int64(rec.Blocks[i].Size)
	}
	if need < minPatchLeft {
		return left
	}
	if f.reflatePull(ctx, s, in, old, t, offs, want, swarm) {
		return rest
	}
	base := newPatchBase(old.path, old.blocks)
	spans := spansOf(rec.Blocks, want)
	done := make([]bool, len(spans))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(patchParallel)
	for k, sp := range spans {
		g.Go(func() error {
			ok, err := f.patchSpan(gctx, s, in, base, t, offs, sp, swarm)
			if err != nil {
				f.log.Info("patch refused; fetching its blocks one by one", "path", rec.Path, "peer", peerName(in.from), "err", err)
			}
			done[k] = ok
			return nil // what a patch did not bring is fetched block by block
		})
	}
	g.Wait()
	for k, sp := range spans {
		if !done[k] {
			rest = append(rest, sp...)
		}
	}
	slices.Sort(rest)
	return rest
}

// patchSpan asks s for the blocks sp of in.rec as one patch, checks them
// all, and only then writes them into t. ok is false (the caller fetches
// them one by one) when the patch could not be had.
func (f *folder) patchSpan(ctx context.Context, s *Session, in incoming, base patchBase, t *apply.Temp, offs []int64, sp []int, swarm *filePull) (ok bool, err error) {
	rec := in.rec
	first, last := sp[0], sp[len(sp)-1]
	from, to := base.dictRange(offs[first], offs[last]+int64(rec.Blocks[last].Size))
	dict, err := base.read(f, from, to)
	if err != nil {
		return false, err // our own old version changed under us: no patch
	}
	req := &wire.PatchRequest{Share: f.id, Base: base.blocks, DictFrom: uint64(from), DictTo: uint64(to)}
	for _, i := range sp {
		req.Want = append(req.Want, wire.PatchBlock{Hash: rec.Blocks[i].Hash, Size: rec.Blocks[i].Size})
	}
	resp, err := s.conn().Request(ctx, req)
	if err != nil {
		return false, err
	}
	pr, isPatch := resp.(*wire.PatchResponse)
	if !isPatch {
		return false, errors.New(describe(resp))
	}
	if err := f.received(ctx, s, len(pr.Data)); err != nil {
		return false, err
	}
	data, err := f.e.codec.decodePatch(pr.Data, dict, int(req.WantSize()))
	if err == nil && len(data) != int(req.WantSize()) {
		err = fmt.Errorf("%w: patch of %d bytes, want %d", errBadData, len(data), req.WantSize())
	}
	// Every block is checked before any is written: a forged patch leaves
	// nothing behind.
	var at int
	for _, i := range sp {
		if err != nil {
			break
		}
		b := rec.Blocks[i]
		if block.Sum(data[at:at+int(b.Size)]) != b.Hash {
			err = fmt.Errorf("%w: block %s of a patch does not match its hash", errBadData, b.Hash.Short())
		}
		at += int(b.Size)
	}
	if err != nil {
		s.kill(fmt.Errorf("%w: patch for %q: %v", ErrPeerMisbehaved, rec.Path, err))
		return false, err
	}
	at = 0
	for _, i := range sp {
		b := rec.Blocks[i]
		if _, err := t.WriteAt(data[at:at+int(b.Size)], offs[i]); err != nil {
			return false, err
		}
		f.e.temps.add(f.id, b.Hash, t, offs[i], b.Size)
		swarm.got(i)
		at += int(b.Size)
	}
	return true, nil
}

// spansOf cuts left (ascending block indices) into runs of at most
// patchSpan bytes.
func spansOf(blocks []record.BlockRef, left []int) [][]int {
	var spans [][]int
	var cur []int
	var n int64
	for _, i := range left {
		sz := int64(blocks[i].Size)
		if len(cur) > 0 && n+sz > patchSpan {
			spans, cur, n = append(spans, cur), nil, 0
		}
		cur = append(cur, i)
		n += sz
	}
	if len(cur) > 0 {
		spans = append(spans, cur)
	}
	return spans
}

// patchBase is a previous version of a file as a patch names it: its block
// list and where each block starts; on the receiver, the path it is at.
type patchBase struct {
	path   record.Path
	blocks []wire.PatchBlock
	starts []int64
	size   int64
}

func newPatchBase(p record.Path, refs []record.BlockRef) patchBase {
	b := patchBase{path: p, blocks: make([]wire.PatchBlock, len(refs)), starts: make([]int64, len(refs))}
	for i, r := range refs {
		b.blocks[i] = wire.PatchBlock{Hash: r.Hash, Size: r.Size}
		b.starts[i] = b.size
		b.size += int64(r.Size)
	}
	return b
}

func patchBaseOf(blocks []wire.PatchBlock) patchBase {
	b := patchBase{blocks: blocks, starts: make([]int64, len(blocks))}
	for i, bl := range blocks {
		b.starts[i] = b.size
		b.size += int64(bl.Size)
	}
	return b
}

// dictRange is the range of the base used as the dictionary of the new
// bytes [a, b): the same offsets widened by patchMargin, slid back inside
// the base where the new version grew past its end.
func (b patchBase) dictRange(a, e int64) (from, to int64) {
	from, to = max(0, a-patchMargin), min(b.size, e+patchMargin)
	if want := e - a + 2*patchMargin; to-from < want {
		from = max(0, to-want)
	}
	if to-from > wire.MaxPatchDict {
		from = to - wire.MaxPatchDict
	}
	return from, to
}

// covering returns the indices [i, j) of the base blocks that overlap
// [from, to).
func (b patchBase) covering(from, to int64) (i, j int) {
	i = max(sort.Search(len(b.starts), func(k int) bool { return b.starts[k] > from })-1, 0)
	j = sort.Search(len(b.starts), func(k int) bool { return b.starts[k] >= to })
	return i, j
}

// read returns bytes [from, to) of the base from this device's file at
// b.path, every block it touches checked against the base's hashes.
func (b patchBase) read(f *folder, from, to int64) ([]byte, error) {
	return b.assemble(from, to, func(k int, buf []byte) bool {
		n, err := f.root.ReadAt(b.path, buf, b.starts[k])
		return err == nil && n == len(buf) && block.Sum(buf) == b.blocks[k].Hash
	})
}

// assemble reads the blocks covering [from, to) with get (which reads block
// k into buf and says whether it is that block) and returns the range.
func (b patchBase) assemble(from, to int64, get func(k int, buf []byte) bool) ([]byte, error) {
	if from >= to {
		return nil, nil
	}
	i, j := b.covering(from, to)
	out := make([]byte, b.starts[j-1]+int64(b.blocks[j-1].Size)-b.starts[i])
	for k := i; k < j; k++ {
		at := b.starts[k] - b.starts[i]
		if !get(k, out[at:at+int64(b.blocks[k].Size)]) {
			return nil, fmt.Errorf("block %s of the previous version is not here any more", b.blocks[k].Hash.Short())
		}
	}
	return out[from-b.starts[i] : to-b.starts[i]], nil
}

// speaksPatch reports whether the peer's Hello offers patches.
func (s *Session) speaksPatch() bool {
	return s.speaks(wire.PatchCapability)
}

// servePatch answers a PatchRequest: the wanted blocks from f's files and
// temps only (as a BlockRequest), the dictionary from f's files or the
// versions f kept (basis.go), each block checked.
func (s *Session) servePatch(ctx context.Context, m *wire.PatchRequest) wire.Message {
	f, refuse := s.memberFolder(m.Share)
	if refuse != nil {
		return refuse
	}
	base := patchBaseOf(m.Base)
	dict, err := f.patchDict(base, int64(m.DictFrom), int64(m.DictTo))
	if err != nil {
		return wire.Errorf(wire.CodeNotFound, "patch dictionary: %v", err)
	}
	want := make([]byte, 0, m.WantSize())
	for _, b := range m.Want {
		data, ok := f.readShared(b.Hash, b.Size)
		if !ok {
			return wire.Errorf(wire.CodeNotFound, "block %s", b.Hash.Short())
		}
		want = append(want, data...)
	}
	z, err := s.e.codec.encodePatch(ctx, want, dict)
	if err != nil {
		return wire.Errorf(wire.CodeNotFound, "patch: %v", err)
	}
	if len(z) > wire.MaxPatchData {
		return wire.Errorf(wire.CodeNotFound, "patch of %d bytes: fetch the blocks", len(z))
	}
	if err := f.waitSend(ctx, len(z)); err != nil {
		return wire.Errorf(wire.CodeNotFound, "patch: %v", err)
	}
	f.act.sent.Add(int64(len(z)))
	return &wire.PatchResponse{Data: z}
}

// patchDict finds bytes [from, to) of base here: in the version of the file
// this device kept (basis.go), else block by block in f's files.
func (f *folder) patchDict(base patchBase, from, to int64) ([]byte, error) {
	if d, err := f.bases.read(base, from, to); err == nil {
		return d, nil
	}
	return base.assemble(from, to, func(k int, buf []byte) bool {
		data, ok := f.readShared(base.blocks[k].Hash, base.blocks[k].Size)
		return ok && copy(buf, data) == len(buf)
	})
}

// encodePatch compresses target with dict as a raw zstd dictionary, at
// zstd's best level: only that level's match finder reaches far into a
// large dictionary, and a patch goes only over links zstd cannot outrun.
func (c *codec) encodePatch(ctx context.Context, target, dict []byte) ([]byte, error) {
	select {
	case c.patching <- struct{}{}:
		defer func() { <-c.patching }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.encodeAgainst(target, dict)
}

// encodeAgainst is encodePatch without waiting for a slot.
func (c *codec) encodeAgainst(target, dict []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderDictRaw(1, dict), zstd.WithWindowSize(windowFor(len(dict)+len(target))))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(target, make([]byte, 0, len(target)/4)), nil
}

// decodePatch decompresses a patch with dict, refusing output longer than
// limit.
func (c *codec) decodePatch(z, dict []byte, limit int) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(1, dict),
		zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderMaxWindow(1<<27))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadData, err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(z, make([]byte, 0, limit))
	if err != nil {
		return nil, fmt.Errorf("%w: decode patch: %v", errBadData, err)
	}
	return out, nil
}
