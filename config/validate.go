package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validate checks the whole configuration and reports every problem it finds
// (up to a bound), each of class ErrInvalid.
func (c *Config) Validate() error { return c.validate("", nil) }

// validate checks c; file and pos, when known, locate each problem.
func (c *Config) validate(file string, pos positions) error {
	v := validator{file: file, pos: pos}

	d := c.Device
	v.name("device.name", "[device] name", d.Name, true)
	if err := checkHostPort(d.Listen, true, true); err != nil {
		v.add("device.listen", "[device] listen %q: %v: write it like \":%d\" or \"127.0.0.1:0\" (port 0 picks a free one)", d.Listen, err, DefaultPort)
	}
	for _, a := range d.Announce {
		if err := checkHostPort(a, false, false); err != nil {
			v.add("device.announce", "[device] announce %q: %v: write addresses like \"192.0.2.7:%d\"", a, err, DefaultPort)
		}
	}
	if err := CheckUI(d.UI); err != nil {
		v.add("device.ui", "[device] ui %q: %v: write it like %q, or \"off\"", d.UI, err, DefaultUI)
	}
	if d.QUICPort < 0 || d.QUICPort > 65535 {
		v.add("device.quic_port", "[device] quic_port %d: write a UDP port from 1 to 65535, or 0 for the port number of listen", d.QUICPort)
	}
	if d.RescanInterval.Duration < MinRescanInterval {
		v.add("device.rescan_interval", "[device] rescan_interval %s is shorter than %s: write something like \"1h\"", d.RescanInterval, MinRescanInterval)
	}

	seenIf := map[string]bool{}
	for _, name := range c.Discovery.Interfaces {
		switch err := checkInterface(name); {
		case err != nil:
			v.add("discovery.interfaces", "[discovery] interfaces: %q %v: write names like [\"eth0\"] (`ip link` lists them)", name, err)
		case seenIf[name]:
			v.add("discovery.interfaces", "[discovery] interfaces lists %q twice: remove one", name)
		}
		seenIf[name] = true
	}

	if c.DHT.Listen != "" {
		if err := checkHostPort(c.DHT.Listen, true, true); err != nil {
			v.add("dht.listen", "[dht] listen %q: %v: write it like \":22101\" (UDP; port 0 picks a free one)", c.DHT.Listen, err)
		}
	}
	for _, a := range c.DHT.Bootstrap {
		if err := checkHostPort(a, false, false); err != nil {
			v.add("dht.bootstrap", "[dht] bootstrap %q: %v: write nodes like \"192.0.2.9:6881\"", a, err)
		}
	}

	peerIDs := map[string]int{}
	for i, p := range c.Peers {
		at := "peer." + strconv.Itoa(i)
		if v.id(at+".id", "[[peer]] id", p.ID, c.Checks.DeviceID) {
			if j, dup := peerIDs[p.ID]; dup {
				v.add(at+".id", "[[peer]] id %q is listed twice (also line %d): remove one", p.ID, v.pos.line("peer."+strconv.Itoa(j)))
			}
			peerIDs[p.ID] = i
		}
		v.name(at+".name", "[[peer]] name", p.Name, false)
		for _, a := range p.Addresses {
			if err := checkHostPort(a, false, false); err != nil {
				v.add(at+".addresses", "[[peer]] address %q: %v: write addresses like \"192.0.2.8:%d\"", a, err, DefaultPort)
			}
		}
		if p.PublicKey != "" {
			if b, err := base64.StdEncoding.DecodeString(p.PublicKey); err != nil || len(b) != 32 {
				v.add(at+".public_key", "[[peer]] public_key %q is not a base64 Ed25519 public key: remove the line (it is learned again)", p.PublicKey)
			}
		}
	}

	shareIDs, paths := map[string]int{}, map[string]int{}
	for i, s := range c.Shares {
		at := "share." + strconv.Itoa(i)
		if v.id(at+".id", "[[share]] id", s.ID, c.Checks.ShareID) {
			if j, dup := shareIDs[s.ID]; dup {
				v.add(at+".id", "[[share]] id %q is listed twice (also line %d): a folder can join a share once; remove one", s.ID, v.pos.line("share."+strconv.Itoa(j)))
			}
			shareIDs[s.ID] = i
		}
		v.name(at+".name", "[[share]] name", s.Name, false)
		v.id(at+".key", "[[share]] key", s.Key, c.Checks.ShareKey)
		switch {
		case s.Path == "":
			v.add(at+".path", "[[share]] has no path: add path = \"/absolute/folder\"")
		case !filepath.IsAbs(s.Path):
			v.add(at+".path", "[[share]] path %q is relative: write the absolute path", s.Path)
		case inMetaDir(s.Path):
			v.add(at+".path", "[[share]] path %q is inside a %s/ metadata folder: choose a folder outside it", s.Path, metaDir)
		default:
			clean := filepath.Clean(s.Path)
			if j, dup := paths[clean]; dup {
				v.add(at+".path", "[[share]] path %q is already the path of share %q (line %d): remove one", s.Path, c.Shares[j].Name, v.pos.line("share."+strconv.Itoa(j)))
			}
			paths[clean] = i
		}
		if s.VersionsKeep < 1 {
			// Keeping none would let a received change destroy the user's
			// file with no copy left: Blueshift never does that.
			v.add(at+".versions_keep", "[[share]] versions_keep %d: Blueshift keeps at least the last version of every file it replaces or deletes; write 1 or more (versions_days and versions_max_mb bound the folder too)", s.VersionsKeep)
		}
		if s.VersionsDays < 0 {
			v.add(at+".versions_days", "[[share]] versions_days %d is negative: write 0 for no age limit", s.VersionsDays)
		}
		if s.VersionsMaxMB < 0 {
			v.add(at+".versions_max_mb", "[[share]] versions_max_mb %d is negative: write 0 for no size cap", s.VersionsMaxMB)
		}
		if s.MaxSendRate < 0 || s.MaxRecvRate < 0 {
			v.add(at+".max_send_rate", "[[share]] a rate is negative: remove the key for no limit")
		}
		seen := map[string]bool{}
		for _, id := range s.Peers {
			switch _, known := peerIDs[id]; {
			case seen[id]:
				v.add(at+".peers", "[[share]] peers lists %q twice: remove one", id)
			case !known:
				v.add(at+".peers", "[[share]] peers lists %q, which is no [[peer]]: add it with `blueshift peer add %s` or remove it", id, id)
			}
			seen[id] = true
		}
		if s.JoinFrom != "" || s.JoinToken != "" {
			if _, known := peerIDs[s.JoinFrom]; !known {
				v.add(at+".join_from", "[[share]] join_from %q is no [[peer]]: remove join_from and join_token, and join again with a new link", s.JoinFrom)
			}
		}
		if s.JoinToken != "" && (len(s.JoinToken) != 32 || strings.Trim(s.JoinToken, "0123456789abcdef") != "") {
			v.add(at+".join_token", "[[share]] join_token is not 32 hex digits: remove it and join again with a new link")
		}
		if len(s.JoinRefused) > 1024 || !utf8.ValidString(s.JoinRefused) {
			v.add(at+".join_refused", "[[share]] join_refused is longer than 1024 bytes or not UTF-8: shorten it")
		}
	}
	for i, h := range c.Hooks {
		at := "hook." + strconv.Itoa(i)
		if len(h.Command) == 0 || h.Command[0] == "" {
			v.add(at+".command", "[[hook]] has no command: write command = [\"/path/to/program\", \"arg\"]")
		}
		if h.Event != "*" && !slices.Contains(HookEvents, h.Event) {
			v.add(at+".event", "[[hook]] event %q is not one of %s or \"*\"", h.Event, strings.Join(HookEvents, ", "))
		}
		if h.Share != "" && h.Share != "*" {
			if _, err := c.FindShare(h.Share); err != nil {
				v.add(at+".share", "[[hook]] share %q is no [[share]] here: name a share by ID or name, or \"*\" for all", h.Share)
			}
		}
		if h.Timeout.Duration < 0 {
			v.add(at+".timeout", "[[hook]] timeout %s is negative: write something like \"30s\"", h.Timeout)
		}
	}
	for i, in := range c.Invites {
		at := "invite." + strconv.Itoa(i)
		if len(in.TokenHash) != 64 || strings.Trim(in.TokenHash, "0123456789abcdef") != "" {
			v.add(at+".token_hash", "[[invite]] token_hash is not 64 hex digits: remove this [[invite]] and make a new link with `blueshift invite`")
		}
		if _, ok := shareIDs[in.Share]; !ok {
			v.add(at+".share", "[[invite]] share %q is no [[share]]: remove this [[invite]]", in.Share)
		}
	}
	return v.err()
}

