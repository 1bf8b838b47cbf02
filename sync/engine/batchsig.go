package engine

import (
	"errors"
	"fmt"
	gosync "sync"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// Batch signing. A device that lacks wire.BatchSigCapability cannot open a
// batched envelope, and an envelope once sealed travels unchanged to every
// member (relayed, vaulted, served later). So a share's scans seal in
// batches only while every member of the share has been seen, in this run,
// announcing the capability in its Hello: a member not yet seen since the
// start, a member added by SetMembers, or one whose last Hello lacked it
// turns batching off for the next scan. Envelopes signed alone stay valid.
type batchPeers struct {
	mu struct {
		gosync.Mutex
		seen map[identity.DeviceID]bool // guarded by mu: whether its last Hello had the capability
	}
}

// note records what peer id's Hello announced.
func (b *batchPeers) note(id identity.DeviceID, capable bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.seen == nil {
		b.mu.seen = make(map[identity.DeviceID]bool)
	}
	b.mu.seen[id] = capable
}

func (b *batchPeers) allCapable(ids []identity.DeviceID) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if !b.mu.seen[id] {
			return false
		}
	}
	return true
}

// speaksBatchSig reports whether the peer's Hello offers batched envelopes.
func (s *Session) speaksBatchSig() bool {
	return s.speaks(wire.BatchSigCapability)
}

// noteBatchSig records the capability of a session's peer and updates the
// shares it is a member of.
func (e *Engine) noteBatchSig(s *Session) {
	e.batch.note(s.id, s.speaksBatchSig())
	for _, f := range e.folders() {
		if f.isMember(s.id) {
			f.updateBatchSigning()
		}
	}
}

// updateBatchSigning turns the share's batch signing on when every other
// member announced the capability, off otherwise.
func (f *folder) updateBatchSigning() {
	f.mu.Lock()
	ids := make([]identity.DeviceID, 0, len(f.mu.members))
	for id := range f.mu.members {
		if id != f.e.self {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	f.idx.SetBatchSigning(len(ids) > 0 && f.e.batch.allCapable(ids))
}

// Batched envelopes on the wire. To a peer that reads them, a record of a
// signed batch travels trimmed of its proof and signature (encoded, as any
// record, against the envelope the peer holds at its key), and each
// message carries, once per batch it holds records of, the signature and
// the hashes of the subtrees none of them is in (record.SplitBatch). The
// receiver rebuilds the exact envelopes (record.JoinBatch) and checks them
// as any other: one Ed25519 verification per batch. A touch of many files
// then pays no signature or proof per record.

// encodeTrimmedFor is encodeRecordFor for a peer that reads batched
// envelopes: a batched envelope goes trimmed (trimmed is true), any other
// whole.
func (c *codec) encodeTrimmedFor(env record.Envelope, base *record.Envelope, p packing) (rd wire.RecordData, trimmed bool) {
	raw, ok := env.Trimmed()
	if !ok {
		return c.encodeRecordFor(env, base, p), false
	}
	return c.encodeRaw(env.Key(), raw, base, p), true
}

// batchUp names, in recs (trimmed records: envs[i] is the envelope of
// recs[i], the zero Envelope for a record sent whole), the batch each
// trimmed record belongs to, and returns those batches.
func batchUp(recs []wire.RecordData, envs []record.Envelope) ([]wire.RecordData, []wire.RecordBatch, error) {
	if envs == nil {
		return recs, nil, nil
	}
	type group struct {
		at   int // index in batches
		envs []record.Envelope
		seen map[int]bool // indexes in the batch
	}
	groups := map[string]*group{}
	var order []*group
	out := make([]wire.RecordData, 0, len(recs))
	for i, rd := range recs {
		n, index := envs[i].Batch()
		if n == 0 {
			out = append(out, rd)
			continue
		}
		sig := string(envs[i].Signature())
		g := groups[sig]
		if g == nil {
			g = &group{at: len(order), seen: map[int]bool{}}
			groups[sig] = g
			order = append(order, g)
		}
		if g.seen[index] {
			continue // the same envelope twice (asked for twice): once is enough
		}
		g.seen[index] = true
		g.envs = append(g.envs, envs[i])
		rd.Batch = uint32(g.at + 1)
		out = append(out, rd)
	}
	batches := make([]wire.RecordBatch, len(order))
	for i, g := range order {
		hashes, err := record.SplitBatch(g.envs)
		if err != nil {
			return nil, nil, err
		}
		batches[i].Signature = [64]byte(g.envs[0].Signature())
		batches[i].Hashes = hashes
	}
	return out, batches, nil
}

// joinBatches rebuilds the trimmed records of a message: raws[i] is the
// decoded Data of recs[i] (nil: left out, with every record of its batch);
// a trimmed one becomes its whole envelope's bytes.
func joinBatches(recs []wire.RecordData, raws [][]byte, batches []wire.RecordBatch) error {
	byBatch := make([][]int, len(batches))
	for i, rd := range recs {
		if rd.Batch > 0 && raws[i] != nil {
			if int(rd.Batch) > len(batches) {
				return fmt.Errorf("%w: record names batch %d of %d", errBadData, rd.Batch, len(batches))
			}
			byBatch[rd.Batch-1] = append(byBatch[rd.Batch-1], i)
		}
	}
	for b, at := range byBatch {
		if len(at) == 0 {
			continue
		}
		trimmed := make([][]byte, len(at))
		for j, i := range at {
			trimmed[j] = raws[i]
		}
		envs, err := record.JoinBatch(trimmed, batches[b].Signature[:], batches[b].Hashes)
		if err != nil {
			return fmt.Errorf("%w: batch %d: %v", errBadData, b+1, err)
		}
		for j, i := range at {
			raws[i] = envs[j].Bytes()
		}
	}
	return nil
}

// checkBatched is checkRecords for a message with batches: the records are
// decompressed, the trimmed ones joined into their envelopes, and all are
// checked. A batch one of whose records came as a delta against an
// envelope no longer held cannot be joined: all its records are asked for
// again (errNoBase).
func (s *Session) checkBatched(f *folder, data []wire.RecordData, batches []wire.RecordBatch, locals []*record.Envelope) []checkedRecord {
	out := make([]checkedRecord, len(data))
	raws := make([][]byte, len(data))
	onCores(len(data), func(i int) {
		raws[i], out[i].err = s.e.codec.decodeRaw(data[i], locals[i])
	})
	noBase := make([]bool, len(batches))
	for i, rd := range data {
		if rd.Batch > 0 && errors.Is(out[i].err, errNoBase) && int(rd.Batch) <= len(batches) {
			noBase[rd.Batch-1] = true
		}
	}
	for i, rd := range data {
		if rd.Batch > 0 && int(rd.Batch) <= len(batches) && noBase[rd.Batch-1] {
			raws[i], out[i].err = nil, errNoBase
		}
	}
	if err := joinBatches(data, raws, batches); err != nil {
		for i := range out {
			if out[i].err == nil {
				out[i].err = err
			}
		}
		return out
	}
	onCores(len(data), func(i int) {
		if out[i].err != nil {
			return
		}
		env, err := openRecord(data[i].Key, raws[i])
		if err != nil {
			out[i].err = err
			return
		}
		rec, err := f.idx.Check(env)
		out[i] = checkedRecord{env: env, rec: rec, err: err}
	})
	return out
}
