package share

import (
	"fmt"

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

// Check decides whether this share accepts envelope e: it must be signed by
// the share key and, where this key can read it, hold a valid record whose
// path hashes to the envelope's tree key (so a writer cannot file a record
// under another path's key). An Encrypted key can only check the signature
// and returns a zero Record; so does any key for a sealed envelope.
func (k Key) Check(e record.Envelope) (record.Record, error) {
	if k.level < Encrypted {
		return record.Record{}, fmt.Errorf("check record envelope: %s key: %w", k.level, ErrLevel)
	}
	if err := e.Verify(k.PublicKey()); err != nil {
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