type validator struct {
	file string
	pos  positions
	errs []error
}

func (v *validator) add(key, format string, args ...any) {
	if len(v.errs) < maxErrors {
		v.errs = append(v.errs, &Error{File: v.file, Line: v.pos.line(key), Msg: fmt.Sprintf(format, args...)})
	}
}

func (v *validator) err() error { return errors.Join(v.errs...) }

// id checks an ID's or key's text and reports whether it is usable.
func (v *validator) id(key, what, text string, check func(string) error) bool {
	if err := checkText(text); err != nil {
		v.add(key, "%s %v", what, err)
		return false
	}
	if check != nil {
		if err := check(text); err != nil {
			v.add(key, "%s %q: %v", what, text, err)
			return false
		}
	}
	return true
}

func (v *validator) name(key, what, name string, required bool) {
	switch {
	case name == "" && required:
		v.add(key, "%s is missing: add a name like name = \"laptop\"", what)
	case len(name) > maxName:
		v.add(key, "%s is longer than %d bytes: shorten it", what, maxName)
	case !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0:
		v.add(key, "%s %q has control characters or invalid UTF-8: use plain text", what, name)
	}
}

// maxInterface is the longest interface name Linux allows (IFNAMSIZ - 1).
const maxInterface = 15

// CheckInterface checks the shape of a network interface's name, as
// [discovery] interfaces does; the error says what is wrong with it.
func CheckInterface(name string) error { return checkInterface(name) }

