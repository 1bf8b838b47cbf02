// Package config is a device's configuration: the TOML file config.toml in the
// device home, written by the blueshift command line and validated on load.
//
// Nouns: the home (a directory holding one device: identity, database,
// config.toml), the Config (one [device] table, a [[share]] table per share, a
// [[peer]] table per known device), and Checks (hooks that validate the text
// forms of device IDs, share IDs and share keys, which this package keeps as
// strings so that it depends on none of the heavier packages).
//
// The file, with every key this version knows (Save writes all of them, in
// this order; unknown keys are errors so a typo never goes unnoticed):
//
//	[device]
//	name = "laptop"                # shown to peers; free text, at most 64 bytes
//	listen = ":22100"              # host:port for peer connections; port 0 picks a free one
//	discovery = true               # LAN multicast announcements
//	announce = ["192.0.2.7:22100"] # addresses given to peers in invites; empty: derive from listen
//	rescan_interval = "1h"         # full rescan of every share: the safety net behind the watcher
//	ui = "127.0.0.1:8385"          # the web UI's loopback address; "off": none; empty: DefaultUI
//	quic = true                    # QUIC on one UDP socket (hole punching); false: TCP only
//	quic_port = 0                  # its UDP port; 0: the port number of listen
//	paused = false                 # every share paused (blueshift pause); survives a restart
//	max_send_rate = "2MiB"         # bytes per second sent to all peers together; absent: no limit
//	max_recv_rate = "10MB"         # bytes per second received; units B, kB, KiB, MB, MiB, GB, GiB
//	relay = true                   # relay for devices that share a share with this one and cannot
//	                               # reach each other; false on a metered link
//	relay_rate = "1MiB"            # bytes per second relayed, all circuits together; absent: 1MiB
//	multicast = true               # blocks several LAN peers pull at once go once to a multicast
//	                               # group (on discovery's interfaces; off when discovery is)
//	multicast_rate = "12.5MB"      # bytes per second sent to the group; absent: 100 Mbit/s
//
//	[discovery]
//	interfaces = ["eth0"]          # announce and listen on these interfaces only; empty: every
//	                               # multicast interface that is up, loopback excepted
//
//	[dht]
//	enabled = true                 # a BitTorrent mainline DHT node: publish our addresses, find peers'
//	listen = ":22101"              # its UDP host:port; empty: the [device] listen host, port + 1
//	bootstrap = ["192.0.2.9:6881"] # nodes asked first; empty: the public mainline routers, unless
//	                               # the daemon listens on loopback only (then none)
//
//	[[share]]
//	id = "…"                       # share ID, text form
//	name = "photos"                # local label; defaults to the folder's name
//	path = "/home/me/Photos"       # absolute; may contain another share, never sits inside .blueshift/
//	key = "…"                      # capability, text form (why the file is mode 0600)
//	watch = true                   # use filesystem events; false: periodic rescans only
//	paused = false
//	versions_keep = 5              # old versions kept per file in .blueshift/versions; at least 1
//	versions_days = 30             # and for at most this many days; 0: no age limit
//	versions_max_mb = 1024         # and at most this many MiB in all, oldest removed first; 0: no cap
//	max_send_rate = "1MiB"         # this share's blocks sent per second; absent: no limit
//	max_recv_rate = "1MiB"         # this share's blocks received per second
//	multicast = true               # false: this share's blocks never go by LAN multicast
//	peers = ["…"]                  # device IDs this share is shared with; each must be a [[peer]]
//	join_from = "…"                # only while joining through a link: the inviting device (a [[peer]])
//	join_token = "…"               # its token (hex), presented to join_from until accepted
//	join_refused = "…"             # the inviter refused the token: why (the share stays unsynced)
//
//	[[peer]]
//	id = "…"                       # device ID, text form
//	name = "desktop"
//	addresses = ["192.0.2.8:22100"] # static addresses tried before discovery; port 0 not allowed;
//	                               # "quic://…" or "tcp://…" to use one network only
//	invite = "…"                   # only on a device that joined through a link: the token it presents
//	public_key = "…"               # its Ed25519 public key (base64), learned from it or an introduction:
//	                               # what finds it in the DHT (the device ID is a hash of it)
//
//	[[invite]]                     # an invitation this device handed out (blueshift invite)
//	token_hash = "…"               # hex BLAKE3-256 of the link's token
//	share = "…"                    # share ID
//	read_only = false
//	expires = 2026-01-02T15:04:05Z
//	single_use = false
//
// Contracts: Load never returns a Config that fails validation; Save
// validates first and never leaves a half-written file (temp file, fsync,
// rename, fsync of the directory), always mode 0600. A *Config is a plain
// value: it is not safe for concurrent use, and two processes saving the same
// home race (the last rename wins; neither file is ever torn).
package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	// FileName is the configuration's name inside the home.
	FileName = "config.toml"
	// EnvHome names the environment variable that selects the home.
	EnvHome = "BLUESHIFT_HOME"
	// DefaultPort is Blueshift's peer port (Syncthing uses 22000).
	DefaultPort = 22100
	// DefaultUI is where the daemon serves its web UI unless told otherwise.
	DefaultUI = "127.0.0.1:8385"
	// DefaultListen listens on every interface, IPv4 and IPv6.
	DefaultListen = ":22100"
	// DefaultRescanInterval is how often every share is rescanned in full.
	DefaultRescanInterval = time.Hour
	// MinRescanInterval keeps a typo ("1s" for "1h") from pinning a core.
	MinRescanInterval = time.Second
	// DefaultVersionsKeep and DefaultVersionsDays bound the versions folder.
	DefaultVersionsKeep = 5
	DefaultVersionsDays = 30

	// metaDir is the per-share metadata folder; no share may live inside one.
	metaDir = ".blueshift"
	// maxFileSize bounds what Load reads; a real config is a few kilobytes.
	maxFileSize = 1 << 20
	// maxName bounds device, share and peer names.
	maxName = 64
	// maxIDText bounds an ID's or key's text form before the Checks hooks run.
	maxIDText = 512
	// maxErrors bounds how many problems one Load reports.
	maxErrors = 10
)

