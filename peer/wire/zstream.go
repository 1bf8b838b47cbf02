package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// CapZstream is the Hello capability of a device that reads Zstream
// frames. Each direction of a connection decides for itself: a device sends
// Zstream only to a peer that announced it (peer/conn).
const CapZstream = "zstream1"

// MaxZstreamChunk bounds the compressed bytes of one Zstream frame.
const MaxZstreamChunk = 1 << 20

// Zstream is a one-way message that carries the next piece of the sender's
// compressed stream: one zstd stream per connection and direction, whose
// content is frames (length prefix and Envelope, as on the wire), so one
// message's bytes are compressed with the history of those before it. The
// stream may be cut anywhere into pieces, but a frame that is not a Zstream
// never comes between two pieces of a frame inside the stream; a Zstream
// inside the stream is refused. Frames the sender does not compress (blocks
// that are compressed already or do not compress) travel outside it, in
// order with those inside.
type Zstream struct {
	Data []byte
}

func (m *Zstream) validate() error {
	if len(m.Data) == 0 || len(m.Data) > MaxZstreamChunk {
		return fmt.Errorf("zstream piece of %d bytes outside 1..%d", len(m.Data), MaxZstreamChunk)
	}
	return nil
}

func (m *Zstream) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_Zstream{Zstream: m.Data}
}
