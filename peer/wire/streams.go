package wire

// CapStreams is the Hello capability of a device that, on a QUIC
// connection, sends each request and its response on a bidirectional
// stream of their own (peer/conn), so a large response does not hold up a
// small one behind it. Only a QUIC connection whose two ends both announce
// it works that way; frames are the same on every stream. TCP, relayed
// streams and a peer without it keep every frame on the one stream.
const CapStreams = "qstreams1"
