package wire

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Block payloads are most of the bytes a connection carries, so
// BlockResponse has a fast path on both sides that does not copy its Data:
// EncodeFrame leaves the payload out of the encoded head, to be written after
// it, and Reader decodes a canonical BlockResponse frame without copying Data
// out of the frame's (fresh) buffer. Both produce and accept exactly the
// protobuf encoding: FuzzDecode checks the fast decoder against Decode.

// Field numbers of the fast path (wirepb/envelope.proto, blocks.proto).
const (
	fieldEnvelopeID            = 1
	fieldEnvelopeBlockResponse = 31
	fieldBlockEncoding         = 1
	fieldBlockData             = 2
	// aliasMin is the frame size from which Reader reads into a fresh buffer
	// that a decoded BlockResponse may keep.
	aliasMin = 32 << 10
)

// EncodeFrame encodes f as head followed by tail: tail is nil, or the
// payload of a BlockResponse, not copied. The caller writes both, in order,
// and must not modify the payload until then.
func EncodeFrame(dst []byte, f Frame) (head, tail []byte, err error) {
	m, ok := f.Msg.(*BlockResponse)
	if !ok || len(m.Data) < aliasMin {
		head, err = AppendFrame(dst, f)
		return head, nil, err
	}
	if err := checkFrame(f); err != nil {
		return dst, nil, fmt.Errorf("encode frame: %w: %w", err, ErrInvalid)
	}
	innerLen := protowire.SizeTag(fieldBlockEncoding) + protowire.SizeVarint(uint64(m.Encoding)) +
		protowire.SizeTag(fieldBlockData) + protowire.SizeBytes(len(m.Data))
	bodyLen := protowire.SizeTag(fieldEnvelopeID) + protowire.SizeVarint(f.ID) +
		protowire.SizeTag(fieldEnvelopeBlockResponse) + protowire.SizeBytes(innerLen)
	if bodyLen > MaxFrameSize {
		return dst, nil, fmt.Errorf("encode BlockResponse: %d bytes exceed the frame limit %d: %w", bodyLen, MaxFrameSize, ErrInvalid)
	}
	b := binary.BigEndian.AppendUint32(dst, uint32(bodyLen))
	b = protowire.AppendTag(b, fieldEnvelopeID, protowire.VarintType)
	b = protowire.AppendVarint(b, f.ID)
	b = protowire.AppendTag(b, fieldEnvelopeBlockResponse, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(innerLen))
	b = protowire.AppendTag(b, fieldBlockEncoding, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(m.Encoding))
	b = protowire.AppendTag(b, fieldBlockData, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(m.Data)))
	return b, m.Data, nil
}

// decodeBlockResponse decodes a frame body holding exactly a canonical
// BlockResponse, with Data aliasing b. ok is false for anything else (the
// caller then uses Decode).
func decodeBlockResponse(b []byte) (f Frame, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != fieldEnvelopeID || typ != protowire.VarintType {
		return f, false
	}
	b = b[n:]
	id, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return f, false
	}
	b = b[n:]
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 || num != fieldEnvelopeBlockResponse || typ != protowire.BytesType {
		return f, false
	}
	inner, n := protowire.ConsumeBytes(b[n:])
	if n < 0 || n != len(b)-protowire.SizeTag(fieldEnvelopeBlockResponse) {
		return f, false
	}
	num, typ, n = protowire.ConsumeTag(inner)
	if n < 0 || num != fieldBlockEncoding || typ != protowire.VarintType {
		return f, false
	}
	inner = inner[n:]
	enc, n := protowire.ConsumeVarint(inner)
	if n < 0 || enc > 255 {
		return f, false
	}
	inner = inner[n:]
	num, typ, n = protowire.ConsumeTag(inner)
	if n < 0 || num != fieldBlockData || typ != protowire.BytesType {
		return f, false
	}
	data, n := protowire.ConsumeBytes(inner[n:])
	if n < 0 || n != len(inner)-protowire.SizeTag(fieldBlockData) {
		return f, false
	}
	f = Frame{ID: id, Msg: &BlockResponse{Encoding: BlockEncoding(enc), Data: data[:len(data):len(data)]}}
	if checkFrame(f) != nil {
		return Frame{}, false
	}
	return f, true
}
