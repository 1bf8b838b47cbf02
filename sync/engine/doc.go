// Package engine makes paired devices hold the same shares.
//
// # Nouns
//
// The Engine is one device's sync engine. It holds a folder for every share
// this device syncs (the index share, the apply root on disk, the members who
// may see it) and a session for every connected peer. A folder owns one
// goroutine, its puller, which is the only code that writes the share's
// files; sessions feed it records they learned from peers.
//
// # How two devices agree
//
//  1. On connect, each side sends a ShareState (Merkle root and record count)
//     for every share both are members of. Equal roots: nothing more is said,
//     whatever the number of files.
//  2. Different roots: the side that notices walks the two trees with
//     merkle.Diff, asking the peer only for the nodes under differing
//     subtrees, and then asks for the records whose leaves differ. Each side
//     pulls for itself; neither pushes its view onto the other. A walk reads
//     one version of each tree however long it takes: its own from a
//     snapshot, the peer's from the version the peer's first answer names,
//     which the peer keeps for it (index.Share.WalkView, bounded in count
//     and age); if the peer let it go, the walk starts again from the
//     version it names instead.
//  3. Every received record is checked against the share's public key
//     (index.Share.Commit does it again) and handed to the folder's puller,
//     which decides with reconcile.Decide and makes the disk match. Records
//     a scan signed as a batch (index/record batch.go; only while every
//     member announced wire.BatchSigCapability, batchsig.go) travel to such
//     peers trimmed of proof and signature, rebuilt on arrival, and cost
//     one signature check per batch.
//     The puller commits the small files it staged and the files whose
//     attributes it set in place together once the batch is applied
//     (index.Share.CommitAll), and the directories it made (without an
//     fsync each) after one sync, before their files are fetched. Small
//     new files whose records came without their content (a push carries
//     some hundreds of files' content) have their records asked for again,
//     256 at a time, each with itself as the leaf held: the answer brings
//     the content and the record as a delta against itself (inline.go).
//     Until a peer's pushes are all handed to the puller, the share is
//     announced as pulling, so the pusher does not walk a half-applied tree.
//  4. After that, new local records are pushed to connected members as soon
//     as the index commits them, and a new ShareState follows every change of
//     root, so a peer that missed a push still converges.
//
// # Blocks
//
// A file is rebuilt in a resumable temp (apply.Temp): each block is taken
// from a local copy the index knows (db.Locate) that may be used, else asked of the members
// that are connected, spread across them, many in flight. Devices pulling
// one file at once form a swarm (swarm.go): each serves the blocks already
// in its temp, tells the members of the share which it holds (wire.Have,
// batched, to peers of version 4), picks blocks so that pullers take
// different ones from the device that had the file (a slice each, by
// rendezvous hashing) and the rest from each other, and asks a peer whose
// Have holds a block before one that said nothing of the file. With a LAN
// multicast group (Options.Multicast; multicast.go), a large file two or
// more LAN members pull at once is first sent once to the group by the
// device that has it, under a per-transfer key handed over TLS; the pull
// takes what arrives (checked against its hash) and fetches the rest as
// above. A block
// that has a local predecessor at the same offset travels as a delta against
// it (sync/delta). A changed file of over 1 MiB whose previous version the
// index holds here is asked first, from a peer whose Hello offers
// "patch/1" on another machine, as patches: spans of up to 8 MiB of its
// missing blocks in one zstd frame that uses the same range of the old
// version (widened by 2 MiB) as a raw dictionary (patch.go). The sender
// finds that range in its files by block hash, or in the versions of
// programs it kept as hard links in .blueshift/basis (basis.go); the
// receiver checks every block of a patch before writing any, cuts off a
// peer whose patch does not match, and fetches block by block whatever a
// patch did not bring. When the old version is an ELF program and the
// peer also offers "patch-reflate/1", the whole new version is asked first
// as one patch of its expansion (sync/reflate: the debug sections the
// linker compressed, decompressed in place) against the old version's
// (reflate.go); the receiver compresses the sections again and checks
// every block, and anything that does not match falls back to the spans.
// Every block is checked against its hash before use;
// a peer that sends a wrong one is disconnected and the block fetched
// elsewhere.
// A fixed set of workers (Options.Parallel) fetches a large file's blocks;
// a block that came raw is written from the received frame's buffer and
// the buffer given back (wire.BlockResponse.Release), never copied.
// A block that is all zeros (block.IsZeros: a sparse file's hole) is neither
// fetched nor written and stays a hole; status counts data bytes only.
//
// Each byte is hashed once per device where that is safe. A pull asks the
// index once per file which of its blocks it holds anywhere (index.DB.Holds)
// and looks up only those, so a first sync makes no per-block lookups that
// cannot hit. A block served from a file the last scan hashed, while the open
// file's size, mtime, inode and ctime are still what that scan saw (before
// and after the read), is not hashed again (index.Share.Proves); any other
// block read from disk or a temp is checked against its hash before it is
// served or used, so a file changed under the sender is never served as the
// old content.
//
// What a peer is served comes from the share it asked about and nothing
// else: blocks and inline content from that share's files (Share.Locate)
// and the temps of its own pulls, records, tree nodes and record deltas
// from its index and history. A peer may be a member of one share of this
// device only, and naming a block by hash proves nothing. Building a file
// uses a local copy in the file's own share, or in another share only when
// the peer that sent the record is a member of that one too: otherwise a
// writer of one share who learnt a hash could have this device copy another
// share's content into the first (folder.readFor).
//
// Records may also come from outside a session: Offer takes those an
// encrypted member kept (opened by sync/vault) and checks them as pushed
// records, and a block neither held here nor by a connected member is then
// asked of the BlockSource given with them and checked against its hash.
// SetHelpers gives a share block sources beyond its members (a send's
// receiver fetching from the sender's other devices, daemon/sendswarm.go):
// blocks are spread across the connected members and the helpers by
// offset, and a block no member serves (the sender went away) is asked of
// every helper; what a helper returns is checked against its hash.
// ReadBlock is what sync/vault seals: a block of the share as this device
// holds it, checked. ShareConfig.ChunkKey keys the chunk boundaries of
// shares with encrypted members (index.ScanOptions.ChunkKey).
//
// Beyond the share key's signature, a share's ShareConfig.Access (the
// daemon's answer from the share's membership log) decides whether each
// received record's maker may write; a refused record is dropped and
// nothing of it written.
//
// # Concurrency
//
// Engine methods are safe for concurrent use. Engine.mu guards the folder and
// session maps; each folder's puller owns its apply root writes and its
// pending queue; sessions own their per-share remote state under their own
// lock. Run owns every goroutine the engine starts and returns after all
// have stopped; once it is ending, AddShare fails with ErrStopped, so no
// folder waits for a puller that will never run.
//
// Nothing the engine does for one peer waits on another: what we send a
// peer on our own (announcements, pushed records) goes to that session's
// outgoing queue, drained by the session's sender goroutine. Announcements
// coalesce per share; pushes beyond a bound are dropped and their share
// announced instead, which the peer answers with a reconcile.
package engine
