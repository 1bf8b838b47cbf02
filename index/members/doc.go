// Package members is a share's membership log: signed, hash-linked entries
// that say who may do what in the share, kept in Pebble beside the records
// and relayed between members, so every member decides a peer's rights from
// the same data (DESIGN decision 10).
//
// # Nouns
//
// An Entry is one change: the genesis (the share's first owner, signed by
// its device key and by the share key, and the members it starts with),
// Add (a device at a Level: rw, ro or enc; or a new level for a member),
// Remove (a member leaves; a new key epoch starts, its EpochKey sealed to
// each remaining member's device key) and Owners (the owner set and the
// threshold k) and Mount (a share nested in this one: its share-relative
// path and ID, or an unmount; only a writer makes one, a share is mounted
// once and a path holds one mount; Store.Mounted tells whether a path lies
// inside one). Its Hash is BLAKE3-256 of its body, and each entry names the
// hash of the one before (prev) and its position (seq). A State is a log
// replayed; a Store keeps every share's log in Pebble.
//
// # Who may sign what
//
//   - Every entry is signed by its author, a current member; signatures of
//     removed devices and non-members count for nothing.
//   - Owners change only with k of the current owners' signatures; so does
//     removing an owner, and bringing back a removed device.
//   - While k = 1 (the default: one owner), any rw member may add or remove
//     rw members, as links did before logs. With k >= 2, a change to who
//     may write (add, raise to, lower from or remove rw) needs k owners.
//   - Otherwise a member adds members at most at its own level (rw or ro;
//     an enc member adds no one), and only a writer removes one; anyone may
//     remove itself.
//
// A change short of owner signatures is pending (ErrNeedsApproval): it is
// kept and relayed, other owners sign the same body (their signatures
// merge), and it joins the log once it has k; a pending change that no
// longer follows the head is dropped. A change with fewer than k valid
// signatures never takes effect.
//
// # Refusals
//
// An entry that is malformed (ErrInvalid), signed without the right
// (ErrRefused), already held (a replay, ErrRefused), or at a position held
// by another entry or not linked to the one before (ErrFork) is refused and
// the log stays as it was. The one exception: devices that had a share
// before logs existed each make a migrated genesis on first start; a log
// holding nothing else gives way to a longer log, then to a genesis that
// was not migrated, then to the smaller genesis hash, so all end equal.
//
// # Records
//
// Store.MayWrite is the check the sync engine makes of each record: it is
// taken if its ModifiedBy is a current rw member, or a removed one and the
// record's counter for it (Unix seconds, index.Scan) is not after the
// removal, or a device the log never named and the counter is not after
// the genesis (records older than the log, by devices gone before it). With
// no log yet, the share key alone decides, as before. Counters are the
// writer's own clock: a holder of the share secret can backdate one, which
// is why removal also cuts a device off at the connection.
//
// # Epoch keys
//
// Epoch 0 has no key in the log. A Remove carries a fresh random epoch key
// sealed (NaCl anonymous box) to the X25519 form of each remaining member's
// Ed25519 device key; members keep every key they get (Store.EpochKeys), so
// history stays readable to them. Encrypted members never get one: what
// readers push to them (sync/vault) is sealed under the current epoch's key.
//
// Decode checks every length against the limits before it keeps anything
// and never panics. State is a plain value; Store is safe for concurrent
// use.
package members
