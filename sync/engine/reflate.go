package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/klauspost/compress/zstd"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/apply"
	"github.com/blueshift-sync/blueshift/sync/reflate"
)

// Reflated patches: a rebuilt Go program as one zstd patch of its
// expansion (sync/reflate: the debug sections the linker compressed,
// decompressed in place) against the expansion of the receiver's previous
// version. A patch of the program as it is (patch.go) costs most in those
// sections: a compressed stream differs everywhere after its first changed
// byte, while the DWARF in it differs little.
//
// The receiver of a changed file whose previous version is an ELF program
// asks the peer that sent the record (wire.ReflateRequest, only of a peer
// that announced wire.ReflateCapability) for the whole new version, naming
// its previous one by its block list. The sender finds both (the old one in
// the versions it kept, basis.go), expands the sections of each that Go's
// compress/zlib compresses again byte for byte, and answers the patch and
// both layouts. The receiver expands its previous version by the base's
// layout, decodes, compresses the new version's sections again, and checks
// every block against the record before writing any. Whatever fails (a
// peer without the capability, NotFound, a layout or patch that does not
// give the record's blocks, a receiver whose compress/zlib writes other
// bytes) leaves nothing written, and the blocks go on to patch.go's spans.
//
// Memory: each side holds both versions and both expansions at once, so
// a version is at most wire.MaxReflateFile bytes, an expansion at most
// reflateLimit, and one reflated patch is encoded and one decoded at a
// time per engine (codec.reflateServing, codec.reflatePulling).
const reflateLimit = 160 << 20

// reflatePull fetches the blocks want (indices of in.rec.Blocks) of the
// file being pulled into t as one reflated patch against old, and reports
// whether it wrote them all; false leaves t as it was.
func (f *folder) reflatePull(ctx context.Context, s *Session, in incoming, old *basis, t *apply.Temp, offs []int64, want []int, swarm *filePull) bool {
	rec := in.rec
	if !s.speaks(wire.ReflateCapability) || rec.Size > wire.MaxReflateFile || len(rec.Blocks) > wire.MaxPatchBlocks {
		return false
	}
	base := newPatchBase(old.path, old.blocks)
	if base.size > wire.MaxReflateFile || base.size < 4 {
		return false
	}
	if magic, err := base.read(f, 0, 4); err != nil || string(magic) != "\x7fELF" {
		return false
	}
	select {
	case f.e.codec.reflatePulling <- struct{}{}:
		defer func() { <-f.e.codec.reflatePulling }()
	case <-ctx.Done():
		return false
	}
	data, err := f.reflateFetch(ctx, s, in, base)
	if err != nil {
		f.log.Info("reflated patch not had; patching as it is", "path", rec.Path, "peer", peerName(in.from), "err", err)
		return false
	}
	// Every block is checked before any is written.
	for _, i := range want {
		b := rec.Blocks[i]
		if block.Sum(data[offs[i]:offs[i]+int64(b.Size)]) != b.Hash {
			f.log.Info("reflated patch gave other bytes; patching as it is", "path", rec.Path, "peer", peerName(in.from), "block", b.Hash.Short())
			return false
		}
	}
	for _, i := range want {
		b := rec.Blocks[i]
		if _, err := t.WriteAt(data[offs[i]:offs[i]+int64(b.Size)], offs[i]); err != nil {
			f.log.Info("write a reflated patch", "path", rec.Path, "err", err)
			return false // what was written is rewritten by the blocks fetched instead
		}
		f.e.temps.add(f.id, b.Hash, t, offs[i], b.Size)
		swarm.got(i)
	}
	return true
}

// reflateFetch asks s for in.rec's file as a reflated patch against base
// and returns the file it gives: rec.Size bytes, not yet checked.
func (f *folder) reflateFetch(ctx context.Context, s *Session, in incoming, base patchBase) ([]byte, error) {
	rec := in.rec
	req := &wire.ReflateRequest{Share: f.id, Base: base.blocks, Methods: uint32(reflate.Methods())}
	for _, b := range rec.Blocks {
		req.Want = append(req.Want, wire.PatchBlock{Hash: b.Hash, Size: b.Size})
	}
	resp, err := s.conn().Request(ctx, req)
	if err != nil {
		return nil, err
	}
	rr, ok := resp.(*wire.ReflateResponse)
	if !ok {
		return nil, errors.New(describe(resp))
	}
	if err := f.received(ctx, s, len(rr.Data)); err != nil {
		return nil, err
	}
	oldL, newL := layoutOf(rr.BaseSections), layoutOf(rr.WantSections)
	if err := oldL.Check(base.size, reflateLimit); err != nil {
		return nil, fmt.Errorf("%w: base: %v", errBadData, err)
	}
	if err := newL.Check(rec.Size, reflateLimit); err != nil {
		return nil, fmt.Errorf("%w: new version: %v", errBadData, err)
	}
	old, err := base.read(f, 0, base.size)
	if err != nil {
		return nil, err
	}
	dict, err := reflate.Expand(bytes.NewReader(old), base.size, oldL)
	if err != nil {
		return nil, err
	}
	old = nil // only its expansion is needed from here
	x, err := f.e.codec.decodeReflate(rr.Data, dict, newL.ExpandedSize(rec.Size))
	if err != nil {
		return nil, err
	}
	file, err := reflate.Contract(x, newL)
	if err != nil {
		return nil, err
	}
	if int64(len(file)) != rec.Size {
		return nil, fmt.Errorf("%w: %d bytes, want %d", errBadData, len(file), rec.Size)
	}
	return file, nil
}

