// Package identity is a device's Ed25519 key pair and the device ID derived
// from it.
//
// CONTRACT (skeleton, to be filled in by the peer work).
package identity

import (
	"encoding/binary"

	"github.com/blueshift-sync/blueshift/index/record"
)

// DeviceID names a device: the SHA-256 of its Ed25519 public key.
type DeviceID [32]byte

// Short is the form version vectors use.
func (d DeviceID) Short() record.Device {
	return record.Device(binary.BigEndian.Uint64(d[:8]))
}
