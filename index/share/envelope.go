package share

import (
	"crypto/ed25519"
	"fmt"

	"github.com/blueshift-sync/blueshift/index/merkle"

	"github.com/blueshift-sync/blueshift/index/record"
)

// Seal signs r for this share, placing it at the tree key of its path. It
// needs a ReadWrite key.
func (k Key) Seal(r record.Record) (record.Envelope, error) {
	if k.level != ReadWrite {
		return record.Envelope{}, fmt.Errorf("seal record %q with %s key of share %s: %w", r.Path, k.level, k.id.Short(), ErrLevel)
	}
	return record.Seal(r, k.PathKey(string(r.Path)), k.priv)
}

// SealBatch signs rs together for this share (record.SealBatch): one
// signature for up to record.MaxBatch records. It needs a ReadWrite key.
func (k Key) SealBatch(rs []record.Record) ([]record.Envelope, error) {
	if k.level != ReadWrite {
		return nil, fmt.Errorf("seal %d records with %s key of share %s: %w", len(rs), k.level, k.id.Short(), ErrLevel)
	}
	keys := make([]merkle.Key, len(rs))
	for i, r := range rs {
		keys[i] = k.PathKey(string(r.Path))
	}
	return record.SealBatch(rs, keys, k.priv)
}

// Check decides whether this share accepts envelope e: it must be signed by
// the share key and, where this key can read it, hold a valid record whose
// path hashes to the envelope's tree key (so a writer cannot file a record
// under another path's key). An Encrypted key can only check the signature
// and returns a zero Record; so does any key for a sealed envelope.
func (k Key) Check(e record.Envelope) (record.Record, error) {
	return k.CheckWith(e, nil)
}

// CheckWith is Check, where roots (if not nil) remembers the batch roots
// already verified: the other records of a batch then cost a few hashes.
func (k Key) CheckWith(e record.Envelope, roots *record.Roots) (record.Record, error) {
	if k.level < Encrypted {
		return record.Record{}, fmt.Errorf("check record envelope: %s key: %w", k.level, ErrLevel)
	}
	verify := e.Verify
	if roots != nil {
		verify = func(pub ed25519.PublicKey) error { return roots.Verify(e, pub) }
	}
	if err := verify(k.PublicKey()); err != nil {
		return record.Record{}, fmt.Errorf("check record envelope for share %s: %w", k.id.Short(), err)
	}
	if k.level < ReadOnly || e.Sealed() {
		return record.Record{}, nil
	}
	r, err := e.Record()
	if err != nil {
		return record.Record{}, fmt.Errorf("check record envelope for share %s: %w", k.id.Short(), err)
	}
	if k.PathKey(string(r.Path)) != e.Key() {
		return record.Record{}, fmt.Errorf("check record %q for share %s: filed under another path's tree key: %w", r.Path, k.id.Short(), record.ErrCorrupt)
	}
	return r, nil
}
