package wire

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/blueshift-sync/blueshift/index/block"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// SwarmCapability in a Hello says the device speaks the send swarm
// messages (version 6): a sender answers SwarmTicketRequest, a device of
// the sender's keyring answers SwarmOpen on a guest connection.
const SwarmCapability = "swarm1"

// Limits of a send swarm ticket.
const (
	// MaxSwarmHashes is the most blocks one ticket names (8 MiB of
	// hashes: a send of some 16 GiB at the default chunk size); a larger
	// send's ticket names its first blocks.
	MaxSwarmHashes  = 1 << 18
	MaxSwarmHelpers = 16
	maxSwarmAddrs   = 8
	maxSwarmAddr    = 64
	maxSwarmBody    = MaxSwarmHashes*block.Size + 1024
)

// SwarmTicketContext is what a ticket's signature covers before the body.
const SwarmTicketContext = "blueshift send swarm ticket v1\x00"

// SwarmTicket is what a ticket says: devices of the signer's keyring may
// serve the blocks Hashes of send Share to device Receiver until Expires.
type SwarmTicket struct {
	SignerKey []byte   // Ed25519 public key, 32 bytes
	Receiver  [32]byte // device ID
	Share     share.ID
	Expires   time.Time
	Hashes    []block.Hash
}

// EncodeSwarmTicket encodes t for signing and sending.
func EncodeSwarmTicket(t SwarmTicket) ([]byte, error) {
	hashes := make([]byte, 0, len(t.Hashes)*block.Size)
	for _, h := range t.Hashes {
		hashes = append(hashes, h[:]...)
	}
	out, err := proto.MarshalOptions{Deterministic: true}.Marshal(&wirepb.SwarmTicketBody{
		SignerKey: t.SignerKey, Receiver: t.Receiver[:], Share: t.Share[:], Expires: t.Expires.Unix(), Hashes: hashes,
	})
	if err != nil {
		return nil, fmt.Errorf("encode swarm ticket: %w", err)
	}
	if _, err := DecodeSwarmTicket(out); err != nil {
		return nil, fmt.Errorf("encode swarm ticket: %w", err)
	}
	return out, nil
}

// SwarmSignedBytes is what a ticket's signature covers.
func SwarmSignedBytes(body []byte) []byte {
	return append([]byte(SwarmTicketContext), body...)
}

// DecodeSwarmTicket decodes and checks a ticket's body (outside input);
// its signature is the caller's to check.
func DecodeSwarmTicket(b []byte) (SwarmTicket, error) {
	var out SwarmTicket
	if len(b) > maxSwarmBody {
		return out, fmt.Errorf("swarm ticket of %d bytes, at most %d", len(b), maxSwarmBody)
	}
	fields := 0
	if err := walkFields(b, (&wirepb.SwarmTicketBody{}).ProtoReflect().Descriptor(), &fields, 0); err != nil {
		return out, fmt.Errorf("swarm ticket: %w", err)
	}
	var p wirepb.SwarmTicketBody
	if err := proto.Unmarshal(b, &p); err != nil {
		return out, fmt.Errorf("swarm ticket: %w", err)
	}
	if len(p.GetSignerKey()) != 32 {
		return out, fmt.Errorf("swarm ticket: signer key of %d bytes, want 32", len(p.GetSignerKey()))
	}
	out.SignerKey = p.GetSignerKey()
	if err := fixed("receiver", out.Receiver[:], p.GetReceiver()); err != nil {
		return out, fmt.Errorf("swarm ticket: %w", err)
	}
	if err := fixed("share", out.Share[:], p.GetShare()); err != nil {
		return out, fmt.Errorf("swarm ticket: %w", err)
	}
	out.Expires = time.Unix(p.GetExpires(), 0)
	hs := p.GetHashes()
	if len(hs)%block.Size != 0 || len(hs)/block.Size > MaxSwarmHashes {
		return out, fmt.Errorf("swarm ticket: %d bytes of hashes, want a multiple of %d up to %d hashes", len(hs), block.Size, MaxSwarmHashes)
	}
	out.Hashes = make([]block.Hash, len(hs)/block.Size)
	for i := range out.Hashes {
		copy(out.Hashes[i][:], hs[i*block.Size:])
	}
	return out, nil
}

// SwarmTicketRequest asks a send's sender for a ticket (on the session of
// a member of the send's share). Answered by SwarmTicketResponse or an
// ErrorResponse.
type SwarmTicketRequest struct {
	Share share.ID
}

// SwarmHelper is a device of the sender that may hold the send's blocks,
// and where to dial it.
type SwarmHelper struct {
	Device    [32]byte
	Addresses []string
}

