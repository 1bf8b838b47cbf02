package daemon

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/discovery"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// A short code is an invitation link made small enough to read aloud. The
// link itself never travels in the clear: the inviter seals it with a key
// derived from the code and offers the sealed form in its Hello to devices
// it has not paired yet, while the invitation lasts. The joiner, knowing
// the code, connects to the devices on its LAN (or an address it is
// given), opens what they offer, and joins through the link it finds.
// Opening proves the sender knew the code (AES-GCM authenticates), and the
// link must name the device that offered it.
//
// Sealed form: salt (16) | nonce (12) | AES-256-GCM(link text), with the
// key PBKDF2-SHA256(code, salt, codeIterations): 50 bits of code behind
// 200,000 iterations put offline guessing out of reach for an invitation
// that expires.
const (
	codeAlphabet   = "0123456789ABCDEFGHJKMNPQRSTVWXYZ" // Crockford base32: no I, L, O, U
	codeChars      = 10
	codeIterations = 200_000
	codeSalt       = 16
	codeAAD        = "blueshift/invite-code/v1"
)

// ErrBadCode: the text is not a short code (wrong length or characters).
var ErrBadCode = errors.New("not an invitation code")

// newCode makes a random code, written XXXXX-XXXXX.
func newCode() (string, error) {
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
	return sb.String(), nil
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

func codeKey(code string, salt []byte) []byte {
	k, err := pbkdf2.Key(sha256.New, code, salt, codeIterations, 32)
	if err != nil {
		panic(err) // only for out-of-range lengths, which are constants here
	}
	return k
}

// sealLink seals link text under code.
func sealLink(code, link string) ([]byte, error) {
	c, err := parseCode(code)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, codeSalt)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	aead, err := codeAEAD(codeKey(c, salt))
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := append(append(salt, nonce...), aead.Seal(nil, nonce, []byte(link), []byte(codeAAD))...)
	if len(out) > wire.MaxSealedInvite {
		return nil, fmt.Errorf("sealed invitation of %d bytes is over the %d a Hello carries", len(out), wire.MaxSealedInvite)
	}
	return out, nil
}

// openLink opens a sealed link with code; any other code fails.
func openLink(code string, sealed []byte) (string, error) {
	c, err := parseCode(code)
	if err != nil {
		return "", err
	}
	if len(sealed) < codeSalt+12+16 {
		return "", errors.New("sealed invitation too short")
	}
	salt, rest := sealed[:codeSalt], sealed[codeSalt:]
	aead, err := codeAEAD(codeKey(c, salt))
	if err != nil {
		return "", err
	}
	nonce, box := rest[:aead.NonceSize()], rest[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, box, []byte(codeAAD))
	if err != nil {
		return "", errors.New("the code does not open this invitation")
	}
	return string(plain), nil
}

func codeAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
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
	if len(addrs) == 0 {
		if addrs, err = lanDevices(ctx, id, opts); err != nil {
			return JoinResult{}, err
		}
	}
	tls := conn.NewTLS(id, opts.Logger)
	for _, addr := range addrs {
		link, err := askForInvitation(ctx, tls, addr, code)
		if err != nil {
			opts.Logger.Debug("no invitation for this code", "addr", addr, "err", err)
			continue
		}
		return Join(home, link, path, opts.Now)
	}
	return JoinResult{}, fmt.Errorf("no device reachable from here offers an invitation for code %s: check the code, that the inviting device is running and on this network (or give its address with --addr HOST:PORT), and that the invitation has not expired", code)
}

// askForInvitation connects to addr, reads the sealed invitations in its
// Hello and returns the link that code opens, if any.
func askForInvitation(ctx context.Context, tls *conn.TLS, addr, code string) (string, error) {
	s, err := tls.DialAny(ctx, addr)
	if err != nil {
		return "", err
	}
	c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "joining by code"}, refuseAll{}, conn.Options{Timeout: 10 * time.Second})
	if err != nil {
		return "", err
	}
	defer c.Close()
	for _, sealed := range c.PeerHello().SealedInvites {
		link, err := openLink(code, sealed)
		if err != nil {
			continue
		}
		l, err := ParseLink(link)
		if err != nil || l.Device != c.Remote() {
			continue // opened, but not an invitation from the device that sent it
		}
		return link, nil
	}
	return "", errors.New("none of its invitations opens with this code")
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
