package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// HaveVersion is the first protocol version that speaks Have: it is never
// sent on a connection of an older version.
const HaveVersion uint32 = 4

// MaxHaveBlocks bounds Have.Blocks (and so Have.Held, an eighth of it).
const MaxHaveBlocks = 1 << 20

// Have says which blocks of a file Share's sender holds while it pulls the
// file (protocol version 4), so devices pulling one file at once fetch
// from each other instead of each from the device that had it first. File
// is the file's content hash (record.Record.FileHash), Blocks the length of
// its block list, and bit i%8 (least significant first) of Held[i/8] says
// block i is held. The newest Have of a file replaces the previous one; an
// empty Held (a pull given up) forgets it. A Have promises nothing: blocks
// are still asked for by hash and checked.
type Have struct {
	Share  share.ID
	File   block.Hash
	Blocks uint32
	Held   []byte
}

// Holds reports whether the Have marks block i as held.
func (m *Have) Holds(i int) bool {
	return i >= 0 && i < int(m.Blocks) && i/8 < len(m.Held) && m.Held[i/8]&(1<<(i%8)) != 0
}

func (m *Have) validate() error {
	if m.Blocks > MaxHaveBlocks {
		return fmt.Errorf("have: %d blocks exceed %d", m.Blocks, MaxHaveBlocks)
	}
	if len(m.Held) != 0 && len(m.Held) != int(m.Blocks+7)/8 {
		return fmt.Errorf("have: %d bytes of bits for %d blocks", len(m.Held), m.Blocks)
	}
	return nil
}

func (m *Have) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_Have{Have: &wirepb.Have{Share: m.Share[:], File: m.File[:], Blocks: m.Blocks, Held: m.Held}}
}

func haveFromPB(p *wirepb.Have) (*Have, error) {
	m := &Have{Blocks: p.GetBlocks(), Held: p.GetHeld()}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("have: %w", err)
	}
	if err := fixed("file", m.File[:], p.GetFile()); err != nil {
		return nil, fmt.Errorf("have: %w", err)
	}
	return m, nil
}
