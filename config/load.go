package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Error is one problem in a configuration, located where possible. It is of
// class ErrInvalid.
type Error struct {
	File string // the file, "" for a Config that was never loaded
	Line int    // 1-based, 0 when unknown
	Msg  string // what is wrong and what to do
}

func (e *Error) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s line %d: %s", e.File, e.Line, e.Msg)
	case e.File != "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	default:
		return e.Msg
	}
}

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// schema lists, per table, the keys this version knows and what each wants;
// it words the errors for unknown keys and wrong types.
var schema = map[string]map[string]string{
	"": {"device": "a [device] table", "discovery": "a [discovery] table", "dht": "a [dht] table", "share": "[[share]] tables", "peer": "[[peer]] tables", "invite": "[[invite]] tables"},
	"device": {
		"name": `a quoted string like "laptop"`, "listen": `a quoted "host:port" like ":22100"`,
		"discovery": "true or false", "announce": `a list like ["192.0.2.7:22100"]`,
		"rescan_interval": `a quoted duration like "1h"`, "paused": "true or false",
		"max_send_rate": `a quoted rate like "2MiB"`, "max_recv_rate": `a quoted rate like "2MiB"`,
	},
	"discovery": {"interfaces": `a list of interface names like ["eth0"]`},
	"dht": {
		"enabled": "true or false", "listen": `a quoted "host:port" like ":22101"`,
		"bootstrap": `a list like ["192.0.2.9:6881"]`,
	},
	"share": {
		"id": "a quoted share ID", "name": "a quoted string", "path": `a quoted absolute path`,
		"key": "a quoted share key", "watch": "true or false", "paused": "true or false",
		"versions_keep": "a whole number like 5", "versions_days": "a whole number like 30",
		"versions_max_mb": "a whole number like 1024",
		"max_send_rate":   `a quoted rate like "2MiB"`, "max_recv_rate": `a quoted rate like "2MiB"`,
		"peers":     `a list of quoted device IDs like ["ID"]`,
		"join_from": "a quoted device ID", "join_token": "a quoted hex token", "join_refused": "a quoted string",
	},
	"peer": {
		"id": "a quoted device ID", "name": "a quoted string",
		"addresses": `a list like ["192.0.2.8:22100"]`, "invite": "a quoted hex token",
		"public_key": "a quoted base64 public key",
	},
	"invite": {
		"token_hash": "a quoted hex hash", "share": "a quoted share ID", "read_only": "true or false",
		"expires": "a date-time like 2026-01-02T15:04:05Z", "single_use": "true or false",
	},
}

// Load reads and validates the configuration of home, with no ID checks
// beyond the basic shape. A missing file is ErrNoConfig.
func Load(home string) (*Config, error) { return LoadFile(Path(home), Checks{}) }

// LoadWith is Load with ID and key checks.
func LoadWith(home string, checks Checks) (*Config, error) {
	return LoadFile(Path(home), checks)
}

// LoadFile reads and validates one configuration file.
func LoadFile(path string, checks Checks) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w: run `blueshift init` first, or pass the right --home", path, ErrNoConfig)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is larger than %d bytes: this is not a Blueshift configuration", maxFileSize)}
	}
	return Parse(path, data, checks)
}

// Parse decodes and validates data; name is the file name errors show.
func Parse(name string, data []byte, checks Checks) (*Config, error) {
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, decodeError(name, err)
	}
	pos := positionsOf(data)
	c.applyDefaults(pos)
	c.Checks = checks
	if err := c.validate(name, pos); err != nil {
		return nil, err
	}
	return &c, nil
}

// applyDefaults fills the keys the file leaves out. Presence comes from the
// position index, so an explicit false or 0 is kept.
func (c *Config) applyDefaults(pos positions) {
	if !pos.has("device.listen") {
		c.Device.Listen = DefaultListen
	}
	if !pos.has("device.discovery") {
		c.Device.Discovery = true
	}
	if !pos.has("device.quic") {
		c.Device.QUIC = true
	}
	if !pos.has("device.relay") {
		c.Device.Relay = true
	}
	if !pos.has("device.relay_rate") {
		c.Device.RelayRate = DefaultRelayRate
	}
	if !pos.has("device.multicast") {
		c.Device.Multicast = true
	}
	if !pos.has("dht.enabled") {
		c.DHT.Enabled = true
	}
	if !pos.has("device.rescan_interval") {
		c.Device.RescanInterval = Duration{DefaultRescanInterval}
	}
	for i := range c.Shares {
		s, at := &c.Shares[i], "share."+strconv.Itoa(i)+"."
		if !pos.has(at + "watch") {
			s.Watch = true
		}
		if !pos.has(at + "multicast") {
			s.Multicast = true
		}
		if !pos.has(at + "versions_keep") {
			s.VersionsKeep = DefaultVersionsKeep
		}
		if !pos.has(at + "versions_days") {
			s.VersionsDays = DefaultVersionsDays
		}
		if s.Path != "" && filepath.IsAbs(s.Path) {
			s.Path = filepath.Clean(s.Path)
			if !pos.has(at + "name") {
				s.Name = filepath.Base(s.Path)
			}
		}
	}
}

