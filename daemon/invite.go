package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/zeebo/blake3"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// DefaultInviteExpiry is how long a link works unless told otherwise.
const DefaultInviteExpiry = 24 * time.Hour

// ErrInvite is the class of invitation tokens that do not admit a device.
var ErrInvite = errors.New("invitation not valid")

// InviteOptions are what `blueshift invite` asks for.
type InviteOptions struct {
	ReadOnly  bool
	Encrypted bool          // the joiner gets the encrypted capability only (an encrypted member)
	Expires   time.Duration // 0: DefaultInviteExpiry; negative is an error
	SingleUse bool
	// Addresses are where this device can be reached; empty: derived from
	// the configuration's announce and listen addresses.
	Addresses []string
	Now       time.Time // zero: time.Now
}

// Invite makes an invitation to the share ref names: it stores the token's
// hash in home's configuration and returns the link to hand out, and a
// short code that stands for the link on the LAN (see code.go).
func Invite(home, ref string, opts InviteOptions) (Link, string, error) {
	if opts.Expires < 0 {
		return Link{}, "", fmt.Errorf("invite: an expiry of %s is in the past: give a positive duration like 24h", opts.Expires)
	}
	if opts.Expires == 0 {
		opts.Expires = DefaultInviteExpiry
	}
	if opts.Encrypted && opts.ReadOnly {
		return Link{}, "", errors.New("invite: --encrypted and --read-only are two levels: choose one (an encrypted member reads nothing)")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	id, err := identity.Load(home)
	if err != nil {
		return Link{}, "", err
	}
	var l Link
	if _, err := rand.Read(l.Token[:]); err != nil {
		return Link{}, "", fmt.Errorf("make invitation token: %w", err)
	}
	l.Device = id.ID()
	var code string
	l.Expires = opts.Now.Add(opts.Expires).Truncate(time.Second).UTC()
	err = EditConfig(home, func(c *config.Config) error {
		s, err := c.FindShare(ref)
		if err != nil {
			return err
		}
		key, err := share.ParseKey(s.Key)
		if err != nil {
			return fmt.Errorf("share %q: %w", s.Name, err)
		}
		if opts.Encrypted {
			if key, err = key.Encrypted(); err != nil {
				return fmt.Errorf("share %q: make an encrypted key: %w", s.Name, err)
			}
		} else if opts.ReadOnly {
			if key, err = key.ReadOnly(); err != nil {
				return fmt.Errorf("share %q: make a read-only key: %w", s.Name, err)
			}
		} else if key.Level() != share.ReadWrite {
			return fmt.Errorf("share %q: this device has %s access and cannot invite others to write: use --read-only", s.Name, key.Level())
		}
		l.Key, l.ShareName = key, s.Name
		if opts.Encrypted {
			l.ShareName = "" // a name an encrypted member has no need to read
		}
		l.Addresses = opts.Addresses
		if len(l.Addresses) == 0 {
			if l.Addresses, err = Addresses(c.Device.Announce, c.Device.Listen); err != nil {
				return err
			}
		}
		// Forget expired invitations while we are here.
		c.Invites = slices.DeleteFunc(c.Invites, func(in config.Invite) bool { return !in.Expires.After(opts.Now) })
		if code, err = newCode(func(loc string) bool { return openCode(c.Invites, loc, opts.Now) != nil }); err != nil {
			return err
		}
		c.Invites = append(c.Invites, config.Invite{
			TokenHash: tokenHash(l.Token[:]), Share: s.ID, ReadOnly: opts.ReadOnly, Encrypted: opts.Encrypted,
			Expires: l.Expires, SingleUse: opts.SingleUse, Code: code, Link: l.String(),
		})
		return nil
	})
	return l, code, err
}

// JoinResult says what Join did.
type JoinResult struct {
	ShareID string
	Path    string
	Inviter string
	// AddedPeer: the inviter was not a [[peer]] before (Unjoin removes it).
	AddedPeer bool
}

// Join adds the share a link carries to home's configuration at path
// (created when missing; existing files are merged by the sync, never
// replaced wholesale), with the inviter as a peer, and the token as the
// share's pending join, presented to the inviter until it answers (see
// join.go). A share already joined from the same inviter but refused, or
// still waiting, takes the new link's token instead.
func Join(home, linkText, path string, now time.Time) (JoinResult, error) {
	if IsPairLink(linkText) {
		return joinPair(home, linkText, path, now) // path: where the keyring's shares go
	}
	if path == "" {
		return JoinResult{}, errors.New("join: give the folder to join the share into: blueshift join LINK PATH")
	}
	l, err := ParseLink(linkText)
	if err != nil {
		return JoinResult{}, err
	}
	if now.IsZero() {
		now = time.Now()
	}
	if !l.Expires.After(now) {
		return JoinResult{}, fmt.Errorf("join: the link expired at %s: %w; ask its owner for a new link (`blueshift invite`)", l.Expires.Local().Format(time.DateTime), ErrLinkExpired)
	}
	id, err := identity.Load(home)
	if err != nil {
		return JoinResult{}, err
	}
	if l.Device == id.ID() {
		return JoinResult{}, errors.New("join: this link was made by this device; use it on the other device")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return JoinResult{}, fmt.Errorf("join: resolve %q: %w", path, err)
	}
	if fi, err := os.Stat(abs); err == nil && !fi.IsDir() {
		return JoinResult{}, fmt.Errorf("join: %s is a file, not a folder: choose a folder", abs)
	}
	if err := CheckSharePath(home, abs); err != nil {
		return JoinResult{}, fmt.Errorf("join: %w", err)
	}
	res := JoinResult{ShareID: l.Key.ID().String(), Path: abs, Inviter: l.Device.String()}
	token := hex.EncodeToString(l.Token[:])
	err = EditConfig(home, func(c *config.Config) error {
		_, perr := c.FindPeer(res.Inviter)
		res.AddedPeer = perr != nil
		if err := c.AddPeer(config.Peer{ID: res.Inviter, Addresses: l.Addresses}); err != nil {
			return err
		}
		if s, err := c.FindShare(res.ShareID); err == nil {
			if s.JoinFrom != res.Inviter || filepath.Clean(s.Path) != abs {
				return fmt.Errorf("join: this device already has share %q at %s", s.Name, s.Path)
			}
			s.JoinToken, s.JoinRefused = token, "" // again, with a new link
			return nil
		}
		s := config.NewShare(res.ShareID, abs, l.Key.String())
		if l.ShareName != "" {
			s.Name = l.ShareName
		}
		s.Peers = []string{res.Inviter}
		s.JoinFrom, s.JoinToken = res.Inviter, token
		if err := c.AddShare(s); err != nil {
			return err
		}
		return os.MkdirAll(abs, 0o755)
	})
	return res, err
}

// Unjoin takes back a join its inviter refused: the share leaves the
// configuration, and the inviter too if Join added it and no other share
// has it. Files stay where they are.
func Unjoin(home string, res JoinResult) error {
	return EditConfig(home, func(c *config.Config) error {
		if s, err := c.FindShare(res.ShareID); err != nil || s.JoinRefused == "" {
			return nil // accepted meanwhile, or already gone
		}
		if _, err := c.RemoveShare(res.ShareID); err != nil {
			return err
		}
		if !res.AddedPeer {
			return nil
		}
		for _, s := range c.Shares {
			if slices.Contains(s.Peers, res.Inviter) {
				return nil
			}
		}
		_, err := c.RemovePeer(res.Inviter)
		return err
	})
}

// redeem pairs remote through the invitation whose token it presented:
// it becomes a peer and a member of the share, the configuration is saved
// and the engine told. A device already a member is fine. A non-zero want
// is the share the device asks to join: a token for another is refused.
func (d *Daemon) redeem(remote identity.DeviceID, name, tokenHex string, want share.ID) error {
	tok, err := hex.DecodeString(tokenHex)
	if err != nil || len(tok) != TokenSize {
		return fmt.Errorf("malformed invitation token: %w", ErrInvite)
	}
	h := tokenHash(tok)
	// Known to the configuration applied last (invite reloads the daemon
	// before it prints a link): a stranger's guesses cost no config lock.
	if !slices.ContainsFunc(d.config().Invites, func(in config.Invite) bool { return in.TokenHash == h }) {
		if err := d.revokedToken(h); err != nil {
			return err
		}
		return fmt.Errorf("unknown or already used invitation: %w; ask for a new link", ErrInvite)
	}
	now := time.Now()
	var shareName string
	var joined config.Invite
	err = EditConfig(d.home, func(c *config.Config) error {
		i := slices.IndexFunc(c.Invites, func(in config.Invite) bool { return in.TokenHash == h })
		if i < 0 {
			return fmt.Errorf("unknown or already used invitation: %w; ask for a new link", ErrInvite)
		}
		in := c.Invites[i]
		if !in.Expires.After(now) {
			return fmt.Errorf("the invitation expired at %s: %w; ask for a new link", in.Expires.Format(time.RFC3339), ErrInvite)
		}
		if want != (share.ID{}) && in.Share != want.String() {
			return fmt.Errorf("the invitation is to another share: %w; ask for a new link", ErrInvite)
		}
		s, err := c.FindShare(in.Share)
		if err != nil {
			return fmt.Errorf("the invited share is gone: %w; ask for a new link", ErrInvite)
		}
		if id, err := share.ParseID(in.Share); err == nil {
			if err := d.refusedMember(id, remote, h); err != nil {
				return err // removed devices and the links they joined with stay out
			}
		}
		shareName, joined = s.Name, in
		if len(name) > 64 {
			name = name[:64]
		}
		if err := c.AddPeer(config.Peer{ID: remote.String(), Name: validName(name)}); err != nil {
			return err
		}
		if !slices.Contains(s.Peers, remote.String()) {
			s.Peers = append(s.Peers, remote.String())
		}
		if in.SingleUse {
			c.Invites = slices.Delete(c.Invites, i, i+1)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.log.Info("paired device through an invitation", "peer", remote.Abbrev(), "name", name, "share", shareName)
	if id, err := share.ParseID(joined.Share); err == nil {
		d.admitted(id, remote, h, inviteLevel(joined))
	}
	return d.Reload()
}

// Addresses are the host:port pairs to put in a link: announce when set,
// else listen, with an unspecified host replaced by this machine's
// interface addresses (loopback last).
func Addresses(announce []string, listen string) ([]string, error) {
	if len(announce) > 0 {
		return announce, nil
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", listen, err)
	}
	if port == "0" {
		return nil, errors.New("the listen port is 0 (picked when the daemon starts): start the daemon (`blueshift run`) before making a link")
	}
	ip := net.ParseIP(host)
	if host != "" && (ip == nil || !ip.IsUnspecified()) {
		return []string{net.JoinHostPort(host, port)}, nil
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list this machine's addresses: %w; set [device] announce in the configuration", err)
	}
	var out, loop []string
	for _, a := range ifaddrs {
		in, ok := a.(*net.IPNet)
		if !ok || in.IP.IsLinkLocalUnicast() || in.IP.IsMulticast() {
			continue
		}
		hp := net.JoinHostPort(in.IP.String(), port)
		if in.IP.IsLoopback() {
			loop = append(loop, hp)
		} else {
			out = append(out, hp)
		}
	}
	out = append(out, loop...)
	if len(out) > maxLinkAddrs {
		out = out[:maxLinkAddrs]
	}
	return out, nil
}

func tokenHash(tok []byte) string {
	sum := blake3.Sum256(tok)
	return hex.EncodeToString(sum[:])
}

// validName keeps a peer's self-chosen name only if the config accepts it.
func validName(name string) string {
	c := config.New("x")
	if err := c.AddPeer(config.Peer{ID: "X", Name: name}); err != nil {
		return ""
	}
	return name
}
