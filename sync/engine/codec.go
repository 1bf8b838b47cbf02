package engine

import (
	"bytes"
	"errors"
	"fmt"
	gosync "sync"

	"github.com/klauspost/compress/zstd"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/blueshift-sync/blueshift/sync/delta"
)

// Compression on the wire. A block or record is compressed only when that
// pays: a 4 KiB sample is tried first, and incompressible data goes raw
// without a second pass over it. Blocks to a peer on this machine go raw
// too: loopback outruns zstd, so compressing could only cost time. To a
// peer whose connection compresses what we send in one stream
// (conn.Conn.Compresses, wire.CapZstream), records and inline contents go
// raw into that stream, where each is compressed with the history of those
// before it, and so do blocks to another machine; a block whose samples do
// not compress is marked to go around it.
const (
	sampleLen      = 4 << 10
	minCompressLen = 256 // shorter payloads are not worth a frame header
	// pays is the fraction of the input a compressed form must stay under.
	paysNum, paysDen = 95, 100
	// minDeltaBasis is the smallest basis block worth a delta signature.
	minDeltaBasis = 4 << 10
	// maxRecordLen bounds a decompressed envelope (record.Open checks again).
	maxRecordLen = 64 << 20
)

// packing says how the payloads sent to a peer are compressed.
type packing uint8

const (
	packRaw        packing = iota // a peer on this machine: the link outruns zstd
	packFrames                    // each block or record in a zstd frame of its own, where that pays
	packStream                    // raw into the connection's compressed stream
	packStreamMeta                // records, inline contents and tiny blocks raw into the stream, other blocks raw around it (this machine)
)

// errBadData marks data from a peer that does not decode or does not match
// its hash: the peer is cut off.
var errBadData = errors.New("peer sent bad data")

// codec compresses and decompresses blocks and records. It is safe for
// concurrent use: zstd's EncodeAll and DecodeAll are. Blocks use zstd's
// default level: they only go compressed to peers on another machine, where
// the link, not this level's hundreds of MB/s, is what limits.
type codec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
	// bufs keeps buffers of blocks being served (*[]byte of pooledBlock
	// bytes' capacity; see blockBuf).
	bufs gosync.Pool
	// dictEncs keeps encoders for small record deltas (see encodeDict);
	// Close closes those it still holds.
	dictEncs chan *zstd.Encoder
	// patching holds a slot per patch being encoded (patch.go).
	patching chan struct{}
	// reflateServing and reflatePulling hold the one reflated patch
	// (reflate.go) being encoded and the one being fetched and decoded: two
	// slots, or two devices each pulling from the other would each wait for
	// the slot its own pull holds.
	reflateServing, reflatePulling chan struct{}
}

// Small record deltas (a record and its base together up to smallDict
// bytes: every record but those of files of many blocks) use a kept
// encoder at the fastest level, reset to each base: a new encoder per
// record cost 5 ms, more than the rest of a `touch` of a small file.
const (
	smallDict       = 32 << 10
	smallDictWindow = 64 << 10 // covers base and record: a match may reach anywhere in the base
	dictEncsKept    = 8
)

