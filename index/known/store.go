package known

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/index/store"
)

// Limits of one stored Device.
const (
	MaxAddresses = 8    // addresses kept per device
	MaxAddrLen   = 64   // bytes of one address (IPv6 literal, zone and port fit)
	MaxName      = 128  // bytes of a name
	MaxEncoded   = 2048 // bytes of one encoded Device
)

// tag is this package's first key byte in the device's Pebble database.
const tag = 'I'

// ErrCorrupt is a stored value that does not decode.
var ErrCorrupt = errors.New("corrupt known device")

// Device is one device introduced to a share.
type Device struct {
	ID           [32]byte          `json:"id"`            // the device ID: SHA-256 of PublicKey
	PublicKey    ed25519.PublicKey `json:"public_key"`    // nil when the introducer did not know it
	Name         string            `json:"name"`          // as its introducer named it
	Addresses    []string          `json:"addresses"`     // IP:port, where it was last reachable
	IntroducedBy [32]byte          `json:"introduced_by"` // the member whose introduction named it
	At           time.Time         `json:"at"`            // when it was first introduced
}

// Store keeps the introduced devices of every share.
type Store struct{ db *pebble.DB }

// Open returns the store kept in db (the index's Pebble database).
func Open(db *pebble.DB) *Store { return &Store{db: db} }

// Put keeps dev as a device of share id. A device already known keeps its
// introducer and time; it takes a public key or name it had none of, and
// dev's addresses go first in its list, before the ones it had (the newest
// introduction knows best where it listens; older ones stay as long as
// MaxAddresses leaves room). changed reports whether anything was written.
func (s *Store) Put(id share.ID, dev Device) (changed bool, err error) {
	if err := dev.check(); err != nil {
		return false, err
	}
	old, ok, err := s.Get(id, dev.ID)
	if err != nil {
		return false, err
	}
	if ok {
		merged := old
		if merged.PublicKey == nil {
			merged.PublicKey = dev.PublicKey
		}
		if merged.Name == "" {
			merged.Name = dev.Name
		}
		merged.Addresses = mergeAddresses(dev.Addresses, old.Addresses)
		if merged.equal(old) {
			return false, nil
		}
		dev = merged
	}
	b, err := json.Marshal(dev)
	if err != nil {
		return false, err
	}
	batch := s.db.NewBatch()
	defer batch.Close()
	batch.Set(key(id, dev.ID), b, nil)
	batch.Delete(dismissedKey(id, dev.ID), nil) // introduced again: known again
	if err := batch.Commit(pebble.Sync); err != nil {
		return false, fmt.Errorf("keep introduced device of share %s: %w", id.Short(), err)
	}
	return true, nil
}

// Dismiss forgets device dev of share id, as Remove does, and notes that
// the user did (`peer remove`): Dismissed reports it until an
// introduction puts the device again.
func (s *Store) Dismiss(id share.ID, dev [32]byte) error {
	batch := s.db.NewBatch()
	defer batch.Close()
	batch.Delete(key(id, dev), nil)
	batch.Set(dismissedKey(id, dev), nil, nil)
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("forget device of share %s: %w", id.Short(), err)
	}
	return nil
}

// Undismiss takes back a dismissal of device dev of share id (`peer add`
// of the device again): the share's log may make a peer of it once more.
// Nothing to take back is no error.
func (s *Store) Undismiss(id share.ID, dev [32]byte) error {
	if err := s.db.Delete(dismissedKey(id, dev), pebble.Sync); err != nil {
		return fmt.Errorf("take back the dismissal of a device of share %s: %w", id.Short(), err)
	}
	return nil
}