var (
	// ErrNoConfig means the home has no config.toml yet.
	ErrNoConfig = errors.New("no configuration")
	// ErrInvalid is the class of every parse and validation error.
	ErrInvalid = errors.New("invalid configuration")
	// ErrNotFound means no share or peer matches.
	ErrNotFound = errors.New("not found")
)

// Config is the whole file. Field order is the order Save writes.
type Config struct {
	Device    Device    `toml:"device"`
	Discovery Discovery `toml:"discovery"`
	DHT       DHT       `toml:"dht"`
	Shares    []Share   `toml:"share"`
	Peers     []Peer    `toml:"peer"`
	// Invites are the invitations this device handed out and that may still
	// be used (written by `blueshift invite`, consumed by the daemon).
	Invites []Invite `toml:"invite"`
	// Hooks are commands run on events (daemon/hooks).
	Hooks []Hook `toml:"hook"`

	// Checks validates ID and key text forms; Load sets it, zero checks only
	// the basic shape (non-empty, printable, bounded).
	Checks Checks `toml:"-"`
}

// Device is this device's own settings.
type Device struct {
	Name           string   `toml:"name"`
	Listen         string   `toml:"listen"`
	Discovery      bool     `toml:"discovery"`
	Announce       []string `toml:"announce"`
	RescanInterval Duration `toml:"rescan_interval"`
	UI             string   `toml:"ui,omitempty"`
	// QUIC turns the QUIC transport (one UDP socket: listening, dialling,
	// hole punching) on; off, peers are reached over TCP only.
	QUIC bool `toml:"quic"`
	// QUICPort is the UDP port of QUIC; 0: the port number listen has.
	QUICPort int `toml:"quic_port"`
	// Paused stops every share until `blueshift resume` (each share's own
	// paused flag is kept apart, so resuming the device restores it).
	Paused      bool `toml:"paused,omitempty"`
	MaxSendRate Rate `toml:"max_send_rate,omitempty"`
	MaxRecvRate Rate `toml:"max_recv_rate,omitempty"`
	// Relay: this device relays connections between devices that share a
	// share with it and cannot reach each other (peer/relay); RelayRate
	// caps the bytes per second it relays (0: no cap).
	Relay     bool `toml:"relay"`
	RelayRate Rate `toml:"relay_rate"`
	// KeyringDir is the folder that shares taken from this device's keyring
	// go in, each in KeyringDir/<share name> (`blueshift join PAIRLINK
	// DIR`); empty: the user's home folder.
	KeyringDir string `toml:"keyring_dir,omitempty"`
	// Multicast lets blocks travel once to a LAN multicast group when two
	// or more LAN peers pull them at once; it is on only where discovery
	// is (same interfaces). MulticastRate caps what is sent to the group.
	Multicast     bool `toml:"multicast"`
	MulticastRate Rate `toml:"multicast_rate,omitempty"`
}