// decodeError turns go-toml's errors into ones that say where and what to do.
func decodeError(name string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs []error
		for i := range strict.Errors {
			if i == maxErrors {
				break
			}
			line, _ := strict.Errors[i].Position()
			errs = append(errs, &Error{File: name, Line: line, Msg: unknownKey(strict.Errors[i].Key())})
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		switch {
		case strings.HasPrefix(msg, "cannot decode TOML"):
			msg = wrongType(de.Key())
		case strings.Contains(msg, "is not a duration"):
			// Duration.UnmarshalText already said what to write.
		case strings.HasSuffix(msg, "is already defined"):
			msg += ": remove one of them"
		default:
			msg += ": fix this line (TOML syntax: https://toml.io)"
		}
		return &Error{File: name, Line: line, Msg: msg}
	}
	return &Error{File: name, Msg: err.Error()}
}

func unknownKey(key toml.Key) string {
	if len(key) == 0 {
		return "unknown key: fix or remove it"
	}
	table, leaf := tableOf(key[:len(key)-1]), key[len(key)-1]
	known, ok := schema[table]
	if !ok {
		return fmt.Sprintf("unknown key %q: fix or remove it", strings.Join(key, "."))
	}
	where := ""
	if table != "" {
		where = " in " + header(table)
	}
	if best := closest(leaf, known); best != "" {
		return fmt.Sprintf("unknown key %q%s: did you mean %q? fix or remove it", leaf, where, best)
	}
	return fmt.Sprintf("unknown key %q%s: fix or remove it (known keys: %s)", leaf, where, strings.Join(sortedKeys(known), ", "))
}

func wrongType(key toml.Key) string {
	if len(key) == 0 {
		return "value of the wrong type: fix this line"
	}
	table, leaf := tableOf(key[:len(key)-1]), key[len(key)-1]
	want, ok := schema[table][leaf]
	if !ok {
		return fmt.Sprintf("value of the wrong type for %q: fix this line", strings.Join(key, "."))
	}
	where := ""
	if table != "" {
		where = " in " + header(table)
	}
	return fmt.Sprintf("wrong type for %q%s: write %s", leaf, where, want)
}

// tableOf names the schema table of a key path, dropping array indexes.
func tableOf(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	return parts[0] + strings.Repeat(".?", len(parts)-1)
}

func header(table string) string {
	if table == "share" || table == "peer" || table == "invite" {
		return "[[" + table + "]]"
	}
	return "[" + table + "]"
}

// closest is the known key nearest to s by edit distance, when near enough
// (at most 2 edits) to be a typo.
func closest(s string, known map[string]string) string {
	best, bestD := "", 3
	for _, k := range sortedKeys(known) {
		if d := editDistance(s, k); d < bestD && d < len(s) {
			best, bestD = k, d
		}
	}
	return best
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// editDistance is the Levenshtein distance, capped in length (keys are short;
// a hostile file gets a cheap answer).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// positions maps key paths ("device.listen", "share.2", "share.2.path") to
// the line they start on, so validation can point at the line at fault.
type positions map[string]int

func (p positions) has(key string) bool { _, ok := p[key]; return ok }

// line is the line of key, else of its nearest enclosing table, else 0.
func (p positions) line(key string) int {
	for {
		if l, ok := p[key]; ok {
			return l
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
}

// positionsOf indexes a document that has already decoded without error.
func positionsOf(data []byte) positions {
	pos := positions{}
	count := map[string]int{}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		n := p.Expression()
		switch n.Kind {
		case unstable.Table, unstable.ArrayTable:
			key, r := keyOf(n)
			table = key
			if n.Kind == unstable.ArrayTable {
				table = key + "." + strconv.Itoa(count[key])
				count[key]++
			}
			pos[table] = p.Shape(r).Start.Line
		case unstable.KeyValue:
			key, r := keyOf(n)
			if table != "" {
				key = table + "." + key
			}
			pos[key] = p.Shape(r).Start.Line
		}
	}
	return pos
}

func keyOf(n *unstable.Node) (string, unstable.Range) {
	var parts []string
	var r unstable.Range
	it := n.Key()
	for it.Next() {
		k := it.Node()
		if parts == nil {
			r = k.Raw
		}
		parts = append(parts, string(k.Data))
	}
	return strings.Join(parts, "."), r
}
