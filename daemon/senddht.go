package daemon

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/hkdf"

	"github.com/blueshift-sync/blueshift/peer/dht"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/transport"
)

// A send across NATs with the DHT as the meeting point, no server at all.
// Both ends derive one Ed25519 key from the code's DHT name (below); the
// sender publishes where it can be reached as a BEP 44 mutable item of
// that key under salt "send", the receiver looks it up and publishes its
// own address under salt "recv", the sender polls for that item and
// punches towards what it finds (punchKnock, as for a rendezvous's
// knock), and the receiver dials the sender from its daemon's QUIC socket.
//
// The DHT name is the code's locator and the first dhtNameSecret
// characters of its password, never the whole password: anyone may read
// an item's public key, and a key derived from the whole code would let
// whoever reads it test every code offline (2^40 derivations), which the
// PAKE exists to prevent. With this name, a DHT observer who enumerates
// the 2^20 names finds every open send's item and learns the sender's
// address and 10 bits of its password; the PAKE still guards the other
// 30 bits online, three tries (docs/security.md).
//
// Where a socket is reachable: the QUIC socket's reflexive address when
// a peer told us (Hello.Observed), else the public IP a DHT node sees us
// at with the QUIC socket's own port (a NAT that keeps the port, as Linux
// and most home routers do when it is free), then the listening
// addresses.
const (
	sendSalt       = "send"
	recvSalt       = "recv"
	dhtNameSecret  = 2 // password characters in the DHT name
	dhtKeyInfo     = "blueshift/send-dht-key/v1"
	sendDHTPoll    = 2 * time.Second  // how often the sender looks for receivers
	sendDHTRepub   = 60 * time.Second // how often the sender publishes again
	sendDHTFind    = 30 * time.Second // how long a receiver looks for the sender
	sendDHTDial    = 45 * time.Second // how long a receiver tries to reach it
	publicIPWait   = 3 * time.Second  // for a DHT node to answer where it sees us
	publicIPAsk    = 3                // DHT nodes asked
	maxRecvPunched = 8                // receivers' addresses a sender punches towards per poll
	recvFresh      = 5 * time.Minute  // a receiver's item older than this is not punched towards
)

var (
	// errNotOffered: a place looked at (the DHT, a rendezvous) knows of
	// no send under the code; the receive looks elsewhere.
	errNotOffered = errors.New("not offered there")
	// errUnreached: the sender was found but not reached (errNoPath).
	errUnreached = errors.New("found but not reached")
)

// tag is the error of format and args, which errors.Is finds kind in
// without kind's text in the message.
func tag(kind error, format string, args ...any) error {
	return tagged{fmt.Errorf(format, args...), kind}
}

type tagged struct{ err, kind error }

func (t tagged) Error() string   { return t.err.Error() }
func (t tagged) Unwrap() []error { return []error{t.err, t.kind} }

// dhtName is the part of a normalized code both ends' DHT key comes from.
func dhtName(c string) string { return c[:codeLocator+dhtNameSecret] }

// sendKey is the send's DHT key for a code: Ed25519 from HKDF-SHA256 of
// the code's DHT name.
func sendKey(code string) (ed25519.PrivateKey, error) {
	c, err := parseCode(code)
	if err != nil {
		return nil, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, []byte(dhtName(c)), []byte(sendSalt), []byte(dhtKeyInfo)), seed); err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// edSigner is an Ed25519 key as a dht.Signer.
type edSigner struct{ k ed25519.PrivateKey }

func (s edSigner) PublicKey() ed25519.PublicKey { return s.k.Public().(ed25519.PublicKey) }
func (s edSigner) Sign(msg []byte) []byte       { return ed25519.Sign(s.k, msg) }

// publicIP asks a few DHT nodes, from a socket of its own, where they see
// it: our NAT's public IP (invalid when none answers).
func publicIP(ctx context.Context, node *dht.Node) netip.Addr {
	nodes := node.Known(publicIPAsk)
	if len(nodes) == 0 {
		return netip.Addr{}
	}
	pc, err := net.ListenPacket("udp", ":0")
	if err != nil {
		return netip.Addr{}
	}
	defer pc.Close()
	tid := fmt.Sprintf("ip%d", time.Now().UnixNano()%1e6)
	q := dht.PingQuery(tid)
	for _, n := range nodes {
		pc.WriteTo(q, net.UDPAddrFromAddrPort(n))
	}
	deadline := time.Now().Add(publicIPWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	pc.SetReadDeadline(deadline)
	b := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(b)
		if err != nil {
			return netip.Addr{}
		}
		if ap, ok := dht.ObservedIn(b[:n], tid); ok {
			return ap.Addr()
		}
	}
}

