package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// CapRelay is the Hello capability of a device that relays for the
// devices it shares a share with (protocol version 5). Devices of version
// 5 all answer RelayInvite; only one offering CapRelay is asked to relay.
const CapRelay = "relay1"

// RelayVersion is the first protocol version whose devices answer
// RelayInvite.
const RelayVersion = 5

// RelayTokenSize is the size of a circuit's token.
const RelayTokenSize = 16

// RelayConnect is the first frame of a new stream to a relay: connect the
// stream's device to Device. One-way; the relay answers RelayStatus.
type RelayConnect struct {
	Device identity.DeviceID
}

// RelayAccept is the first frame of the stream a device opens to a relay
// after a RelayInvite. One-way; the relay answers RelayStatus.
type RelayAccept struct {
	Token [RelayTokenSize]byte
}

// RelayStatus is a relay's answer on a circuit stream: Code 0 is ok (the
// stream is spliced from the next byte on), else why not.
type RelayStatus struct {
	Code   ErrorCode
	Reason string
}

// RelayInvite asks its receiver, from the relay, to dial the relay and
// present Token: Device wants a circuit to it. The answer is a
// RelayInviteAck or an ErrorResponse.
type RelayInvite struct {
	Device identity.DeviceID
	Token  [RelayTokenSize]byte
}

// RelayInviteAck answers RelayInvite: the receiver dials back.
type RelayInviteAck struct{}

func (*RelayConnect) validate() error   { return nil }
func (*RelayAccept) validate() error    { return nil }
func (*RelayInvite) validate() error    { return nil }
func (*RelayInviteAck) validate() error { return nil }
func (m *RelayStatus) validate() error {
	if len(m.Reason) > MaxTextLen {
		return fmt.Errorf("relay status reason of %d bytes exceeds %d", len(m.Reason), MaxTextLen)
	}
	return nil
}

func (m *RelayConnect) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RelayConnect{RelayConnect: &wirepb.RelayConnect{Device: m.Device[:]}}
}

func (m *RelayAccept) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RelayAccept{RelayAccept: &wirepb.RelayAccept{Token: m.Token[:]}}
}

func (m *RelayStatus) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RelayStatus{RelayStatus: &wirepb.RelayStatus{Code: uint32(m.Code), Reason: m.Reason}}
}

func (m *RelayInvite) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RelayInvite{RelayInvite: &wirepb.RelayInvite{Device: m.Device[:], Token: m.Token[:]}}
}

func (*RelayInviteAck) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RelayInviteAck{RelayInviteAck: &wirepb.RelayInviteAck{}}
}

func relayConnectFromPB(p *wirepb.RelayConnect) (*RelayConnect, error) {
	m := &RelayConnect{}
	if err := fixed("device", m.Device[:], p.GetDevice()); err != nil {
		return nil, fmt.Errorf("relay connect: %w", err)
	}
	return m, nil
}

func relayAcceptFromPB(p *wirepb.RelayAccept) (*RelayAccept, error) {
	m := &RelayAccept{}
	if err := fixed("token", m.Token[:], p.GetToken()); err != nil {
		return nil, fmt.Errorf("relay accept: %w", err)
	}
	return m, nil
}

func relayStatusFromPB(p *wirepb.RelayStatus) (*RelayStatus, error) {
	m := &RelayStatus{Code: ErrorCode(p.GetCode()), Reason: p.GetReason()}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func relayInviteFromPB(p *wirepb.RelayInvite) (*RelayInvite, error) {
	m := &RelayInvite{}
	if err := fixed("device", m.Device[:], p.GetDevice()); err != nil {
		return nil, fmt.Errorf("relay invite: %w", err)
	}
	if err := fixed("token", m.Token[:], p.GetToken()); err != nil {
		return nil, fmt.Errorf("relay invite: %w", err)
	}
	return m, nil
}