func newCodec() (*codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("start zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxRecordLen))
	if err != nil {
		return nil, fmt.Errorf("start zstd decoder: %w", err)
	}
	return &codec{enc: enc, dec: dec, dictEncs: make(chan *zstd.Encoder, dictEncsKept), patching: make(chan struct{}, patchesEncoding), reflateServing: make(chan struct{}, 1), reflatePulling: make(chan struct{}, 1)}, nil
}

func (c *codec) Close() {
	c.enc.Close()
	c.dec.Close()
	for {
		select {
		case e := <-c.dictEncs:
			e.Close()
		default:
			return
		}
	}
}

// pooledBlock is the largest block whose buffer is kept for the next: the
// chunker's default maximum. A peer may ask for larger ones (up to
// wire.MaxBlockSize); those get a buffer of their own.
const pooledBlock = 256 << 10

// blockBuf returns a buffer of size bytes for a block to serve, and put,
// which gives it back for another block once nothing refers to it (the
// connection wrote it: wire.BlockResponse.OnWritten). Reading blocks into
// fresh buffers cost an allocation, zeroing and collection per block, as
// much CPU as reading them.
func (c *codec) blockBuf(size uint32) (buf []byte, put func()) {
	if size > pooledBlock {
		return make([]byte, size), func() {}
	}
	p, ok := c.bufs.Get().(*[]byte)
	if !ok {
		b := make([]byte, pooledBlock)
		p = &b
	}
	return (*p)[:size], func() { c.bufs.Put(p) }
}

// compress returns the zstd form of b if it pays, else nil.
func (c *codec) compress(b []byte) []byte {
	if len(b) < minCompressLen {
		return nil
	}
	if len(b) > 2*sampleLen {
		s := c.enc.EncodeAll(b[:sampleLen], nil)
		if len(s)*paysDen >= sampleLen*paysNum {
			return nil
		}
	}
	z := c.enc.EncodeAll(b, make([]byte, 0, len(b)/2))
	if len(z)*paysDen >= len(b)*paysNum {
		return nil
	}
	return z
}

// compressible reports whether data is worth a place in a compressed
// stream: whether one of streamSamples samples spread over it compresses.
// Only data that is random throughout goes around the stream: a block that
// mixes random regions and text (a sample at its start alone would often
// see only random bytes) compresses in it, and random data costs the stream
// CPU but no bytes.
func (c *codec) compressible(data []byte) bool {
	if len(data) <= 2*sampleLen {
		return true // cheaper to let the stream find out
	}
	var z [2 * streamSample]byte
	step := (len(data) - streamSample) / (streamSamples - 1)
	for i := range streamSamples {
		s := c.enc.EncodeAll(data[i*step:i*step+streamSample], z[:0])
		if len(s)*paysDen < streamSample*paysNum {
			return true
		}
	}
	return false
}

// streamSamples samples of streamSample bytes decide whether a block goes
// into a compressed stream: as many bytes as one 8 KiB sample.
const streamSamples, streamSample = 8, 1 << 10

// encodeBlock answers a block request: data is the block; sig, if not
// empty, describes a basis the asker has, so a delta may be smaller.
// p says how payloads to this peer are compressed.
func (c *codec) encodeBlock(data, sig []byte, p packing) (*wire.BlockResponse, error) {
	if len(sig) > 0 {
		s, err := delta.ParseSignature(sig)
		if err != nil {
			return nil, fmt.Errorf("parse delta signature: %w", err)
		}
		d := delta.Delta(s, data)
		if len(d) < len(data) {
			if p == packFrames {
				if z := c.compress(d); z != nil {
					return &wire.BlockResponse{Encoding: wire.BlockDeltaZstd, Data: z}, nil
				}
			}
			return &wire.BlockResponse{Encoding: wire.BlockDelta, Data: d}, nil
		}
	}
	switch p {
	case packStream:
		return &wire.BlockResponse{Encoding: wire.BlockRaw, Data: data, Incompressible: !c.compressible(data)}, nil
	case packFrames:
		if z := c.compress(data); z != nil {
			return &wire.BlockResponse{Encoding: wire.BlockZstd, Data: z}, nil
		}
	}
	return &wire.BlockResponse{Encoding: wire.BlockRaw, Data: data}, nil
}

// decodeBlock turns a block response back into the block with hash want
// and length size, using basis for deltas. A result that does not match want
// is errBadData.
func (c *codec) decodeBlock(resp *wire.BlockResponse, want block.Hash, size uint32, basis []byte) ([]byte, error) {
	var data []byte
	var err error
	switch resp.Encoding {
	case wire.BlockRaw:
		data = resp.Data
	case wire.BlockZstd:
		data, err = c.decodeLimited(resp.Data, int(size))
	case wire.BlockDelta, wire.BlockDeltaZstd:
		d := resp.Data
		if resp.Encoding == wire.BlockDeltaZstd {
			if d, err = c.decodeLimited(d, 2*int(size)+1024); err != nil {
				break
			}
		}
		if basis == nil {
			return nil, fmt.Errorf("%w: delta for block %s without a basis", errBadData, want.Short())
		}
		data, err = delta.Apply(basis, d, int(size))
	default:
		return nil, fmt.Errorf("%w: unknown block encoding %d", errBadData, resp.Encoding)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decode block %s: %v", errBadData, want.Short(), err)
	}
	if len(data) != int(size) || block.Sum(data) != want {
		return nil, fmt.Errorf("%w: block %s does not match its hash", errBadData, want.Short())
	}
	return data, nil
}

// decodeLimited decompresses b, refusing output longer than limit.
func (c *codec) decodeLimited(b []byte, limit int) ([]byte, error) {
	out, err := c.dec.DecodeAll(b, make([]byte, 0, min(limit, 1<<20)))
	if err != nil {
		return nil, err
	}
	if len(out) > limit {
		return nil, fmt.Errorf("decompressed to %d bytes, more than the %d expected", len(out), limit)
	}
	return out, nil
}

// encodeRecord prepares an envelope for the wire. If base is the envelope
// the receiver holds for the same key, the record travels as a zstd delta
// against it: a small edit to a large file then costs a few hundred bytes
// instead of the whole block list.
func (c *codec) encodeRecord(env record.Envelope, base *record.Envelope) wire.RecordData {
	return c.encodeRecordFor(env, base, packFrames)
}

// encodeRecordFor is encodeRecord for a peer whose payloads are packed as p:
// into a compressed stream, a record without a base goes raw.
func (c *codec) encodeRecordFor(env record.Envelope, base *record.Envelope, p packing) wire.RecordData {
	return c.encodeRaw(env.Key(), env.Bytes(), base, p)
}

// encodeRaw is encodeRecordFor of raw, an envelope's bytes or a batched
// one's trimmed bytes (batchsig.go), at key.
func (c *codec) encodeRaw(key merkle.Key, raw []byte, base *record.Envelope, p packing) wire.RecordData {
	rd := wire.RecordData{Key: key, Encoding: wire.RecordPlain, Data: raw}
	// Against a base even a short envelope pays: all but what changed is
	// in the dictionary (a touched small file's 241 bytes become ~100).
	if base != nil {
		if z, err := c.encodeDict(raw, base.Bytes()); err == nil && len(z) < len(raw) {
			return wire.RecordData{Key: key, Encoding: wire.RecordZstdDict, Base: base.Leaf(), Data: z}
		}
	}
	if p == packStream || p == packStreamMeta {
		return rd
	}
	if z := c.compress(raw); z != nil {
		rd.Encoding, rd.Data = wire.RecordZstd, z
	}
	return rd
}

// decodeRecord turns record data back into an envelope. local is the
// envelope this device holds for the key, if any: the dictionary of a delta.
// errNoBase means the receiver must ask for the record in full.
func (c *codec) decodeRecord(rd wire.RecordData, local *record.Envelope) (record.Envelope, error) {
	raw, err := c.decodeRaw(rd, local)
	if err != nil {
		return record.Envelope{}, err
	}
	return openRecord(rd.Key, raw)
}

// decodeRaw undoes encodeRaw: the bytes rd carries, decompressed.
func (c *codec) decodeRaw(rd wire.RecordData, local *record.Envelope) ([]byte, error) {
	var raw []byte
	var err error
	switch rd.Encoding {
	case wire.RecordPlain:
		raw = rd.Data
	case wire.RecordZstd:
		raw, err = c.decodeLimited(rd.Data, maxRecordLen)
	case wire.RecordZstdDict:
		if local == nil || local.Leaf() != rd.Base {
			return nil, errNoBase
		}
		raw, err = c.decodeDict(rd.Data, local.Bytes())
	default:
		return nil, fmt.Errorf("%w: unknown record encoding %d", errBadData, rd.Encoding)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: decompress record: %v", errBadData, err)
	}
	return raw, nil
}

// openRecord opens raw as the envelope sent under key.
func openRecord(key merkle.Key, raw []byte) (record.Envelope, error) {
	env, err := record.Open(raw)
	if err != nil {
		return record.Envelope{}, fmt.Errorf("%w: %v", errBadData, err)
	}
	if env.Key() != key {
		return record.Envelope{}, fmt.Errorf("%w: record sent under another key", errBadData)
	}
	return env, nil
}

// errNoBase: a record came as a delta against an envelope we do not hold.
var errNoBase = errors.New("record delta against an envelope this device does not hold")

// encodeDict compresses b with dict as a raw zstd dictionary. Small ones go
// through a kept encoder (see smallDict); a larger one gets an encoder of
// its own, which is costly, at a level that indexes a large raw dictionary's
// hash-heavy content well.
func (c *codec) encodeDict(b, dict []byte) ([]byte, error) {
	if len(b)+len(dict) <= smallDict {
		return c.encodeSmallDict(b, dict)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderDictRaw(1, dict), zstd.WithWindowSize(windowFor(len(dict)+len(b))))
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil), nil
}