// reachableAt is where this device's QUIC socket can be reached from
// afar, best first, then its listening addresses.
func (d *Daemon) reachableAt(ctx context.Context) []string {
	var out []string
	for _, a := range d.peers.Reflexive() {
		out = append(out, a.AddrPort.String())
	}
	if d.quic != nil {
		if ua, ok := d.quic.LocalAddr().(*net.UDPAddr); ok {
			if ip := publicIP(ctx, d.dht.node); ip.IsValid() {
				out = append(out, netip.AddrPortFrom(ip, uint16(ua.Port)).String())
			}
		}
	}
	return publishable(out, d.ourAddresses())
}

// offerInDHT publishes send shareID's meeting item in the DHT and punches
// towards every receiver that publishes its own, until the send ends or
// the daemon stops. Nothing without the DHT or QUIC.
func (d *Daemon) offerInDHT(shareID, code string) {
	if d.dht == nil || d.quic == nil {
		return
	}
	key, err := sendKey(code)
	if err != nil {
		return
	}
	d.mu.Lock()
	run := d.mu.runCtx
	d.mu.Unlock()
	if run == nil {
		return
	}
	d.wg.Go(func() { d.offerInDHTLoop(run, shareID, edSigner{key}) })
}

func (d *Daemon) offerInDHTLoop(ctx context.Context, shareID string, key edSigner) {
	log := d.log.With("share", shareID)
	var published []string
	var last time.Time
	tick := time.NewTicker(sendDHTPoll)
	defer tick.Stop()
	for ctx.Err() == nil && d.sendOpen(shareID) {
		if time.Since(last) > sendDHTRepub || published == nil {
			addrs := d.reachableAt(ctx)
			if len(addrs) > 0 {
				pctx, cancel := context.WithTimeout(ctx, publishTimeout)
				_, err := d.dht.node.PublishAs(pctx, key, sendSalt, addrs)
				cancel()
				if err == nil {
					if !slices.Equal(addrs, published) {
						log.Info("send: offered in the DHT", "addrs", addrs)
					}
					published, last = addrs, time.Now()
				} else if ctx.Err() == nil {
					log.Info("send: publish the offer in the DHT", "err", err)
				}
			}
		}
		lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
		it, err := d.dht.node.LookupAs(lctx, key.PublicKey(), recvSalt)
		cancel()
		// A receiver's item stays in the DHT long after its receive gave
		// up; its sequence number is its publisher's clock.
		if err == nil && freshRecv(it.Seq, time.Now()) {
			for _, a := range it.Addrs[:min(len(it.Addrs), maxRecvPunched)] {
				d.punchKnock(ctx, transport.Addr{AddrPort: a}.With(transport.QUIC))
			}
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}

// freshRecv reports whether a receiver's item of sequence number seq (its
// publisher's clock, in milliseconds) is recent enough to punch towards.
func freshRecv(seq int64, now time.Time) bool {
	return now.Sub(time.UnixMilli(seq)).Abs() < recvFresh
}

// joinInDHT finds the sender of code in the DHT, publishes where this
// device is so that it punches towards us, and dials it from the daemon's
// QUIC socket until it answers or sendDHTDial passes.
func joinInDHT(ctx context.Context, home, code, path string, self identity.DeviceID, opts CodeJoinOptions) (JoinResult, error) {
	d := opts.daemon
	if d == nil || d.dht == nil || d.quic == nil {
		return JoinResult{}, tag(errNotOffered, "the DHT (or QUIC) is off on this device")
	}
	key, err := sendKey(code)
	if err != nil {
		return JoinResult{}, err
	}
	signer := edSigner{key}
	fctx, cancel := context.WithTimeout(ctx, sendDHTFind)
	defer cancel()
	var it dht.Item
	for {
		lctx, lcancel := context.WithTimeout(fctx, lookupTimeout)
		it, err = d.dht.node.LookupAs(lctx, signer.PublicKey(), sendSalt)
		lcancel()
		if err == nil && len(it.Addrs) > 0 {
			break
		}
		select {
		case <-fctx.Done():
			return JoinResult{}, tag(errNotOffered, "no send under this code in the DHT after %s (%v)", sendDHTFind, err)
		case <-time.After(time.Second):
		}
	}
	opts.Logger.Info("receive: the DHT holds an offer under this code", "addrs", it.Addrs)
	mine := d.reachableAt(ctx)
	pctx, pcancel := context.WithTimeout(ctx, publishTimeout)
	_, err = d.dht.node.PublishAs(pctx, signer, recvSalt, mine)
	pcancel()
	if err != nil {
		return JoinResult{}, fmt.Errorf("publish where this device is in the DHT: %w", err)
	}
	opts.Logger.Info("receive: published where this device is, for the sender to punch towards", "addrs", mine)
	dctx, dcancel := context.WithTimeout(ctx, sendDHTDial)
	defer dcancel()
	var tried []error
	for dctx.Err() == nil {
		for _, a := range it.Addrs {
			actx, acancel := context.WithTimeout(dctx, 10*time.Second)
			link, err := askForInvitation(actx, opts.QUIC.DialAny, self, a.String(), code)
			acancel()
			if err != nil {
				tried = append(tried[:min(len(tried), 3)], fmt.Errorf("%s: %w", a, err))
				continue
			}
			res, err := Join(home, link, path, opts.Now)
			if err != nil {
				return res, err
			}
			if err := addPeerAddress(home, res.Inviter, "quic://"+a.String()); err != nil {
				return res, fmt.Errorf("keep where the sender was reached: %w", err)
			}
			return res, nil
		}
		select {
		case <-dctx.Done():
		case <-time.After(time.Second):
		}
	}
	addrs := make([]string, len(it.Addrs))
	for i, a := range it.Addrs {
		addrs[i] = a.String()
	}
	return JoinResult{}, errNoPath(code, map[string][]string{"the DHT": addrs}, tried)
}

// joinBeyondLAN finds the sender of code on the LAN, then at the
// rendezvous points given, then in the DHT, and joins the first found.
func joinBeyondLAN(ctx context.Context, home, code, path string, id *identity.Identity, opts CodeJoinOptions) (JoinResult, error) {
	var tried []string
	addrs, err := lanDevices(ctx, id, opts)
	if err != nil {
		tried = append(tried, "the LAN: "+err.Error())
	}
	if link, ok := askEach(ctx, id, opts, addrs, code); ok { // code.go
		return Join(home, link, path, opts.Now)
	}
	if err == nil {
		tried = append(tried, fmt.Sprintf("the LAN: no device heard there offers it (%d heard)", len(addrs)))
	}
	var noPath error
	// next reports whether err lets the search go on elsewhere.
	next := func(where string, err error) bool {
		switch {
		case errors.Is(err, errUnreached):
			noPath = cmp.Or(noPath, err)
		case !errors.Is(err, errNotOffered):
			return false
		}
		tried = append(tried, where+": "+err.Error())
		return true
	}
	if len(opts.Rendezvous) > 0 {
		res, err := joinAtRendezvous(ctx, home, code, path, id.ID(), opts)
		if err == nil || !next("the rendezvous", err) {
			return res, err
		}
	}
	switch d := opts.daemon; {
	case d == nil || d.dht == nil:
		tried = append(tried, "the DHT: off on this device")
	case d.dht.node.Nodes() == 0:
		tried = append(tried, "the DHT: this device's node knows no other node yet (give `run --bootstrap HOST:PORT`)")
	default:
		res, err := joinInDHT(ctx, home, code, path, id.ID(), opts)
		if err == nil || !next("the DHT", err) {
			return res, err
		}
	}
	if noPath != nil {
		return JoinResult{}, noPath
	}
	return JoinResult{}, fmt.Errorf("no device offering code %s was found: tried %s. Check the code and that the sender still runs `blueshift send`; across networks, both daemons need the DHT on and bootstrapped (run --bootstrap HOST:PORT), or meet at a public device with --rendezvous HOST:PORT, or give the sender's address with --addr HOST:PORT",
		code, strings.Join(tried, "; "))
}
