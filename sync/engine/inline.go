package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/merkle"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Small files travel with their records. Without this, a first sync of
// many small files asks for each file's one block in a request of its own:
// a round trip and some hundred bytes of framing per file, which at 200,000
// tiny files was most of the bytes on the wire. Content goes along only
// where the receiver most likely lacks it: records it asked for while
// holding nothing at that path, and pushes of files that are new here (not
// edits, whose old content the receiver holds, nor renames).
const (
	inlineMax = wire.MaxInline // largest file whose content travels inline
	// responseInline bounds the inline content of a RecordsResponse (a
	// frame holds 16 MiB): enough for the 256 records of a request for
	// files of 1-64 KiB, so a first sync of small files asks for no block
	// on its own. What the receiver holds of it while the puller is behind
	// is bounded apart (maxQueuedContent); at 512 KiB, with the queue
	// bounded by count alone, ~90% of such files cost a block request each
	// (a round trip, and a lookup by hash on the sender).
	responseInline = 8 << 20
	// pushInline bounds the inline content of one push (all its messages):
	// pushes are not asked for, and queue on both sides (pushQueueBytes);
	// the puller asks for what a push left out in bulk (askContent). 4 MiB
	// here took a first sync of 20,000 small files to 240 MB of receiver
	// RSS (100 MB without inlining); 512 KiB keeps it at 120 MB.
	pushInline = 512 << 10
)

// inlinable reports whether rec's content may travel with it: a file of one
// block of at most inlineMax bytes. Sender and receiver apply the same rule.
func inlinable(rec record.Record) bool {
	return !rec.Deleted && rec.Kind == record.File && len(rec.Blocks) == 1 && rec.Size <= inlineMax
}

// inliner attaches content to the records of one message of share f, read
// from f's files only (see folder.readShared), within its budget.
type inliner struct {
	f    *folder
	pack packing // how contents are compressed for the receiver
	left int
	held map[block.Hash]bool // contents the receiver holds already (a rename's)
}

func (f *folder) newInliner(p packing, budget int) *inliner {
	return &inliner{f: f, pack: p, left: budget}
}

// add attaches the content of env's file (rec) to rd if the file is one
// small block that this device holds and the budget allows.
func (in *inliner) add(rd *wire.RecordData, env record.Envelope, rec record.Record) {
	if in.left <= 0 || env.Sealed() || !inlinable(rec) {
		return
	}
	b := rec.Blocks[0]
	if int(b.Size) > in.left || in.held[rec.FileHash] {
		return
	}
	// The file at the record's own path, as a rule: found without a lookup
	// by hash, checked against the hash all the same (it may have changed
	// since the scan); a copy elsewhere, else.
	data := make([]byte, b.Size)
	ok := in.f.readChecked(index.Location{Share: in.f.id, Path: rec.Path, Length: b.Size}, data, b.Hash)
	if !ok {
		data, ok = in.f.readShared(b.Hash, b.Size)
	}
	if !ok {
		return // changed since it was recorded: the receiver asks, and hears no
	}
	resp, err := in.f.e.codec.encodeBlock(data, nil, in.pack)
	if err != nil {
		return
	}
	rd.ContentEncoding, rd.Content = resp.Encoding, resp.Data
	in.left -= len(resp.Data)
}

// holds notes the content of a record a batch replaced: the receiver has
// it, so a file renamed or copied to a new path is not sent again.
func (in *inliner) holds(rec record.Record) {
	if rec.Deleted || rec.Kind != record.File {
		return
	}
	if in.held == nil {
		in.held = make(map[block.Hash]bool)
	}
	in.held[rec.FileHash] = true
}

// decodeContent checks the content that came with a record and returns it:
// the record's one block. Content with any other record, or that does not
// match the block's hash, is errBadData.
func (c *codec) decodeContent(rd wire.RecordData, rec record.Record) ([]byte, error) {
	if len(rd.Content) == 0 {
		return nil, nil
	}
	if !inlinable(rec) {
		return nil, fmt.Errorf("%w: content sent with a record of %q that is not one small block", errBadData, rec.Path)
	}
	b := rec.Blocks[0]
	return c.decodeBlock(&wire.BlockResponse{Encoding: rd.ContentEncoding, Data: rd.Content}, b.Hash, b.Size, nil)
}

