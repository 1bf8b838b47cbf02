// Package netns is the network the whole-system harnesses (cmd/bench,
// cmd/faults) run devices on: endpoints in the harness's own namespace
// (loopback) or in network namespaces it creates and deletes (a hub bridge
// with one veth per device, rate-shaped; IPv4 or IPv6 only, whose bridge
// forwards no IPv4), nftables byte counters (at a
// device's own hooks, or where its upload reaches the hub: CrossedCounter,
// which counts a packet the device's qdisc dropped and TCP sent again once;
// what a device sends to a multicast group: NewGroupCounter), a bridge port
// that drops multicast as some Wi-Fi and switches do (DropMulticast), and a
// user-space relay that adds one-way delay where the kernel has no
// sch_netem. An Internet is homes behind NAT routers and public hosts (the
// hole-punching tests and bench scenario 10), with a router's UDP blocked
// (BlockUDP) or a TCP port forwarded to its device (ForwardTCP) on demand.
// It needs root for everything but loopback endpoints. Nothing it makes
// reaches a real interface.
//
// A Network owns its namespaces and relays: Close deletes them. A Relay owns
// its goroutines: Close returns after all have stopped.
package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Endpoint is where one device lives: the root network namespace (loopback)
// or a namespace the harness created, with the address peers reach it on.
type Endpoint struct {
	NS string // "" = the harness's own namespace
	IP string
}

// Command builds a command that runs inside the endpoint's namespace
// (`ip netns exec` execs in place, so the PID is the program's own).
func (e Endpoint) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if e.NS == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.NS, name}, args...)...)
}

// HTTPClient returns a client whose connections are opened inside the
// Endpoint's namespace, so a REST API on the namespace's own 127.0.0.1 is
// reachable without any route out of it.
func (e Endpoint) HTTPClient() *http.Client {
	if e.NS == "" {
		return &http.Client{}
	}
	return &http.Client{Transport: &http.Transport{DialContext: e.Dial, DisableKeepAlives: true}}
}

// InNS runs f on a locked thread switched into the endpoint's namespace (or
// directly when it has none), and switches the thread back before unlocking
// it. Sockets f creates stay in that namespace.
func (e Endpoint) InNS(f func() error) error {
	if e.NS == "" {
		return f()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + e.NS)
	if err != nil {
		return fmt.Errorf("open network namespace %q: %w", e.NS, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %q: %w", e.NS, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic("cannot return to own network namespace: " + err.Error()) // thread is unusable
		}
	}()
	return f()
}

