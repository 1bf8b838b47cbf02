package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// BlockEncoding says how BlockResponse.Data holds the block.
type BlockEncoding uint8

const (
	BlockRaw       BlockEncoding = BlockEncoding(wirepb.BlockEncoding_BLOCK_ENCODING_RAW)
	BlockZstd      BlockEncoding = BlockEncoding(wirepb.BlockEncoding_BLOCK_ENCODING_ZSTD)
	BlockDelta     BlockEncoding = BlockEncoding(wirepb.BlockEncoding_BLOCK_ENCODING_DELTA) // against the basis the request's Signature describes
	BlockDeltaZstd BlockEncoding = BlockEncoding(wirepb.BlockEncoding_BLOCK_ENCODING_DELTA_ZSTD)
)

// BlockRequest asks for the block named Hash, Size bytes long, of Share.
// Signature, if set, describes a basis block the asker has, so the answer can
// be a delta against it.
type BlockRequest struct {
	Share     share.ID
	Hash      block.Hash
	Size      uint32
	Signature []byte
}

// BlockResponse answers BlockRequest. The asker verifies the block's hash.
type BlockResponse struct {
	Encoding BlockEncoding
	Data     []byte
	// Incompressible, never sent, tells a connection that compresses what
	// it sends (CapZstream) to write this raw block around its compressed
	// stream: the sender found it does not compress.
	Incompressible bool

	release func() // set by Reader when Data is its buffer
	written func() // set by OnWritten
}

// OnWritten has fn run once a connection has written the response, when
// nothing refers to Data any more: a sender may then reuse Data's buffer.
// A response that is never written (the connection ended first) never
// runs it.
func (m *BlockResponse) OnWritten(fn func()) { m.written = fn }

// Written returns what to run once frame f is written: a BlockResponse's
// OnWritten function, or nil.
func Written(f Frame) func() {
	if m, ok := f.Msg.(*BlockResponse); ok {
		return m.written
	}
	return nil
}

// Release gives Data's memory back to the connection that received it, for
// the next block. Call it once Data is no longer used (the block is verified
// and written); Data is nil afterwards. Without Release the garbage collector
// reclaims it, at a cost: at 1 GB/s of blocks, the collector is busy.
func (m *BlockResponse) Release() {
	if m.release != nil {
		m.release()
		m.release = nil
	}
	m.Data = nil
}

func (m *BlockRequest) validate() error {
	if m.Size > MaxBlockSize {
		return fmt.Errorf("block request: size %d exceeds %d", m.Size, MaxBlockSize)
	}
	if len(m.Signature) > MaxSignatureSize {
		return fmt.Errorf("block request: signature of %d bytes exceeds %d", len(m.Signature), MaxSignatureSize)
	}
	return nil
}

func (m *BlockResponse) validate() error {
	if m.Encoding < BlockRaw || m.Encoding > BlockDeltaZstd {
		return fmt.Errorf("block response: unknown encoding %d", m.Encoding)
	}
	if len(m.Data) > MaxBlockData {
		return fmt.Errorf("block response: %d bytes exceed %d", len(m.Data), MaxBlockData)
	}
	return nil
}

func (m *BlockRequest) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_BlockRequest{BlockRequest: &wirepb.BlockRequest{
		Share: m.Share[:], Hash: m.Hash[:], Size: m.Size, Signature: m.Signature,
	}}
}

func blockRequestFromPB(p *wirepb.BlockRequest) (*BlockRequest, error) {
	m := &BlockRequest{Size: p.GetSize(), Signature: p.GetSignature()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, err
	}
	if err := fixed("block hash", m.Hash[:], p.GetHash()); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *BlockResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_BlockResponse{BlockResponse: &wirepb.BlockResponse{
		Encoding: wirepb.BlockEncoding(m.Encoding), Data: m.Data,
	}}
}

func blockResponseFromPB(p *wirepb.BlockResponse) (*BlockResponse, error) {
	if p.GetEncoding() < 0 || p.GetEncoding() > 255 {
		return nil, fmt.Errorf("unknown block encoding %d", p.GetEncoding())
	}
	return &BlockResponse{Encoding: BlockEncoding(p.GetEncoding()), Data: p.GetData()}, nil
}
