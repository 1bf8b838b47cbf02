package index

import (
	"bytes"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/blueshift-sync/blueshift/index/record"
)

// Batch signing. A scan seals the records it writes sealBatch at a time
// under one signature (record.SealBatch) once SetBatchSigning turned it on;
// Check remembers the batch roots it verified, so a receiver verifies one
// signature per batch and hashes each record's proof.
const (
	// sealBatch is the records signed together: a proof of 5 hashes (160
	// bytes stored per record) for a 32nd of a signature each.
	sealBatch = 32
	// rootsKept bounds the verified roots a share remembers: batches of
	// far more records than a receiver holds between check and commit.
	rootsKept = 1024
)

type batchSigning struct {
	on    atomic.Bool   // seal in batches; off: each record alone
	roots *record.Roots // batch roots Check verified; set by newShare
}

// SetBatchSigning says whether this device's scans may sign records in
// batches. Only peers that announce they read batched envelopes can open
// them, so the caller turns it on only when every device it knows of the
// share does (sync/engine); envelopes signed alone stay valid either way.
func (s *Share) SetBatchSigning(on bool) { s.batch.on.Store(on) }

// BatchSigning reports what SetBatchSigning last set.
func (s *Share) BatchSigning() bool { return s.batch.on.Load() }

// toSeal queues c, whose record is yet to be sealed; the queue is sealed
// before the Pebble batch is committed (sealAll).
func (w *writer) toSeal(c change) error {
	w.sealing = append(w.sealing, c)
	w.sealingBytes += sealedSize(c.seal)
	if !w.s.batch.on.Load() {
		return w.sealAll()
	}
	return nil
}

// sealAll seals the queued records, sealBatch at a time in tree-key order,
// and writes their envelopes. In key order, not in the order the scan met
// them: a walk asks for records in key order, so the records of one answer
// then share their batches, and the batch's signature and the proof
// hashes travel once for many of them. Sealed in scan order, a first
// sync's walk of 200,000 tiny files fetched records that each needed a
// proof and a signature of their own (~224 bytes each, more than a tiny
// file's record), where a push, which carries whole batches, did not.
func (w *writer) sealAll() error {
	if len(w.sealing) == 0 {
		return nil
	}
	slices.SortFunc(w.sealing, func(a, b change) int { return bytes.Compare(a.pathKey[:], b.pathKey[:]) })
	for lo := 0; lo < len(w.sealing); lo += sealBatch {
		if err := w.seal(w.sealing[lo:min(lo+sealBatch, len(w.sealing))]); err != nil {
			return err
		}
	}
	clear(w.sealing)
	w.sealing, w.sealingBytes = w.sealing[:0], 0
	return nil
}

// sealedSize estimates the bytes r's envelope adds to a batch once sealed:
// its path and blocks, and ~400 bytes of other fields, signature and proof.
// It lets a scan's batch end at its bytes (scanBatchBytes) while its
// records wait to be sealed together.
func sealedSize(r *record.Record) int {
	return len(r.Path) + len(r.Blocks)*(32+4) + 400
}

// seal seals cs together and writes their envelopes.
func (w *writer) seal(cs []change) error {
	rs := make([]record.Record, len(cs))
	for i, c := range cs {
		rs[i] = *c.seal
	}
	envs, err := w.s.key.SealBatch(rs)
	if err != nil {
		return fmt.Errorf("seal records of %q and %d more: %w", rs[0].Path, len(rs)-1, err)
	}
	for i, c := range cs {
		if err := w.putEnvelope(envs[i], &rs[i], c.oldEnv, c.oldRec); err != nil {
			return err
		}
	}
	return nil
}