// Dismissed reports whether the user dismissed device dev of share id
// since it was last introduced.
func (s *Store) Dismissed(id share.ID, dev [32]byte) (bool, error) {
	_, closer, err := s.db.Get(dismissedKey(id, dev))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

// Get returns device dev of share id, if known.
func (s *Store) Get(id share.ID, dev [32]byte) (Device, bool, error) {
	v, closer, err := s.db.Get(key(id, dev))
	if errors.Is(err, pebble.ErrNotFound) {
		return Device{}, false, nil
	}
	if err != nil {
		return Device{}, false, err
	}
	defer closer.Close()
	d, err := Decode(v)
	if err != nil || d.ID != dev {
		return Device{}, false, fmt.Errorf("introduced device of share %s: %w", id.Short(), ErrCorrupt)
	}
	return d, true, nil
}

// List returns the devices of share id, in device ID order. A value that
// does not decode is skipped (a later introduction writes it again).
func (s *Store) List(id share.ID) ([]Device, error) {
	p := append([]byte{tag}, id[:]...)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: store.PrefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Device
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		d, err := Decode(it.Value())
		if err != nil || len(k) != 1+32+32 || !bytes.Equal(k[1+32:], d.ID[:]) {
			continue
		}
		out = append(out, d)
	}
	return out, it.Error()
}

// Remove forgets device dev of share id; removed reports whether it was
// known.
func (s *Store) Remove(id share.ID, dev [32]byte) (removed bool, err error) {
	if _, ok, _ := s.Get(id, dev); !ok {
		return false, nil
	}
	if err := s.db.Delete(key(id, dev), pebble.Sync); err != nil {
		return false, fmt.Errorf("forget introduced device of share %s: %w", id.Short(), err)
	}
	return true, nil
}

// Decode reads one stored Device and checks it.
func Decode(b []byte) (Device, error) {
	if len(b) > MaxEncoded {
		return Device{}, fmt.Errorf("%w: %d bytes, at most %d", ErrCorrupt, len(b), MaxEncoded)
	}
	var d Device
	if err := json.Unmarshal(b, &d); err != nil {
		return Device{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if err := d.check(); err != nil {
		return Device{}, err
	}
	return d, nil
}

// check holds d to the limits: a public key, when present, is the one of
// its ID.
func (d Device) check() error {
	switch {
	case d.ID == [32]byte{}:
		return fmt.Errorf("%w: no device ID", ErrCorrupt)
	case d.PublicKey != nil && (len(d.PublicKey) != ed25519.PublicKeySize || sha256.Sum256(d.PublicKey) != d.ID):
		return fmt.Errorf("%w: the public key is not the device's", ErrCorrupt)
	case len(d.Name) > MaxName:
		return fmt.Errorf("%w: a name of %d bytes, at most %d", ErrCorrupt, len(d.Name), MaxName)
	case len(d.Addresses) > MaxAddresses:
		return fmt.Errorf("%w: %d addresses, at most %d", ErrCorrupt, len(d.Addresses), MaxAddresses)
	case slices.ContainsFunc(d.Addresses, func(a string) bool { return len(a) > MaxAddrLen }):
		return fmt.Errorf("%w: an address longer than %d bytes", ErrCorrupt, MaxAddrLen)
	}
	return nil
}

func (d Device) equal(o Device) bool {
	return d.ID == o.ID && bytes.Equal(d.PublicKey, o.PublicKey) && d.Name == o.Name &&
		slices.Equal(d.Addresses, o.Addresses) && d.IntroducedBy == o.IntroducedBy && d.At.Equal(o.At)
}

// mergeAddresses is newer followed by the addresses of older it lacks, at
// most MaxAddresses.
func mergeAddresses(newer, older []string) []string {
	out := slices.Clone(newer)
	for _, a := range older {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out[:min(len(out), MaxAddresses)]
}

func key(id share.ID, dev [32]byte) []byte {
	k := make([]byte, 0, 1+32+32+1)
	k = append(k, tag)
	k = append(k, id[:]...)
	return append(k, dev[:]...)
}

// dismissedKey marks a dismissed device: its key with one more byte, which
// List skips by its length.
func dismissedKey(id share.ID, dev [32]byte) []byte { return append(key(id, dev), 'x') }