// DefaultRelayRate is the relay's bandwidth cap when relay_rate is absent.
const DefaultRelayRate Rate = 1 << 20

// Discovery tunes LAN discovery (on or off is [device] discovery).
type Discovery struct {
	// Interfaces are the names of the interfaces announcements go out on
	// and are heard on; empty: every multicast interface that is up, except
	// loopback. ["lo"] keeps discovery on this machine (tests, demos).
	Interfaces []string `toml:"interfaces"`
}

// DHT configures this device's node of the BitTorrent mainline DHT, where
// it publishes its addresses and finds its peers' (peer/dht).
type DHT struct {
	Enabled bool `toml:"enabled"`
	// Listen is the node's UDP host:port; empty: the host of [device]
	// listen with the next port (port 0 stays 0).
	Listen string `toml:"listen"`
	// Bootstrap lists the nodes (host:port) asked first; empty: the public
	// mainline routers, unless the daemon listens on loopback only.
	Bootstrap []string `toml:"bootstrap"`
}

// Share is one shared folder.
type Share struct {
	ID           string `toml:"id"`
	Name         string `toml:"name"`
	Path         string `toml:"path"`
	Key          string `toml:"key"`
	Watch        bool   `toml:"watch"`
	Paused       bool   `toml:"paused"`
	VersionsKeep int    `toml:"versions_keep"`
	VersionsDays int    `toml:"versions_days"`
	// VersionsMaxMB caps the versions folder (MiB); 0: no cap.
	VersionsMaxMB int  `toml:"versions_max_mb,omitempty"`
	MaxSendRate   Rate `toml:"max_send_rate,omitempty"`
	MaxRecvRate   Rate `toml:"max_recv_rate,omitempty"`
	// Multicast: this share's blocks may travel by LAN multicast ([device]
	// multicast must be on too).
	Multicast bool     `toml:"multicast"`
	Peers     []string `toml:"peers"`
	// JoinFrom, JoinToken and JoinRefused are set on a share joined through
	// a link until its inviter (JoinFrom) answers the token (hex): accepted
	// clears them, refused keeps why in JoinRefused and clears the token.
	JoinFrom    string `toml:"join_from,omitempty"`
	JoinToken   string `toml:"join_token,omitempty"`
	JoinRefused string `toml:"join_refused,omitempty"`
	// A share made by `blueshift send` or `blueshift receive` lives for one
	// transfer (daemon/send.go): SendUntil and SendPaths mark a sender's
	// (what it sends, until when), ReceiveInto a receiver's (the folder the
	// received items move to when complete). SendCode is the send's code,
	// kept after the receiver used it (the single-use invitation is gone
	// then) so that `send` run again names the send in progress.
	SendUntil   time.Time `toml:"send_until,omitempty"`
	SendPaths   []string  `toml:"send_paths,omitempty"`
	SendCode    string    `toml:"send_code,omitempty"`
	ReceiveInto string    `toml:"receive_into,omitempty"`
}

// Peer is a known device.
type Peer struct {
	ID        string   `toml:"id"`
	Name      string   `toml:"name"`
	Addresses []string `toml:"addresses"`
	// Invite is the token (hex) of the invitation this device joined through;
	// it is presented to that peer until the peer has paired us.
	Invite string `toml:"invite,omitempty"`
	// PublicKey is the device's Ed25519 public key (base64), which finds it
	// in the DHT; learned when it connects or from an introduction.
	PublicKey string `toml:"public_key,omitempty"`
}

