package netns

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Delay relay: where the kernel has no sch_netem, a shaped network still gets
// its one-way delay from user space. Each device's sync port is fronted by a
// relay in the hub namespace (on the bridge's own address), and every other
// device's namespace rewrites connections to that port with an nftables DNAT
// rule, so the tools dial the addresses they always dial. The relay holds
// every chunk it reads for the delay before writing it on, in each direction;
// the chunks stay in order and are pipelined, so the delay is added to the
// latency without capping the throughput (the tbf qdiscs on the veths still
// set the rate, and every byte still crosses the same shaped links and
// counters).

// relayChunk is the most the relay reads at once; relayQueue is how many
// chunks one direction may hold (the relay's own buffer, 1 MiB at most, so
// TCP's flow control still reaches the sender).
const (
	relayChunk = 32 << 10
	relayQueue = 32
)

// Relay accepts on ln and forwards each connection to target (opened with
// dial), delaying every chunk by delay in both directions. close stops the
// listener and every connection.
type Relay struct {
	ln     net.Listener
	target string
	dial   func(ctx context.Context, network, addr string) (net.Conn, error)
	delay  time.Duration

	accepted atomic.Int64 // connections relayed so far

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func NewRelay(ln net.Listener, target string, delay time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *Relay {
	r := &Relay{ln: ln, target: target, dial: dial, delay: delay, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	return r
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.accepted.Add(1)
		r.wg.Add(1)
		go r.serve(c)
	}
}

// track remembers c for close; it reports false (and closes c) once the
// relay is closed.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

func (r *Relay) serve(in net.Conn) {
	defer r.wg.Done()
	if !r.track(in) {
		return
	}
	defer r.untrack(in)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := r.dial(ctx, "tcp", r.target)
	cancel()
	if err != nil {
		return // the dialer sees its connection closed, as if refused
	}
	if !r.track(out) {
		return
	}
	defer r.untrack(out)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); delayCopy(out, in, r.delay) }()
	go func() { defer wg.Done(); delayCopy(in, out, r.delay) }()
	wg.Wait()
}

// delayCopy copies src to dst, each chunk written no earlier than delay after
// it was read. At src's end it half-closes dst; on a write error it stops
// reading src, which closes both sides through serve.
func delayCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	q := make(chan chunk, relayQueue)
	done := make(chan struct{})
	go func() {
		defer close(q)
		for {
			b := make([]byte, relayChunk)
			n, err := src.Read(b)
			if n > 0 {
				select {
				case q <- chunk{b[:n], time.Now().Add(delay)}:
				case <-done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer close(done)
	for c := range q {
		if d := time.Until(c.due); d > 0 {
			time.Sleep(d)
		}
		if _, err := dst.Write(c.b); err != nil {
			src.Close() // unblocks the reader
			return
		}
	}
	if tc, ok := dst.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
}

func (r *Relay) Close() {
	r.ln.Close()
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// RelayPorts fronts device i's port with a delaying relay for each
// (i, port) and redirects the other devices' connections to it. It does
// nothing on loopback or when the qdiscs already delay (netem).
func (nw *Network) RelayPorts(ctx context.Context, ports map[int]int) error {
	if !nw.Shaped || nw.RelayDelay == 0 {
		return nil
	}
	for i, port := range ports {
		hub := Endpoint{NS: nw.Hub, IP: HubIP}
		ln, err := hub.Listen("tcp", fmt.Sprintf("%s:%d", HubIP, port))
		if err != nil {
			return fmt.Errorf("relay for device %d port %d: %w", i, port, err)
		}
		nw.relays = append(nw.relays, NewRelay(ln, fmt.Sprintf("%s:%d", nw.Endpoints[i].IP, port), nw.RelayDelay, hub.Dial))
		for j, ep := range nw.Endpoints {
			if j == i {
				continue
			}
			rule := fmt.Sprintf("add rule ip bsdelay out ip daddr %s tcp dport %d dnat to %s:%d", nw.Endpoints[i].IP, port, HubIP, port)
			if err := Script(ctx, ep.NS, "table ip bsdelay {\n  chain out {\n    type nat hook output priority -100; policy accept;\n  }\n}\n"+rule+"\n"); err != nil {
				return fmt.Errorf("redirect device %d to the relay of device %d: %w", j, i, err)
			}
		}
	}
	return nil
}

// Script loads an nft script in namespace ns ("" = own).
func Script(ctx context.Context, ns, script string) error {
	cmd := NFT(ctx, ns, "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	_, err := run(ctx, cmd)
	return err
}

// Relayed is the number of connections the network's relays carried.
func (nw *Network) Relayed() int64 {
	var n int64
	for _, r := range nw.relays {
		n += r.accepted.Load()
	}
	return n
}

// CloseRelays stops every relay of the network.
func (nw *Network) CloseRelays() {
	for _, r := range nw.relays {
		r.Close()
	}
	nw.relays = nil
}
