package dht

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	adht "github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	alog "github.com/anacrolix/log"
	"github.com/anacrolix/torrent/bencode"
	"golang.org/x/time/rate"
)

// Salt is the BEP 44 salt of the address item, so the device key can sign
// other items later without them replacing this one.
const Salt = "blueshift-addrs-v1"

// Timing of the table maintenance.
const (
	// refreshSparse is how often Run bootstraps while the table holds
	// fewer than goodNodes good nodes; refreshFull once it holds more.
	refreshSparse = 5 * time.Second
	refreshFull   = 5 * time.Minute
	goodNodes     = 8
	resolveWait   = 5 * time.Second // resolving the bootstrap names
	closeWait     = 5 * time.Second // for the packet reader to stop
	itemExpiry    = 2 * time.Hour   // BEP 44: items may expire after 2 h
	// RepublishEvery is how often a device should publish its item again
	// even when nothing changed (BEP 44: once an hour).
	RepublishEvery = 30 * time.Minute
	maxStored      = 4096 // other devices' items we keep for the network
	// traversalTries bounds the retries of a traversal that stalled before
	// asking anyone.
	traversalTries = 3
	// sendRate bounds the packets a node sends per second (the library's
	// default, per node).
	sendRate = 25
)

var (
	// ErrNotFound: no node had an item for the key.
	ErrNotFound = errors.New("no address item found")
	// ErrStale: the only items found are older than one accepted before.
	ErrStale = errors.New("address item older than one seen before")
	// ErrSpoofed: an item whose signature does not verify with the key.
	ErrSpoofed = errors.New("address item not signed by the device")
)

