// Package conn is the authenticated connection between two devices and the
// protocol session that runs over it.
//
// Nouns:
//   - Stream: an authenticated byte stream to a proven device ID, on TCP or
//     QUIC (Stream.Net). A Listener accepts one; TLS.Dial and QUIC.Dial dial
//     one by host:port, and a Dialer (the Transport the peer manager uses)
//     dials a typed transport.Addr: QUIC first and TCP after a 300 ms head
//     start for an address of both networks (happy eyeballs), the first to
//     connect kept. Both transports run TLS 1.3, mutual, with the devices'
//     self-signed certificates and no CA; Conn only needs a Stream.
//   - QUIC: one UDP socket per device (ListenQUIC) for listening, dialling
//     and hole-punching packets (QUIC.Punch), so a NAT maps one address for
//     all of them. Conn runs on a QUIC connection's first bidirectional
//     stream, opened by the dialer, as on TCP; its listener delivers the
//     stream once the dialer wrote on it (Open writes the Hello first).
//     Closing that stream waits (at most a second) for the peer to finish
//     or close, so our Close frame is delivered before the connection is
//     torn down.
//   - Request streams (streams.go): on QUIC, Open announces the Hello
//     capability wire.CapStreams; when the peer announces it too, each
//     request and its response travel on a bidirectional stream of their
//     own (the requester opens it and writes the request, the server writes
//     the response, each finishes its side), while one-way messages,
//     keepalive Pings and Close stay on the first stream. QUIC interleaves
//     the streams, so a small answer no longer waits behind a large block
//     queued before it (head-of-line blocking), and a stream its reader
//     does not drain stalls only itself. The peer may open QUIC.MaxRequests
//     streams at once (QUIC's stream limit); a stream of a peer that did
//     not announce the capability is refused. TCP, relayed streams and
//     peers without it keep every frame on the one stream. A response and
//     the one-way messages sent after it are no longer ordered with each
//     other (requests never were: each is served in its own goroutine).
//   - Compressed stream (zstream.go): Open announces wire.CapZstream; to a
//     peer that announces it too, the frames the writer sends (one-way
//     messages, and on one stream the requests and responses) go through
//     one zstd stream per direction, in Zstream frames, flushed when the
//     send queue runs dry. Blocks compressed already or marked
//     wire.BlockResponse.Incompressible, and blocks over 4 KiB to a peer on
//     this machine, go around it in order. The reader decodes a piece's
//     frames as it arrives, with a window of at most 8 MiB; a broken stream
//     is ErrPeerMisbehaved. Compresses and CompressesBlocks tell the sender
//     of payloads whether to leave them raw.
//   - Relayed: a Stream whose bytes a third device relays (peer/relay): TLS
//     1.3 run over the relay's byte pipe with the same certificates, pinned
//     on both sides (TLS.Relayed), of network transport.Relay; Via names
//     the relay.
//   - Conn: the protocol session on a Stream. Open exchanges Hello (protocol
//     versions; incompatible ones fail on both sides with ErrVersion after
//     each sends Close); Run owns the stream until the connection ends.
//
// Trust: the dialer pins the device ID it expects (ErrWrongPeer otherwise);
// the listener learns the ID from the certificate's key and asks an
// AcceptFunc before reading any message. A refused device is told why in a
// Close frame, logged (Warn, with its ID and address), and returned from
// Accept as a *RefusedError so the daemon can show it in status.
//
// Concurrency and bounds, per connection:
//   - Requests carry IDs, so many are in flight at once: up to MaxRequests
//     (default 64) of ours (Request waits for a slot), and up to MaxRequests
//     of the peer's served at once, each in its own goroutine; more are
//     answered CodeBusy, never queued.
//   - One-way messages go to Handler.HandleMessage in order, one at a time;
//     the reader waits for it (back-pressure to the peer through TCP).
//   - Frames to send wait in a queue bounded by MaxQueue bytes (default
//     8 MiB); Send and Request wait for room. On request streams a frame is
//     handed to QUIC 64 KiB at a time, each piece holding its bytes of the
//     same MaxQueue until QUIC took it. Every write must make progress
//     within Timeout or the peer is dropped, so a peer that never reads costs
//     at most MaxQueue plus the socket buffers. Once a frame is written,
//     its BlockResponse's OnWritten function runs (wire.Written): the sender
//     may reuse the payload's buffer from then on.
//   - Reads: a 64 KiB bufio buffer and wire.Reader's 32 KiB one for small
//     frames; a large frame (at most wire.MaxFrameSize, 16 MiB) is read into
//     its own buffer, which becomes the message's memory. Block payloads go
//     back to the connection with wire.BlockResponse.Release for the next
//     block (a sync.Pool, emptied by the GC when idle; request streams share
//     a pool of frame readers for that). One decoded one-way message at a
//     time waits for the message handler. A frame's buffer grows with
//     the bytes that arrive (wire.Reader), so a length prefix alone sets
//     nothing aside: on request streams a peer holds at most what it has
//     sent of up to MaxRequests unfinished frames each way.
//
// Liveness: we send a Ping every PingInterval (default 5 s) and the peer
// answers Pong, so a live connection is never silent that long. The Pong
// of the last Ping gives the round-trip time on TCP (Conn.RTT; on QUIC,
// QUIC's own smoothed estimate). A peer from
// which nothing arrives for Timeout (default 15 s; at least 7/8 of it, as
// deadlines move in steps) is dead: ErrTimeout. Bytes on a request stream
// count as arriving, so a first stream that is quiet while streams carry
// blocks is not taken for a dead peer; a request whose bytes stop coming
// in mid-frame, and a request stream not finished after its one frame, cut
// the peer after Timeout too. So is one that accepts none of
// our bytes for as long. So a link whose packets are dropped (no FIN, no
// reset) ends within Timeout on both sides, and the peer manager redials.
// Ending never waits on the peer: a writer stuck on one that does not read
// is cut off after a second.
package conn