// SwarmTicketResponse is a ticket (an encoded SwarmTicket and the
// signer's signature of SwarmSignedBytes of it) and the devices to show
// it to.
type SwarmTicketResponse struct {
	Body, Signature []byte
	Helpers         []SwarmHelper
}

// SwarmOpen shows a ticket to a device of the signer's keyring, on a
// guest connection. Answered by SwarmOpened or an ErrorResponse; then
// that device answers BlockRequests of the ticket's share for the
// ticket's blocks, and nothing else.
type SwarmOpen struct {
	Body, Signature []byte
}

// SwarmOpened accepts a ticket; Held is how many of its blocks are here.
type SwarmOpened struct {
	Held uint32
}

func (m *SwarmTicketRequest) validate() error { return nil }

func (m *SwarmTicketResponse) validate() error {
	if len(m.Body) > 0 {
		if _, err := DecodeSwarmTicket(m.Body); err != nil {
			return err
		}
	}
	if len(m.Signature) != 0 && len(m.Signature) != 64 {
		return fmt.Errorf("swarm ticket response: signature of %d bytes, want 64", len(m.Signature))
	}
	if len(m.Helpers) > MaxSwarmHelpers {
		return fmt.Errorf("swarm ticket response: %d helpers, at most %d", len(m.Helpers), MaxSwarmHelpers)
	}
	for _, h := range m.Helpers {
		if len(h.Addresses) > maxSwarmAddrs {
			return fmt.Errorf("swarm ticket response: %d addresses of a helper, at most %d", len(h.Addresses), maxSwarmAddrs)
		}
		for _, a := range h.Addresses {
			if len(a) > maxSwarmAddr {
				return fmt.Errorf("swarm ticket response: an address of %d bytes, at most %d", len(a), maxSwarmAddr)
			}
		}
	}
	return nil
}

func (m *SwarmOpen) validate() error {
	if _, err := DecodeSwarmTicket(m.Body); err != nil {
		return err
	}
	if len(m.Signature) != 64 {
		return fmt.Errorf("swarm open: signature of %d bytes, want 64", len(m.Signature))
	}
	return nil
}

func (m *SwarmOpened) validate() error { return nil }

func (m *SwarmTicketRequest) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_SwarmTicketRequest{SwarmTicketRequest: &wirepb.SwarmTicketRequest{Share: m.Share[:]}}
}

func (m *SwarmTicketResponse) toPB(e *wirepb.Envelope) {
	p := &wirepb.SwarmTicketResponse{Body: m.Body, Signature: m.Signature}
	for _, h := range m.Helpers {
		p.Helpers = append(p.Helpers, &wirepb.SwarmHelper{Device: h.Device[:], Addresses: h.Addresses})
	}
	e.Body = &wirepb.Envelope_SwarmTicketResponse{SwarmTicketResponse: p}
}

func (m *SwarmOpen) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_SwarmOpen{SwarmOpen: &wirepb.SwarmOpen{Body: m.Body, Signature: m.Signature}}
}

func (m *SwarmOpened) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_SwarmOpened{SwarmOpened: &wirepb.SwarmOpened{Held: m.Held}}
}

func swarmTicketRequestFromPB(p *wirepb.SwarmTicketRequest) (*SwarmTicketRequest, error) {
	m := &SwarmTicketRequest{}
	if err := fixed("share", m.Share[:], p.GetShare()); err != nil {
		return nil, fmt.Errorf("swarm ticket request: %w", err)
	}
	return m, nil
}

func swarmTicketResponseFromPB(p *wirepb.SwarmTicketResponse) (*SwarmTicketResponse, error) {
	m := &SwarmTicketResponse{Body: p.GetBody(), Signature: p.GetSignature()}
	if len(p.GetHelpers()) > MaxSwarmHelpers {
		return nil, fmt.Errorf("swarm ticket response: %d helpers, at most %d", len(p.GetHelpers()), MaxSwarmHelpers)
	}
	for i, ph := range p.GetHelpers() {
		var h SwarmHelper
		if err := fixed("helper device", h.Device[:], ph.GetDevice()); err != nil {
			return nil, fmt.Errorf("swarm ticket response helper %d: %w", i, err)
		}
		h.Addresses = ph.GetAddresses()
		m.Helpers = append(m.Helpers, h)
	}
	return m, nil
}

func swarmOpenFromPB(p *wirepb.SwarmOpen) (*SwarmOpen, error) {
	return &SwarmOpen{Body: p.GetBody(), Signature: p.GetSignature()}, nil
}
