package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon/hooks"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/known"
	"github.com/blueshift-sync/blueshift/index/members"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/discovery"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/multicast"
	"github.com/blueshift-sync/blueshift/peer/relay"
	"github.com/blueshift-sync/blueshift/sync/engine"
	"github.com/blueshift-sync/blueshift/sync/vault"
)

const maxRefused = 32 // refused attempts kept for Status

// Options configure a Daemon.
type Options struct {
	Home   string
	Listen string       // overrides [device] listen when not empty
	Logger *slog.Logger // nil: discard
	// DialMin and DialMax bound the wait between failed dials to a peer;
	// zero: 500 ms and 30 s.
	DialMin, DialMax time.Duration
	// NoDiscovery turns LAN discovery off whatever the configuration says
	// (tests, which must send no multicast outside their namespaces).
	NoDiscovery bool
	// DiscoveryInterfaces, when not empty, replaces [discovery] interfaces:
	// the only interfaces LAN discovery uses (["lo"]: this machine only).
	DiscoveryInterfaces []string
	// UI is the web UI's loopback HOST:PORT ("off": none); empty: [device]
	// ui, else config.DefaultUI. NewUI makes it (nil: no web UI).
	UI    string
	NewUI func(*Daemon) (WebUI, error)
	// NoQUIC turns QUIC off whatever [device] quic says: TCP only.
	NoQUIC bool
	// Rendezvous: serve as a rendezvous for sends across NATs between
	// devices that share nothing (sendrendezvous.go); strangers then get as
	// far as the Hello.
	Rendezvous bool
	// QUICPort, when not zero, replaces [device] quic_port.
	QUICPort int
	// NoDHT turns the DHT node off whatever [dht] enabled says; Bootstrap,
	// when not empty, replaces [dht] bootstrap; DHTListen replaces [dht]
	// listen (dht.go).
	NoDHT     bool
	Bootstrap []string
	DHTListen string
	// NoPublicDHT makes Open fail rather than start a DHT node that would
	// bootstrap from the public routers (PublicBootstrap): the tests' daemons
	// must never ask the internet (cmd/blueshift sets it from the
	// environment's BLUESHIFT_NO_PUBLIC_DHT, which its tests set).
	NoPublicDHT bool
	// MaxSendRate and MaxRecvRate, when above 0, replace [device]
	// max_send_rate and max_recv_rate until a user sets them live.
	MaxSendRate, MaxRecvRate int64
	// NoRelay turns relaying for others off whatever [device] relay says;
	// RelayRate, when above 0, replaces [device] relay_rate (relay.go).
	NoRelay   bool
	RelayRate int64
	// NoMulticast turns LAN multicast of blocks off whatever [device]
	// multicast says; MulticastPort, when not zero, replaces its UDP port
	// (multicast.go).
	NoMulticast   bool
	MulticastPort int
	// VaultGrace, when above 0, is how long an encrypted member keeps a
	// sealed block no item names (vault.go; zero: vault.DefaultGrace).
	VaultGrace time.Duration
}

// Daemon is one running device. Open it, then Run it; Run closes it.
type Daemon struct {
	home       string
	opts       Options
	log        *slog.Logger
	id         *identity.Identity
	self       identity.DeviceID
	db         *index.DB
	eng        *engine.Engine
	tls        *conn.TLS
	ln         *conn.TLSListener
	quic       *conn.QUIC           // nil when QUIC is off
	qln        *conn.QUICListener   // nil when QUIC is off
	peers      *peer.Manager        // dials, accepts, keeps one connection per peer
	relay      *relay.Server        // nil when this device does not relay for others (relay.go)
	relayc     *relay.Client        // circuits through relays, and relays' invitations (relay.go)
	disc       *discovery.Discovery // nil when LAN discovery is off
	mcast      *multicast.Group     // nil when LAN multicast is off (multicast.go)
	dht        *dhtPart             // nil when the DHT is off (dht.go)
	mesh       meshSignal           // members changed: introduce them again (mesh.go)
	ctl        net.Listener
	ui         uiServer // the web UI (webui.go); zero when off
	unlock     func()
	started    time.Time
	rates      rates[identity.DeviceID] // connections' byte rates for status
	shareRates rates[string]            // shares' byte rates for status, by share ID
	events     events                   // the event stream's subscribers (api_events.go)
	hooks      *hooks.Runner            // the user's commands on events (hookrun.go)
	joins      joins                    // pending joins: answers and presenters (join.go)
	codes      codes                    // tries of short codes (code.go)
	members    *members.Store           // every share's membership log (members.go)
	known      *known.Store             // the members introduced to each share (known.go)
	vault      *vault.Store             // sealed records and blocks this device keeps as an encrypted member (vault.go)
	vpulls     vaultPulls               // what each share last pulled from its encrypted members, for status (vault.go)
	vaddrs     vaultAddrs               // where encrypted members said they listen, for introductions (vault.go)
	listening  listenSeen               // where peers said they listen, at the IP they came from, for introductions (listening.go)
	msync      memberSync               // wakes the membership relays (members.go)
	local      localCache               // read-only shares' local changes, for status (members.go)
	keyring    keyringState             // the keyring and mount loop's wake-ups and lock (keyring.go, mounts.go)
	rdv        rendezvousTable          // sends across NATs: offers kept as a rendezvous, our sends' offers (sendrendezvous.go)
	swarm      swarmState               // send swarms: tickets served and receives' helpers (sendswarm.go)

	wg gosync.WaitGroup // every goroutine started after Run began

	applyMu gosync.Mutex                   // serializes Reload and the first apply
	peersMu gosync.Mutex                   // serializes applyPeers
	paired  map[identity.DeviceID][]string // guarded by peersMu: what the manager was given

	mu struct {
		gosync.Mutex
		cfg       *config.Config             // guarded by mu: the configuration applied last
		shares    map[share.ID]*runningShare // guarded by mu
		shareErrs map[share.ID]shareError    // guarded by mu: shares that failed to start
		runCtx    context.Context            // guarded by mu: Run's context, nil before Run
		// stopping is set once Run is shutting down: no share starts after
		// it, so nothing is added to wg while Run waits for it.
		stopping bool // guarded by mu
		// runRates are Options' rates, until POST /v1/rates sets the device's.
		runRates *[2]int64 // guarded by mu
	}
}

