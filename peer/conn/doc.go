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
//     all of them. A QUIC connection carries one bidirectional stream,
//     opened by the dialer, on which Conn runs exactly as on TCP; its
//     listener delivers the stream once the dialer wrote on it (Open writes
//     the Hello first). Closing a QUIC stream waits (at most a second) for
//     the peer to finish or close, so our Close frame is delivered before
//     the connection is torn down.
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
//     8 MiB); Send and Request wait for room. Every write must make progress
//     within Timeout or the peer is dropped, so a peer that never reads costs
//     at most MaxQueue plus the socket buffers. Once a frame is written,
//     its BlockResponse's OnWritten function runs (wire.Written): the sender
//     may reuse the payload's buffer from then on.
//   - Reads: a 64 KiB bufio buffer and wire.Reader's 32 KiB one for small
//     frames; a large frame (at most wire.MaxFrameSize, 16 MiB) is read into
//     its own buffer, which becomes the message's memory. Block payloads go
//     back to the connection with wire.BlockResponse.Release for the next
//     block (a sync.Pool, emptied by the GC when idle). One decoded one-way
//     message at a time waits for the message handler.
//
// Liveness: we send a Ping every PingInterval (default 5 s) and the peer
// answers Pong, so a live connection is never silent that long. The Pong
// of the last Ping gives the round-trip time on TCP (Conn.RTT; on QUIC,
// QUIC's own smoothed estimate). A peer from
// which nothing arrives for Timeout (default 15 s; at least 7/8 of it, as
// deadlines move in steps) is dead: ErrTimeout. So is one that accepts none of
// our bytes for as long. So a link whose packets are dropped (no FIN, no
// reset) ends within Timeout on both sides, and the peer manager redials.
// Ending never waits on the peer: a writer stuck on one that does not read
// is cut off after a second.
package conn
