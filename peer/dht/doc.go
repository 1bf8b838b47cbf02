// Package dht finds devices without a server of ours: every daemon is a
// node of the BitTorrent mainline DHT (github.com/anacrolix/dht/v2), and
// each device publishes where it can be reached as a BEP 44 mutable item
// signed by its Ed25519 device key.
//
// # Nouns
//
//   - Node: this device's DHT node on its own UDP socket. It answers other
//     nodes (routing, and storing their items), keeps its routing table
//     filled from the bootstrap list (Run), publishes our item (Publish) and
//     looks other devices up (Lookup). PublishAs and LookupAs do the same
//     for an item of another key and salt (a one-off send's meeting point,
//     whose key both ends derive from its code).
//   - PingQuery and ObservedIn: a KRPC ping from any socket, whose reply
//     says where the node saw that socket (BEP 42's "ip"): our NAT's
//     public address, as STUN would tell it.
//   - Item: one device's addresses, the value of the BEP 44 mutable item
//     whose key is the device's public key and whose salt is Salt. Its
//     sequence number only grows (milliseconds since 1970, or one more than
//     the highest the network holds), so a newer publication replaces an
//     older one everywhere.
//
// # The item
//
// The value is a bencoded dictionary (at most 1000 bytes, BEP 44's limit):
//
//	d
//	  1:a l <addr> <addr> ... e   addresses, "IP:port" text (at most MaxAddrs, each at most 64 bytes)
//	e
//
// An address is an IP literal (never a name: looking an item up must not
// make us ask DNS anything) with a port that is not zero; unspecified,
// multicast and broadcast IPs are refused. DecodeItem refuses the whole
// item if any entry is wrong or there are more than MaxAddrs of them, and
// Lookup hands out at most MaxDial addresses of an item, so an item that
// points at a victim costs it at most MaxDial connection attempts per
// lookup.
//
// # Trust
//
// Anyone can store anything in the DHT. Lookup accepts a value only if its
// BEP 44 signature verifies with the public key asked for (the traversal,
// traverse.go, checks each answer, and Lookup checks the chosen one again)
// and its sequence number is not
// lower than the highest this Node has accepted for that key (ErrStale):
// a replayed old item cannot send us back to where a device used to be.
// Only devices that know a device's public key (its peers: the device ID
// is a hash of it, so the ID alone does not reveal it) can find its item.
//
// # Concurrency
//
// New starts the library's packet reader; Close stops it and waits for
// it and for the queries under way. Where the library misbehaves in ways
// that matter here, this package works around it and says so where it
// does: its get/put helper raced (traverse.go replaces it), its
// find_node and get answers chose nodes by the wrong argument
// (fixTarget), its traversals leak when no node is known (not started
// then), and its default send limiter is shared by every node of a
// process (each Node has its own). Run owns the table maintenance and returns when ctx ends. Publish,
// Lookup, AddNode and Addr are safe for concurrent use.
package dht
