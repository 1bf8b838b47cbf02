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
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/engine"
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
}

// Daemon is one running device. Open it, then Run it; Run closes it.
type Daemon struct {
	home    string
	opts    Options
	log     *slog.Logger
	id      *identity.Identity
	self    identity.DeviceID
	db      *index.DB
	eng     *engine.Engine
	tls     *conn.TLS
	ln      *conn.TLSListener
	ctl     net.Listener
	unlock  func()
	started time.Time

	wg gosync.WaitGroup // every goroutine started after Run began

	mu struct {
		gosync.Mutex
		cfg       *config.Config                  // guarded by mu: the configuration applied last
		shares    map[share.ID]*runningShare      // guarded by mu
		shareErrs map[share.ID]shareError         // guarded by mu: shares that failed to start
		dialers   map[identity.DeviceID]*dialer   // guarded by mu
		conns     map[identity.DeviceID]*peerConn // guarded by mu
		refused   []Refused                       // guarded by mu, newest last
		runCtx    context.Context                 // guarded by mu: Run's context, nil before Run
	}
}

// Open locks the home, loads the identity and configuration, opens the
// index and starts listening for peers and for the control API. Nothing
// syncs until Run.
func Open(opts Options) (d *Daemon, err error) {
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
	eng, err := engine.New(engine.Options{DB: db, Self: id.ID(), Logger: log})
	if err != nil {
		return nil, err
	}
	d = &Daemon{
		home: home, opts: opts, log: log, id: id, self: id.ID(), db: db, eng: eng,
		tls: conn.NewTLS(id, log), unlock: unlock, started: time.Now(),
	}
	d.mu.cfg = cfg
	d.mu.shares = make(map[share.ID]*runningShare)
	d.mu.shareErrs = make(map[share.ID]shareError)
	d.mu.dialers = make(map[identity.DeviceID]*dialer)
	d.mu.conns = make(map[identity.DeviceID]*peerConn)

	listen := cfg.Device.Listen
	if opts.Listen != "" {
		listen = opts.Listen
	}
	d.ln, err = d.tls.Listen(listen, d.acceptable)
	if err != nil {
		return nil, fmt.Errorf("%w: pass --listen HOST:PORT with a free port, or port 0 to pick one", err)
	}
	closers = append(closers, func() { d.ln.Close() })
	d.ctl, err = listenControl(home)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ID is this device's ID.
func (d *Daemon) ID() identity.DeviceID { return d.self }

// Addr is the address peers connect to.
func (d *Daemon) Addr() net.Addr { return d.ln.Addr() }

// Run syncs until ctx is done, then stops every part, closes the index and
// releases the home.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.unlock()
	defer d.db.Close()
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
	d.apply(ctx, cfg)

	d.wg.Go(func() { d.acceptLoop(ctx) })
	srv := d.serveControl(ctx)

	<-ctx.Done()
	d.log.Info("stopping")
	shutdown, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	srv.Shutdown(shutdown)
	d.ln.Close()
	d.wg.Wait() // watchers, dialers and connections
	d.mu.Lock()
	for id := range d.mu.shares {
		d.eng.RemoveShare(id)
	}
	d.mu.Unlock()
	<-engDone
	os.Remove(filepath.Join(d.home, SocketFile))
	d.log.Info("stopped")
	return nil
}

// Reload re-reads config.toml and applies it.
func (d *Daemon) Reload() error {
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

// apply makes the running shares and dialers match cfg.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) {
	d.mu.Lock()
	d.mu.cfg = cfg
	d.mu.Unlock()
	d.applyShares(ctx, cfg)
	d.applyPeers(ctx, cfg)
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.cfg
}

func (d *Daemon) noteRefused(id identity.DeviceID, addr net.Addr, reason string) {
	r := Refused{ID: id.String(), Time: time.Now().UTC(), Reason: reason}
	if addr != nil {
		r.Addr = addr.String()
	}
	d.mu.Lock()
	if len(d.mu.refused) == maxRefused {
		d.mu.refused = d.mu.refused[1:]
	}
	d.mu.refused = append(d.mu.refused, r)
	d.mu.Unlock()
}
