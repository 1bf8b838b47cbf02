package vault

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	gosync "sync"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/seal"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Requester is what the vault needs of a connection to an encrypted
// member (*conn.Conn is one).
type Requester interface {
	Request(ctx context.Context, m wire.Message) (wire.Message, error)
}

// Stats counts what a push sent or a pull took.
type Stats struct {
	Items, Blocks int // sent (push) or opened (pull)
	Bytes         int64
	Locked        int // items sealed under an epoch key this device lacks (pull)
	Skipped       int // records whose blocks are not all readable here (push)
	Missing       int // items the member left out, lacking a block they name (push)
}

// Writer pushes one share's records, sealed, to its encrypted members.
type Writer struct {
	Share  share.ID
	Base   seal.Keys          // of the share's read key: slots and tags
	Epoch  uint64             // the current key epoch
	Keys   seal.Keys          // of the current epoch's key: what is sealed
	Device ed25519.PrivateKey // this device's key: signs the items
	// ReadBlock returns the plaintext of one of the share's blocks held
	// here, checked against its hash; false if it is not.
	ReadBlock func(h block.Hash, size uint32) ([]byte, bool)
	// OldItems seals items of version 1 (their sealed names inside the
	// body), for a member that does not announce wire.VaultListedCapability.
	OldItems bool
	Log      *slog.Logger // nil: discard
}

// Push brings the encrypted member at c up to date with envs, the share's
// records here: each record the member does not already hold (by tag) is
// sealed with its blocks under the current epoch and sent, blocks the
// member holds (by sealed name) are not. Where this device's own item at a
// record's slot holds another record (one it replaced since, or another
// writer's change it took), or does not list its blocks (version 1), the
// record is sealed again there, so its old blocks are no longer named and
// the member collects them. A record whose blocks are not all readable here
// (a file changed since) is left for the next push, as is one the member
// left out (Stats.Missing).
func (w *Writer) Push(ctx context.Context, c Requester, envs []record.Envelope) (Stats, error) {
	log := w.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	entries, _, err := listAll(ctx, c, w.Share, 0)
	if err != nil {
		return Stats{}, err
	}
	self := identity.FromPublicKey(w.Device.Public().(ed25519.PublicKey))
	tags := make(map[[32]byte]bool, len(entries))
	own := map[[32]byte]wire.VaultEntry{} // by slot
	for _, e := range entries {
		tags[e.Tag] = true
		if identity.DeviceID(e.Key[32:]) == self {
			own[[32]byte(e.Key[:32])] = e
		}
	}
	b := batch{w: w, c: c, sent: map[block.Hash]bool{}}
	for _, env := range envs {
		if env.Sealed() {
			continue
		}
		tag := w.Base.Tag(env.Bytes())
		rec, err := env.Record()
		if err != nil {
			continue
		}
		slot := w.Base.Slot(string(rec.Path))
		mine, held := own[slot]
		switch {
		case held && mine.Tag == tag && (mine.ListsBlocks || w.OldItems):
			continue // ours, current
		case !held && tags[tag]:
			continue // another writer's item holds it
		}
		p := Plain{Envelope: env, Names: make([]block.Hash, len(rec.Blocks))}
		ok := true
		var sealed [][]byte
		for i, ref := range rec.Blocks {
			plain, found := w.ReadBlock(ref.Hash, ref.Size)
			if !found {
				ok = false
				break
			}
			s, err := w.Keys.SealBlock(plain, ref.Hash)
			if err != nil {
				return b.stats, err
			}
			p.Names[i] = seal.SealedName(s)
			sealed = append(sealed, s)
		}
		if !ok {
			log.Debug("a record's blocks are not all readable here: pushed later", "share", w.Share.Short(), "path", rec.Path)
			b.stats.Skipped++
			continue
		}
		version := byte(itemVersion)
		if w.OldItems {
			version = itemVersion1
		}
		it, err := sealItem(version, w.Share, w.Keys, w.Epoch, mine.Seq+1, slot, tag, p, w.Device)
		if err != nil {
			return b.stats, err
		}
		if err := b.add(ctx, it, sealed); err != nil {
			return b.stats, err
		}
	}
	err = b.flush(ctx)
	return b.stats, err
}

