// Package share holds a share's keys and the capabilities derived from them.
//
// CONTRACT (skeleton, to be filled in by the index work). A share is born from a
// random Secret. From it, one way only:
//
//	Secret ──> ReadWrite key (Ed25519 signing key + read key + public key)
//	       ──> ReadOnly key  (read key + public key: can read names, verify)
//	       ──> Encrypted key (public key + path-key only: can verify, store,
//	                          forward; cannot read names or data)
//
// The share ID is derived from the public key, so a capability names its share.
package share

// ID names a share.
type ID [32]byte

// Level is what a key lets its holder do.
type Level uint8

const (
	Encrypted Level = iota + 1
	ReadOnly
	ReadWrite
)
