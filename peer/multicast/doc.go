// Package multicast sends blocks once to a UDP multicast group on the LAN,
// for every member that needs them, and takes them in on the receivers.
//
// Nouns:
//   - A Key is a session's 32-byte secret, made at random by the sender for
//     one transfer and handed to each receiver over its TLS connection (the
//     engine's wire messages); a SessionID (8 random bytes) names the
//     session in every datagram.
//   - A datagram (datagram.go) is a clear header (magic, version, kind,
//     session, sequence number) and a body sealed with ChaCha20-Poly1305
//     under the session's key, the header being its additional data and the
//     sequence number its nonce. A Sealer makes them; an Opener checks them
//     and drops replays (a window of the last sequence numbers seen).
//   - A payload (one block, as the engine sends it: compressed or raw, with
//     its encoding) is cut into shards of ShardSize bytes, in groups of at
//     most MaxGroupShards data shards, each group followed by Reed-Solomon
//     parity shards (fec.go): any k of a group's k+m shards rebuild it, so
//     a lost datagram costs no round trip. An Assembler puts payloads back
//     together.
//   - A Pacer (rate.go) spaces the sender's datagrams: a rate between a
//     floor and the device's cap that halves on a loss report and grows
//     back slowly (AIMD).
//   - A Group (group.go) is the UDP socket of one family, bound to the group
//     port and joined to the group on the interfaces in use; it sends
//     datagrams to the group and hands those of registered sessions to
//     their Opener.
//
// Contracts: a datagram is taken only if it opens under a registered
// session's key with a sequence number not seen before, so a stranger on
// the LAN (no key) can inject nothing and replay nothing: at worst its
// datagrams are dropped and the receiver repairs what it lacks by unicast.
// What an Assembler delivers is only the sender's bytes: the engine still
// checks each block against its hash. Every length in a datagram is checked
// against a hard limit before anything is allocated; no input panics.
// A Group's Run owns its reader goroutine and returns once it has stopped;
// Send, Register and Unregister are safe to call concurrently with Run.
package multicast
