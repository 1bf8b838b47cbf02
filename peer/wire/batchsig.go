package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// BatchSigCapability in a Hello says the device opens and verifies batched
// record envelopes (index/record batch.go: one signature over the root of
// a batch of records, each carrying its inclusion proof). A writer seals
// records in batches only while every member of the share it knows has
// announced it (sync/engine batchsig.go); older devices would refuse them.
const BatchSigCapability = "batchsig1"

// MaxBatchHashes bounds the hashes of one RecordBatch: a batch holds at
// most 1024 records (index/record MaxBatch).
const MaxBatchHashes = 1024

// RecordBatch is what the trimmed records (RecordData.Batch) of one signed
// batch in a RecordPush or RecordsResponse lack: the batch signature, and
// the hashes of the batch's subtrees holding none of the message's records.
type RecordBatch struct {
	Signature [64]byte
	Hashes    [][32]byte
}

// checkBatches checks that every batch is named by a record and every
// record names a batch of the message or none.
func checkBatches(what string, rs []RecordData, bs []RecordBatch) error {
	if len(bs) > MaxRecords {
		return fmt.Errorf("%s: %d record batches exceed %d", what, len(bs), MaxRecords)
	}
	named := make([]bool, len(bs))
	for i := range rs {
		if b := rs[i].Batch; b > 0 {
			if int(b) > len(bs) {
				return fmt.Errorf("%s: record %d names batch %d of %d", what, i, b, len(bs))
			}
			named[b-1] = true
		}
	}
	for i, b := range bs {
		if !named[i] {
			return fmt.Errorf("%s: batch %d names no record", what, i+1)
		}
		if len(b.Hashes) > MaxBatchHashes {
			return fmt.Errorf("%s: batch %d has %d hashes, more than %d", what, i+1, len(b.Hashes), MaxBatchHashes)
		}
	}
	return nil
}

func batchesToPB(bs []RecordBatch) []*wirepb.RecordBatch {
	if len(bs) == 0 {
		return nil
	}
	out := make([]*wirepb.RecordBatch, len(bs))
	for i := range bs {
		p := &wirepb.RecordBatch{Signature: bs[i].Signature[:], Hashes: make([][]byte, len(bs[i].Hashes))}
		for j := range bs[i].Hashes {
			p.Hashes[j] = bs[i].Hashes[j][:]
		}
		out[i] = p
	}
	return out
}

func batchesFromPB(ps []*wirepb.RecordBatch) ([]RecordBatch, error) {
	if len(ps) > MaxRecords {
		return nil, fmt.Errorf("%d record batches exceed %d", len(ps), MaxRecords)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	out := make([]RecordBatch, len(ps))
	for i, p := range ps {
		if err := fixed("batch signature", out[i].Signature[:], p.GetSignature()); err != nil {
			return nil, err
		}
		if len(p.GetHashes()) > MaxBatchHashes {
			return nil, fmt.Errorf("record batch of %d hashes exceeds %d", len(p.GetHashes()), MaxBatchHashes)
		}
		if len(p.GetHashes()) > 0 {
			out[i].Hashes = make([][32]byte, len(p.GetHashes()))
		}
		for j, h := range p.GetHashes() {
			if err := fixed("batch hash", out[i].Hashes[j][:], h); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
