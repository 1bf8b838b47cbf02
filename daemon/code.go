package daemon

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/discovery"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
	"github.com/schollz/pake/v3"
)

// A short code is an invitation link made small enough to read aloud. The
// link never travels in a form that can be attacked offline: the code is
// the password of a PAKE (password-authenticated key exchange), so whoever
// talks to the inviter without the code learns nothing that lets it test
// guesses at leisure, and each exchange tests one guess at most.
//
// The code is ten Crockford base32 characters, XXXXX-XXXXX. The first two
// are its locator: they name the invitation among the inviter's open ones
// and are not secret. The other eight (40 bits) are the PAKE's password.
// The joiner connects as a guest (its Hello carries "code=<locator>"),
// sends the first PAKE message in a CodeRequest and gets back the
// inviter's and the link sealed with AES-256-GCM under a key derived
// (HKDF-SHA256) from the PAKE's session key, both device IDs and the
// locator. Opening it proves both sides used the same code; the link must
// name the device that answered. An invitation answers codeTries requests
// at most: after that its code is closed (the link still works), so a
// stranger guessing gets three tries at 2^-40 each.
//
// The PAKE is github.com/schollz/pake/v3 (the one croc uses: the
// Boneh-Shoup PAKE2 protocol, on P-256).
const (
	codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" // Crockford base32: no I, L, O, U
	codeChars    = 10
	codeLocator  = 2 // leading characters that name the invitation
	codeTries    = 3 // requests an invitation answers before its code is closed
	codeCurve    = "p256"
	codeInfo     = "blueshift/invite-code/v4"
	codeAAD      = "blueshift/invite-code-link/v4"
	codeCap      = "code=" // Hello capability of a guest asking about a code
)

// ErrBadCode: the text is not a short code (wrong length or characters).
var ErrBadCode = errors.New("not an invitation code")

// newCode makes a random code, written XXXXX-XXXXX, whose locator is not
// one of taken.
func newCode(taken func(locator string) bool) (string, error) {
	for range 64 {
		var b [codeChars]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("make invitation code: %w", err)
		}
		var sb strings.Builder
		for i, c := range b {
			if i == codeChars/2 {
				sb.WriteByte('-')
			}
			sb.WriteByte(codeAlphabet[c%32])
		}
		code := sb.String()
		if taken == nil || !taken(code[:codeLocator]) {
			return code, nil
		}
	}
	return "", errors.New("make invitation code: too many open codes; let some expire or use links")
}

// parseCode normalizes a code as a person may type it: any case, with or
// without the dash or spaces, I and L read as 1, O as 0.
func parseCode(s string) (string, error) {
	r := strings.NewReplacer("-", "", " ", "", "I", "1", "L", "1", "O", "0")
	c := r.Replace(strings.ToUpper(strings.TrimSpace(s)))
	if len(c) != codeChars {
		return "", fmt.Errorf("%w: %q has %d characters, want %d", ErrBadCode, s, len(c), codeChars)
	}
	for _, ch := range c {
		if !strings.ContainsRune(codeAlphabet, ch) {
			return "", fmt.Errorf("%w: %q has the character %q", ErrBadCode, s, ch)
		}
	}
	return c, nil
}

// IsCode reports whether s looks like a short code rather than a link.
func IsCode(s string) bool {
	_, err := parseCode(s)
	return err == nil
}

// splitCode returns a normalized code's locator and password.
func splitCode(c string) (locator string, password []byte) {
	return c[:codeLocator], []byte(c[codeLocator:])
}

// pakeStart begins the joiner's side of the exchange for a normalized code.
func pakeStart(c string) (*pake.Pake, []byte, error) {
	_, pw := splitCode(c)
	p, err := pake.InitCurve(pw, 0, codeCurve)
	if err != nil {
		return nil, nil, fmt.Errorf("start the code exchange: %w", err)
	}
	return p, p.Bytes(), nil
}

