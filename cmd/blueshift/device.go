package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	gosync "sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// homeOf resolves --home / $BLUESHIFT_HOME.
func (g *globals) homeOf() (string, error) { return config.Home(g.home) }

func newInitCmd(g *globals) *cobra.Command {
	var name string
	c := &cobra.Command{
		Use:   "init",
		Short: "Create this device: its identity, configuration and database folder",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			if _, err := os.Stat(config.Path(home)); err == nil {
				return fmt.Errorf("init: %s already exists: this home has a device (`blueshift --home %s id` shows it)", config.Path(home), home)
			}
			if name == "" {
				name, _ = os.Hostname()
				if name == "" {
					name = "blueshift"
				}
			}
			id, err := identity.Create(home)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if err := config.New(name).Save(home); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if err := os.MkdirAll(filepath.Join(home, daemon.DBDir), 0o700); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			fmt.Fprintln(c.OutOrStdout(), id.ID())
			fmt.Fprintf(c.ErrOrStderr(), "device %q created in %s; start it with `blueshift run`\n", name, home)
			return nil
		},
	}
	c.Flags().StringVar(&name, "name", "", "device name shown to peers (default: the host name)")
	return c
}

func newIDCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Print this device's ID",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			id, err := identity.Load(home)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), id.ID())
			return nil
		},
	}
}

// daemonMemoryLimit is the soft limit of the Go heap of `blueshift run`
// (runtime/debug.SetMemoryLimit); the environment's GOMEMLIMIT replaces it.
// The GC never spends more than about half the CPU to keep it, so a heap
// that must be larger only costs time.
const daemonMemoryLimit = 200 << 20

// daemonGCPercent is the GOGC of `blueshift run` (the environment's GOGC
// replaces it): the heap grows to 1.5x its live size between collections,
// not 2x. A first sync of 20,000 small files has ~80-90 MB live in the
// receiver at its peak, whose heap then grew to the 200 MiB limit (peak RSS
// ~245 MB with Pebble's cache); at 50 both daemons peaked at ~155 MB, for
// ~5-10% more CPU (cmd/bench scenario 1, see README). Large shares are
// bounded by the limit either way.
const daemonGCPercent = 50

// tuneGC sets the daemon's memory limit and GOGC where the environment
// does not.
func tuneGC() {
	if os.Getenv("GOMEMLIMIT") == "" {
		// A background daemon should be frugal: past this the GC works
		// harder rather than letting the heap double its live size
		// (a rescan of 1,000,000 files peaked at 368 MB without it).
		debug.SetMemoryLimit(daemonMemoryLimit)
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
}

// trimEvery is how often `blueshift run` hands the C allocator's free
// memory back to the system (malloc_cgo.go).
const trimEvery = 10 * time.Second

func trimLoop(ctx context.Context) {
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			trimMalloc()
		}
	}
}

