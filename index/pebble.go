package index

import "github.com/cockroachdb/pebble"

// Pebble returns the device's database, for packages that keep their own
// keys beside the index's under a tag of their own (index/members: 'W').
func (db *DB) Pebble() *pebble.DB { return db.store.Pebble() }
