package main

import (
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

// endpoint is where one device lives: the root network namespace (loopback)
// or a namespace the harness created, with the address peers reach it on.
type endpoint struct {
	ns string // "" = the harness's own namespace
	ip string
}

// command builds a command that runs inside the endpoint's namespace
// (`ip netns exec` execs in place, so the PID is the program's own).
func (e endpoint) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if e.ns == "" {
		return exec.CommandContext(ctx, name, args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.ns, name}, args...)...)
}

// httpClient returns a client whose connections are opened inside the
// endpoint's namespace, so a REST API on the namespace's own 127.0.0.1 is
// reachable without any route out of it.
func (e endpoint) httpClient() *http.Client {
	if e.ns == "" {
		return &http.Client{}
	}
	return &http.Client{Transport: &http.Transport{DialContext: e.dial, DisableKeepAlives: true}}
}

// inNS runs f on a locked thread switched into the endpoint's namespace (or
// directly when it has none), and switches the thread back before unlocking
// it. Sockets f creates stay in that namespace.
func (e endpoint) inNS(f func() error) error {
	if e.ns == "" {
		return f()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return fmt.Errorf("open own network namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + e.ns)
	if err != nil {
		return fmt.Errorf("open network namespace %q: %w", e.ns, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %q: %w", e.ns, err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic("cannot return to own network namespace: " + err.Error()) // thread is unusable
		}
	}()
	return f()
}

// dial opens a connection from inside the endpoint's namespace.
func (e endpoint) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := e.inNS(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listen opens a listener inside the endpoint's namespace.
func (e endpoint) listen(network, addr string) (net.Listener, error) {
	var l net.Listener
	err := e.inNS(func() (err error) {
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// network is the set of endpoints a scenario runs on, with its byte
// counters. A shaped network is made of namespaces the harness created (and
// deletes in close); traffic never leaves them.
type network struct {
	eps    []endpoint
	ns     []string // namespaces to delete, including a hub
	note   string   // how the link was emulated
	shaped bool
	hub    string // the hub namespace (shaped only)
	// relayDelay is the one-way delay relayPorts adds in user space when
	// the qdiscs cannot (no sch_netem); 0 when netem delays or on loopback.
	relayDelay time.Duration
	relays     []*relay
}

// hubIP is the hub bridge's own address, where delay relays listen.
const hubIP = "10.77.0.254"

// linkSpec is the emulated link of a shaped network.
type linkSpec struct {
	RateMbit int
	DelayMs  int
}

// loopbackNet returns n endpoints on 127.0.0.1.
func loopbackNet(n int) *network {
	nw := &network{note: "loopback"}
	for range n {
		nw.eps = append(nw.eps, endpoint{ip: "127.0.0.1"})
	}
	return nw
}

// shapedNet creates n namespaces joined through a bridge in a hub namespace;
// every device's link is shaped in both directions (egress of the device's
// veth = its upload, egress of the hub's end = its download).
func shapedNet(ctx context.Context, prefix string, n int, link linkSpec) (nw *network, err error) {
	nw = &network{shaped: true}
	defer func() {
		if err != nil {
			nw.close()
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
	nw.hub = hub
	if err := sh("-n", hub, "link", "set", "br0", "up"); err != nil {
		return nw, err
	}
	if err := sh("-n", hub, "addr", "add", hubIP+"/24", "dev", "br0"); err != nil {
		return nw, err
	}
	for i := range n {
		ns := fmt.Sprintf("%s-%d", prefix, i)
		if err := sh("netns", "add", ns); err != nil {
			return nw, err
		}
		nw.ns = append(nw.ns, ns)
		ip := fmt.Sprintf("10.77.0.%d", i+1)
		hv := fmt.Sprintf("h%d", i)
		steps := [][]string{
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hv, "netns", hub},
			{"-n", ns, "addr", "add", ip + "/24", "dev", "eth0"},
			{"-n", ns, "link", "set", "eth0", "up"},
			{"-n", hub, "link", "set", hv, "master", "br0"},
			{"-n", hub, "link", "set", hv, "up"},
		}
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
				nw.note = fmt.Sprintf("veth + netem: %d Mbit/s each way, %d ms one-way delay", link.RateMbit, link.DelayMs)
			case link.DelayMs > 0:
				nw.relayDelay = time.Duration(link.DelayMs) * time.Millisecond
				nw.note = fmt.Sprintf("veth + tbf: %d Mbit/s each way; the kernel has no sch_netem, so the %d ms one-way delay "+
					"is added in user space by a relay in the hub that holds each chunk %d ms in each direction (RTT +%d ms)",
					link.RateMbit, link.DelayMs, link.DelayMs, 2*link.DelayMs)
			default:
				nw.note = fmt.Sprintf("veth + tbf: %d Mbit/s each way, no added delay", link.RateMbit)
			}
		}
		nw.eps = append(nw.eps, endpoint{ns: ns, ip: ip})
	}
	return nw, nil
}

// shape limits dev's egress, and reports whether netem did it (with the
// delay when withDelay). Where the kernel lacks sch_netem (as this project's
// VMs do) it falls back to tbf, rate only; relayPorts then adds the delay.
// The tbf queue holds 50 ms: forwarded traffic (the hub's side) gets no
// backpressure from the qdisc, and a short queue turned bursts into drops and
// retransmissions (counted bytes up 30-70 %).
func shape(ctx context.Context, ns, dev string, link linkSpec, withDelay bool) (netem bool, err error) {
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

func (nw *network) close() {
	nw.closeRelays()
	for _, ns := range nw.ns {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
	nw.ns = nil
}

// counter counts IP bytes with an nftables table of its own: on loopback,
// TCP to or from the given ports (each packet once, at input); in a
// namespace, everything in and out of its eth0.
type counter struct {
	ns    string
	table string
}

func nft(ctx context.Context, ns string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.CommandContext(ctx, "nft", args...)
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "nft"}, args...)...)
}

func newLoopbackCounter(ctx context.Context, table string, ports []int) (*counter, error) {
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

func newLinkCounter(ctx context.Context, ns, table string) (*counter, error) {
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

func loadCounter(ctx context.Context, ns, table, rules string) (*counter, error) {
	_ = nft(ctx, ns, "delete", "table", "inet", table).Run()
	cmd := nft(ctx, ns, "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if _, err := run(ctx, cmd); err != nil {
		return nil, fmt.Errorf("load nftables counter %s: %w", table, err)
	}
	return &counter{ns: ns, table: table}, nil
}

// read returns the bytes counted so far, in (input) and out (output chain).
func (c *counter) read(ctx context.Context) (in, out int64, err error) {
	s, err := run(ctx, nft(ctx, c.ns, "-j", "list", "table", "inet", c.table))
	if err != nil {
		return 0, 0, err
	}
	return parseNftCounters(s)
}

// parseNftCounters sums the counters of `nft -j list table` per chain.
func parseNftCounters(s string) (in, out int64, err error) {
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

func (c *counter) total(ctx context.Context) int64 {
	in, out, err := c.read(ctx)
	if err != nil {
		return -1
	}
	return in + out
}

func (c *counter) close() {
	_ = nft(context.Background(), c.ns, "delete", "table", "inet", c.table).Run()
}

// freePorts returns n TCP ports that were free a moment ago on 127.0.0.1.
func freePorts(n int) ([]int, error) {
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
