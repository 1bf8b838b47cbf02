package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// RecordEncoding says how RecordData.Data holds the record's envelope.
type RecordEncoding uint8

const (
	RecordPlain    RecordEncoding = RecordEncoding(wirepb.RecordEncoding_RECORD_ENCODING_PLAIN)
	RecordZstd     RecordEncoding = RecordEncoding(wirepb.RecordEncoding_RECORD_ENCODING_ZSTD)
	RecordZstdDict RecordEncoding = RecordEncoding(wirepb.RecordEncoding_RECORD_ENCODING_ZSTD_DICT) // dictionary: the envelope whose leaf is Base
	// RecordNone: no record, only a file's content (Data empty, Base zero,
	// Batch 0), in the answer to RecordsRequest.ContentOnly only.
	RecordNone RecordEncoding = RecordEncoding(wirepb.RecordEncoding_RECORD_ENCODING_UNSPECIFIED)
)

// RecordData is one record's stored envelope as it travels.
type RecordData struct {
	Key      merkle.Key
	Encoding RecordEncoding
	Base     merkle.Leaf // the dictionary's leaf with RecordZstdDict, else zero
	Data     []byte
	// Content is, optionally, the content of a file whose record has a single
	// block of at most MaxInline bytes, encoded BlockRaw or BlockZstd; the
	// receiver checks it against the record's block hash like any block.
	ContentEncoding BlockEncoding // zero when Content is empty
	Content         []byte
	// Batch is 0 when Data holds the whole envelope, else k: Data holds a
	// batched envelope without proof and signature, rebuilt with the
	// message's Batches[k-1] (batchsig.go).
	Batch uint32
}

// RecordsRequest asks for the records at Keys of Share. Have is empty or holds,
// per key, the leaf the asker has (zero: none), so the answer can be a delta
// against it. A zero leaf, or the leaf of the very record the peer holds
// (the asker has the record and lacks the file), also asks for the file's
// content inline (RecordData.Content) where it is one small block.
//
// With ContentOnly the asker holds the records at Keys and lacks only their
// files' content: the answer has, per key whose record is a file of one
// small block, a RecordData with Key and Content and no record (Data
// empty), and Have must be empty. It is sent only to a peer whose Hello
// carries ContentAskCapability; an older peer would take the request for
// one that holds nothing and answer with whole records.
type RecordsRequest struct {
	Share       share.ID
	Keys        []merkle.Key
	Have        []merkle.Leaf
	ContentOnly bool
}

// ContentAskCapability in a Hello says the device answers
// RecordsRequest.ContentOnly.
const ContentAskCapability = "contentask1"

// RecordsResponse answers RecordsRequest with the records found, in request
// order; a key the peer no longer has is left out.
type RecordsResponse struct {
	Records []RecordData
	Batches []RecordBatch // what the trimmed Records lack (batchsig.go)
}

// RecordPush carries new local records to a peer (one-way).
type RecordPush struct {
	Share   share.ID
	Records []RecordData
	Batches []RecordBatch // what the trimmed Records lack (batchsig.go)
}

func (m *RecordsRequest) validate() error {
	if len(m.Keys) > MaxKeys {
		return fmt.Errorf("records request: %d keys exceed %d", len(m.Keys), MaxKeys)
	}
	if len(m.Have) != 0 && len(m.Have) != len(m.Keys) {
		return fmt.Errorf("records request: %d have-leaves for %d keys", len(m.Have), len(m.Keys))
	}
	if m.ContentOnly && len(m.Have) != 0 {
		return fmt.Errorf("records request: content only, with %d have-leaves", len(m.Have))
	}
	return nil
}

func (m *RecordsResponse) validate() error {
	if err := checkRecords("records response", m.Records, true); err != nil {
		return err
	}
	return checkBatches("records response", m.Records, m.Batches)
}

func (m *RecordPush) validate() error {
	if err := checkRecords("record push", m.Records, false); err != nil {
		return err
	}
	return checkBatches("record push", m.Records, m.Batches)
}

