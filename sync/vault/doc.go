// Package vault replicates a share to its encrypted members: devices that
// keep and serve the share without being able to read it (the encrypted
// capability of index/share), beside the Merkle sync of sync/engine.
//
// # Nouns
//
// An Item is one sealed record: the record envelope as the share key
// signed it, sealed (index/seal) under the key of the epoch it was pushed
// in, filed at a Slot (a keyed hash of its path under a key only readers
// hold), with the sealed name of each of its blocks outside the seal
// (version 2; version 1, still read, sealed them inside), and signed by
// the device that pushed it. Its Tag (a keyed hash of the envelope) tells
// readers which items they hold without opening any. A sealed block is a
// block sealed with seal.Keys.SealBlock, named by the BLAKE3 of its bytes.
//
// The Store is the encrypted member's side: items and sealed blocks in a
// Pebble database of its own, one item per (slot, pusher), the larger Seq
// kept. Before it keeps an item it checks the pusher's signature, that the
// pusher is the peer that sent it, and that the membership log lets that
// device write; a block is kept under the hash of its bytes, and checked
// against it again before it is served; an item naming a sealed block the
// store does not hold is left out (PutResult.Missing). Collect deletes the
// sealed blocks no kept item names once they were put or asked about more
// than a grace ago (nothing while a version 1 item is kept). It answers
// only members (Access), and counts for status what it keeps of a share
// and when each pusher last put (Stats).
//
// A Writer is a writer's side: it lists the member's items, seals the
// records it holds whose tag the member lacks (or that its own item at the
// slot does not hold), with their blocks, under the current epoch's key,
// and sends the blocks the member does not hold, then the items. A Reader is a reader's side: it lists the items, fetches those
// whose tag it does not hold, checks the pusher (a writer by the log) and
// opens them with the epoch's key (an item of an epoch whose key this
// device lacks stays shut: Stats.Locked), and hands the envelopes to the
// engine (engine.Offer) with a Fetch that gets and opens their blocks.
//
// # What the encrypted member sees
//
// Per item: its slot (stable per path), pusher, seq, epoch, tag, the
// sealed names of its blocks and the sealed body's size (Padmé-padded);
// per block: its sealed size (padded). So it sees how many paths there
// are, when each changes, how many blocks each names and which it shares,
// and roughly how large each record and block is; never a name, a byte of
// content, a tree shape or an exact size (docs/security.md).
//
// Store and Reader's Fetch functions are safe for concurrent use; a Writer
// or a Reader is used by one goroutine at a time.
package vault
