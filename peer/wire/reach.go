package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// MaxPunchAddrs bounds the addresses of a PunchResponse or PunchOffer: a
// device never dials more than this many addresses for one introduction, so
// an introduction cannot aim it at a list of victims.
const MaxPunchAddrs = 2

// CapPunch is the Hello capability of a device that answers PunchRequest
// and acts on PunchOffer (protocol version 4). No reach message is sent to a
// peer without it.
const CapPunch = "punch"

// PunchRequest asks a peer connected to Device to introduce us to it for a
// simultaneous dial (version 4). The answer is a PunchResponse, or an
// ErrorResponse (CodeNotFound: not connected to Device; CodeBusy: asked too
// often; CodeUnsupported: no address to give).
type PunchRequest struct {
	Device identity.DeviceID
}

// PunchResponse answers PunchRequest: where the answerer sees Device.
type PunchResponse struct {
	Addrs []transport.Addr
}

// PunchOffer tells its receiver that Device asked to be introduced: punch
// towards Addrs (as the sender sees Device) now. One-way.
type PunchOffer struct {
	Device identity.DeviceID
	Addrs  []transport.Addr
}

func (*PunchRequest) validate() error    { return nil }
func (m *PunchResponse) validate() error { return checkPunchAddrs(m.Addrs) }
func (m *PunchOffer) validate() error    { return checkPunchAddrs(m.Addrs) }

func checkPunchAddrs(as []transport.Addr) error {
	if len(as) > MaxPunchAddrs {
		return fmt.Errorf("%d punch addresses exceed %d", len(as), MaxPunchAddrs)
	}
	for _, a := range as {
		if !a.AddrPort.IsValid() {
			return fmt.Errorf("punch address %q is not an IP address and port", a)
		}
	}
	return nil
}

func (m *PunchRequest) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_PunchRequest{PunchRequest: &wirepb.PunchRequest{Device: m.Device[:]}}
}

func (m *PunchResponse) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_PunchResponse{PunchResponse: &wirepb.PunchResponse{Addrs: addrStrings(m.Addrs)}}
}

func (m *PunchOffer) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_PunchOffer{PunchOffer: &wirepb.PunchOffer{Device: m.Device[:], Addrs: addrStrings(m.Addrs)}}
}

func punchRequestFromPB(p *wirepb.PunchRequest) (*PunchRequest, error) {
	m := &PunchRequest{}
	if err := fixed("device", m.Device[:], p.GetDevice()); err != nil {
		return nil, fmt.Errorf("punch request: %w", err)
	}
	return m, nil
}

func punchResponseFromPB(p *wirepb.PunchResponse) (*PunchResponse, error) {
	as, err := parseAddrs(p.GetAddrs())
	if err != nil {
		return nil, fmt.Errorf("punch response: %w", err)
	}
	return &PunchResponse{Addrs: as}, nil
}

func punchOfferFromPB(p *wirepb.PunchOffer) (*PunchOffer, error) {
	m := &PunchOffer{}
	if err := fixed("device", m.Device[:], p.GetDevice()); err != nil {
		return nil, fmt.Errorf("punch offer: %w", err)
	}
	as, err := parseAddrs(p.GetAddrs())
	if err != nil {
		return nil, fmt.Errorf("punch offer: %w", err)
	}
	m.Addrs = as
	return m, nil
}

func addrStrings(as []transport.Addr) []string {
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.String()
	}
	return out
}

// parseAddrs checks the count before parsing anything.
func parseAddrs(ss []string) ([]transport.Addr, error) {
	if len(ss) > MaxPunchAddrs {
		return nil, fmt.Errorf("%d addresses exceed %d", len(ss), MaxPunchAddrs)
	}
	return transport.ParseList(ss)
}