// batch gathers sealed blocks and items up to one VaultPut.
type batch struct {
	w      *Writer
	c      Requester
	items  [][]byte
	blocks [][]byte
	names  [][wire.VaultNameSize]byte
	size   int
	sent   map[block.Hash]bool // sealed names sent this push
	stats  Stats
}

func (b *batch) add(ctx context.Context, it Item, sealed [][]byte) error {
	for _, s := range sealed {
		n := seal.SealedName(s)
		if b.sent[n] {
			continue
		}
		if len(b.blocks) == wire.MaxVaultBlocks || b.size+len(s) > wire.VaultBatchBytes {
			if err := b.flush(ctx); err != nil {
				return err
			}
		}
		b.sent[n] = true
		b.blocks = append(b.blocks, s)
		b.names = append(b.names, n)
		b.size += len(s)
	}
	if len(b.items) == wire.MaxVaultItems || b.size+len(it.raw) > wire.VaultBatchBytes {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	b.items = append(b.items, it.raw)
	b.size += len(it.raw)
	return nil
}

// flush sends what is gathered, less the blocks the member already holds.
func (b *batch) flush(ctx context.Context) error {
	if len(b.items) == 0 && len(b.blocks) == 0 {
		return nil
	}
	blocks := b.blocks
	if len(b.names) > 0 {
		resp, err := b.c.Request(ctx, &wire.VaultBlocks{Share: b.w.Share, Names: b.names})
		if err != nil {
			return fmt.Errorf("ask an encrypted member of share %s which blocks it holds: %w", b.w.Share.Short(), err)
		}
		br, ok := resp.(*wire.VaultBlocksResponse)
		if !ok {
			return fmt.Errorf("ask an encrypted member of share %s which blocks it holds: %s", b.w.Share.Short(), answer(resp))
		}
		blocks = blocks[:0:0]
		for i, s := range b.blocks {
			if !br.Holds(i) {
				blocks = append(blocks, s)
			}
		}
	}
	put := &wire.VaultPut{Share: b.w.Share, Items: b.items, Blocks: blocks}
	resp, err := b.c.Request(ctx, put)
	if err != nil {
		return fmt.Errorf("push to an encrypted member of share %s: %w", b.w.Share.Short(), err)
	}
	ack, ok := resp.(*wire.VaultPutAck)
	if !ok {
		return fmt.Errorf("push to an encrypted member of share %s: %s", b.w.Share.Short(), answer(resp))
	}
	b.stats.Missing += int(ack.Missing)
	b.stats.Items += len(b.items) - int(ack.Missing)
	b.stats.Blocks += len(blocks)
	for _, s := range blocks {
		b.stats.Bytes += int64(len(s))
	}
	for _, it := range b.items {
		b.stats.Bytes += int64(len(it))
	}
	b.items, b.blocks, b.names, b.size = nil, nil, nil, 0
	return nil
}

// Reader pulls one share's sealed records from encrypted members and
// opens them. It remembers what it handled, and which sealed block stands
// for each plaintext block it learnt of; it is not safe for concurrent use
// except for the Fetch functions it hands out.
type Reader struct {
	Share share.ID
	Base  seal.Keys
	// Epoch returns the sealing keys of a key epoch; false if this device
	// does not hold that epoch's key (it was not a member when it began).
	Epoch func(epoch uint64) (seal.Keys, bool)
	// MayPush says whether a device may write the share (the membership
	// log): only its sealed records are opened.
	MayPush func(identity.DeviceID) bool
	Log     *slog.Logger // nil: discard

	seen   map[[32]byte]bool // tags handled (applied, or unopenable)
	blocks *blockMap         // plaintext hash -> sealed name and keys
	gen    uint64            // the member's generation when all was handled
}

// Generation is the member's generation when this Reader last handled
// every item it listed there (0: not yet).
func (r *Reader) Generation() uint64 { return r.gen }

// Fetch returns a block's plaintext by its hash, from an encrypted member.
type Fetch func(ctx context.Context, h block.Hash, size uint32) ([]byte, error)

// Pull asks the encrypted member at c for the share's items whose tag is
// neither in known (called only when the member's items changed since the
// last Pull: the tags of the envelopes held here) nor handled before,
// opens them, and hands their envelopes to apply with a Fetch for their
// blocks.
// An item not signed by a writer, or that does not open, is refused and
// logged; one sealed under an epoch this device lacks is counted in Locked.
func (r *Reader) Pull(ctx context.Context, c Requester, known func() (map[[32]byte]bool, error), apply func([]record.Envelope, Fetch) error) (Stats, error) {
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if r.seen == nil {
		r.seen, r.blocks = map[[32]byte]bool{}, &blockMap{m: map[block.Hash]sealedRef{}}
	}
	entries, gen, err := listAll(ctx, c, r.Share, r.gen)
	if err != nil || gen == r.gen {
		return Stats{}, err
	}
	held := map[[32]byte]bool{}
	if known != nil && len(entries) > 0 {
		if held, err = known(); err != nil {
			return Stats{}, err
		}
	}
	var want [][wire.VaultKeySize]byte
	for _, e := range entries {
		if !held[e.Tag] && !r.seen[e.Tag] {
			want = append(want, e.Key)
		}
	}
	var st Stats
	fetch := r.fetcher(c)
	for len(want) > 0 {
		n := min(len(want), 512)
		resp, err := c.Request(ctx, &wire.VaultGet{Share: r.Share, Keys: want[:n]})
		want = want[n:]
		if err != nil {
			return st, fmt.Errorf("get sealed records of share %s from an encrypted member: %w", r.Share.Short(), err)
		}
		gr, ok := resp.(*wire.VaultGetResponse)
		if !ok {
			return st, fmt.Errorf("get sealed records of share %s from an encrypted member: %s", r.Share.Short(), answer(resp))
		}
		var envs []record.Envelope
		for _, raw := range gr.Items {
			st.Bytes += int64(len(raw))
			env, err := r.open(raw, &st)
			if err != nil {
				log.Warn("refused a sealed record from an encrypted member", "share", r.Share.Short(), "err", err)
				continue
			}
			if env.Bytes() != nil {
				envs = append(envs, env)
			}
		}
		if len(envs) == 0 {
			continue
		}
		st.Items += len(envs)
		if err := apply(envs, fetch); err != nil {
			return st, err
		}
	}
	if st.Locked == 0 {
		r.gen = gen
	}
	return st, nil
}

// open checks and opens one item; a zero envelope and no error: an item
// sealed under an epoch this device lacks.
func (r *Reader) open(raw []byte, st *Stats) (record.Envelope, error) {
	it, err := DecodeItem(raw)
	if err != nil {
		return record.Envelope{}, err
	}
	if err := it.Verify(r.Share); err != nil {
		return record.Envelope{}, err
	}
	if !r.MayPush(it.Pusher()) {
		return record.Envelope{}, fmt.Errorf("sealed record %x pushed by device %s, not a writer of the share: %w", it.slot[:4], it.Pusher().Abbrev(), ErrRefused)
	}
	keys, ok := r.Epoch(it.epoch)
	if !ok {
		st.Locked++ // not seen: tried again, in case the key arrives later
		return record.Envelope{}, nil
	}
	p, err := it.Open(keys)
	if err != nil {
		return record.Envelope{}, err
	}
	rec, err := p.Envelope.Record()
	if err != nil {
		return record.Envelope{}, err
	}
	if r.Base.Slot(string(rec.Path)) != it.slot || r.Base.Tag(p.Envelope.Bytes()) != it.tag || len(p.Names) != len(rec.Blocks) {
		return record.Envelope{}, fmt.Errorf("sealed record %q filed under another slot or tag, or with %d block names for %d blocks: %w", rec.Path, len(p.Names), len(rec.Blocks), ErrCorrupt)
	}
	r.seen[it.tag] = true
	for i, ref := range rec.Blocks {
		r.blocks.put(ref.Hash, sealedRef{name: p.Names[i], keys: keys})
	}
	return p.Envelope, nil
}

type sealedRef struct {
	name block.Hash
	keys seal.Keys
}

// blockMap is shared by a Reader and the Fetch functions it hands out,
// which the engine calls from its pullers.
type blockMap struct {
	mu gosync.Mutex
	m  map[block.Hash]sealedRef // guarded by mu
}

func (b *blockMap) put(h block.Hash, s sealedRef) {
	b.mu.Lock()
	b.m[h] = s
	b.mu.Unlock()
}

func (b *blockMap) get(h block.Hash) (sealedRef, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.m[h]
	return s, ok
}

// fetcher returns the Fetch of blocks from the member at c.
func (r *Reader) fetcher(c Requester) Fetch {
	share, blocks := r.Share, r.blocks
	return func(ctx context.Context, h block.Hash, size uint32) ([]byte, error) {
		ref, ok := blocks.get(h)
		if !ok {
			return nil, fmt.Errorf("block %x: no sealed record named it", h[:4])
		}
		resp, err := c.Request(ctx, &wire.VaultBlocks{Share: share, Names: [][wire.VaultNameSize]byte{ref.name}, Data: true})
		if err != nil {
			return nil, fmt.Errorf("get sealed block %x of share %s: %w", ref.name[:4], share.Short(), err)
		}
		br, ok := resp.(*wire.VaultBlocksResponse)
		if !ok || !br.Holds(0) || len(br.Data) != 1 {
			return nil, fmt.Errorf("get sealed block %x of share %s: %s", ref.name[:4], share.Short(), answer(resp))
		}
		if seal.SealedName(br.Data[0]) != ref.name {
			return nil, fmt.Errorf("sealed block %x of share %s: the bytes are another block's: %w", ref.name[:4], share.Short(), ErrCorrupt)
		}
		plain, err := ref.keys.OpenBlock(br.Data[0], h)
		if err != nil {
			return nil, err
		}
		if uint32(len(plain)) != size {
			return nil, fmt.Errorf("sealed block %x of share %s opens to %d bytes, the record says %d: %w", ref.name[:4], share.Short(), len(plain), size, ErrCorrupt)
		}
		return plain, nil
	}
}

// listAll lists every item of share id at the member at c, and the
// member's generation; none, and since, if nothing changed since then (a
// since of 0 always lists).
func listAll(ctx context.Context, c Requester, id share.ID, since uint64) ([]wire.VaultEntry, uint64, error) {
	var out []wire.VaultEntry
	var after []byte
	gen := uint64(0)
	for {
		resp, err := c.Request(ctx, &wire.VaultList{Share: id, After: after, Since: since})
		if err != nil {
			return nil, 0, fmt.Errorf("list sealed records of share %s at an encrypted member: %w", id.Short(), err)
		}
		lr, ok := resp.(*wire.VaultListResponse)
		if !ok {
			return nil, 0, fmt.Errorf("list sealed records of share %s at an encrypted member: %s", id.Short(), answer(resp))
		}
		if lr.Unchanged {
			return nil, since, nil
		}
		if gen == 0 {
			gen = lr.Generation // of the first page: a change while paging is listed next time
		}
		since = 0
		out = append(out, lr.Entries...)
		if !lr.More || len(lr.Entries) == 0 {
			return out, gen, nil
		}
		last := lr.Entries[len(lr.Entries)-1].Key
		after = last[:]
	}
}

// answer describes an answer that was not the one expected.
func answer(m wire.Message) string {
	var er *wire.ErrorResponse
	if e, ok := m.(*wire.ErrorResponse); ok {
		er = e
	}
	if er != nil {
		return fmt.Sprintf("refused: %s", er.Message)
	}
	if m == nil {
		return "no answer"
	}
	return "answered " + wire.Name(m)
}
