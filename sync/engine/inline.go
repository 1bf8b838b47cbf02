package engine

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
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
	// inlineBudget bounds the inline content per message. It is what the
	// receiver holds per queued batch: 4 MiB took a first sync of 20,000
	// small files to 240 MB of receiver RSS (100 MB without inlining);
	// 512 KiB keeps it at 120 MB with the same speed, and still carries a
	// whole batch of tiny files.
	inlineBudget = 512 << 10
)

// inlinable reports whether rec's content may travel with it: a file of one
// block of at most inlineMax bytes. Sender and receiver apply the same rule.
func inlinable(rec record.Record) bool {
	return !rec.Deleted && rec.Kind == record.File && len(rec.Blocks) == 1 && rec.Size <= inlineMax
}

// inliner attaches content to the records of one message of share f, read
// from f's files only (see folder.readShared), within its budget.
type inliner struct {
	f       *folder
	squeeze bool // compress where it pays (not to a peer on this machine)
	left    int
	held    map[block.Hash]bool // contents the receiver holds already (a rename's)
}

func (f *folder) newInliner(squeeze bool) *inliner {
	return &inliner{f: f, squeeze: squeeze, left: inlineBudget}
}

// add attaches the content of env's file to rd if the file is one small
// block that this device holds and the budget allows.
func (in *inliner) add(rd *wire.RecordData, env record.Envelope) {
	if in.left <= 0 || env.Sealed() {
		return
	}
	rec, err := env.Record()
	if err != nil || !inlinable(rec) {
		return
	}
	b := rec.Blocks[0]
	if int(b.Size) > in.left || in.held[rec.FileHash] {
		return
	}
	data, ok := in.f.readShared(b.Hash, b.Size)
	if !ok {
		return // changed since it was recorded: the receiver asks, and hears no
	}
	resp, err := in.f.e.codec.encodeBlock(data, nil, in.squeeze)
	if err != nil {
		return
	}
	rd.ContentEncoding, rd.Content = resp.Encoding, resp.Data
	in.left -= len(resp.Data)
}

// holds notes the contents of records a batch replaced: the receiver has
// them, so a file renamed or copied to a new path is not sent again.
func (in *inliner) holds(replaced []*record.Envelope) {
	for _, env := range replaced {
		if env == nil {
			continue
		}
		if rec, err := env.Record(); err == nil && !rec.Deleted && rec.Kind == record.File {
			if in.held == nil {
				in.held = make(map[block.Hash]bool)
			}
			in.held[rec.FileHash] = true
		}
	}
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