// Open locks the home, loads the identity and configuration, opens the
// index and starts listening for peers and for the control API. Nothing
// syncs until Run.
//
// The result is unnamed: the clean-up on error closes what the closers
// captured of the local d, which `return nil, err` would otherwise make
// nil.
func Open(opts Options) (_ *Daemon, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DialMin <= 0 {
		opts.DialMin = 500 * time.Millisecond
	}
	if opts.DialMax <= 0 {
		opts.DialMax = 30 * time.Second
	}
	home := opts.Home
	unlock, err := lockHome(home)
	if err != nil {
		return nil, err
	}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
			unlock()
		}
	}()
	id, err := identity.Load(home)
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	db, err := index.Open(filepath.Join(home, DBDir), index.Options{Logger: log.With("part", "index")})
	if err != nil {
		return nil, fmt.Errorf("open index of %s: %w", home, err)
	}
	closers = append(closers, func() { db.Close() })
	vs, err := openVault(home, log)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { vs.Close() })
	d := &Daemon{
		home: home, opts: opts, log: log, id: id, self: id.ID(), db: db, vault: vs,
		tls: conn.NewTLS(id, log), unlock: unlock, started: time.Now(),
	}
	d.mcast = d.newMulticast(cfg)
	if d.mcast != nil {
		closers = append(closers, d.mcast.Close)
	}
	d.eng, err = engine.New(engine.Options{DB: db, Self: id.ID(), Logger: log, OnEvent: d.onEngineEventAndKeyring, DeviceName: d.deviceName,
		Multicast: d.mcast, MulticastRate: int64(cfg.Device.MulticastRate)})
	if err != nil {
		return nil, err
	}
	d.members = members.Open(db.Pebble())
	d.known = known.Open(db.Pebble())
	d.hooks = hooks.New(log.With("part", "hooks"))
	d.mu.cfg = cfg
	if opts.MaxSendRate > 0 || opts.MaxRecvRate > 0 {
		d.mu.runRates = &[2]int64{opts.MaxSendRate, opts.MaxRecvRate}
	}
	d.mu.shares = make(map[share.ID]*runningShare)
	d.mu.shareErrs = make(map[share.ID]shareError)
	d.paired = make(map[identity.DeviceID][]string)

	listen := cfg.Device.Listen
	if opts.Listen != "" {
		listen = opts.Listen
	}
	d.ln, err = d.tls.Listen(listen, d.acceptable)
	if err != nil {
		return nil, fmt.Errorf("%w: pass --listen HOST:PORT with a free port, or port 0 to pick one", err)
	}
	closers = append(closers, func() { d.ln.Close() })
	if err := d.listenQUIC(cfg); err != nil {
		return nil, err
	}
	if d.quic != nil {
		closers = append(closers, func() { d.qln.Close(); d.quic.Close() })
	}
	if d.peers, err = d.newManager(cfg); err != nil {
		return nil, err
	}
	d.relay = d.newRelayServer(cfg)
	if d.relay != nil {
		closers = append(closers, func() { d.relay.Close() })
	}
	if d.disc, err = d.newDiscovery(cfg); err != nil {
		return nil, err
	}
	if d.dht, err = d.newDHT(cfg); err != nil {
		return nil, err
	}
	closers = append(closers, d.dht.close)
	d.ctl, err = listenControl(home)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { d.ctl.Close() })
	if err := d.listenUI(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// ID is this device's ID.
func (d *Daemon) ID() identity.DeviceID { return d.self }

// Addr is the address peers connect to.
func (d *Daemon) Addr() net.Addr { return d.ln.Addr() }

// Run syncs until ctx is done, then stops every part, closes the index and
// releases the home. Stopping waits on no peer and on no request of the
// control API: it takes a few seconds at most, whatever is under way
// (start-up, a share being added, a pull, a scan).
func (d *Daemon) Run(ctx context.Context) error {
	defer d.unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	d.log.Info("blueshift running", "device", d.self.String(), "listen", d.ln.Addr().String(), "home", d.home)
	engDone := make(chan struct{})
	go func() {
		defer close(engDone)
		d.eng.Run(ctx)
	}()
	d.mu.Lock()
	d.mu.runCtx = ctx
	cfg := d.mu.cfg
	d.mu.Unlock()
	d.applyMu.Lock()
	d.apply(ctx, cfg)
	d.applyMu.Unlock()

	d.wg.Go(func() { d.peers.Run(ctx, d.listeners()...) })
	if d.disc != nil {
		d.wg.Go(func() {
			if err := d.disc.Run(ctx); err != nil {
				d.log.Warn("LAN discovery unavailable; peers are dialled at their configured addresses only", "err", err)
			}
		})
	}
	if d.dht != nil {
		d.wg.Go(func() { d.dht.run(ctx) })
	}
	if d.mcast != nil {
		d.wg.Go(func() { d.mcast.Run(ctx) })
	}
	d.wg.Go(func() { d.watchStates(ctx) })
	srv := d.serveControl(ctx)
	d.wg.Go(func() { d.sweepSends(ctx) })
	d.wg.Go(func() { d.hooks.Run(ctx) })
	d.wg.Go(func() { d.runKeyring(ctx) })
	d.wg.Go(func() { d.collectVault(ctx) })
	stopUI := d.serveUI(ctx)

	<-ctx.Done()
	d.log.Info("stopping")
	// Requests under way get a moment to answer; a long one (a reload
	// starting shares) is then cut off: it starts nothing more (stopping).
	shutdown, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	if srv.Shutdown(shutdown) != nil {
		srv.Close()
	}
	stopUI(shutdown)
	d.ln.Close()
	d.mu.Lock()
	d.mu.stopping = true
	d.mu.Unlock()
	d.wg.Wait() // watchers, discovery, the peer manager and its connections
	if d.relay != nil {
		d.relay.Close() // the circuits it splices
	}
	if d.quic != nil {
		d.quic.Close()
	}
	d.log.Debug("stopping: peers and watchers stopped")
	d.mu.Lock()
	running := d.mu.shares
	d.mu.shares = make(map[share.ID]*runningShare)
	d.mu.Unlock()
	for id := range running {
		d.eng.RemoveShare(id)
	}
	<-engDone
	d.log.Debug("stopping: sync engine stopped; closing the index")
	os.Remove(filepath.Join(d.home, SocketFile))
	// A reload still under way (a request the control server cut off, or a
	// caller of Reload) writes membership logs and the keyring's state:
	// wait for it before the database closes. It starts nothing more
	// (stopping, the engine stopped) and a later one sees Run ended.
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if err := d.vault.Close(); err != nil {
		d.log.Error("close the vault store", "err", err)
	}
	if err := d.db.Close(); err != nil {
		d.log.Error("close the index", "err", err)
		return err
	}
	d.log.Info("stopped")
	return nil
}

// Reload re-reads config.toml and applies it. Reloads are serialized, the
// read included: two at once (a join settled while a membership log
// changes) never interleave their changes, nor apply an older file last.
func (d *Daemon) Reload() error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	cfg, err := LoadConfig(d.home)
	if err != nil {
		return err
	}
	d.mu.Lock()
	ctx := d.mu.runCtx
	d.mu.Unlock()
	if ctx == nil || ctx.Err() != nil {
		return errors.New("reload: the daemon is not running")
	}
	d.apply(ctx, cfg)
	return nil
}

// apply makes the running shares and the paired peers match cfg.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) {
	cfg = d.withKnown(cfg) // config.toml and the introduced members (known.go)
	d.mu.Lock()
	d.mu.cfg = cfg
	d.mu.Unlock()
	d.eng.SetRates(d.deviceRates(cfg))
	d.hooks.Set(hookList(cfg))
	d.applyShares(ctx, cfg)
	d.applyPeers(cfg)
	d.pruneSwarms(cfg)
	d.pokeKeyring() // shares to record, or the keyring itself, may have changed
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.cfg
}
