package netns

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// Internet is a small internet of namespaces: an "internet" namespace with
// a bridge, public hosts on it, and homes, each a router namespace that
// masquerades its LAN behind its WAN address with a home router's firewall
// (from the WAN, only replies to what the LAN sent get in, to the LAN or to
// the router itself), and one device behind it. Addresses are from the
// documentation and private ranges and never leave the namespaces.
//
//	public i: 203.0.113.(10+i)/24 on the bridge
//	home i:   router WAN 203.0.113.(1+i)/24, LAN 192.168.(1+i).1/24,
//	          device 192.168.(1+i).10, default route via the router
//
// Close deletes every namespace (and with them their interfaces and
// nftables tables).
type Internet struct {
	Public []Endpoint
	Homes  []Home
	ns     []string
}

// Home is one home: its router's namespace and WAN address, and the
// device behind it.
type Home struct {
	Router string
	WAN    string
	Device Endpoint
}

const natTable = "bsreach_nat"

// NewInternet builds the namespaces, named prefix-inet, prefix-pubI,
// prefix-rI and prefix-hI.
func NewInternet(ctx context.Context, prefix string, publics, homes int) (in *Internet, err error) {
	in = &Internet{}
	defer func() {
		if err != nil {
			in.Close()
		}
	}()
	sh := func(args ...string) error {
		_, err := run(ctx, exec.CommandContext(ctx, "ip", args...))
		return err
	}
	addNS := func(name string) error {
		if err := sh("netns", "add", name); err != nil {
			return err
		}
		in.ns = append(in.ns, name)
		return sh("-n", name, "link", "set", "lo", "up")
	}
	inet := prefix + "-inet"
	if err := addNS(inet); err != nil {
		return in, err
	}
	for _, s := range [][]string{
		{"-n", inet, "link", "add", "br0", "type", "bridge"},
		{"-n", inet, "link", "set", "br0", "up"},
	} {
		if err := sh(s...); err != nil {
			return in, err
		}
	}
	// plug puts one end of a veth pair in ns as dev and the other on the
	// internet bridge.
	plug := func(ns, dev, brPort, cidr string) error {
		steps := [][]string{
			{"-n", ns, "link", "add", dev, "type", "veth", "peer", "name", brPort, "netns", inet},
			{"-n", ns, "addr", "add", cidr, "dev", dev},
			{"-n", ns, "link", "set", dev, "up"},
			{"-n", inet, "link", "set", brPort, "master", "br0"},
			{"-n", inet, "link", "set", brPort, "up"},
		}
		for _, s := range steps {
			if err := sh(s...); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range publics {
		ns := fmt.Sprintf("%s-pub%d", prefix, i)
		ip := fmt.Sprintf("203.0.113.%d", 10+i)
		if err := addNS(ns); err != nil {
			return in, err
		}
		if err := plug(ns, "eth0", fmt.Sprintf("pub%d", i), ip+"/24"); err != nil {
			return in, err
		}
		in.Public = append(in.Public, Endpoint{NS: ns, IP: ip})
	}
	for i := range homes {
		r, h := fmt.Sprintf("%s-r%d", prefix, i), fmt.Sprintf("%s-h%d", prefix, i)
		wan := fmt.Sprintf("203.0.113.%d", 1+i)
		lan := fmt.Sprintf("192.168.%d", 1+i)
		for _, ns := range []string{r, h} {
			if err := addNS(ns); err != nil {
				return in, err
			}
		}
		if err := plug(r, "wan0", fmt.Sprintf("wan%d", i), wan+"/24"); err != nil {
			return in, err
		}
		steps := [][]string{
			{"-n", r, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", h},
			{"-n", r, "addr", "add", lan + ".1/24", "dev", "lan0"},
			{"-n", r, "link", "set", "lan0", "up"},
			{"-n", h, "addr", "add", lan + ".10/24", "dev", "eth0"},
			{"-n", h, "link", "set", "eth0", "up"},
			{"-n", h, "route", "add", "default", "via", lan + ".1"},
		}
		for _, s := range steps {
			if err := sh(s...); err != nil {
				return in, err
			}
		}
		if _, err := run(ctx, exec.CommandContext(ctx, "ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")); err != nil {
			return in, err
		}
		if err := loadRules(ctx, r, natRules(in.publicIPs())); err != nil {
			return in, err
		}
		in.Homes = append(in.Homes, Home{Router: r, WAN: wan, Device: Endpoint{NS: h, IP: lan + ".10"}})
	}
	return in, nil
}

func (in *Internet) publicIPs() []string {
	var out []string
	for _, p := range in.Public {
		out = append(out, p.IP)
	}
	return out
}

// natRules is a home router: masquerade to the WAN, a firewall that lets in
// from the WAN only replies, and named counters of the bytes forwarded
// between the LAN and public hosts ("public") and between the LAN and
// anything else on the internet, other homes included ("direct").
func natRules(public []string) string {
	set := "{ 0.0.0.0 }"
	if len(public) > 0 {
		set = "{ " + strings.Join(public, ", ") + " }"
	}
	return fmt.Sprintf(`table ip %[1]s {
  counter via_public {}
  counter via_others {}
  chain masq {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
  chain through {
    type filter hook forward priority filter; policy accept;
    oifname "wan0" ip daddr %[2]s counter name via_public
    oifname "wan0" ip daddr != %[2]s counter name via_others
    iifname "wan0" ct state established,related ip saddr %[2]s counter name via_public accept
    iifname "wan0" ct state established,related counter name via_others accept
    iifname "wan0" drop
  }
  chain tome {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state established,related accept
    iifname "wan0" drop
  }
}
`, natTable, set)
}

func loadRules(ctx context.Context, ns, rules string) error {
	cmd := NFT(ctx, ns, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if _, err := run(ctx, cmd); err != nil {
		return fmt.Errorf("load nftables rules in %s: %w", ns, err)
	}
	return nil
}

// Forwarded returns the bytes home i's router forwarded between its LAN
// and public hosts, and between its LAN and the rest of the internet.
func (in *Internet) Forwarded(ctx context.Context, i int) (public, direct int64, err error) {
	for _, name := range []string{"via_public", "via_others"} {
		s, err := run(ctx, NFT(ctx, in.Homes[i].Router, "-j", "list", "counter", "ip", natTable, name))
		if err != nil {
			return 0, 0, err
		}
		var doc struct {
			Nftables []struct {
				Counter *struct {
					Bytes int64 `json:"bytes"`
				} `json:"counter"`
			} `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			return 0, 0, fmt.Errorf("parse counter %s: %w", name, err)
		}
		for _, o := range doc.Nftables {
			if o.Counter != nil {
				if name == "via_public" {
					public = o.Counter.Bytes
				} else {
					direct = o.Counter.Bytes
				}
			}
		}
	}
	return public, direct, nil
}

// BlockUDP makes home i's router drop every UDP packet it would forward,
// both ways (a network that allows TCP only); UnblockUDP undoes it.
func (in *Internet) BlockUDP(ctx context.Context, i int) error {
	return loadRules(ctx, in.Homes[i].Router, `table inet bsreach_noudp {
  chain through {
    type filter hook forward priority filter - 5; policy accept;
    meta l4proto udp drop
  }
}
`)
}

func (in *Internet) UnblockUDP(ctx context.Context, i int) error {
	_, err := run(ctx, NFT(ctx, in.Homes[i].Router, "delete", "table", "inet", "bsreach_noudp"))
	return err
}

// Close deletes the namespaces.
func (in *Internet) Close() {
	for i := len(in.ns) - 1; i >= 0; i-- {
		_ = exec.Command("ip", "netns", "del", in.ns[i]).Run()
	}
	in.ns = nil
}
