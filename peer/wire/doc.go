// Package wire is Blueshift's peer protocol: the messages two devices
// exchange and the frames that carry them.
//
// A frame is a length and one protobuf Envelope (see wirepb/envelope.proto):
//
//	+---------------------+----------------------------------------+
//	| length: uint32, BE  | Envelope: uint64 id + one message       |
//	| 4 bytes             | length bytes, 1 <= length <= MaxFrameSize|
//	+---------------------+----------------------------------------+
//
// Nouns: a Frame is an ID and a Message. Messages are requests (NodesRequest,
// RecordsRequest, BlockRequest, JoinRequest, Ping), responses (NodesResponse,
// RecordsResponse, BlockResponse, JoinResponse, Pong, and ErrorResponse,
// which answers any request), and one-way messages (Hello, Close,
// ShareState, RecordPush, Have). The multicast messages (multicast.go) are
// requests and responses, sent only to a device whose Hello offers them.
// A request carries an ID the asker chose, non-zero, and its response carries
// the same ID; one-way messages carry 0. Ping and Pong may carry 0 (a
// keepalive that nobody waits for).
//
// Contracts:
//   - The protobuf types never leave this package: Encode and Decode convert
//     at the edge to Go types built from the shared vocabulary (share.ID,
//     merkle.Prefix, merkle.Node, block.Hash, ...).
//   - Every frame a peer sends is hostile until Decode returns it: the length
//     is checked before allocating; the number of protobuf fields in the frame
//     is counted (MaxFields) before protobuf allocates for them; then every
//     count, string and fixed-size field is checked against the limits below.
//     Any failure wraps ErrMalformed. No input panics.
//   - Encode applies the same checks, so we never send what a peer refuses.
//   - The wire carries bytes and an encoding tag; compression and deltas are
//     the sync engine's job.
//   - Decoded messages own their memory (nothing aliases a reused buffer). A
//     BlockResponse read from a Reader may give its Data back with Release.
//   - Messages handed to EncodeFrame are read, never kept: a BlockResponse's
//     Data is written from the caller's memory (not copied), so it must not
//     change until written. A sender that reuses the buffer sets
//     BlockResponse.OnWritten; the connection runs it once Data is written.
//
// The protocol's versions and what changed in each are in version.go.
package wire