// encodeSmallDict compresses b with a kept encoder through its streaming
// side: setting a new dictionary rebuilds that side's tables, and EncodeAll
// would then rebuild its own again (two clears and copies of a 256 KiB
// table for each record of a hundred bytes).
func (c *codec) encodeSmallDict(b, dict []byte) ([]byte, error) {
	out := bytes.NewBuffer(make([]byte, 0, len(b)/2+64))
	var enc *zstd.Encoder
	select {
	case enc = <-c.dictEncs:
		if err := enc.ResetWithOptions(out, zstd.WithEncoderDictRaw(1, dict)); err != nil {
			enc.Close()
			return nil, err
		}
	default:
		var err error
		enc, err = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderDictRaw(1, dict), zstd.WithWindowSize(smallDictWindow))
		if err != nil {
			return nil, err
		}
	}
	enc.ResetContentSize(out, int64(len(b))) // the frame says its size, as EncodeAll's does
	_, err := enc.Write(b)
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		enc.Close()
		return nil, err
	}
	select {
	case c.dictEncs <- enc:
	default:
		enc.Close()
	}
	return out.Bytes(), nil
}

func (c *codec) decodeDict(b, dict []byte) ([]byte, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderDictRaw(1, dict),
		zstd.WithDecoderMaxMemory(maxRecordLen), zstd.WithDecoderMaxWindow(1<<27))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	return dec.DecodeAll(b, nil)
}

// windowFor returns a zstd window that covers n bytes (a power of two,
// within zstd's limits), so the whole dictionary stays in reach.
func windowFor(n int) int {
	w := zstd.MinWindowSize
	for w < n && w < 1<<27 {
		w <<= 1
	}
	return w
}