// Dial opens a connection from inside the endpoint's namespace.
func (e Endpoint) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := e.InNS(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Interface returns the endpoint's interface name (its link is "eth0") as
// seen inside its namespace.
func (e Endpoint) Interface(name string) (*net.Interface, error) {
	var ifi *net.Interface
	err := e.InNS(func() (err error) {
		ifi, err = net.InterfaceByName(name)
		return err
	})
	return ifi, err
}

// Listen opens a listener inside the endpoint's namespace.
func (e Endpoint) Listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := e.InNS(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// Network is the set of endpoints a scenario runs on, with its byte
// counters. A shaped network is made of namespaces the harness created (and
// deletes in Close); traffic never leaves them.
type Network struct {
	Endpoints []Endpoint
	ns        []string // namespaces to delete, including a hub
	Note      string   // how the link was emulated
	Shaped    bool
	Hub       string // the hub namespace (shaped only)
	// RelayDelay is the one-way delay RelayPorts adds in user space when
	// the qdiscs cannot (no sch_netem); 0 when netem delays or on loopback.
	RelayDelay time.Duration
	relays     []*Relay
}

// HubIP is the hub bridge's own address, where delay relays listen.
const HubIP = "10.77.0.254"

// Link is the emulated link of a shaped network.
type Link struct {
	RateMbit int
	DelayMs  int
	// IPv6Only makes the network IPv6 only: each endpoint has Prefix6's
	// address N+1 (Endpoint.IP) and its link-local address, both usable
	// at once (duplicate address detection off), and no IPv4 address;
	// the hub's bridge forwards no IPv4 or ARP frame. Delay relays need
	// IPv4: DelayMs must be 0 where the kernel has no sch_netem.
	IPv6Only bool
}

// Prefix6 is the IPv6 prefix (a unique local one) of an IPv6-only network.
const Prefix6 = "fd77::/64"

// Loopback returns n endpoints on 127.0.0.1.
func Loopback(n int) *Network {
	nw := &Network{Note: "loopback"}
	for range n {
		nw.Endpoints = append(nw.Endpoints, Endpoint{IP: "127.0.0.1"})
	}
	return nw
}

// NewShaped creates n namespaces joined through a bridge in a hub namespace;
// every device's link is shaped in both directions (egress of the device's
// veth = its upload, egress of the hub's end = its download).
func NewShaped(ctx context.Context, prefix string, n int, link Link) (nw *Network, err error) {
	nw = &Network{Shaped: true}
	defer func() {
		if err != nil {
			nw.Close()
		}
	}()
	hub := prefix + "-hub"
	sh := func(args ...string) error {
		_, err := run(ctx, exec.CommandContext(ctx, "ip", args...))
		return err
	}
	if err := sh("netns", "add", hub); err != nil {
		return nw, err
	}
	nw.ns = append(nw.ns, hub)
	if err := sh("-n", hub, "link", "add", "br0", "type", "bridge"); err != nil {
		return nw, err
	}
	nw.Hub = hub
	if err := sh("-n", hub, "link", "set", "br0", "up"); err != nil {
		return nw, err
	}
	if link.IPv6Only {
		if err := ipv6Only(ctx, hub); err != nil {
			return nw, err
		}
	} else if err := sh("-n", hub, "addr", "add", HubIP+"/24", "dev", "br0"); err != nil {
		return nw, err
	}
	for i := range n {
		ns := fmt.Sprintf("%s-%d", prefix, i)
		if err := sh("netns", "add", ns); err != nil {
			return nw, err
		}
		nw.ns = append(nw.ns, ns)
		hv := fmt.Sprintf("h%d", i)
		ip, addr := fmt.Sprintf("10.77.0.%d", i+1), []string{fmt.Sprintf("10.77.0.%d/24", i+1)}
		var steps [][]string
		if link.IPv6Only {
			ip, addr = fmt.Sprintf("fd77::%x", i+1), []string{fmt.Sprintf("fd77::%x/64", i+1), "nodad"}
			// Before eth0 exists, so that its link-local address is
			// usable at once too.
			steps = append(steps, []string{"netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.accept_dad=0"})
		}
		steps = append(steps,
			[]string{"-n", ns, "link", "set", "lo", "up"},
			[]string{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hv, "netns", hub},
			append([]string{"-n", ns, "addr", "add"}, append(addr, "dev", "eth0")...),
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", hub, "link", "set", hv, "master", "br0"},
			[]string{"-n", hub, "link", "set", hv, "up"},
		)
		for _, s := range steps {
			if err := sh(s...); err != nil {
				return nw, err
			}
		}
		// The delay goes on the device's egress only, so each direction of
		// a device-to-device path is delayed once.
		for k, side := range [][2]string{{ns, "eth0"}, {hub, hv}} {
			netem, err := shape(ctx, side[0], side[1], link, k == 0)
			if err != nil {
				return nw, err
			}
			switch {
			case netem:
				nw.Note = fmt.Sprintf("veth + netem: %d Mbit/s each way, %d ms one-way delay", link.RateMbit, link.DelayMs)
			case link.DelayMs > 0:
				nw.RelayDelay = time.Duration(link.DelayMs) * time.Millisecond
				nw.Note = fmt.Sprintf("veth + tbf: %d Mbit/s each way; the kernel has no sch_netem, so the %d ms one-way delay "+
					"is added in user space by a relay in the hub that holds each chunk %d ms in each direction (RTT +%d ms)",
					link.RateMbit, link.DelayMs, link.DelayMs, 2*link.DelayMs)
			default:
				nw.Note = fmt.Sprintf("veth + tbf: %d Mbit/s each way, no added delay", link.RateMbit)
			}
		}
		nw.Endpoints = append(nw.Endpoints, Endpoint{NS: ns, IP: ip})
	}
	return nw, nil
}

// shape limits dev's egress, and reports whether netem did it (with the
// delay when withDelay). Where the kernel lacks sch_netem (as this project's
// VMs do) it falls back to tbf, rate only; RelayPorts then adds the delay.
// The tbf queue holds 50 ms: forwarded traffic (the hub's side) gets no
// backpressure from the qdisc, and a short queue turned bursts into drops and
// retransmissions (counted bytes up 30-70 %).
func shape(ctx context.Context, ns, dev string, link Link, withDelay bool) (netem bool, err error) {
	rate := fmt.Sprintf("%dmbit", link.RateMbit)
	delay := "0ms"
	if withDelay {
		delay = fmt.Sprintf("%dms", link.DelayMs)
	}
	ne := exec.CommandContext(ctx, "tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "delay", delay, "rate", rate, "limit", "10000")
	if _, err := run(ctx, ne); err == nil {
		return true, nil
	}
	tbf := exec.CommandContext(ctx, "tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb", "latency", "50ms")
	if _, err := run(ctx, tbf); err != nil {
		return false, fmt.Errorf("shape %s in %s: %w", dev, ns, err)
	}
	return false, nil
}

func (nw *Network) Close() {
	nw.CloseRelays()
	for _, ns := range nw.ns {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	nw.ns = nil
}

// Counter counts IP bytes with an nftables table of its own: on loopback,
// TCP to or from the given ports (each packet once, at input); in a
// namespace, everything in and out of its eth0.
type Counter struct {
	ns     string
	table  string
	family string // of the table; "" = inet
}

func NFT(ctx context.Context, ns string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.CommandContext(ctx, "nft", args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
}

func NewLoopbackCounter(ctx context.Context, table string, ports []int) (*Counter, error) {
	ps := make([]string, len(ports))
	for i, p := range ports {
		ps[i] = fmt.Sprint(p)
	}
	set := "{ " + strings.Join(ps, ", ") + " }"
	rules := fmt.Sprintf(`table inet %s {
  chain in {
    type filter hook input priority -10; policy accept;
    iifname "lo" tcp dport %s counter accept
    iifname "lo" tcp sport %s counter accept
  }
}
`, table, set, set)
	return loadCounter(ctx, "", table, rules)
}

func NewLinkCounter(ctx context.Context, ns, table string) (*Counter, error) {
	rules := fmt.Sprintf(`table inet %s {
  chain in {
    type filter hook input priority -10; policy accept;
    iifname "eth0" counter accept
  }
  chain out {
    type filter hook output priority -10; policy accept;
    oifname "eth0" counter accept
  }
}
`, table)
	return loadCounter(ctx, ns, table, rules)
}

func loadCounter(ctx context.Context, ns, table, rules string) (*Counter, error) {
	_ = NFT(ctx, ns, "delete", "table", "inet", table).Run()
	cmd := NFT(ctx, ns, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if _, err := run(ctx, cmd); err != nil {
		return nil, fmt.Errorf("load nftables counter %s: %w", table, err)
	}
	return &Counter{ns: ns, table: table}, nil
}

// Read returns the bytes counted so far, in (input) and out (output chain).
func (c *Counter) Read(ctx context.Context) (in, out int64, err error) {
	s, err := run(ctx, NFT(ctx, c.ns, "-j", "list", "table", c.fam(), c.table))
	if err != nil {
		return 0, 0, err
	}
	return ParseCounters(s)
}

// ParseCounters sums the counters of `nft -j list table` per chain.
func ParseCounters(s string) (in, out int64, err error) {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Chain string            `json:"chain"`
				Expr  []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		return 0, 0, fmt.Errorf("parse nft counters: %w", err)
	}
	for _, item := range doc.Nftables {
		if item.Rule == nil {
			continue
		}
		for _, e := range item.Rule.Expr {
			var x struct {
				Counter *struct {
					Bytes int64 `json:"bytes"`
				} `json:"counter"`
			}
			if json.Unmarshal(e, &x) != nil || x.Counter == nil {
				continue
			}
			if item.Rule.Chain == "out" {
				out += x.Counter.Bytes
			} else {
				in += x.Counter.Bytes
			}
		}
	}
	return in, out, nil
}

func (c *Counter) Total(ctx context.Context) int64 {
	in, out, err := c.Read(ctx)
	if err != nil {
		return -1
	}
	return in + out
}

func (c *Counter) Close() {
	_ = NFT(context.Background(), c.ns, "delete", "table", c.fam(), c.table).Run()
}

func (c *Counter) fam() string {
	if c.family == "" {
		return "inet"
	}
	return c.family
}

// FreePorts returns n TCP ports that were free a moment ago on 127.0.0.1.
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// run executes a short command to completion and returns its output.
func run(ctx context.Context, cmd *exec.Cmd) (string, error) {
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), ctx.Err()
}
