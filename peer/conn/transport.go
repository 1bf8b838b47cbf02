package conn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
)

var (
	// ErrRefused: a device that the accept callback refused tried to connect
	// (a *RefusedError says which device, from where).
	ErrRefused = errors.New("connection refused")
	// ErrWrongPeer: the device that answered a dial is not the one we pinned.
	ErrWrongPeer = errors.New("peer is not the expected device")
)

// Stream is an authenticated byte stream to one remote device: what a
// Transport delivers and what Open runs the protocol on.
type Stream struct {
	net.Conn
	Remote   identity.DeviceID    // proven by the transport's handshake
	Outbound bool                 // we dialed
	Net      transport.Network    // the transport that carries it: TCP, QUIC or Relay
	Via      identity.DeviceID    // the relay, when Net is transport.Relay
	rtt      func() time.Duration // the transport's round-trip estimate; nil: Conn measures it
	qc       *quic.Conn           // the QUIC connection of a QUIC stream, on which Conn may open streams
}

// Transport makes authenticated streams to typed addresses. A Dialer (TCP +
// TLS and QUIC, happy eyeballs between them) is the one the peer manager
// uses; TLS.Dial and QUIC.Dial dial one network by host:port.
type Transport interface {
	// Dial connects to addr and succeeds only if the device there is want.
	Dial(ctx context.Context, addr transport.Addr, want identity.DeviceID) (Stream, error)
}

// Listener delivers authenticated, accepted inbound streams.
type Listener interface {
	// Accept returns the next accepted stream. A refused device is returned as
	// a *RefusedError (errors.Is ErrRefused): record it and call Accept again.
	// Any other error means the listener is done.
	Accept(ctx context.Context) (Stream, error)
	Addr() net.Addr
	Close() error
}

// AcceptFunc decides, from its proven device ID, whether a device that
// connected to us may talk (paired, or carrying an invitation). It runs
// before any protocol message is read.
type AcceptFunc func(remote identity.DeviceID) error

// RefusedError reports a refused inbound device.
type RefusedError struct {
	Remote identity.DeviceID
	Addr   net.Addr
	Err    error // what AcceptFunc returned
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused device %s from %s: %v", e.Remote, e.Addr, e.Err)
}

func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Err} }
