package keyring

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"

	"github.com/blueshift-sync/blueshift/index/share"
)

// tag is this package's first key byte in the device's Pebble database:
//
//	'Y' 'f' shareID[32] -> empty   a share this device took from its keyring
const (
	tag         = 'Y'
	subFollowed = 'f'
)

// Followed is the set of shares this device took from its keyring.
type Followed struct{ db *pebble.DB }

// OpenFollowed returns the set kept in db (the index's Pebble database).
func OpenFollowed(db *pebble.DB) Followed { return Followed{db: db} }

// Add notes that share id was taken from the keyring.
func (f Followed) Add(id share.ID) error {
	if err := f.db.Set(followedKey(id), nil, pebble.Sync); err != nil {
		return fmt.Errorf("note share %s as followed: %w", id.Short(), err)
	}
	return nil
}

// Has reports whether share id was taken from the keyring once.
func (f Followed) Has(id share.ID) (bool, error) {
	_, closer, err := f.db.Get(followedKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	closer.Close()
	return true, nil
}

func followedKey(id share.ID) []byte {
	return append([]byte{tag, subFollowed}, id[:]...)
}
