package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

const (
	// maxRelayAddrs bounds the addresses of a relay dialled for one circuit.
	maxRelayAddrs = 3
	// maxDialBacks bounds the invitations answered at once: a relay that
	// floods us with them gets ErrBusy, not a dial each.
	maxDialBacks = 8
)

// ErrBusy: too many relay invitations are being answered already.
var ErrBusy = errors.New("too many relay invitations at once")

// ClientOptions configure a Client.
type ClientOptions struct {
	// TLS runs the inner TLS session with the device at the other end.
	TLS *conn.TLS
	// Transport dials the relay (a conn.Dialer).
	Transport conn.Transport
	// Accept decides, from its proven ID, whether a device that reached us
	// through a relay may talk (the listener's AcceptFunc).
	Accept conn.AcceptFunc
	Logger *slog.Logger
}

// Client opens circuits through relays (Dial) and answers relays'
// invitations (Invited), whose streams it delivers as a conn.Listener.
// Close stops the dial-backs in progress and waits for them.
type Client struct {
	opts ClientOptions
	log  *slog.Logger
	out  chan acceptResult
	life context.Context
	stop context.CancelFunc
	once sync.Once
	wg   sync.WaitGroup // dial-backs

	mu struct {
		sync.Mutex
		dialing int  // dial-backs under way
		closed  bool // Close began: no more dial-backs
	}
}

// NewClient returns a Client.
func NewClient(opts ClientOptions) *Client {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{opts: opts, log: opts.Logger, out: make(chan acceptResult)}
	c.life, c.stop = context.WithCancel(context.Background())
	return c
}

// Dial opens a circuit to target through the relay via (at one of
// viaAddrs) and runs TLS inside it, pinned to target. The stream is of
// network transport.Relay, via via.
func (c *Client) Dial(ctx context.Context, via identity.DeviceID, viaAddrs []transport.Addr, target identity.DeviceID) (conn.Stream, error) {
	st, err := c.open(ctx, via, viaAddrs, &wire.RelayConnect{Device: target})
	if err != nil {
		return conn.Stream{}, fmt.Errorf("relay to device %s through %s: %w", target.Abbrev(), via.Abbrev(), err)
	}
	return c.opts.TLS.Relayed(ctx, st, target, via, true)
}

// Invited acts on a relay's RelayInvite: unless Accept refuses the asking
// device, it dials the relay back in a goroutine of its own, and the
// relayed stream, TLS pinned to the asking device, comes out of Accept.
func (c *Client) Invited(via identity.DeviceID, viaAddrs []transport.Addr, inv *wire.RelayInvite) error {
	if err := c.opts.Accept(inv.Device); err != nil {
		return err
	}
	c.mu.Lock()
	switch {
	case c.mu.closed:
		c.mu.Unlock()
		return errors.New("relay client is closed")
	case c.mu.dialing >= maxDialBacks:
		c.mu.Unlock()
		return ErrBusy
	}
	c.mu.dialing++
	c.wg.Add(1)
	c.mu.Unlock()
	go func() { // waited for by Close
		defer c.wg.Done()
		defer func() {
			c.mu.Lock()
			c.mu.dialing--
			c.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(c.life, acceptTimeout+conn.DefaultHandshakeTimeout)
		defer cancel()
		st, err := c.open(ctx, via, viaAddrs, &wire.RelayAccept{Token: inv.Token})
		if err == nil {
			st, err = c.opts.TLS.Relayed(ctx, st, inv.Device, via, false)
		}
		if err != nil {
			c.log.Info("relayed connection not made", "peer", inv.Device.Abbrev(), "via", via.Abbrev(), "err", err)
			return
		}
		select {
		case c.out <- acceptResult{st: st}:
		case <-c.life.Done():
			st.Close()
		}
	}()
	return nil
}

// open dials the relay, sends first and reads its RelayStatus: the stream
// is then spliced.
func (c *Client) open(ctx context.Context, via identity.DeviceID, viaAddrs []transport.Addr, first wire.Message) (conn.Stream, error) {
	var errs []error
	for i, a := range viaAddrs {
		if i == maxRelayAddrs {
			break
		}
		st, err := c.opts.Transport.Dial(ctx, a, via)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := handshake(ctx, st, first); err != nil {
			st.Close()
			return conn.Stream{}, err
		}
		return st, nil
	}
	if len(errs) == 0 {
		return conn.Stream{}, fmt.Errorf("no address for relay %s", via.Abbrev())
	}
	return conn.Stream{}, errors.Join(errs...)
}

// handshake sends first on st and reads the relay's answer.
func handshake(ctx context.Context, st conn.Stream, first wire.Message) error {
	deadline := time.Now().Add(acceptTimeout + 5*time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	st.SetDeadline(deadline)
	defer st.SetDeadline(time.Time{})
	if err := wire.WriteFrame(st, wire.Frame{Msg: first}); err != nil {
		return fmt.Errorf("send %s: %w", wire.Name(first), err)
	}
	// wire.Reader reads exactly one frame: what follows is the spliced
	// stream's, not ours to buffer.
	f, err := wire.NewReader(st).ReadFrame()
	if err != nil {
		return fmt.Errorf("read relay status: %w", err)
	}
	switch m := f.Msg.(type) {
	case *wire.RelayStatus:
		if m.Code != 0 {
			return fmt.Errorf("%s: %w", m.Reason, ErrRefused)
		}
		return nil
	case *wire.Close:
		return fmt.Errorf("relay closed the stream: %s: %w", m.Reason, ErrRefused)
	}
	return fmt.Errorf("relay answered %s: %w", wire.Name(f.Msg), conn.ErrPeerMisbehaved)
}

// Accept returns the next relayed stream a relay's invitation made.
func (c *Client) Accept(ctx context.Context) (conn.Stream, error) {
	select {
	case r := <-c.out:
		return r.st, r.err
	case <-c.life.Done():
		return conn.Stream{}, fmt.Errorf("accept relayed streams: %w", net.ErrClosed)
	case <-ctx.Done():
		return conn.Stream{}, ctx.Err()
	}
}

// Addr names the listener of relayed streams.
func (c *Client) Addr() net.Addr { return relayAddr{} }

// Close stops the dial-backs and waits for them.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		c.mu.closed = true
		c.mu.Unlock()
		c.stop()
		c.wg.Wait()
	})
	return nil
}

type relayAddr struct{}

func (relayAddr) Network() string { return "relay" }
func (relayAddr) String() string  { return "relay" }