// Invite is one invitation this device made: who presents the token may
// join Share at the granted level until Expires.
type Invite struct {
	TokenHash string    `toml:"token_hash"` // hex BLAKE3-256 of the token; the token itself is never stored
	Share     string    `toml:"share"`      // share ID
	ReadOnly  bool      `toml:"read_only"`
	Encrypted bool      `toml:"encrypted,omitempty"` // the joiner stores and serves the share sealed, reading nothing (sync/vault)
	Expires   time.Time `toml:"expires"`
	SingleUse bool      `toml:"single_use"`
	// Code is the invitation's short code, the password of the PAKE a
	// joiner must run with this device to get Link (daemon/code.go); empty
	// once closed (after too many tries). Both are secrets of this home, as
	// its device key is.
	Code string `toml:"code,omitempty"`
	Link string `toml:"link,omitempty"`
	// Sealed is what builds before protocol version 4 kept instead (the
	// link sealed under the code, offered in every Hello): read, never used.
	Sealed string `toml:"sealed,omitempty"`
}

// Hook runs Command on Event in Share (daemon/hooks): one JSON object on
// stdin, BLUESHIFT_* variables in the environment, killed after Timeout.
type Hook struct {
	Share   string   `toml:"share"`   // share ID or name; "*" or empty: every share
	Event   string   `toml:"event"`   // file_applied, file_deleted, conflict, share_in_sync, member_joined or "*"
	Command []string `toml:"command"` // program and arguments (no shell unless named)
	Timeout Duration `toml:"timeout,omitempty"`
}

// HookEvents are the events a [[hook]] may name, besides "*".
var HookEvents = []string{"file_applied", "file_deleted", "conflict", "share_in_sync", "member_joined"}

// Checks validates the text forms this package stores as strings. Each hook
// is optional; the daemon wires in identity and share parsers. A hook's error
// is shown to the user after the line it concerns.
type Checks struct {
	DeviceID func(text string) error
	ShareID  func(text string) error
	ShareKey func(text string) error
}

// Duration is a time.Duration written as text ("1h", "90s").
type Duration struct{ time.Duration }

// MarshalText writes the duration the way time.Duration prints it, but
// without the zero tails ("1h", not "1h0m0s").
func (d Duration) MarshalText() ([]byte, error) {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return []byte(s), nil
}

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like \"1h\", \"30m\" or \"90s\"", b)
	}
	d.Duration = v
	return nil
}

// Home resolves the device home: the --home flag when set, else
// $BLUESHIFT_HOME, else the platform's config directory plus "blueshift".
// The result is absolute.
func Home(flag string) (string, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv(EnvHome)
	}
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find a home for blueshift: %w: pass --home DIR or set %s", err, EnvHome)
		}
		dir = filepath.Join(base, "blueshift")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve home %q: %w", dir, err)
	}
	return abs, nil
}

// Path is the configuration file of a home.
func Path(home string) string { return filepath.Join(home, FileName) }

// New is the configuration `blueshift init` writes: the defaults and a name.
func New(name string) *Config {
	return &Config{Device: Device{
		Name:           name,
		Listen:         DefaultListen,
		Discovery:      true,
		RescanInterval: Duration{DefaultRescanInterval},
		QUIC:           true,
		Relay:          true,
		RelayRate:      DefaultRelayRate,
		Multicast:      true,
	}, DHT: DHT{Enabled: true}}
}

// NewShare is a share with the default settings, ready for AddShare.
func NewShare(id, path, key string) Share {
	return Share{
		ID:           id,
		Name:         filepath.Base(path),
		Path:         path,
		Key:          key,
		Watch:        true,
		Multicast:    true,
		VersionsKeep: DefaultVersionsKeep,
		VersionsDays: DefaultVersionsDays,
	}
}

// FindShare returns the share whose ID or name is ref, or ErrNotFound.
// IDs win over names; a name two shares carry is ambiguous and matches none.
func (c *Config) FindShare(ref string) (*Share, error) {
	i, err := c.shareIndex(ref)
	if err != nil {
		return nil, err
	}
	return &c.Shares[i], nil
}

// ShareAt returns the innermost share containing path (absolute), or
// ErrNotFound: each path belongs to exactly one share, the innermost.
func (c *Config) ShareAt(path string) (*Share, error) {
	best := -1
	for i := range c.Shares {
		if within(filepath.Clean(path), c.Shares[i].Path) &&
			(best < 0 || len(c.Shares[i].Path) > len(c.Shares[best].Path)) {
			best = i
		}
	}
	if best < 0 {
		return nil, fmt.Errorf("find share containing %q: %w", path, ErrNotFound)
	}
	return &c.Shares[best], nil
}