// pakeUpdate feeds the other side's PAKE message to p. The message comes
// from the network: its shape is checked first, and a panic inside the
// library on input it did not expect is an error, not a crash.
func pakeUpdate(p *pake.Pake, msg []byte, want ...string) (err error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(msg, &fields); err != nil || fields == nil {
		return errors.New("the PAKE message is not a JSON object")
	}
	for _, k := range want {
		if v, ok := fields[k]; !ok || string(v) == "null" {
			return fmt.Errorf("the PAKE message has no %s", k)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the PAKE message is malformed: %v", r)
		}
	}()
	if err := p.Update(msg); err != nil {
		return fmt.Errorf("the PAKE message is not valid: %w", err)
	}
	return nil
}

// codeAEAD derives the sealing key of one exchange from the PAKE's session
// key, the two devices and the locator.
func codeAEAD(p *pake.Pake, inviter, joiner identity.DeviceID, locator string) (cipher.AEAD, error) {
	k, err := p.SessionKey()
	if err != nil {
		return nil, err
	}
	info := codeInfo + "|" + inviter.String() + "|" + joiner.String() + "|" + locator
	key, err := hkdf.Key(sha256.New, k, nil, info, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// answerCode is the inviter's side: given an open invitation's code and
// link and the joiner's CodeRequest, it returns the CodeResponse.
func answerCode(code, link string, self, joiner identity.DeviceID, req *wire.CodeRequest) (*wire.CodeResponse, error) {
	c, err := parseCode(code)
	if err != nil {
		return nil, err
	}
	locator, pw := splitCode(c)
	p, err := pake.InitCurve(pw, 1, codeCurve)
	if err != nil {
		return nil, err
	}
	if err := pakeUpdate(p, req.Pake, "Role", "Xᵤ", "Xᵥ"); err != nil {
		return nil, err
	}
	aead, err := codeAEAD(p, self, joiner, locator)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	sealed := aead.Seal(nonce, nonce, []byte(link), []byte(codeAAD))
	return &wire.CodeResponse{Pake: p.Bytes(), Sealed: sealed}, nil
}

// openAnswer is the joiner's side: it finishes the PAKE started with p and
// opens the sealed link. Any other code fails here.
func openAnswer(p *pake.Pake, c string, inviter, self identity.DeviceID, resp *wire.CodeResponse) (string, error) {
	locator, _ := splitCode(c)
	if err := pakeUpdate(p, resp.Pake, "Role", "Yᵤ", "Yᵥ"); err != nil {
		return "", err
	}
	aead, err := codeAEAD(p, inviter, self, locator)
	if err != nil {
		return "", err
	}
	if len(resp.Sealed) < aead.NonceSize()+aead.Overhead() {
		return "", errors.New("sealed invitation too short")
	}
	nonce, box := resp.Sealed[:aead.NonceSize()], resp.Sealed[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, []byte(codeAAD))
	if err != nil {
		return "", errors.New("the code does not open this invitation")
	}
	return string(plain), nil
}

// openCode returns the unexpired invitation whose open code has locator.
func openCode(invites []config.Invite, locator string, now time.Time) *config.Invite {
	for i := range invites {
		in := &invites[i]
		if len(in.Code) >= codeLocator && in.Code[:codeLocator] == locator && in.Link != "" && in.Expires.After(now) {
			return in
		}
	}
	return nil
}

// codeLocatorOf returns the locator a guest's Hello asks about, if any.
func codeLocatorOf(hello *wire.Hello) (string, bool) {
	for _, cp := range hello.Capabilities {
		if loc, ok := strings.CutPrefix(cp, codeCap); ok {
			return loc, true
		}
	}
	return "", false
}

// codes counts the requests each invitation's code answered. Its zero
// value is ready.
type codes struct {
	mu    gosync.Mutex
	tries map[string]int // by the invitation's token hash
}

// try counts one request for the invitation and reports whether it may be
// answered and whether it is the last one.
func (cs *codes) try(tokenHash string) (ok, last bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.tries == nil {
		cs.tries = map[string]int{}
	}
	cs.tries[tokenHash]++
	n := cs.tries[tokenHash]
	return n <= codeTries, n == codeTries
}

// errNoCode is why a guest asking about a code is turned away.
var errNoCode = errors.New("no open invitation here has this code: check the code; it may have expired or been closed after too many wrong tries (ask for a new one with `blueshift invite`)")

// admitGuest decides about an unpaired device whose Hello asks about a
// code: it stays as a guest (peer.ErrGuest) while an open invitation has
// that locator.
func (d *Daemon) admitGuest(hello *wire.Hello) error {
	if d.opts.Rendezvous && slices.Contains(hello.Capabilities, rdvGuestCap) {
		return fmt.Errorf("comes to a rendezvous: %w", peer.ErrGuest) // sendrendezvous.go
	}
	loc, ok := codeLocatorOf(hello)
	if !ok {
		return errNotPaired
	}
	if openCode(d.config().Invites, loc, time.Now()) == nil {
		return errNoCode
	}
	return fmt.Errorf("asks about a short code: %w", peer.ErrGuest)
}

// handleCode answers a guest's CodeRequest: the PAKE's answer and the
// sealed link, while the invitation's code is open and has tries left. The
// last try closes the code (saved), whatever its outcome: a code guessed
// at gets codeTries chances in all.
func (d *Daemon) handleCode(remote identity.DeviceID, req *wire.CodeRequest) (wire.Message, error) {
	in := openCode(d.config().Invites, req.Locator, time.Now())
	if in == nil {
		return wire.Errorf(wire.CodeRefused, "%v", errNoCode), nil
	}
	ok, last := d.codes.try(in.TokenHash)
	if last || !ok {
		hash := in.TokenHash
		err := EditConfig(d.home, func(c *config.Config) error {
			for i := range c.Invites {
				if c.Invites[i].TokenHash == hash {
					c.Invites[i].Code = ""
				}
			}
			return nil
		})
		if err != nil {
			d.log.Error("close an invitation code after its last try", "err", err)
		} else if err := d.Reload(); err != nil {
			d.log.Error("reload after closing an invitation code", "err", err)
		}
		d.log.Warn("invitation code closed after its last try; the link itself still works", "peer", remote.String(), "tries", codeTries)
	}
	if !ok {
		return wire.Errorf(wire.CodeRefused, "%v", errNoCode), nil
	}
	resp, err := answerCode(in.Code, in.Link, d.self, remote, req)
	if err != nil {
		d.log.Warn("bad code request", "peer", remote.String(), "err", err)
		return wire.Errorf(wire.CodeRefused, "code exchange failed: %v", err), nil
	}
	return resp, nil
}

// CodeJoinOptions say where to look for the device that made a code.
type CodeJoinOptions struct {
	// Addresses to try (host:port); empty: devices heard on the LAN.
	Addresses []string
	// Listen is how long to listen for LAN announcements; 0: 5 s.
	Listen time.Duration
	Now    time.Time // zero: time.Now
	Logger *slog.Logger
	// Home is set by JoinByCode: LAN listening honours its [discovery]
	// interfaces.
	Home string
	// Rendezvous are public devices (HOST:PORT) to meet the sender at,
	// when Addresses is empty, instead of the LAN (sendrendezvous.go).
	Rendezvous []string
	// QUIC is the daemon's QUIC transport: the rendezvous and the sender
	// are dialled from its socket, whose NAT mapping the sender punches
	// towards and the daemon then connects from.
	QUIC *conn.QUIC
	// daemon, when the receive runs in one: its DHT node is where the
	// sender is looked for beyond the LAN (senddht.go).
	daemon *Daemon
}

// askEach asks the devices at addrs, in turn, for the invitation code
// stands for, and returns the first link given.
func askEach(ctx context.Context, id *identity.Identity, opts CodeJoinOptions, addrs []string, code string) (link string, ok bool) {
	tls := conn.NewTLS(id, opts.Logger)
	for _, addr := range addrs {
		link, err := askForInvitation(ctx, tls.DialAny, id.ID(), addr, code)
		if err != nil {
			opts.Logger.Debug("no invitation for this code", "addr", addr, "err", err)
			continue
		}
		return link, true
	}
	return "", false
}

// JoinByCode finds the invitation a short code stands for and joins
// through it, like Join does with the link.
func JoinByCode(ctx context.Context, home, code, path string, opts CodeJoinOptions) (JoinResult, error) {
	if _, err := parseCode(code); err != nil {
		return JoinResult{}, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	id, err := identity.Load(home)
	if err != nil {
		return JoinResult{}, err
	}
	opts.Home = home
	addrs := opts.Addresses
	if len(addrs) == 0 && (len(opts.Rendezvous) > 0 || opts.daemon != nil && opts.daemon.dht != nil) {
		return joinBeyondLAN(ctx, home, code, path, id, opts) // senddht.go
	}
	if len(addrs) == 0 {
		if addrs, err = lanDevices(ctx, id, opts); err != nil {
			return JoinResult{}, err
		}
	}
	if link, ok := askEach(ctx, id, opts, addrs, code); ok {
		return Join(home, link, path, opts.Now)
	}
	return JoinResult{}, fmt.Errorf("no device reachable from here offers an invitation for code %s: check the code, that the inviting device is running and on this network (or give its address with --addr HOST:PORT), and that the invitation has not expired", code)
}

// askForInvitation connects to addr as a guest, runs the code's PAKE with
// the device there and returns the link it seals, if the code opens it.
func askForInvitation(ctx context.Context, dial func(context.Context, string) (conn.Stream, error), self identity.DeviceID, addr, code string) (string, error) {
	c0, err := parseCode(code)
	if err != nil {
		return "", err
	}
	locator, _ := splitCode(c0)
	s, err := dial(ctx, addr)
	if err != nil {
		return "", err
	}
	hello := wire.Hello{DeviceName: "joining by code", Capabilities: []string{codeCap + locator}}
	c, err := conn.Open(ctx, s, hello, refuseAll{}, conn.Options{Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg gosync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	defer wg.Wait()
	defer c.Close()
	p, first, err := pakeStart(c0)
	if err != nil {
		return "", err
	}
	resp, err := c.Request(ctx, &wire.CodeRequest{Locator: locator, Pake: first})
	if err != nil {
		return "", err
	}
	switch r := resp.(type) {
	case *wire.ErrorResponse:
		return "", fmt.Errorf("device %s: %s", c.Remote().Abbrev(), r.Message)
	case *wire.CodeResponse:
		link, err := openAnswer(p, c0, c.Remote(), self, r)
		if err != nil {
			return "", err
		}
		parse := ParseLink
		if IsPairLink(link) {
			parse = ParsePairLink // a code of `blueshift pair`
		}
		l, err := parse(link)
		if err != nil || l.Device != c.Remote() {
			return "", errors.New("the code opened an invitation that is not from the device that sent it")
		}
		return link, nil
	}
	return "", fmt.Errorf("device %s answered a code request with %s", c.Remote().Abbrev(), wire.Name(resp))
}

// lanDevices listens to LAN announcements for a while and returns the
// addresses heard.
func lanDevices(ctx context.Context, id *identity.Identity, opts CodeJoinOptions) ([]string, error) {
	wait := opts.Listen
	if wait <= 0 {
		wait = 5 * time.Second
	}
	var mu gosync.Mutex
	heard := map[identity.DeviceID]bool{}
	var ifaces []string
	if cfg, err := LoadConfig(opts.Home); err == nil {
		ifaces = cfg.Discovery.Interfaces
	}
	d, err := discovery.New(discovery.Options{Key: id, Interfaces: ifaces, Logger: opts.Logger, OnUpdate: func(dev identity.DeviceID) {
		mu.Lock()
		heard[dev] = true
		mu.Unlock()
	}})
	if err != nil {
		return nil, fmt.Errorf("listen for devices on the LAN: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := d.Run(ctx); err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("listen for devices on the LAN: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	var addrs []string
	for dev := range heard {
		for _, a := range d.Lookup(dev) {
			addrs = append(addrs, a.String())
		}
	}
	return addrs, nil
}

// refuseAll answers nothing: the connection of a code lookup only reads
// the peer's Hello.
type refuseAll struct{}

func (refuseAll) HandleRequest(context.Context, wire.Message) (wire.Message, error) {
	return wire.Errorf(wire.CodeRefused, "not paired"), nil
}

func (refuseAll) HandleMessage(context.Context, wire.Message) error { return nil }