// checkRecords checks the records of a message; contentOnly allows those
// that carry only a file's content (RecordNone).
func checkRecords(what string, rs []RecordData, contentOnly bool) error {
	if len(rs) > MaxRecords {
		return fmt.Errorf("%s: %d records exceed %d", what, len(rs), MaxRecords)
	}
	for i := range rs {
		r := &rs[i]
		if len(r.Data) > MaxRecordSize {
			return fmt.Errorf("%s: record of %d bytes exceeds %d", what, len(r.Data), MaxRecordSize)
		}
		switch r.Encoding {
		case RecordNone:
			if !contentOnly {
				return fmt.Errorf("%s: record without an encoding", what)
			}
			if len(r.Data) > 0 || r.Base != (merkle.Leaf{}) || r.Batch != 0 || len(r.Content) == 0 {
				return fmt.Errorf("%s: a content-only entry has a record, a base or a batch, or no content", what)
			}
		case RecordPlain, RecordZstd:
			if r.Base != (merkle.Leaf{}) {
				return fmt.Errorf("%s: record has a base but is not dictionary-compressed", what)
			}
		case RecordZstdDict:
			if r.Base == (merkle.Leaf{}) {
				return fmt.Errorf("%s: dictionary-compressed record has no base", what)
			}
		default:
			return fmt.Errorf("%s: unknown record encoding %d", what, r.Encoding)
		}
		if err := checkContent(r); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

func checkContent(r *RecordData) error {
	if len(r.Content) > MaxInline {
		return fmt.Errorf("inline content of %d bytes exceeds %d", len(r.Content), MaxInline)
	}
	switch {
	case len(r.Content) == 0 && r.ContentEncoding != 0:
		return fmt.Errorf("inline content encoding %d without content", r.ContentEncoding)
	case len(r.Content) > 0 && r.ContentEncoding != BlockRaw && r.ContentEncoding != BlockZstd:
		return fmt.Errorf("inline content encoding %d: want raw or zstd", r.ContentEncoding)
	}
	return nil
}

func (m *RecordsRequest) toPB(e *wirepb.Envelope) {
	p := &wirepb.RecordsRequest{Share: m.Share[:], Keys: make([][]byte, len(m.Keys)), ContentOnly: m.ContentOnly}
	for i := range m.Keys {
		p.Keys[i] = m.Keys[i][:]
	}
	if len(m.Have) > 0 {
		p.Have = make([][]byte, len(m.Have))
		for i := range m.Have {
			p.Have[i] = m.Have[i][:]
		}
	}
	e.Body = &wirepb.Envelope_RecordsRequest{RecordsRequest: p}
}

func recordsRequestFromPB(p *wirepb.RecordsRequest) (*RecordsRequest, error) {
	if len(p.GetKeys()) > MaxKeys || len(p.GetHave()) > MaxKeys {
		return nil, fmt.Errorf("records request: %d keys exceed %d", max(len(p.GetKeys()), len(p.GetHave())), MaxKeys)
	}
	m := &RecordsRequest{Keys: make([]merkle.Key, len(p.GetKeys())), ContentOnly: p.GetContentOnly()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, err
	}
	for i, k := range p.GetKeys() {
		if err := fixed("key", m.Keys[i][:], k); err != nil {
			return nil, err
		}
	}
	if len(p.GetHave()) > 0 {
		m.Have = make([]merkle.Leaf, len(p.GetHave()))
		for i, l := range p.GetHave() {
			if err := fixed("have-leaf", m.Have[i][:], l); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func recordsToPB(rs []RecordData) []*wirepb.RecordData {
	out := make([]*wirepb.RecordData, len(rs))
	for i := range rs {
		r := &rs[i]
		p := &wirepb.RecordData{Key: r.Key[:], Encoding: wirepb.RecordEncoding(r.Encoding), Data: r.Data,
			ContentEncoding: wirepb.BlockEncoding(r.ContentEncoding), Content: r.Content, Batch: r.Batch}
		if r.Encoding == RecordZstdDict {
			p.Base = r.Base[:]
		}
		out[i] = p
	}
	return out
}

func recordsFromPB(ps []*wirepb.RecordData) ([]RecordData, error) {
	if len(ps) > MaxRecords {
		return nil, fmt.Errorf("%d records exceed %d", len(ps), MaxRecords)
	}
	out := make([]RecordData, len(ps))
	for i, p := range ps {
		r := &out[i]
		if err := fixed("record key", r.Key[:], p.Key); err != nil {
			return nil, err
		}
		if p.Encoding < 0 || p.Encoding > 255 {
			return nil, fmt.Errorf("unknown record encoding %d", p.Encoding)
		}
		r.Encoding = RecordEncoding(p.Encoding)
		if len(p.Base) > 0 {
			if err := fixed("record base", r.Base[:], p.Base); err != nil {
				return nil, err
			}
		}
		r.Data = p.Data
		if p.ContentEncoding < 0 || p.ContentEncoding > 255 {
			return nil, fmt.Errorf("unknown inline content encoding %d", p.ContentEncoding)
		}
		r.ContentEncoding = BlockEncoding(p.ContentEncoding)
		if len(p.Content) > 0 {
			r.Content = p.Content
		}
		r.Batch = p.Batch
	}
	return out, nil
}

func (m *RecordsResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RecordsResponse{RecordsResponse: &wirepb.RecordsResponse{Records: recordsToPB(m.Records), Batches: batchesToPB(m.Batches)}}
}

func (m *RecordPush) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RecordPush{RecordPush: &wirepb.RecordPush{Share: m.Share[:], Records: recordsToPB(m.Records), Batches: batchesToPB(m.Batches)}}
}

func recordPushFromPB(p *wirepb.RecordPush) (*RecordPush, error) {
	m := &RecordPush{}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, err
	}
	var err error
	if m.Records, err = recordsFromPB(p.GetRecords()); err != nil {
		return m, err
	}
	m.Batches, err = batchesFromPB(p.GetBatches())
	return m, err
}

func recordsResponseFromPB(p *wirepb.RecordsResponse) (*RecordsResponse, error) {
	rs, err := recordsFromPB(p.GetRecords())
	if err != nil {
		return nil, err
	}
	bs, err := batchesFromPB(p.GetBatches())
	return &RecordsResponse{Records: rs, Batches: bs}, err
}
