package wire

// Version is the protocol version this build speaks, sent in Hello. Bump it
// whenever a message, field, encoding or rule changes meaning, and add a line
// below. MinVersion is the oldest version this build still talks to; two
// devices connect when max(MinVersion) <= min(Version) of the two, and both
// then speak the smaller Version.
//
// History:
//
//	1 (2026-11-24): first version. Frames are a 4-byte big-endian length and
//	  a protobuf Envelope (wirepb). Messages: Hello, Ping, Pong, Close,
//	  ErrorResponse, ShareState, NodesRequest/Response,
//	  RecordsRequest/Response, RecordPush, BlockRequest/Response.
//	  Hello.sealed_invites (field 5) added the same day, before any release:
//	  invitations by short code; older builds of version 1 never existed.
//	  ShareState.pulling (field 4) added the same day, likewise: a device
//	  still applying what it received says so, and peers wait for its next
//	  announcement instead of walking a tree that is still moving.
//	  RecordData.content_encoding and content (fields 5, 6) added the same
//	  day, likewise: a small file's content may travel with its record, so
//	  a first sync of many small files needs no block request per file.
//	2 (2026-12-03): JoinRequest/JoinResponse (envelope fields 40, 41): a
//	  device presents an invitation on a connection that is already open, so
//	  it can join a second share of a device it is connected to, and learns
//	  whether the invitation was accepted or refused (and why). Close.code
//	  (field 2): CodeRefused marks a device turned away (not paired, or its
//	  Hello's invitation not valid). Version 1 peers are still spoken to:
//	  they get no JoinRequest, and send no Close.code.
//	3 (2026-12-03): NodesRequest.root (field 3) and NodesResponse.root
//	  (field 2). A walk names the version of the tree it reads; the
//	  answerer serves it from a view kept of that version, or answers
//	  "root moved" (no nodes, the root to walk instead), so a walk of a tree
//	  that keeps changing reads one consistent version instead of failing
//	  on nodes that moved under it. Both fields absent mean what they meant
//	  before (the tree as it is now), so older peers are still spoken to.
//	4 (2026-12-03):
//	  - CodeRequest/CodeResponse (envelope fields 70, 71): a short code is
//	    the password of a PAKE run on a guest connection (the joiner's Hello
//	    carries "code=<locator>"), which hands the invitation link over
//	    sealed under the PAKE's key. Hello.sealed_invites is no longer sent
//	    (a sealed link could be guessed at offline); it is still decoded.
//	  - Have (envelope field 32, wirepb/have.proto): a device pulling a
//	    file says which of its blocks it holds, as they arrive (batched),
//	    and serves them from its temp, so devices pulling one file at once
//	    fetch from each other (swarm). Sent only on connections of version
//	    >= 4 (HaveVersion); older peers are asked for blocks as before.
//	  - Reach: Hello.observed (field 6), the address the sender sees the
//	    receiver come from (over QUIC, its reflexive address); the Hello
//	    capability "punch" (CapPunch); PunchRequest/PunchResponse (envelope
//	    fields 60, 61) and PunchOffer (62): a peer both sides reach
//	    introduces two devices for a simultaneous QUIC dial through their
//	    NATs. Reach messages go only to peers whose Hello offers "punch", so
//	    older peers never see one and an older Hello (no observed) changes
//	    nothing. The same protocol runs over QUIC (one bidirectional stream
//	    per connection) as over TCP + TLS.
//	  - MembersRequest/MembersResponse/MembersChanged (envelope fields
//	    50-52): members relay a share's signed membership log
//	    (index/members), its pending changes and epoch keys sealed to the
//	    asker. Sent only to a peer whose Hello carries MembersCapability
//	    ("members/1"), so older peers are never sent one and sync as before.
//	  - Introduction/IntroductionAck (envelope fields 66, 67): a member
//	    that may write a share tells each connected member the share's
//	    other members (device ID, public key, last addresses), signed by
//	    its device key and the share's key, so members connect to each
//	    other (a mesh). Sent only to a device whose Hello carries the
//	    "intro1" capability, so older peers never get one. Hello capability
//	    "key=<base64>": the device's Ed25519 public key, which finds it in
//	    the DHT (peer/dht).
//	5 (2026-12-03, third session):
//	  - Relaying by members (peer/relay, wirepb/relay.proto, envelope
//	    fields 90-94): RelayConnect, RelayAccept and RelayStatus open a
//	    circuit stream to a relay, which then splices it with the target's
//	    stream, end-to-end TLS inside; RelayInvite/RelayInviteAck (a
//	    request on the relay's session with the target) ask the target to
//	    dial back. A device asks only a peer whose Hello offers "relay1"
//	    (CapRelay) to relay, and a relay invites only peers of version >= 5.
//	  - A share's membership log may hold mount entries (index/members
//	    KindMount, memberspb Body field 14): a nested share's path and ID,
//	    signed by a writer of the outer share. No new message: they travel
//	    in MembersResponse like every entry. A member built before them
//	    refuses the log from the first mount entry on (malformed), and so
//	    misses later changes (removals included) until it is upgraded:
//	    upgrade every member of a share that nests another.
//	  - The keyring (daemon/keyring.go) adds no message: pairing is an
//	    invitation to the keyring share, following a share is a JoinRequest
//	    the record's writer admits because the joiner is in the keyring.
//	  - VaultPut/VaultPutAck, VaultList/VaultListResponse,
//	    VaultGet/VaultGetResponse, VaultBlocks/VaultBlocksResponse
//	    (envelope fields 110-117, wirepb/vault.proto): devices that may read
//	    a share push sealed records and sealed blocks (sync/vault) to its
//	    encrypted members, which verify and keep them, and pull them back
//	    when no reader or writer is online. Sent only to a peer whose Hello
//	    carries VaultCapability ("vault/1"), so older peers never see one.
//	  - MulticastWant/Offer, MulticastReady/Start, MulticastReport/Status
//	    (envelope fields 80-85, wirepb/multicast.proto): a receiver pulling
//	    a file asks the device that holds it to send it to the LAN multicast
//	    group; the sender hands each receiver the session's key over this
//	    connection, probes the group, and sends each block once in sealed
//	    datagrams (peer/multicast). Sent only to a device whose Hello has
//	    MulticastCapability ("mcast1"), so older peers sync as before.
//	6 (2026-12-03, fourth session):
//	  - Requests on streams of their own over QUIC (peer/conn): a device
//	    announcing the Hello capability "qstreams1" (CapStreams), on a QUIC
//	    connection to a peer that announces it too, opens a bidirectional
//	    stream per request; the answerer writes the one response frame on
//	    it and both finish the stream. One-way messages, keepalive Pings
//	    and Close stay on the first stream; frames are unchanged. No new
//	    message: a peer without the capability (and TCP, relayed streams)
//	    keeps every frame on the one stream.
//	  - VaultEntry.lists_blocks and VaultPutAck.missing (new fields of
//	    wirepb/vault.proto, no new message): sealed items of version 2 name
//	    their sealed blocks outside the sealed body, so an encrypted member
//	    collects the blocks no item needs; a member drops an item naming a
//	    block it does not hold and counts it in missing, and the pusher
//	    sends it again with its blocks. Older peers ignore both fields.
//	    Version 2 items go only to a member whose Hello carries
//	    VaultListedCapability ("vault/2"): an older member would refuse
//	    them. An older reader cannot open them: upgrade readers first.
//	  - VaultAddrs/VaultAddrsAck (envelope fields 140-141,
//	    wirepb/vaultaddrs.proto): an encrypted member tells each member it
//	    connects to where it listens; writers put those addresses in their
//	    Introductions of it. Sent only to a peer whose Hello carries
//	    VaultListedCapability.
//	  - PatchRequest/PatchResponse (envelope fields 160, 161,
//	    wirepb/patch.proto): a receiver that holds the previous version of a
//	    changed file asks for the new blocks as one zstd frame using a range
//	    of that version as a raw dictionary (zstd --patch-from), checks each
//	    block against its hash, and falls back to BlockRequest when the
//	    answer is NotFound. Sent only to a peer whose Hello carries
//	    PatchCapability ("patch/1").
//	  - SwarmTicketRequest/SwarmTicketResponse, SwarmOpen/SwarmOpened
//	    (envelope fields 130-133, wirepb/sendswarm.proto): a one-off send's
//	    receiver asks the sender for a ticket (signed by the sender's device
//	    key, naming the receiver, the send's share, an expiry and the
//	    send's block hashes) and the addresses of the sender's other
//	    devices; it shows the ticket to them on a guest connection (Hello
//	    capability "swarm1") and asks them for those blocks with
//	    BlockRequests naming the send's share. Sent only to devices whose
//	    Hello carries SwarmCapability ("swarm1").
//	7 (2026-12-03, fifth session):
//	  - Batched record envelopes (index/record batch.go): a scan signs up
//	    to 32 records at once, over the root of a Merkle tree of their
//	    leaves; each envelope carries its inclusion proof and the batch
//	    signature (envelope fields 5-8 instead of 4), so it verifies alone.
//	    Hello capability "batchsig1" (BatchSigCapability): the device opens
//	    them. A writer batches a share's records only while every member
//	    of the share has announced it since the writer started (an older
//	    member would refuse the envelopes, which travel unchanged forever);
//	    otherwise, and for a member added later until it connects, it signs
//	    each record alone as before. Upgrade every member before expecting
//	    batched signing; envelopes signed alone stay valid.
//	  - RecordData.batch (field 7), RecordPush.batches (field 3),
//	    RecordsResponse.batches (field 2), RecordBatch
//	    (wirepb/batchsig.proto; no new envelope field): to a peer that
//	    announces "batchsig1", a record of a batch travels trimmed of its
//	    proof and signature, and the message carries each batch's signature
//	    and the hashes of its subtrees none of the message's records is in;
//	    the receiver rebuilds the exact envelopes. Others get whole
//	    envelopes.
//	  - Hello capabilities "listen=IP:port" (daemon/listening.go, at most
//	    four, no new message): where the sender listens. The receiver keeps
//	    those at the IP the connection comes from and puts them in its
//	    Introductions of the sender; an older peer ignores them.
//	  - RendezvousOffer/RendezvousAck, RendezvousFind/RendezvousFound
//	    (envelope fields 180-183, wirepb/rendezvous.proto): a one-off
//	    send's sender and its receiver, behind NATs and sharing nothing,
//	    meet on guest connections at a public device whose Hello carries
//	    RendezvousCapability ("rendezvous1"), under the code's locator: the
//	    sender's offer is a long poll answered with the receiver's address
//	    as that device sees it, the receiver is answered with the sender's,
//	    and both punch.
//	    Sent only to a device whose Hello carries that capability.
//	8 (2026-12-04, sixth session):
//	  - Zstream (envelope field 190, bytes; zstream.go): one zstd stream per
//	    connection and direction carries the frames a device sends, so each
//	    is compressed with the history of those before it (records, paths,
//	    small files' contents, compressible blocks), cut into pieces of at
//	    most 1 MiB; blocks that are compressed already or do not compress
//	    go around it as plain frames, in order. Hello capability "zstream1"
//	    (CapZstream): the device reads Zstream. A device sends it only to a
//	    peer that announced it and is not on the same machine; older peers
//	    get plain frames, each payload compressed alone as before.
//	9 (2026-12-04, seventh session):
//	  - ReflateRequest/ReflateResponse (envelope fields 200, 201,
//	    wirepb/reflate.proto): a receiver that holds the previous version
//	    of a changed program asks for the whole new version as one zstd
//	    frame of its expansion (sync/reflate: the compressed debug sections
//	    the Go linker wrote, decompressed in place) against the expansion
//	    of its previous version; the answer names the sections expanded in
//	    each. The receiver compresses them again, checks every block
//	    against its hash, and falls back to PatchRequest when anything
//	    differs. Sent only to a peer whose Hello carries ReflateCapability
//	    ("patch-reflate/1").
//	10 (2026-12-05, fifteenth session):
//	  - RecordsRequest.content_only (field 4): the asker holds the records
//	    at keys and lacks only their small files' content (a push brought
//	    the records without it); the answer carries each such file's key
//	    and content and no record, and the request no have-leaves. Sent
//	    only to a peer whose Hello carries ContentAskCapability
//	    ("contentask1"); others are asked with each record's own leaf as
//	    have, and answer with the record as a delta against itself.
const (
	Version    uint32 = 5
	MinVersion uint32 = 1
)
