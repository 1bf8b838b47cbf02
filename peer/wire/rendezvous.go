package wire

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire/wirepb"
)

// RendezvousCapability in a Hello says the device answers RendezvousOffer
// and RendezvousFind on a guest connection (protocol version 7): it
// introduces a one-off send's receiver to its sender when both are behind
// NATs and share nothing. It forwards no data.
const RendezvousCapability = "rendezvous1"

// MaxRendezvousAddrs bounds a RendezvousFound (the offers under one
// locator a receiver is told of) and a RendezvousAck's knocks.
const MaxRendezvousAddrs = 4

// maxLocator bounds a rendezvous locator's length.
const maxLocator = 16

// RendezvousOffer offers a send under a code's locator; the answer waits
// (a long poll) until a device looks for it.
type RendezvousOffer struct{ Locator string }

// RendezvousAck answers RendezvousOffer: where the answerer sees the
// asker, and where it sees the devices that looked for the offer since
// (Knocks): punch towards them.
type RendezvousAck struct {
	Observed transport.Addr
	Knocks   []transport.Addr
}

// RendezvousFind asks for the devices offering under a locator.
type RendezvousFind struct{ Locator string }

// RendezvousFound answers RendezvousFind: where the answerer sees each
// device offering under the locator.
type RendezvousFound struct{ Addrs []transport.Addr }

func checkLocator(l string) error {
	if l == "" || len(l) > maxLocator {
		return fmt.Errorf("rendezvous locator of %d bytes (want 1 to %d)", len(l), maxLocator)
	}
	return nil
}

func checkRendezvousAddrs(as []transport.Addr) error {
	if len(as) > MaxRendezvousAddrs {
		return fmt.Errorf("%d rendezvous addresses exceed %d", len(as), MaxRendezvousAddrs)
	}
	for _, a := range as {
		if !a.AddrPort.IsValid() {
			return fmt.Errorf("rendezvous address %q is not an IP address and port", a)
		}
	}
	return nil
}

func (m *RendezvousOffer) validate() error { return checkLocator(m.Locator) }
func (m *RendezvousAck) validate() error   { return checkRendezvousAddrs(m.Knocks) }
func (m *RendezvousFind) validate() error  { return checkLocator(m.Locator) }
func (m *RendezvousFound) validate() error { return checkRendezvousAddrs(m.Addrs) }

func (m *RendezvousOffer) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RendezvousOffer{RendezvousOffer: &wirepb.RendezvousOffer{Locator: m.Locator}}
}

func (m *RendezvousAck) toPB(e *wirepb.Envelope) {
	var o string
	if m.Observed.AddrPort.IsValid() {
		o = m.Observed.String()
	}
	e.Body = &wirepb.Envelope_RendezvousAck{RendezvousAck: &wirepb.RendezvousAck{Observed: o, Knocks: addrStrings(m.Knocks)}}
}

func (m *RendezvousFind) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RendezvousFind{RendezvousFind: &wirepb.RendezvousFind{Locator: m.Locator}}
}

func (m *RendezvousFound) toPB(e *wirepb.Envelope) {
	e.Body = &wirepb.Envelope_RendezvousFound{RendezvousFound: &wirepb.RendezvousFound{Addrs: addrStrings(m.Addrs)}}
}

func rendezvousAddrs(what string, ss []string) ([]transport.Addr, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	if len(ss) > MaxRendezvousAddrs {
		return nil, fmt.Errorf("%s: %d addresses exceed %d", what, len(ss), MaxRendezvousAddrs)
	}
	as, err := transport.ParseList(ss)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return as, nil
}

func rendezvousFromPB(e *wirepb.Envelope) (Message, error) {
	switch b := e.Body.(type) {
	case *wirepb.Envelope_RendezvousOffer:
		return &RendezvousOffer{Locator: b.RendezvousOffer.GetLocator()}, nil
	case *wirepb.Envelope_RendezvousAck:
		ks, err := rendezvousAddrs("rendezvous ack", b.RendezvousAck.GetKnocks())
		if err != nil {
			return nil, err
		}
		m := &RendezvousAck{Knocks: ks}
		if o := b.RendezvousAck.GetObserved(); o != "" {
			a, err := transport.Parse(o)
			if err != nil {
				return nil, fmt.Errorf("rendezvous ack: %w", err)
			}
			m.Observed = a
		}
		return m, nil
	case *wirepb.Envelope_RendezvousFind:
		return &RendezvousFind{Locator: b.RendezvousFind.GetLocator()}, nil
	case *wirepb.Envelope_RendezvousFound:
		as, err := rendezvousAddrs("rendezvous found", b.RendezvousFound.GetAddrs())
		if err != nil {
			return nil, err
		}
		return &RendezvousFound{Addrs: as}, nil
	}
	return nil, fmt.Errorf("unknown message %T", e.Body)
}