// askContent brings the content of the small new files among groups (each
// one path's records, in order) that came without it, in bulk: a push carries content
// for some hundred files only, and the rest would cost a block request each
// (a round trip, and a lookup by hash on the sender). Their content is
// asked for from their sender in content-only asks (wire.RecordsRequest
// ContentOnly): the sender reads each file at its path and answers with
// the content alone. A sender from before those is asked for the records
// again, each with the record itself as what this device has (Have), and
// answers with the content and the record as a delta against itself.
// A file whose block this device holds, or whose path holds a file here (an
// edit: its blocks travel as deltas), is left to the usual block requests,
// and so is any file whose content did not come or does not match its
// record's block (the sender has moved on to another version).
func (f *folder) askContent(ctx context.Context, groups [][]incoming) {
	var want []*incoming
	var hashes []block.Hash
	for _, g := range groups {
		if env, ok, err := f.idx.Envelope(g[0].env.Key()); err != nil || ok && liveFile(env) {
			continue
		}
		for i := range g {
			in := &g[i]
			if in.content != nil || !inlinable(in.rec) {
				continue
			}
			// The same record twice (pushed, and found by a walk): the
			// content that came with one serves both.
			if j := slices.IndexFunc(g, func(o incoming) bool { return o.content != nil && o.env.Leaf() == in.env.Leaf() }); j >= 0 {
				in.content = g[j].content
				continue
			}
			want = append(want, in)
			hashes = append(hashes, in.rec.Blocks[0].Hash)
		}
	}
	if len(want) == 0 {
		return
	}
	held, err := f.e.db.Holds(hashes)
	if err != nil {
		return
	}
	bySender := make(map[identity.DeviceID][]*incoming)
	for _, in := range want {
		if !held[in.rec.Blocks[0].Hash] {
			bySender[in.from] = append(bySender[in.from], in)
		}
	}
	sessions := f.connectedMembers()
	for from, ins := range bySender {
		if i := slices.IndexFunc(sessions, func(s *Session) bool { return s.id == from }); i >= 0 {
			sessions[i].askContent(ctx, f, ins)
		}
	}
}

// askContent asks the peer for the records of ins again, maxKeysPerAsk at
// a time, and keeps the content that came with them where it matches.
// What a response left out (its inline budget ran out) is asked for again,
// as long as each answer brings some.
func (s *Session) askContent(ctx context.Context, f *folder, ins []*incoming) {
	for ask := range slices.Chunk(ins, maxKeysPerAsk) {
		for len(ask) > 0 && ctx.Err() == nil {
			got := s.askContentOnce(ctx, f, ask)
			if got == 0 {
				break
			}
			if err := f.received(ctx, s, got); err != nil {
				return
			}
			ask = slices.DeleteFunc(ask, func(in *incoming) bool { return in.content != nil })
		}
	}
}

// answerContent answers a content-only RecordsRequest (askContent): for
// each key whose record is a file of one small block, its content, read
// from f's files (inliner.add), up to responseInline in all; no record,
// which the asker holds. It checks the content against its own record; the
// asker checks it against its own (the two may differ if the file changed
// meanwhile, and then the asker falls back to a block request).
func (s *Session) answerContent(f *folder, keys []merkle.Key) wire.Message {
	inline := f.newInliner(s.packing(), responseInline)
	out := make([]wire.RecordData, 0, len(keys))
	for _, k := range keys {
		env, ok, err := f.idx.Envelope(k)
		if err != nil || !ok {
			continue
		}
		rec, err := env.Record()
		if err != nil {
			continue
		}
		rd := wire.RecordData{Key: k}
		inline.add(&rd, env, rec)
		if len(rd.Content) > 0 {
			out = append(out, rd)
		}
	}
	return &wire.RecordsResponse{Records: out}
}

// askContentOnce is one RecordsRequest of askContent; it returns the bytes
// of content it kept.
func (s *Session) askContentOnce(ctx context.Context, f *folder, ask []*incoming) int {
	// Only the content, where the peer answers that (answerContent); else
	// Have is the record itself: the sender answers with its content and
	// the record as a delta against itself, a few bytes, not again whole.
	req := &wire.RecordsRequest{Share: f.id, Keys: make([]merkle.Key, len(ask)), ContentOnly: s.speaks(wire.ContentAskCapability)}
	if !req.ContentOnly {
		req.Have = make([]merkle.Leaf, len(ask))
	}
	byKey := make(map[merkle.Key]*incoming, len(ask))
	for i, in := range ask {
		req.Keys[i] = in.env.Key()
		if req.Have != nil {
			req.Have[i] = in.env.Leaf()
		}
		byKey[req.Keys[i]] = in
	}
	resp, err := s.conn().Request(ctx, req)
	if err != nil {
		return 0
	}
	rr, ok := resp.(*wire.RecordsResponse)
	if !ok {
		return 0
	}
	got := 0
	for _, rd := range rr.Records {
		in := byKey[rd.Key]
		if in == nil || in.content != nil || len(rd.Content) == 0 {
			continue
		}
		content, err := s.e.codec.decodeContent(rd, in.rec)
		if err != nil {
			continue // another version's, or broken: its block is asked for as usual
		}
		in.content = content
		got += len(content)
	}
	return got
}