func checkInterface(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case len(name) > maxInterface:
		return fmt.Errorf("is longer than %d bytes", maxInterface)
	case name == "." || name == "..", strings.IndexFunc(name, func(r rune) bool {
		return r > unicode.MaxASCII || !unicode.IsGraphic(r) || unicode.IsSpace(r) || r == '/' || r == ':'
	}) >= 0:
		return errors.New("is not an interface name")
	}
	return nil
}

// checkText is the shape every ID and key text shares.
func checkText(s string) error {
	switch {
	case s == "":
		return errors.New("is missing")
	case len(s) > maxIDText:
		return fmt.Errorf("is longer than %d bytes", maxIDText)
	case strings.IndexFunc(s, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsGraphic(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("%q has spaces or characters an ID never has: copy it again", s)
	}
	return nil
}

// checkHostPort checks a "host:port". An empty host means every interface;
// port 0 means pick a free one.
func checkHostPort(s string, emptyHost, zeroPort bool) error {
	if _, rest, ok := strings.Cut(s, "://"); ok && !emptyHost {
		// A peer's or announced address may name its network.
		scheme := strings.ToLower(s[:len(s)-len(rest)-3])
		if scheme != "quic" && scheme != "udp" && scheme != "tcp" {
			return fmt.Errorf("network %q is not quic:// or tcp://", scheme)
		}
		s = rest
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("is not host:port")
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if n == 0 && !zeroPort {
		return errors.New("port 0 is only meaningful for listen")
	}
	if host == "" {
		if !emptyHost {
			return errors.New("host is missing")
		}
		return nil
	}
	if net.ParseIP(host) != nil {
		return nil
	}
	if len(host) > 253 || strings.IndexFunc(host, func(r rune) bool {
		return !(r == '-' || r == '.' || r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) >= 0 {
		return fmt.Errorf("host %q is neither an IP address nor a host name", host)
	}
	return nil
}

// inMetaDir reports whether an absolute path has a .blueshift component:
// inside a share's metadata folder, where no share may live.
func inMetaDir(path string) bool {
	for _, part := range strings.Split(filepath.ToSlash(filepath.Clean(path)), "/") {
		if part == metaDir {
			return true
		}
	}
	return false
}

// within reports whether path is root or below it; both are clean.
func within(path, root string) bool {
	if path == root {
		return true
	}
	if !strings.HasSuffix(root, string(filepath.Separator)) {
		root += string(filepath.Separator)
	}
	return strings.HasPrefix(path, root)
}

// CheckUI accepts "", "off" or a loopback host:port: the web UI is never
// served to the network.
func CheckUI(s string) error {
	if s == "" || s == "off" {
		return nil
	}
	if err := checkHostPort(s, false, true); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(s)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("host %q is not a loopback address (the UI is only served on this machine)", host)
	}
	return nil
}
