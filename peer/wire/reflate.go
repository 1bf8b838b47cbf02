package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// ReflateCapability in a Hello says the device answers ReflateRequest; no
// other device is sent one.
const ReflateCapability = "patch-reflate/1"

// Limits of the reflate messages: a base and a new version of at most
// MaxReflateFile bytes in MaxPatchBlocks blocks each, at most
// MaxReflateSections sections in a layout, a frame of at most
// MaxReflateData bytes.
const (
	MaxReflateFile     = 96 << 20
	MaxReflateSections = 64
	MaxReflateData     = MaxFrameSize - 1<<20
)

// ReflateSection is one expanded section (sync/reflate.Section): its
// compressed stream at [Off, Off+Len) of the file, Size bytes decompressed,
// compressed again by Method.
type ReflateSection struct {
	Off, Len, Size, Method uint64
}

// ReflateRequest asks for the new version of a file of Share whose blocks
// are Want, as one zstd frame of its expansion (its compressed debug
// sections decompressed in place) using the expansion of Base (the
// asker's previous version, its whole block list) as a raw dictionary.
// Methods (a bit set of sync/reflate.Method) are how the asker can
// compress sections again. The answer is a ReflateResponse, or
// CodeNotFound when the answerer holds either version no longer or cannot
// expand them.
type ReflateRequest struct {
	Share   share.ID
	Base    []PatchBlock
	Want    []PatchBlock
	Methods uint32
}

// ReflateResponse answers ReflateRequest: the frame and the sections
// expanded in Base and in the new version. The asker compresses the new
// version's sections again and checks every block against its hash before
// it uses any.
type ReflateResponse struct {
	Data         []byte
	BaseSections []ReflateSection
	WantSections []ReflateSection
}

func (m *ReflateRequest) validate() error {
	if len(m.Base) == 0 || len(m.Want) == 0 || len(m.Base) > MaxPatchBlocks || len(m.Want) > MaxPatchBlocks {
		return fmt.Errorf("reflate request: %d base and %d wanted blocks, want 1..%d each", len(m.Base), len(m.Want), MaxPatchBlocks)
	}
	for _, b := range append(m.Base[:len(m.Base):len(m.Base)], m.Want...) {
		if b.Size == 0 || b.Size > MaxBlockSize {
			return fmt.Errorf("reflate request: block of %d bytes, want 1..%d", b.Size, MaxBlockSize)
		}
	}
	if b, w := sumSizes(m.Base), sumSizes(m.Want); b > MaxReflateFile || w > MaxReflateFile {
		return fmt.Errorf("reflate request: a base of %d and a version of %d bytes, at most %d each", b, w, MaxReflateFile)
	}
	return nil
}

func (m *ReflateResponse) validate() error {
	if len(m.Data) > MaxReflateData {
		return fmt.Errorf("reflate response: %d bytes exceed %d", len(m.Data), MaxReflateData)
	}
	if len(m.BaseSections) > MaxReflateSections || len(m.WantSections) > MaxReflateSections {
		return fmt.Errorf("reflate response: %d and %d sections, at most %d each", len(m.BaseSections), len(m.WantSections), MaxReflateSections)
	}
	return nil
}

func (m *ReflateRequest) toPB(e *wirepb.Envelope) {
	bh, bs := packBlocks(m.Base)
	wh, ws := packBlocks(m.Want)
	e.Body = &wirepb.Envelope_ReflateRequest{ReflateRequest: &wirepb.ReflateRequest{
		Share: m.Share[:], BaseHashes: bh, BaseSizes: bs, WantHashes: wh, WantSizes: ws, Methods: m.Methods,
	}}
}

func (m *ReflateResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_ReflateResponse{ReflateResponse: &wirepb.ReflateResponse{
		Data: m.Data, BaseSections: packSections(m.BaseSections), WantSections: packSections(m.WantSections),
	}}
}

func reflateRequestFromPB(p *wirepb.ReflateRequest) (*ReflateRequest, error) {
	m := &ReflateRequest{Methods: p.GetMethods()}
	var err error
	if m.Base, m.Want, err = unpackAsk("reflate request", p, m.Share[:]); err != nil {
		return nil, err
	}
	return m, nil
}

func reflateResponseFromPB(p *wirepb.ReflateResponse) (*ReflateResponse, error) {
	m := &ReflateResponse{Data: p.GetData()}
	var err error
	if m.BaseSections, err = unpackSections("base", p.GetBaseSections()); err != nil {
		return nil, err
	}
	if m.WantSections, err = unpackSections("wanted", p.GetWantSections()); err != nil {
		return nil, err
	}
	return m, nil
}

// sectionNumbers is how many numbers a section is on the wire.
const sectionNumbers = 4

func packSections(ss []ReflateSection) []uint64 {
	out := make([]uint64, 0, sectionNumbers*len(ss))
	for _, s := range ss {
		out = append(out, s.Off, s.Len, s.Size, s.Method)
	}
	return out
}

func unpackSections(what string, ns []uint64) ([]ReflateSection, error) {
	if len(ns)%sectionNumbers != 0 || len(ns) > sectionNumbers*MaxReflateSections {
		return nil, fmt.Errorf("reflate response: %d numbers for the %s sections, want %d a section and at most %d sections", len(ns), what, sectionNumbers, MaxReflateSections)
	}
	out := make([]ReflateSection, len(ns)/sectionNumbers)
	for i := range out {
		n := ns[sectionNumbers*i:]
		out[i] = ReflateSection{Off: n[0], Len: n[1], Size: n[2], Method: n[3]}
	}
	return out, nil
}
