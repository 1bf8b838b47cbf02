// Package relay lets a device that both sides reach carry a connection
// between two devices that cannot reach each other (a symmetric NAT, UDP
// blocked): relaying by members, with no server of ours.
//
// Nouns:
//   - Server: the relay. It diverts, from the listeners it wraps (Divert),
//     the streams whose first frame is a RelayConnect or a RelayAccept, and
//     splices a circuit: A's stream (RelayConnect naming B) and the stream
//     B opens after a RelayInvite sent on B's session (RelayAccept with the
//     circuit's token). Every other stream passes through untouched.
//   - Client: the two ends. Dial opens a circuit through a relay and runs
//     TLS inside it as the client, pinned to the target device; Invited
//     answers a relay's RelayInvite by dialling back and running TLS as the
//     server, pinned to the device that asked; the streams that come of it
//     are Accepted from the Client, a conn.Listener.
//
// A circuit, on the streams to the relay (each already TLS between its end
// and the relay):
//
//	A -> relay: RelayConnect{B}            relay -> B (session): RelayInvite{A, token}
//	                                       B -> relay (new stream): RelayAccept{token}
//	relay -> A: RelayStatus{ok}            relay -> B: RelayStatus{ok}
//	A <-> relay <-> B: the bytes of a TLS 1.3 session between A and B
//
// What the relay learns: the two device IDs, when and how many bytes; the
// inner session is TLS 1.3 between the two devices' pinned certificates,
// so it reads none of it, and a byte it changes, drops or replays breaks
// the session (the ends see a TLS error; nothing is written).
//
// Bounds, at the relay: it serves only devices Options.Allowed lets in
// (each authenticated to it by its stream's TLS, each sharing a share with
// it), never both ends the same device; at most MaxCircuits circuits per
// device; each circuit carries at most MaxCircuitBytes and then ends; all
// circuits together at most Rate bytes per second; a circuit idle for
// idleTimeout ends; a circuit whose target does not dial back within
// acceptTimeout is refused.
//
// Server and Client start goroutines (one per diverted stream being
// peeked, two per circuit, one per dial-back) and Close stops them and
// waits.
package relay
