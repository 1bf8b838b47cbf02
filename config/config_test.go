package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A valid file with every kind of table; the bad cases below are edits of it.
const good = `[device]
name = "laptop"
listen = ":22100"

[[peer]]
id = "PEER-A"
name = "desktop"
addresses = ["127.0.0.1:22100"]

[[share]]
id = "SHARE-1"
path = "/srv/photos"
key = "KEY-1"
peers = ["PEER-A"]

[[share]]
id = "SHARE-2"
path = "/srv/photos/inner"
key = "KEY-2"
versions_keep = 1
watch = false
multicast = false
`

// TestRelayOffAndUncapped: relay = false and relay_rate = "unlimited" are
// kept, not replaced by the defaults (relaying on, 1 MiB/s).
func TestRelayOffAndUncapped(t *testing.T) {
	c, err := Parse("config.toml", []byte("[device]\nname = \"x\"\nrelay = false\nrelay_rate = \"unlimited\"\n"), Checks{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Device.Relay || c.Device.RelayRate != 0 {
		t.Fatalf("relay %v, rate %v; want off and no cap", c.Device.Relay, c.Device.RelayRate)
	}
}

func TestParseGood(t *testing.T) {
	c, err := Parse("config.toml", []byte(good), Checks{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Device: Device{Name: "laptop", Listen: ":22100", Discovery: true, RescanInterval: Duration{time.Hour}, QUIC: true, Relay: true, RelayRate: DefaultRelayRate, Multicast: true},
		DHT:    DHT{Enabled: true},
		Peers:  []Peer{{ID: "PEER-A", Name: "desktop", Addresses: []string{"127.0.0.1:22100"}}},
		Shares: []Share{
			{ID: "SHARE-1", Name: "photos", Path: "/srv/photos", Key: "KEY-1", Watch: true,
				VersionsKeep: 5, VersionsDays: 30, Peers: []string{"PEER-A"}, Multicast: true},
			// explicit 0 and false are kept, not replaced by defaults
			{ID: "SHARE-2", Name: "inner", Path: "/srv/photos/inner", Key: "KEY-2", Watch: false,
				VersionsKeep: 1, VersionsDays: 30},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	// Nesting: each path belongs to the innermost share.
	if s, err := c.ShareAt("/srv/photos/inner/x.jpg"); err != nil || s.ID != "SHARE-2" {
		t.Errorf("ShareAt inner = %v, %v", s, err)
	}
	if s, err := c.ShareAt("/srv/photos/innerx"); err != nil || s.ID != "SHARE-1" {
		t.Errorf("ShareAt sibling = %v, %v", s, err)
	}
	if _, err := c.ShareAt("/srv"); !errors.Is(err, ErrNotFound) {
		t.Errorf("ShareAt outside = %v", err)
	}
}

// Each bad config is good with one edit; want is the "line N: ..." fragment.
func TestParseBad(t *testing.T) {
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown key with suggestion", `path = "/srv/photos"`, `pth = "/srv/photos"`,
			`config.toml line 12: unknown key "pth" in [[share]]: did you mean "path"? fix or remove it`},
		{"unknown key in device", `listen = ":22100"`, `lisen = ":22100"`,
			`line 3: unknown key "lisen" in [device]: did you mean "listen"?`},
		{"unknown key, no suggestion", `listen = ":22100"`, `colour = "red"`,
			`line 3: unknown key "colour" in [device]: fix or remove it (known keys: announce,`},
		{"unknown table", `[device]`, `[devise]`, `line 1: unknown key "devise": did you mean "device"?`},
		{"wrong type", `versions_keep = 1`, `versions_keep = "none"`,
			`line 20: wrong type for "versions_keep" in [[share]]: write a whole number like 5`},
		{"syntax", `name = "laptop"`, `name = "laptop`, `line 2: `},
		{"duplicate key", `key = "KEY-1"`, "key = \"KEY-1\"\nkey = \"KEY-1\"", `line 14: key key is already defined: remove one of them`},
		{"relative path", `path = "/srv/photos"`, `path = "srv/photos"`,
			`line 12: [[share]] path "srv/photos" is relative: write the absolute path`},
		{"duplicate path", `path = "/srv/photos/inner"`, `path = "/srv/photos/"`,
			`line 18: [[share]] path "/srv/photos" is already the path of share "photos" (line 10): remove one`},
		{"inside .blueshift", `path = "/srv/photos/inner"`, `path = "/srv/photos/.blueshift/x"`,
			`line 18: [[share]] path "/srv/photos/.blueshift/x" is inside a .blueshift/ metadata folder`},
		{"duplicate share id", `id = "SHARE-2"`, `id = "SHARE-1"`,
			`line 17: [[share]] id "SHARE-1" is listed twice (also line 10)`},
		{"missing key", `key = "KEY-2"`, ``, `line 16: [[share]] key is missing`},
		{"bad listen", `listen = ":22100"`, `listen = "22100"`, `line 3: [device] listen "22100": is not host:port`},
		{"bad listen port", `listen = ":22100"`, `listen = ":99999"`, `line 3: [device] listen ":99999": port "99999" is not a number`},
		{"peer port 0", `addresses = ["127.0.0.1:22100"]`, `addresses = ["127.0.0.1:0"]`,
			`line 8: [[peer]] address "127.0.0.1:0": port 0 is only meaningful for listen`},
		{"negative versions", `versions_keep = 1`, `versions_keep = -1`,
			`line 20: [[share]] versions_keep -1: Blueshift keeps at least the last version`},
		{"no versions", `versions_keep = 1`, `versions_keep = 0`,
			`line 20: [[share]] versions_keep 0: Blueshift keeps at least the last version of every file it replaces or deletes; write 1 or more`},
		{"bad duration", `listen = ":22100"`, `rescan_interval = "1 hour"`,
			`line 3: "1 hour" is not a duration: write it like "1h", "30m" or "90s"`},
		{"short duration", `listen = ":22100"`, `rescan_interval = "1ms"`,
			`line 3: [device] rescan_interval 1ms is shorter than 1s`},
		{"unknown peer in share", `peers = ["PEER-A"]`, `peers = ["PEER-B"]`,
			"line 14: [[share]] peers lists \"PEER-B\", which is no [[peer]]: add it with `blueshift peer add PEER-B`"},
		{"id with space", `id = "PEER-A"`, `id = "PEER A"`, `line 6: [[peer]] id "PEER A" has spaces`},
		{"ui on the network", `listen = ":22100"`, "listen = \":22100\"\nui = \"0.0.0.0:8385\"",
			`line 4: [device] ui "0.0.0.0:8385": host "0.0.0.0" is not a loopback address`},
		{"ui not host:port", `listen = ":22100"`, "listen = \":22100\"\nui = \"on\"", `line 4: [device] ui "on": is not host:port: write it like "127.0.0.1:8385", or "off"`},
		{"missing device name", `name = "laptop"`, ``, `line 1: [device] name is missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(good, tt.from) {
				t.Fatalf("edit %q does not apply", tt.from)
			}
			doc := strings.Replace(good, tt.from, tt.to, 1)
			c, err := Parse("config.toml", []byte(doc), Checks{})
			if err == nil {
				t.Fatalf("accepted:\n%s\ngot %+v", doc, c)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
}

func TestChecksHooks(t *testing.T) {
	checks := Checks{DeviceID: func(s string) error {
		if !strings.HasPrefix(s, "PEER-") {
			return errors.New("is not a device ID")
		}
		return nil
	}}
	doc := strings.Replace(good, `id = "PEER-A"`, `id = "XEER-A"`, 1)
	doc = strings.Replace(doc, `peers = ["PEER-A"]`, `peers = []`, 1)
	_, err := Parse("config.toml", []byte(doc), checks)
	if err == nil || !strings.Contains(err.Error(), `line 6: [[peer]] id "XEER-A": is not a device ID`) {
		t.Errorf("got %v", err)
	}
	if _, err := Parse("config.toml", []byte(good), checks); err != nil {
		t.Errorf("good config rejected: %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	home := t.TempDir()
	c, err := Parse("config.toml", []byte(good), Checks{})
	if err != nil {
		t.Fatal(err)
	}
	c.Device.Announce = []string{"192.0.2.7:22100", "[2001:db8::1]:22100"}
	c.Device.RescanInterval = Duration{90 * time.Minute}
	if err := c.Save(home); err != nil {
		t.Fatal(err)
	}
	back, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normal(c), normal(back)) {
		t.Errorf("round trip changed the config:\n%+v\n%+v", c, back)
	}
	// Saving again gives the same bytes: the order is stable.
	first, _ := os.ReadFile(Path(home))
	if err := back.Save(home); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(Path(home))
	if string(first) != string(second) {
		t.Errorf("second save differs:\n%s\n---\n%s", first, second)
	}
	if !strings.Contains(string(first), `rescan_interval = '1h30m'`) {
		t.Errorf("duration not written compactly:\n%s", first)
	}
}

// normal makes nil and empty slices compare equal.
func normal(c *Config) *Config {
	n := *c
	fix := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return s
	}
	n.Device.Announce = fix(n.Device.Announce)
	n.Discovery.Interfaces = fix(n.Discovery.Interfaces)
	n.DHT.Bootstrap = fix(n.DHT.Bootstrap)
	n.Shares = append([]Share(nil), c.Shares...)
	for i := range n.Shares {
		n.Shares[i].Peers = fix(n.Shares[i].Peers)
		n.Shares[i].SendPaths = fix(n.Shares[i].SendPaths)
		n.Shares[i].SendUntil = n.Shares[i].SendUntil.UTC()
	}
	n.Peers = append([]Peer(nil), c.Peers...)
	for i := range n.Peers {
		n.Peers[i].Addresses = fix(n.Peers[i].Addresses)
	}
	if len(n.Invites) == 0 {
		n.Invites = nil
	}
	if len(n.Hooks) == 0 {
		n.Hooks = nil
	}
	return &n
}

func TestSaveAtomicAndPrivate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "home")
	c := New("laptop")
	if err := c.Save(home); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := c.AddShare(NewShare("S"+string(rune('A'+i)), filepath.Join(home, "..", "s", string(rune('a'+i))), "K")); err != nil {
			t.Fatal(err)
		}
		if err := c.Save(home); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != FileName {
		t.Errorf("home holds %v, want only %s (no temp files)", entries, FileName)
	}
	fi, err := os.Stat(Path(home))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(home); fi.Mode().Perm() != 0o700 {
		t.Errorf("home mode %v, want 0700", fi.Mode().Perm())
	}
	// An invalid config is never written.
	c.Device.Listen = "nonsense"
	if err := c.Save(home); !errors.Is(err, ErrInvalid) {
		t.Errorf("Save of invalid config: %v", err)
	}
	back, err := Load(home)
	if err != nil || len(back.Shares) != 3 || back.Device.Listen != DefaultListen {
		t.Errorf("file changed by a refused save: %+v, %v", back, err)
	}
}

func TestLoadMissingAndHuge(t *testing.T) {
	home := t.TempDir()
	if _, err := Load(home); !errors.Is(err, ErrNoConfig) || !strings.Contains(err.Error(), "blueshift init") {
		t.Errorf("missing config: %v", err)
	}
	big := strings.Repeat("# padding\n", maxFileSize/10+1)
	if err := os.WriteFile(Path(home), []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(home); !errors.Is(err, ErrInvalid) {
		t.Errorf("huge config: %v", err)
	}
}

func TestEditAPI(t *testing.T) {
	c := New("laptop")
	if err := c.AddShare(NewShare("S1", "relative/dir", "K")); !errors.Is(err, ErrInvalid) {
		t.Errorf("relative share accepted: %v", err)
	}
	if len(c.Shares) != 0 {
		t.Fatalf("refused AddShare changed c: %+v", c.Shares)
	}
	s := NewShare("S1", "/data/a/", "K")
	s.Peers = []string{"P1"}
	if err := c.AddShare(s); !errors.Is(err, ErrInvalid) {
		t.Errorf("share with unknown peer accepted: %v", err)
	}
	if err := c.AddPeer(Peer{ID: "P1", Name: "desk", Addresses: []string{"127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddShare(s); err != nil {
		t.Fatal(err)
	}
	if got, err := c.FindShare("a"); err != nil || got.Path != "/data/a" {
		t.Errorf("FindShare by name = %+v, %v", got, err)
	}
	if err := c.AddShare(NewShare("S2", "/data/a", "K")); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate path accepted: %v", err)
	}
	// AddPeer merges into an existing peer.
	if err := c.AddPeer(Peer{ID: "P1", Addresses: []string{"127.0.0.1:2", "127.0.0.1:1"}}); err != nil {
		t.Fatal(err)
	}
	p, err := c.FindPeer("desk")
	if err != nil || !reflect.DeepEqual(p.Addresses, []string{"127.0.0.1:1", "127.0.0.1:2"}) {
		t.Errorf("merged peer = %+v, %v", p, err)
	}
	// RemovePeer takes it off the shares too, so the config stays valid.
	if _, err := c.RemovePeer("P1"); err != nil {
		t.Fatal(err)
	}
	if len(c.Shares[0].Peers) != 0 || c.Validate() != nil {
		t.Errorf("after RemovePeer: %+v, %v", c.Shares[0], c.Validate())
	}
	if _, err := c.RemovePeer("P1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second RemovePeer: %v", err)
	}
	if _, err := c.RemoveShare("S1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.FindShare("S1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removed share found: %v", err)
	}
}

func TestHome(t *testing.T) {
	t.Setenv(EnvHome, "/from/env")
	if h, _ := Home("/from/flag"); h != "/from/flag" {
		t.Errorf("flag: %q", h)
	}
	if h, _ := Home(""); h != "/from/env" {
		t.Errorf("env: %q", h)
	}
	t.Setenv(EnvHome, "")
	t.Setenv("XDG_CONFIG_HOME", "/xdg")
	if h, _ := Home(""); h != filepath.Join("/xdg", "blueshift") {
		t.Errorf("default: %q", h)
	}
	if h, _ := Home("rel"); !filepath.IsAbs(h) {
		t.Errorf("relative flag not made absolute: %q", h)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("[device]\nname = 'x'\n[[share]]\npth = 1\n"))
	f.Add([]byte("device = { name = 'x', listen = ':0' }\n"))
	f.Add([]byte("[[share]]\n[[share]]\nid='a'\n[[peer]]\naddresses=['a:1']\n"))
	if seeds, _ := filepath.Glob("testdata/*.toml"); seeds != nil {
		for _, s := range seeds {
			if b, err := os.ReadFile(s); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		c, err := Parse("fuzz.toml", data, Checks{})
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// Whatever loads must save and load back to the same thing.
		home := t.TempDir()
		if err := c.Save(home); err != nil {
			t.Fatalf("loaded config does not save: %v", err)
		}
		back, err := Load(home)
		if err != nil {
			t.Fatalf("saved config does not load: %v", err)
		}
		if !reflect.DeepEqual(normal(c), normal(back)) {
			t.Fatalf("round trip:\n%+v\n%+v", c, back)
		}
	})
}

func TestTestdataLoads(t *testing.T) {
	c, err := LoadFile("testdata/full.toml", Checks{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Shares) != 1 || len(c.Peers) != 1 || len(c.Device.Announce) != 2 {
		t.Errorf("got %+v", c)
	}
}

func TestInviteRoundTrip(t *testing.T) {
	home := t.TempDir()
	c := New("a")
	if err := c.AddShare(NewShare("S1", "/srv/s", "K1")); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPeer(Peer{ID: "P1", Addresses: []string{"127.0.0.1:1"}, Invite: "ab12"}); err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Invites = []Invite{{TokenHash: strings.Repeat("ab", 32), Share: "S1", ReadOnly: true, Expires: exp, SingleUse: true}}
	if err := c.Save(home); err != nil {
		t.Fatal(err)
	}
	got, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Invites) != 1 || !got.Invites[0].Expires.Equal(exp) || !got.Invites[0].ReadOnly || got.Peers[0].Invite != "ab12" {
		t.Fatalf("invites: %+v peers %+v", got.Invites, got.Peers)
	}
	c.Invites[0].Share = "nope"
	if err := c.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invite of unknown share: %v", err)
	}
}

// TestDiscoveryInterfaces: [discovery] interfaces is read, and a bad name
// is refused with the line it is on.
func TestDiscoveryInterfaces(t *testing.T) {
	const base = good + "\n[discovery]\n" // the key is on line 24
	c, err := Parse("config.toml", []byte(base+`interfaces = ["lo", "veth-bs0"]`+"\n"), Checks{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lo", "veth-bs0"}; !reflect.DeepEqual(c.Discovery.Interfaces, want) {
		t.Fatalf("interfaces = %q, want %q", c.Discovery.Interfaces, want)
	}
	if c, err := Parse("config.toml", []byte(good), Checks{}); err != nil || len(c.Discovery.Interfaces) != 0 {
		t.Fatalf("without [discovery]: %v, %v", c, err)
	}
	bad := []struct{ line, want string }{
		{`interfaces = [""]`, `config.toml line 25: [discovery] interfaces: "" is empty`},
		{`interfaces = ["a-name-far-too-long"]`, `line 25: [discovery] interfaces: "a-name-far-too-long" is longer than 15 bytes`},
		{`interfaces = ["eth 0"]`, `line 25: [discovery] interfaces: "eth 0" is not an interface name`},
		{`interfaces = ["../x"]`, `line 25: [discovery] interfaces: "../x" is not an interface name`},
		{`interfaces = ["lo", "lo"]`, `line 25: [discovery] interfaces lists "lo" twice`},
		{`interfaces = "lo"`, `line 25: wrong type for "interfaces" in [discovery]: write a list of interface names`},
		{`interface = ["lo"]`, `line 25: unknown key "interface" in [discovery]: did you mean "interfaces"?`},
	}
	for _, b := range bad {
		_, err := Parse("config.toml", []byte(base+b.line+"\n"), Checks{})
		if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: error %v, want %q", b.line, err, b.want)
		}
	}
}

// TestJoinFields: a share's pending join is checked: its inviter is a
// [[peer]], its token 32 hex digits.
func TestJoinFields(t *testing.T) {
	const at = `peers = ["PEER-A"]`
	ok := strings.Replace(good, at, at+"\njoin_from = \"PEER-A\"\njoin_token = \"00112233445566778899aabbccddeeff\"", 1)
	c, err := Parse("config.toml", []byte(ok), Checks{})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Shares[0]; s.JoinFrom != "PEER-A" || s.JoinToken != "00112233445566778899aabbccddeeff" {
		t.Fatalf("join fields: %+v", s)
	}
	bad := []struct{ edit, want string }{
		{"\njoin_from = \"PEER-B\"\njoin_token = \"00112233445566778899aabbccddeeff\"", `line 15: [[share]] join_from "PEER-B" is no [[peer]]`},
		{"\njoin_from = \"PEER-A\"\njoin_token = \"0011\"", `line 16: [[share]] join_token is not 32 hex digits`},
		{"\njoin_token = \"00112233445566778899aabbccddeeff\"", `line 10: [[share]] join_from "" is no [[peer]]`},
	}
	for _, b := range bad {
		_, err := Parse("config.toml", []byte(strings.Replace(good, at, at+b.edit, 1)), Checks{})
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%q: error %v, want %q", b.edit, err, b.want)
		}
	}
}

// TestRemovePeerForgetsItsJoins: a peer that invited a share still waiting
// for its answer can be removed; the configuration stays valid.
func TestRemovePeerForgetsItsJoins(t *testing.T) {
	const at = `peers = ["PEER-A"]`
	doc := strings.Replace(good, at, at+"\njoin_from = \"PEER-A\"\njoin_token = \"00112233445566778899aabbccddeeff\"", 1)
	c, err := Parse("config.toml", []byte(doc), Checks{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemovePeer("PEER-A"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("after removing the inviter: %v", err)
	}
	if s := c.Shares[0]; s.JoinFrom != "" || s.JoinToken != "" || len(s.Peers) != 0 {
		t.Fatalf("share after removing its inviter: %+v", s)
	}
}

func TestUIKey(t *testing.T) {
	for _, ui := range []string{"off", "127.0.0.1:9000", "localhost:0", "[::1]:8385"} {
		doc := strings.Replace(good, `listen = ":22100"`, "listen = \":22100\"\nui = \""+ui+"\"", 1)
		c, err := Parse("config.toml", []byte(doc), Checks{})
		if err != nil || c.Device.UI != ui {
			t.Errorf("ui = %q: %v, %q", ui, err, c.Device.UI)
		}
	}
}

func TestParseRate(t *testing.T) {
	good := map[string]Rate{"65536": 65536, "2MiB": 2 << 20, "500kB": 500000, "1.5KiB": 1536, "3MB/s": 3000000, "1GiB": 1 << 30}
	for in, want := range good {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "-5MiB", "0KiB", "fast", "", "1e30"} {
		if _, err := ParseRate(in); !errors.Is(err, ErrBadRate) {
			t.Errorf("ParseRate(%q): %v, want ErrBadRate", in, err)
		}
	}
}

// TestDHT: [dht] is on when absent, an explicit false is kept, and bad
// listen and bootstrap addresses and public keys are refused on their line.
func TestDHT(t *testing.T) {
	c, err := Parse("config.toml", []byte(good), Checks{})
	if err != nil || !c.DHT.Enabled || c.DHT.Listen != "" || len(c.DHT.Bootstrap) != 0 {
		t.Fatalf("without [dht]: %+v, %v", c.DHT, err)
	}
	c, err = Parse("config.toml", []byte(good+"\n[dht]\nenabled = false\nbootstrap = [\"127.0.0.1:6881\", \"router.example:6881\"]\n"), Checks{})
	if err != nil || c.DHT.Enabled || len(c.DHT.Bootstrap) != 2 {
		t.Fatalf("with [dht] enabled = false: %+v, %v", c.DHT, err)
	}
	for _, tc := range []struct{ add, want string }{
		{"[dht]\nlisten = \"nope\"", `[dht] listen "nope": is not host:port`},
		{"[dht]\nbootstrap = [\"127.0.0.1:0\"]", `[dht] bootstrap "127.0.0.1:0": port 0`},
		{"[dht]\nbootstrap = [\":6881\"]", `[dht] bootstrap ":6881": host is missing`},
		{"[dht]\nenable = true", `unknown key "enable" in [dht]`},
	} {
		_, err := Parse("config.toml", []byte(good+"\n"+tc.add+"\n"), Checks{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.add, err, tc.want)
		}
	}
	c = New("x")
	if !c.DHT.Enabled {
		t.Fatal("a fresh install has the DHT off")
	}
	c.Peers = []Peer{{ID: "P", PublicKey: "not base64!"}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "public_key") {
		t.Fatalf("a bad public key: %v", err)
	}
}

func TestRatesRoundTrip(t *testing.T) {
	home := t.TempDir()
	c := New("laptop")
	c.Device.MaxSendRate, c.Device.Paused = 2<<20, true
	s := NewShare("S1", "/tmp/x", "K1")
	s.MaxRecvRate, s.VersionsMaxMB = 1000, 64
	if err := c.AddShare(s); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(home); err != nil {
		t.Fatal(err)
	}
	got, err := Load(home)
	if err != nil {
		t.Fatal(err)
	}
	if got.Device.MaxSendRate != 2<<20 || !got.Device.Paused || got.Device.MaxRecvRate != 0 ||
		got.Shares[0].MaxRecvRate != 1000 || got.Shares[0].VersionsMaxMB != 64 {
		t.Fatalf("round trip: %+v %+v", got.Device, got.Shares[0])
	}
}