func newRunCmd(g *globals) *cobra.Command {
	var listen, level, profile, cpuProfile, uiAddr, dhtListen string
	var noDiscovery, noQUIC, noDHT, noMulticast, rendezvous bool
	relayOn := true
	var quicPort int
	var vaultGrace time.Duration
	var discoveryIfaces, bootstrap []string
	c := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon in the foreground (stop it with Ctrl-C)",
		Long: "Run the daemon in the foreground: sync every share, accept peers, serve the local\n" +
			"control API. One daemon per home. Logs go to stderr. SIGINT or SIGTERM stop it cleanly.",
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(level)); err != nil {
				return usageError{fmt.Errorf("run: --log-level %q: write debug, info, warn or error", level)}
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
			tuneGC()
			if err := config.CheckUI(uiAddr); err != nil {
				return usageError{fmt.Errorf("run: --ui %q: %v: give a loopback HOST:PORT like %s, or off", uiAddr, err, config.DefaultUI)}
			}
			for _, name := range discoveryIfaces {
				if err := config.CheckInterface(name); err != nil {
					return usageError{fmt.Errorf("run: --discovery-interfaces: %q %v: give interface names like lo or eth0", name, err)}
				}
			}
			// Signals are caught before the index opens: one that comes
			// during start-up stops the daemon cleanly once Run begins,
			// instead of killing it with the database open.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			var trims gosync.WaitGroup
			trims.Go(func() { trimLoop(ctx) })
			defer func() { stop(); trims.Wait() }()
			if profile != "" {
				if err := serveProfiles(ctx, profile, log); err != nil {
					return usageError{fmt.Errorf("run: --pprof %q: %w", profile, err)}
				}
			}
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return usageError{fmt.Errorf("run: --cpu-profile %q: %w: give a file this user can write", cpuProfile, err)}
				}
				defer func() {
					if err := stopProfile(); err != nil {
						log.Warn("CPU profile not written whole", "path", cpuProfile, "err", err)
					}
				}()
			}
			if quicPort < 0 || quicPort > 65535 {
				return usageError{fmt.Errorf("run: --quic-port %d: give a UDP port from 1 to 65535 (0: the port of --listen)", quicPort)}
			}
			if vaultGrace < 0 {
				return usageError{fmt.Errorf("run: --vault-grace %s: give a duration of 0 or more, like 30m (0: the default, 1h)", vaultGrace)}
			}
			if err := checkDHTFlags(bootstrap, dhtListen); err != nil {
				return usageError{err}
			}
			sendRate, recvRate, err := runRates(c)
			if err != nil {
				return err
			}
			relayRate, err := rateFlag(c, "relay-rate", false)
			if err != nil {
				return err
			}
			rr, _ := config.ParseRate(relayRate)
			d, err := daemon.Open(daemon.Options{Home: home, Listen: listen, Logger: log, NoDiscovery: noDiscovery, DiscoveryInterfaces: discoveryIfaces,
				NoQUIC: noQUIC, QUICPort: quicPort, UI: uiAddr, NewUI: newUI,
				NoDHT: noDHT, Bootstrap: bootstrap, DHTListen: dhtListen, NoPublicDHT: noPublicDHT(), MaxSendRate: sendRate, MaxRecvRate: recvRate,
				NoRelay: !relayOn, RelayRate: int64(rr), NoMulticast: noMulticast, VaultGrace: vaultGrace, Rendezvous: rendezvous})
			if err != nil {
				return err
			}
			return d.Run(ctx)
		},
	}
	c.Flags().StringVar(&listen, "listen", "", "HOST:PORT for peer connections (default from the configuration; port 0 picks a free one)")
	c.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error")
	addRateFlags(c)
	c.Flags().BoolVar(&noDiscovery, "no-discovery", false, "no LAN discovery (multicast announcements), whatever [device] discovery says")
	c.Flags().BoolVar(&noMulticast, "no-multicast", false, "no LAN multicast of blocks, whatever [device] multicast says (it is off with discovery too)")
	c.Flags().StringSliceVar(&discoveryIfaces, "discovery-interfaces", nil, "LAN discovery on these interfaces only (e.g. lo), whatever [discovery] interfaces says")
	c.Flags().StringVar(&uiAddr, "ui", "", "serve the web UI on this loopback HOST:PORT, or off (default [device] ui, else "+config.DefaultUI+")")
	c.Flags().BoolVar(&noQUIC, "no-quic", false, "no QUIC (UDP): reach peers over TCP only, whatever [device] quic says")
	c.Flags().IntVar(&quicPort, "quic-port", 0, "UDP port of QUIC (default [device] quic_port, else the port number of --listen)")
	addDHTFlags(c, &noDHT, &bootstrap, &dhtListen)
	c.Flags().BoolVar(&rendezvous, "rendezvous", false, "serve as a rendezvous (on a public address) where a send's sender and receiver behind NATs, sharing nothing, meet: it tells each where the other is, and forwards no data")
	c.Flags().BoolVar(&relayOn, "relay", true, "relay for devices that share a share with this one and cannot reach each other; --relay=false turns it off (a metered link), whatever [device] relay says")
	c.Flags().String("relay-rate", "", `cap on bytes relayed per second, all circuits together, like "1MiB" (default [device] relay_rate, else 1MiB)`)
	c.Flags().DurationVar(&vaultGrace, "vault-grace", 0, "as an encrypted member, keep a sealed block no sealed record names for this long before deleting it, e.g. 30m (default 1h: longer than any push in progress)")
	c.Flags().StringVar(&profile, "pprof", "", "serve Go's runtime profiles (heap, CPU, goroutines) on this loopback HOST:PORT, for diagnosing memory or CPU use")
	c.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file, for diagnosing CPU use (go tool pprof reads it)")
	return c
}

// clean trims a user-given reference.
func clean(s string) string { return strings.TrimSpace(s) }