// serveReflate answers a ReflateRequest: both versions from f's files, the
// versions it kept and its temps, each block checked, expanded where
// compress/zlib reproduces their sections.
func (s *Session) serveReflate(ctx context.Context, m *wire.ReflateRequest) wire.Message {
	f, refuse := s.memberFolder(m.Share)
	if refuse != nil {
		return refuse
	}
	select {
	case s.e.codec.reflateServing <- struct{}{}:
		defer func() { <-s.e.codec.reflateServing }()
	case <-ctx.Done():
		return wire.Errorf(wire.CodeNotFound, "reflate: %v", ctx.Err())
	}
	base := patchBaseOf(m.Base)
	old, err := f.patchDict(base, 0, base.size)
	if err != nil {
		return wire.Errorf(wire.CodeNotFound, "reflate base: %v", err)
	}
	nw := make([]byte, 0, sumBlocks(m.Want))
	for _, b := range m.Want {
		data, ok := f.readShared(b.Hash, b.Size)
		if !ok {
			return wire.Errorf(wire.CodeNotFound, "block %s", b.Hash.Short())
		}
		nw = append(nw, data...)
	}
	methods := reflate.Method(m.Methods)
	oldX, oldL, err := expand(old, methods)
	if err != nil {
		return wire.Errorf(wire.CodeNotFound, "reflate base: %v", err)
	}
	nwX, nwL, err := expand(nw, methods)
	if err != nil {
		return wire.Errorf(wire.CodeNotFound, "reflate: %v", err)
	}
	if len(oldL) == 0 || len(nwL) == 0 {
		return wire.Errorf(wire.CodeNotFound, "reflate: no section to expand")
	}
	z, err := s.e.codec.encodeAgainst(nwX, oldX)
	if err != nil {
		return wire.Errorf(wire.CodeNotFound, "reflate: %v", err)
	}
	if len(z) > wire.MaxReflateData {
		return wire.Errorf(wire.CodeNotFound, "reflated patch of %d bytes: patch as it is", len(z))
	}
	if err := f.waitSend(ctx, len(z)); err != nil {
		return wire.Errorf(wire.CodeNotFound, "reflate: %v", err)
	}
	f.act.sent.Add(int64(len(z)))
	return &wire.ReflateResponse{Data: z, BaseSections: sectionsOf(oldL), WantSections: sectionsOf(nwL)}
}

// expand returns file's expansion by methods and its layout.
func expand(file []byte, methods reflate.Method) ([]byte, reflate.Layout, error) {
	l, err := reflate.Find(bytes.NewReader(file), int64(len(file)), reflateLimit, methods)
	if err != nil || len(l) == 0 {
		return nil, nil, err
	}
	x, err := reflate.Expand(bytes.NewReader(file), int64(len(file)), l)
	return x, l, err
}

func layoutOf(ss []wire.ReflateSection) reflate.Layout {
	l := make(reflate.Layout, len(ss))
	for i, s := range ss {
		// Past int64 a number turns negative and past a byte a method
		// is another, which Check refuses.
		l[i] = reflate.Section{Off: int64(s.Off), Len: int64(s.Len), Size: int64(s.Size), Method: reflate.Method(min(s.Method, 0xFF))}
	}
	return l
}

func sectionsOf(l reflate.Layout) []wire.ReflateSection {
	ss := make([]wire.ReflateSection, len(l))
	for i, s := range l {
		ss[i] = wire.ReflateSection{Off: uint64(s.Off), Len: uint64(s.Len), Size: uint64(s.Size), Method: uint64(s.Method)}
	}
	return ss
}

// decodeReflate decompresses a reflated patch with dict, refusing output
// other than size bytes.
func (c *codec) decodeReflate(z, dict []byte, size int64) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(1, dict),
		zstd.WithDecoderMaxMemory(uint64(size)), zstd.WithDecoderMaxWindow(1<<27))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadData, err)
	}
	defer dec.Close()
	out, err := dec.DecodeAll(z, make([]byte, 0, size))
	if err != nil {
		return nil, fmt.Errorf("%w: decode reflated patch: %v", errBadData, err)
	}
	if int64(len(out)) != size {
		return nil, fmt.Errorf("%w: reflated patch of %d bytes, want %d", errBadData, len(out), size)
	}
	return out, nil
}

func sumBlocks(bs []wire.PatchBlock) int {
	n := 0
	for _, b := range bs {
		n += int(b.Size)
	}
	return n
}
