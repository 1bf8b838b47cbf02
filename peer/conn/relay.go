package conn

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
)

// RelayAddr is the remote address of a relayed stream: the relay's device
// and the address of our stream to it.
type RelayAddr struct {
	Via   identity.DeviceID
	Relay net.Addr
}

func (a *RelayAddr) Network() string { return "relay" }

func (a *RelayAddr) String() string {
	return "relay:" + a.Via.Abbrev() + "@" + a.Relay.String()
}

// Relayed runs our TLS 1.3 handshake over raw, a byte stream that device
// via relays to device want, as the client if client is set, else as the
// server. Both sides pin: the peer's certificate must be want's, so the
// relay, which only forwards the bytes, can neither read nor change them
// (a changed or replayed record fails the session). The stream is of
// network transport.Relay.
func (t *TLS) Relayed(ctx context.Context, raw net.Conn, want, via identity.DeviceID, client bool) (Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, t.handshakeTimeout())
	defer cancel()
	cfg := t.config()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		got, err := peerID(cs)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("device relayed by %s is %s, want %s: %w", via.Abbrev(), got, want, ErrWrongPeer)
		}
		return nil
	}
	var tc *tls.Conn
	if client {
		tc = tls.Client(raw, cfg)
	} else {
		tc = tls.Server(raw, cfg)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return Stream{}, fmt.Errorf("TLS with device %s relayed by %s: %w", want.Abbrev(), via.Abbrev(), err)
	}
	rc := &relayedConn{Conn: tc, addr: &RelayAddr{Via: via, Relay: raw.RemoteAddr()}}
	return Stream{Conn: rc, Remote: want, Outbound: client, Net: transport.Relay, Via: via}, nil
}

// relayedConn is a relayed TLS session whose remote address names the
// relay.
type relayedConn struct {
	*tls.Conn
	addr *RelayAddr
}

func (c *relayedConn) RemoteAddr() net.Addr { return c.addr }