// Options configure a Node. Conn and Key are required.
type Options struct {
	// Conn is the node's UDP socket; the node owns it from New on.
	Conn net.PacketConn
	// Key signs our item; its public key is the item's key.
	Key Signer
	// Bootstrap lists the nodes (host:port) asked first while the routing
	// table is empty. Empty: only nodes added with AddNode, or that
	// contact us.
	Bootstrap []string
	// Refresh is how often Run bootstraps while the routing table is
	// sparse; zero: 5 s.
	Refresh time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Signer is a device key (*identity.Identity is one).
type Signer interface {
	PublicKey() ed25519.PublicKey
	Sign(msg []byte) []byte
}

// Item is what Lookup found of a device.
type Item struct {
	Addrs []netip.AddrPort // at most MaxDial
	Seq   int64
}

// Node is this device's DHT node. New starts the library's packet reader;
// Close stops it.
type Node struct {
	opts   Options
	srv    *adht.Server
	store  *store
	local  *bep44.Wrapper // our puts into store, stamped as the library's are
	conn   *watchedConn
	log    *slog.Logger
	salt   []byte
	closed sync.Once
	// resolving is the context of resolving bootstrap names; stopResolving
	// ends it when the node closes or Run's context ends, so a stop never
	// waits on DNS (a namespace without a resolver times out after 5 s).
	resolving     context.Context
	stopResolving context.CancelFunc

	mu struct {
		sync.Mutex
		seen map[bep44.Target]int64 // the highest seq accepted per key and salt
		seq  int64                  // our last published seq
	}
}

// New starts a node on opts.Conn.
func New(opts Options) (*Node, error) {
	if opts.Conn == nil || opts.Key == nil || len(opts.Key.PublicKey()) != ed25519.PublicKeySize {
		return nil, errors.New("new DHT node: Conn and Key are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Refresh <= 0 {
		opts.Refresh = refreshSparse
	}
	n := &Node{
		opts:  opts,
		store: newStore(maxStored),
		conn:  &watchedConn{PacketConn: opts.Conn, done: make(chan struct{})},
		log:   opts.Logger,
		salt:  []byte(Salt),
	}
	n.resolving, n.stopResolving = context.WithCancel(context.Background())
	n.local = bep44.NewWrapper(n.store, itemExpiry)
	n.mu.seen = make(map[bep44.Target]int64)
	lg := alog.NewLogger("dht")
	lg.Handlers = []alog.Handler{slogHandler{n.log}}
	cfg := &adht.ServerConfig{
		Conn: n.conn,
		// Node IDs bound to public IPs (BEP 42) do not fit devices behind
		// NAT that do not know their public IP; the default config turns
		// it off too.
		NoSecurity:    true,
		StartingNodes: n.startingNodes,
		DefaultWant:   []krpc.Want{krpc.WantNodes, krpc.WantNodes6},
		Store:         n.store,
		OnQuery:       fixTarget,
		Exp:           itemExpiry,
		Logger:        lg,
		// Our own limiter: the library's default one is shared by every
		// node of the process.
		SendLimiter: rate.NewLimiter(sendRate, sendRate),
	}
	srv, err := adht.NewServer(cfg)
	if err != nil {
		opts.Conn.Close()
		return nil, fmt.Errorf("start DHT node on %s: %w", opts.Conn.LocalAddr(), err)
	}
	n.srv = srv
	return n, nil
}

// Addr is the node's UDP address.
func (n *Node) Addr() net.Addr { return n.conn.LocalAddr() }

// Nodes is how many nodes the routing table holds.
func (n *Node) Nodes() int { return n.srv.NumNodes() }

// Close stops the node and waits for its packet reader and for the
// queries under way to end (each ends within the library's resend delay,
// 2 s, once the socket is closed).
func (n *Node) Close() {
	n.closed.Do(func() {
		n.stopResolving()
		n.srv.Close()
		n.conn.Close()
		deadline := time.After(closeWait)
		select {
		case <-n.conn.done:
		case <-deadline:
			n.log.Warn("DHT node: the packet reader did not stop")
			return
		}
		for n.srv.Stats().OutstandingTransactions > 0 {
			select {
			case <-deadline:
				n.log.Warn("DHT node: queries still under way after close")
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
}

// Run keeps the routing table filled until ctx ends: it bootstraps at once,
// then every few seconds while the table is sparse, every few minutes after.
func (n *Node) Run(ctx context.Context) error {
	defer context.AfterFunc(ctx, n.stopResolving)()
	for {
		wait := refreshFull
		if n.srv.Stats().GoodNodes < goodNodes {
			wait = n.opts.Refresh
		}
		// The library's bootstrap leaks its traversal when it finds no
		// node to start from: ask first.
		if _, err := n.srv.TraversalStartingNodes(); err != nil {
			n.log.Debug("DHT: no node to bootstrap from yet", "err", err)
		} else {
			bctx, cancel := context.WithTimeout(ctx, time.Minute)
			if _, err := n.srv.BootstrapContext(bctx); err != nil && ctx.Err() == nil {
				n.log.Debug("DHT bootstrap", "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// AddNode adds a node (host:port of an IP) to ask, e.g. one a peer told us.
func (n *Node) AddNode(addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return fmt.Errorf("add DHT node %q: %w", addr, err)
	}
	return n.srv.AddNode(krpc.NodeInfo{Addr: krpc.NodeAddr{IP: ap.Addr().Unmap().AsSlice(), Port: int(ap.Port())}})
}

// Publish signs an item listing addrs and stores it at the nodes closest
// to its target, and at this node. It returns the item's sequence number.
func (n *Node) Publish(ctx context.Context, addrs []string) (int64, error) {
	return n.publish(ctx, n.opts.Key, n.salt, addrs, true)
}

// PublishAs is Publish of an item signed by key under salt: an item that
// is not this device's own (a one-off send's meeting point, whose key
// both ends derive). Its sequence number is the clock's, in milliseconds,
// above the network's.
func (n *Node) PublishAs(ctx context.Context, key Signer, salt string, addrs []string) (int64, error) {
	if key == nil || len(key.PublicKey()) != ed25519.PublicKeySize || salt == "" || salt == Salt {
		return 0, errors.New("publish in the DHT: a key and a salt of its own are required")
	}
	return n.publish(ctx, key, []byte(salt), addrs, false)
}

func (n *Node) publish(ctx context.Context, key Signer, salt []byte, addrs []string, own bool) (int64, error) {
	v, err := EncodeItem(addrs)
	if err != nil {
		return 0, err
	}
	pub := [ed25519.PublicKeySize]byte(key.PublicKey())
	netSeq := int64(0)
	closest, err := n.traverse(ctx, pub, salt, func(seq int64, _ []byte, _ [64]byte) { netSeq = max(netSeq, seq) })
	if err != nil && !errors.Is(err, errNoNodes) {
		return 0, fmt.Errorf("publish our addresses in the DHT: %w", err)
	}
	put := n.signed(key, salt, v, netSeq, own)
	var wg sync.WaitGroup
	for _, c := range closest {
		wg.Go(func() {
			res := n.srv.Put(ctx, adht.NewAddr(c.addr.UDP()), put, c.token, adht.QueryRateLimiting{})
			if err := res.ToError(); err != nil {
				n.log.Debug("DHT: put our item", "node", c.addr.String(), "err", err)
			}
		})
	}
	wg.Wait()
	// Also here, so nodes that ask us find it (the library puts only to
	// others when it found some).
	if err := n.local.Put(put.ToItem()); err != nil && !errors.Is(err, bep44.ErrSequenceNumberLessThanCurrent) {
		return 0, fmt.Errorf("publish our addresses in the DHT: %w", err)
	}
	n.log.Debug("DHT: published an item", "addrs", addrs, "seq", put.Seq, "salt", string(salt))
	return put.Seq, nil
}

// signed makes the put of value v with a sequence number above netSeq (the
// highest the network holds), our last one (own: our device's item), and
// the clock in milliseconds.
func (n *Node) signed(key Signer, salt, v []byte, netSeq int64, own bool) bep44.Put {
	seq := max(netSeq+1, n.opts.Now().UnixMilli())
	if own {
		n.mu.Lock()
		seq = max(seq, n.mu.seq+1)
		n.mu.seq = seq
		n.mu.Unlock()
	}
	pub := [ed25519.PublicKeySize]byte(key.PublicKey())
	p := bep44.Put{V: bencode.Bytes(v), K: &pub, Salt: salt, Seq: seq}
	copy(p.Sig[:], key.Sign(signedBytes(salt, seq, v)))
	return p
}

// signedBytes is what a BEP 44 mutable item's signature covers: the
// bencoded salt and seq keys, then the value's key and v, with no
// enclosing dictionary.
func signedBytes(salt []byte, seq int64, v []byte) []byte {
	var b []byte
	if len(salt) > 0 {
		b = fmt.Appendf(b, "4:salt%d:%s", len(salt), salt)
	}
	b = fmt.Appendf(b, "3:seqi%de1:v", seq)
	return append(b, v...)
}

// Known returns up to max nodes of the routing table, the good ones
// first (a device asks them where they see one of its sockets).
func (n *Node) Known(max int) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ni := range n.srv.Nodes() {
		if len(out) == max {
			break
		}
		if u := ni.Addr.UDP(); u != nil {
			out = append(out, netip.AddrPortFrom(u.AddrPort().Addr().Unmap(), u.AddrPort().Port()))
		}
	}
	return out
}

// Lookup finds the newest item of the device whose public key is pub, and
// returns at most MaxDial of its addresses.
func (n *Node) Lookup(ctx context.Context, pub ed25519.PublicKey) (Item, error) {
	return n.lookup(ctx, pub, n.salt)
}

// LookupAs is Lookup of the item of key pub under salt (PublishAs).
func (n *Node) LookupAs(ctx context.Context, pub ed25519.PublicKey, salt string) (Item, error) {
	if salt == "" {
		return Item{}, errors.New("look up in the DHT: a salt is required")
	}
	return n.lookup(ctx, pub, []byte(salt))
}

func (n *Node) lookup(ctx context.Context, pub ed25519.PublicKey, salt []byte) (Item, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Item{}, fmt.Errorf("look up a device in the DHT: a public key of %d bytes", len(pub))
	}
	key := [ed25519.PublicKeySize]byte(pub)
	target := bep44.MakeMutableTarget(key, salt)
	var best *found
	if it, err := n.local.Get(target); err == nil && it.K == key {
		if v, err := bencode.Marshal(it.V); err == nil {
			best = &found{v: v, seq: it.Seq, sig: it.Sig}
		}
	}
	_, err := n.traverse(ctx, key, salt, func(seq int64, v []byte, sig [64]byte) {
		if best == nil || seq > best.seq {
			best = &found{v: append([]byte(nil), v...), seq: seq, sig: sig}
		}
	})
	if best == nil {
		if err != nil && ctx.Err() != nil {
			return Item{}, fmt.Errorf("look up a device in the DHT: %w", err)
		}
		return Item{}, fmt.Errorf("look up a device in the DHT: %w", ErrNotFound)
	}
	return n.accept(key, salt, best)
}

// fixTarget makes the library answer find_node and get with the nodes
// closest to the target asked for: it picks them by the info_hash argument,
// which only get_peers carries, so it answered the others with the nodes
// closest to zero, and in a small network often none.
func fixTarget(m *krpc.Msg, _ net.Addr) bool {
	if a := m.A; a != nil && (m.Q == "find_node" || m.Q == "get") && a.InfoHash == (krpc.ID{}) {
		a.InfoHash = a.Target
	}
	return true
}

// found is an item as a node returned it.
type found struct {
	v   []byte
	seq int64
	sig [64]byte
}

// accept checks an item of key: signature, sequence, value.
func (n *Node) accept(key [ed25519.PublicKeySize]byte, salt []byte, f *found) (Item, error) {
	if !bep44.Verify(key[:], salt, f.seq, f.v, f.sig[:]) {
		return Item{}, fmt.Errorf("look up a device in the DHT: %w", ErrSpoofed)
	}
	addrs, err := DecodeItem(f.v)
	if err != nil {
		return Item{}, fmt.Errorf("look up a device in the DHT: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	target := bep44.MakeMutableTarget(key, salt)
	if f.seq < n.mu.seen[target] {
		return Item{}, fmt.Errorf("look up a device in the DHT: seq %d, %d seen before: %w", f.seq, n.mu.seen[target], ErrStale)
	}
	n.mu.seen[target] = f.seq
	return Item{Addrs: slices.Clone(addrs[:min(len(addrs), MaxDial)]), Seq: f.seq}, nil
}

// startingNodes resolves the bootstrap list (the library calls it when the
// routing table is empty).
func (n *Node) startingNodes() ([]adht.Addr, error) {
	ctx, cancel := context.WithTimeout(n.resolving, resolveWait)
	defer cancel()
	var out []adht.Addr
	for _, hp := range n.opts.Bootstrap {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		if err != nil {
			n.log.Debug("DHT: resolve bootstrap node", "node", hp, "err", err)
			continue
		}
		for _, ip := range ips {
			ap, err := netip.ParseAddrPort(net.JoinHostPort(ip.IP.String(), port))
			if err != nil {
				continue
			}
			// The 4-byte form for IPv4: the library keys replies by
			// address text, and a mapped ::ffff:a.b.c.d never matches.
			ua := net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
			if ua.String() != n.Addr().String() {
				out = append(out, adht.NewAddr(ua))
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no bootstrap node")
	}
	return out, nil
}

// watchedConn closes done once the library's reader has seen the socket
// closed, so Close can wait for it.
type watchedConn struct {
	net.PacketConn
	once sync.Once
	done chan struct{}
}

func (c *watchedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	nr, addr, err := c.PacketConn.ReadFrom(b)
	if err != nil && errors.Is(err, net.ErrClosed) {
		c.once.Do(func() { close(c.done) })
	}
	return nr, addr, err
}

// slogHandler sends the library's log lines to our logger, at Debug: they
// are about other nodes, which a user cannot act on.
type slogHandler struct{ log *slog.Logger }

func (h slogHandler) Handle(r alog.Record) {
	h.log.Debug("DHT: " + r.Text())
}

// store keeps the items other nodes put here, at most max of them (an
// unbounded store would let anyone fill our memory).
type store struct {
	max int
	mu  sync.Mutex
	m   map[bep44.Target]*bep44.Item // guarded by mu
}

func newStore(max int) *store { return &store{max: max, m: make(map[bep44.Target]*bep44.Item)} }

func (s *store) Put(i *bep44.Item) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := i.Target()
	if _, ok := s.m[t]; !ok && len(s.m) >= s.max {
		return krpc.Error{Code: krpc.ErrorCodeServerError, Msg: "store full"}
	}
	s.m[t] = i
	return nil
}

func (s *store) Get(t bep44.Target) (*bep44.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i, ok := s.m[t]; ok {
		return i, nil
	}
	return nil, bep44.ErrItemNotFound
}

func (s *store) Del(t bep44.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, t)
	return nil
}
