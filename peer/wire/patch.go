package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// PatchCapability in a Hello says the device answers PatchRequest; no other
// device is sent one.
const PatchCapability = "patch/1"

// Limits of the patch messages. A patch decodes to at most MaxPatchWant
// bytes; its dictionary is at most MaxPatchDict bytes of a base of at most
// MaxPatchBlocks blocks.
const (
	MaxPatchBlocks = 1 << 16
	MaxPatchWant   = 8 << 20
	MaxPatchDict   = 64 << 20
	MaxPatchData   = MaxPatchWant + 64<<10 // zstd's bound on incompressible input, with room
)

// PatchBlock is one block of a patch's base or of what it asks for.
type PatchBlock struct {
	Hash block.Hash
	Size uint32
}

// PatchRequest asks for the blocks Want of a file of Share, concatenated, as
// one zstd frame that uses bytes [DictFrom, DictTo) of Base (the asker's
// previous version of the file, its whole block list) as a raw dictionary.
// The answer is a PatchResponse, or CodeNotFound when the answerer holds
// the dictionary's blocks or the wanted ones no longer.
type PatchRequest struct {
	Share            share.ID
	Base             []PatchBlock
	DictFrom, DictTo uint64
	Want             []PatchBlock
}

// PatchResponse answers PatchRequest. The asker checks every block it
// decodes against its hash before it uses any.
type PatchResponse struct {
	Data []byte
}

// BaseSize is the length of the base the request names.
func (m *PatchRequest) BaseSize() uint64 { return sumSizes(m.Base) }

// WantSize is the length of what the request asks for.
func (m *PatchRequest) WantSize() uint64 { return sumSizes(m.Want) }

func sumSizes(bs []PatchBlock) uint64 {
	var n uint64
	for _, b := range bs {
		n += uint64(b.Size)
	}
	return n
}

func (m *PatchRequest) validate() error {
	if len(m.Base) > MaxPatchBlocks || len(m.Want) > MaxPatchBlocks {
		return fmt.Errorf("patch request: %d base and %d wanted blocks, at most %d each", len(m.Base), len(m.Want), MaxPatchBlocks)
	}
	for _, b := range append(m.Base[:len(m.Base):len(m.Base)], m.Want...) {
		if b.Size == 0 || b.Size > MaxBlockSize {
			return fmt.Errorf("patch request: block of %d bytes, want 1..%d", b.Size, MaxBlockSize)
		}
	}
	if m.DictFrom > m.DictTo || m.DictTo > m.BaseSize() || m.DictTo-m.DictFrom > MaxPatchDict {
		return fmt.Errorf("patch request: dictionary [%d, %d) outside a base of %d bytes or longer than %d", m.DictFrom, m.DictTo, m.BaseSize(), MaxPatchDict)
	}
	if w := m.WantSize(); w == 0 || w > MaxPatchWant {
		return fmt.Errorf("patch request: %d bytes wanted, want 1..%d", w, MaxPatchWant)
	}
	return nil
}

func (m *PatchResponse) validate() error {
	if len(m.Data) > MaxPatchData {
		return fmt.Errorf("patch response: %d bytes exceed %d", len(m.Data), MaxPatchData)
	}
	return nil
}

func (m *PatchRequest) toPB(e *wirepb.Envelope) {
	bh, bs := packBlocks(m.Base)
	wh, ws := packBlocks(m.Want)
	e.Body = &wirepb.Envelope_PatchRequest{PatchRequest: &wirepb.PatchRequest{
		Share: m.Share[:], BaseHashes: bh, BaseSizes: bs, DictFrom: m.DictFrom, DictTo: m.DictTo, WantHashes: wh, WantSizes: ws,
	}}
}

func (m *PatchResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_PatchResponse{PatchResponse: &wirepb.PatchResponse{Data: m.Data}}
}

func patchRequestFromPB(p *wirepb.PatchRequest) (*PatchRequest, error) {
	m := &PatchRequest{DictFrom: p.GetDictFrom(), DictTo: p.GetDictTo()}
	var err error
	if m.Base, m.Want, err = unpackAsk("patch request", p, m.Share[:]); err != nil {
		return nil, err
	}
	return m, nil
}

// patchAsk is what a patch request and a reflate request both carry: the
// share, the blocks of the asker's base and the blocks it wants.
type patchAsk interface {
	GetShare() []byte
	GetBaseHashes() []byte
	GetBaseSizes() []uint32
	GetWantHashes() []byte
	GetWantSizes() []uint32
}

// unpackAsk reads p's share into share and returns its base and wanted
// blocks; what names the message in errors.
func unpackAsk(what string, p patchAsk, share []byte) (base, want []PatchBlock, err error) {
	if err := fixed("share", share, p.GetShare()); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", what, err)
	}
	if base, err = unpackBlocks("base", p.GetBaseHashes(), p.GetBaseSizes()); err != nil {
		return nil, nil, err
	}
	if want, err = unpackBlocks("wanted", p.GetWantHashes(), p.GetWantSizes()); err != nil {
		return nil, nil, err
	}
	return base, want, nil
}

func packBlocks(bs []PatchBlock) ([]byte, []uint32) {
	hashes, sizes := make([]byte, 0, len(bs)*len(block.Hash{})), make([]uint32, 0, len(bs))
	for _, b := range bs {
		hashes = append(hashes, b.Hash[:]...)
		sizes = append(sizes, b.Size)
	}
	return hashes, sizes
}

func unpackBlocks(what string, hashes []byte, sizes []uint32) ([]PatchBlock, error) {
	const hl = len(block.Hash{})
	if len(sizes) > MaxPatchBlocks || len(hashes) != len(sizes)*hl {
		return nil, fmt.Errorf("patch request: %d bytes of %s hashes for %d sizes (at most %d)", len(hashes), what, len(sizes), MaxPatchBlocks)
	}
	out := make([]PatchBlock, len(sizes))
	for i := range out {
		copy(out[i].Hash[:], hashes[i*hl:])
		out[i].Size = sizes[i]
	}
	return out, nil
}
