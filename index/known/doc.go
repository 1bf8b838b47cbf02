// Package known is the device's store of the devices members introduced
// to it: for each share, the other members it learned of from a signed
// introduction (daemon/mesh.go), kept in the device's Pebble database and
// not in config.toml, which holds only what the user wrote (DESIGN
// decision 10: membership is data that changes at run time).
//
// # Nouns
//
// A Device is one introduced member of one share: its device ID, its
// Ed25519 public key (which finds it in the DHT), the name its introducer
// gave it, the addresses it was last reachable at, the member that
// introduced it and when. A Store holds them under the tag 'I':
//
//	'I' share[32] device[32] -> JSON Device   (at most MaxEncoded bytes)
//	'I' share[32] device[32] 'x' -> empty     (dismissed by the user)
//
// A device the user dismissed (`peer remove`: Dismiss) is forgotten and
// marked, so the daemon does not make a peer of it again only because the
// share's membership log names it; an introduction (Put) clears the mark.
//
// # Contracts
//
// The store decides nothing: the daemon checks an introduction's
// signatures and the share's membership log before it calls Put, and
// Removes a device once the log removes it. Decode checks the size and
// every field against the limits below and never panics. A Store is safe
// for concurrent use (Pebble is); writes are synced.
package known