// AddShare adds s after validating the result as a whole (duplicate ID or
// path, a path inside a .blueshift/ folder, unknown peers...). On error c is
// unchanged.
func (c *Config) AddShare(s Share) error {
	s.Path = filepath.Clean(s.Path)
	next := *c
	next.Shares = append(append([]Share(nil), c.Shares...), s)
	if err := next.Validate(); err != nil {
		return fmt.Errorf("add share %q: %w", s.Path, err)
	}
	c.Shares = next.Shares
	return nil
}

// RemoveShare removes the share ref names (ID or name). Files are untouched:
// the configuration only stops listing it.
func (c *Config) RemoveShare(ref string) (Share, error) {
	i, err := c.shareIndex(ref)
	if err != nil {
		return Share{}, err
	}
	s := c.Shares[i]
	c.Shares = append(c.Shares[:i:i], c.Shares[i+1:]...)
	return s, nil
}

// FindPeer returns the peer whose device ID or name is ref, or ErrNotFound.
func (c *Config) FindPeer(ref string) (*Peer, error) {
	i, err := c.peerIndex(ref)
	if err != nil {
		return nil, err
	}
	return &c.Peers[i], nil
}

// AddPeer adds p, or when a peer with p.ID exists, merges: a non-empty name
// replaces the old one and new addresses are appended. On error c is
// unchanged.
func (c *Config) AddPeer(p Peer) error {
	next := *c
	next.Peers = append([]Peer(nil), c.Peers...)
	merged := false
	for i := range next.Peers {
		if next.Peers[i].ID != p.ID {
			continue
		}
		old := &next.Peers[i]
		if p.Name != "" {
			old.Name = p.Name
		}
		if p.PublicKey != "" {
			old.PublicKey = p.PublicKey
		}
		addrs := append([]string(nil), old.Addresses...)
		for _, a := range p.Addresses {
			if !contains(addrs, a) {
				addrs = append(addrs, a)
			}
		}
		old.Addresses = addrs
		merged = true
	}
	if !merged {
		next.Peers = append(next.Peers, p)
	}
	if err := next.Validate(); err != nil {
		return fmt.Errorf("add peer %q: %w", p.ID, err)
	}
	c.Peers = next.Peers
	return nil
}

// RemovePeer forgets the peer ref names and takes it off every share's
// peers; a join waiting for its answer, or refused by it, is forgotten too.
func (c *Config) RemovePeer(ref string) (Peer, error) {
	i, err := c.peerIndex(ref)
	if err != nil {
		return Peer{}, err
	}
	p := c.Peers[i]
	c.Peers = append(c.Peers[:i:i], c.Peers[i+1:]...)
	for j := range c.Shares {
		s := &c.Shares[j]
		kept := s.Peers[:0:0]
		for _, id := range s.Peers {
			if id != p.ID {
				kept = append(kept, id)
			}
		}
		s.Peers = kept
		if s.JoinFrom == p.ID {
			s.JoinFrom, s.JoinToken, s.JoinRefused = "", "", ""
		}
	}
	return p, nil
}

func (c *Config) shareIndex(ref string) (int, error) {
	for i := range c.Shares {
		if c.Shares[i].ID == ref {
			return i, nil
		}
	}
	found := -1
	for i := range c.Shares {
		if c.Shares[i].Name == ref {
			if found >= 0 {
				return -1, fmt.Errorf("find share %q: two shares have that name, use the share ID: %w", ref, ErrNotFound)
			}
			found = i
		}
	}
	if found < 0 {
		return -1, fmt.Errorf("find share %q: %w (`blueshift share list` shows the shares)", ref, ErrNotFound)
	}
	return found, nil
}

func (c *Config) peerIndex(ref string) (int, error) {
	for i := range c.Peers {
		if c.Peers[i].ID == ref {
			return i, nil
		}
	}
	found := -1
	for i := range c.Peers {
		if c.Peers[i].Name == ref {
			if found >= 0 {
				return -1, fmt.Errorf("find peer %q: two peers have that name, use the device ID: %w", ref, ErrNotFound)
			}
			found = i
		}
	}
	if found < 0 {
		return -1, fmt.Errorf("find peer %q: %w (`blueshift peer list` shows the peers)", ref, ErrNotFound)
	}
	return found, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
