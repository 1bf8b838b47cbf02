package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// transferFlags are the flags send and receive share: how to reach a
// daemon when none is running, and how to print.
type transferFlags struct {
	json        bool
	listen      string
	noDiscovery bool
	noDHT       bool
	noQUIC      bool
}

func (f *transferFlags) add(c *cobra.Command) {
	c.Flags().BoolVar(&f.json, "json", false, "print one JSON object per line: the offer or the receive, then progress, then the result")
	c.Flags().StringVar(&f.listen, "listen", "", "with no daemon running: the HOST:PORT the one started for this transfer listens on")
	c.Flags().BoolVar(&f.noDiscovery, "no-discovery", false, "with no daemon running: no LAN discovery for the one started for this transfer")
	c.Flags().BoolVar(&f.noDHT, "no-dht", false, "with no daemon running: no DHT node for the one started for this transfer")
	c.Flags().BoolVar(&f.noQUIC, "no-quic", false, "with no daemon running: TCP only (no QUIC) for the one started for this transfer")
}

func newSendCmd(g *globals) *cobra.Command {
	var tf transferFlags
	var expires time.Duration
	var addrs, rendezvous []string
	c := &cobra.Command{
		Use:   "send PATH...",
		Short: "Offer files or folders to one device, by a short code",
		Long: "Offer files or folders to one device: prints a short code; `blueshift receive CODE [DIR]`\n" +
			"on the other device fetches them, paired or not. The code is a PAKE's password: it never\n" +
			"travels, and three wrong tries close the offer. Nothing is copied: the paths are staged as\n" +
			"hard links in a hidden folder beside the first one. The offer ends at the first complete\n" +
			"receipt or at --expires; run the same command again to resume an offer (same code). With no\n" +
			"daemon running, one runs for the transfer's length.",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("%s: name at least one file or folder (see '%s --help')", c.CommandPath(), c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if expires < 0 {
				return usageError{fmt.Errorf("send: --expires %s is negative", expires)}
			}
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			cl, stop, err := ensureDaemon(c, home, tf)
			if err != nil {
				return err
			}
			defer stop()
			abs := make([]string, len(args))
			for i, p := range args {
				if abs[i], err = filepath.Abs(p); err != nil {
					return fmt.Errorf("send %s: %w", p, err)
				}
			}
			req := daemon.SendRequest{Paths: abs, Addresses: addrs, Rendezvous: rendezvous}
			if expires > 0 {
				req.Expires = expires.String()
			}
			s, err := cl.Send(c.Context(), req)
			if err != nil {
				return err
			}
			finish := func() error { return cl.FinishSend(context.WithoutCancel(c.Context()), s.ShareID) }
			// The offer stands once the daemon has scanned it: a receiver
			// must never take a half-scanned tree for the whole.
			err = watchShare(c.Context(), cl, s.ShareID, func(_ daemon.Status, sh daemon.ShareStatus) bool { return !sh.Scanned.IsZero() })
			if err != nil {
				finish()
				return fmt.Errorf("send: %w", err)
			}
			out := c.OutOrStdout()
			if tf.json {
				json.NewEncoder(out).Encode(s)
			} else {
				fmt.Fprintln(out, s.Code)
				fmt.Fprintf(c.ErrOrStderr(), "offering %d files (%s) until %s; on the other device: blueshift receive %s [DIR]\n",
					s.Files, engine.SizeText(s.Bytes), s.Expires.Local().Format(time.DateTime), s.Code)
			}
			ctx, cancel := context.WithDeadline(c.Context(), s.Expires)
			defer cancel()
			p := newTransferProgress(c, tf.json, s.Bytes, "sending")
			var to string
			err = watchShare(ctx, cl, s.ShareID, func(st daemon.Status, sh daemon.ShareStatus) bool {
				var sent int64
				for _, ps := range st.Peers {
					if slices.Contains(sh.Peers, ps.ID) {
						sent += ps.BytesOut
					}
				}
				p.set(min(sent, s.Bytes), sh)
				if len(sh.Reached) > 0 {
					to = sh.Reached[0]
					for _, ps := range st.Peers {
						if ps.ID == to && ps.Name != "" {
							to = ps.Name
						}
					}
					return true
				}
				return false
			})
			p.done()
			if ferr := finish(); ferr != nil {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %v\n", ferr)
			}
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("send: nobody received it before %s; the offer is withdrawn", s.Expires.Local().Format(time.DateTime))
				}
				return fmt.Errorf("send: %w; the offer is withdrawn", err)
			}
			if tf.json {
				json.NewEncoder(out).Encode(map[string]any{"done": true, "to": to, "files": s.Files, "bytes": s.Bytes})
			} else {
				fmt.Fprintf(c.ErrOrStderr(), "sent %d files (%s) to %s\n", s.Files, engine.SizeText(s.Bytes), to)
			}
			return nil
		},
	}
	tf.add(c)
	c.Flags().DurationVar(&expires, "expires", daemon.DefaultSendExpiry, "how long the offer stands")
	c.Flags().StringSliceVar(&addrs, "addr", nil, "where the receiver can reach this device (HOST:PORT, repeatable; default: from the configuration)")
	c.Flags().StringSliceVar(&rendezvous, "rendezvous", nil, "a public device (HOST:PORT) to make the offer at too, for a receiver behind another NAT: it introduces the two, and forwards no data (repeatable)")
	return c
}

func newReceiveCmd(g *globals) *cobra.Command {
	var tf transferFlags
	var addrs, rendezvous []string
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "receive CODE [DIR]",
		Short: "Fetch what `blueshift send` offers under a short code, into DIR (default: here)",
		Long: "Fetch what `blueshift send` offers under a short code into DIR (default: the current\n" +
			"folder). Items arrive in a hidden folder of DIR and move into DIR when complete; a name\n" +
			"already taken gets \" (2)\". Killed midway, run it again: it goes on where it stopped (one\n" +
			"receive per folder at a time). The sender is found at --addr, else on the LAN, then at a\n" +
			"--rendezvous it made the offer at too, then in the DHT (across NATs, no server needed).",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("%s: want CODE [DIR] (see '%s --help')", c.CommandPath(), c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if !daemon.IsCode(args[0]) {
				return usageError{fmt.Errorf("receive: %q is not a code like XXXXX-XXXXX", args[0])}
			}
			dir := "."
			if len(args) == 2 {
				dir = args[1]
			}
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			cl, stop, err := ensureDaemon(c, home, tf)
			if err != nil {
				return err
			}
			defer stop()
			ctx := c.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			into, err := filepath.Abs(dir)
			if err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			r, err := cl.Receive(ctx, daemon.ReceiveRequest{Code: args[0], Dir: into, Addresses: addrs, Rendezvous: rendezvous})
			if err != nil {
				return err
			}
			out := c.OutOrStdout()
			if tf.json {
				json.NewEncoder(out).Encode(r)
			} else if r.Resumed {
				fmt.Fprintf(c.ErrOrStderr(), "going on with the receive into %s\n", r.Into)
			}
			p := newTransferProgress(c, tf.json, 0, "receiving")
			err = watchShare(ctx, cl, r.ShareID, func(_ daemon.Status, sh daemon.ShareStatus) bool {
				p.set(-1, sh)
				// Complete when our root is the sender's: it may end its
				// side (and hang up) as soon as it sees ours.
				return len(sh.Reached) > 0 && sh.Records > 0 && sh.NeedItems == 0 && sh.Join == nil
			})
			p.done()
			if err != nil {
				return fmt.Errorf("receive: %w; what arrived so far stays in %s: run the same command again to go on", err, r.Stage)
			}
			got, err := cl.FinishReceive(context.WithoutCancel(ctx), r.ShareID)
			if err != nil {
				return fmt.Errorf("receive: %w", err)
			}
			made := got.Paths
			if tf.json {
				json.NewEncoder(out).Encode(map[string]any{"done": true, "paths": made})
			} else {
				for _, m := range made {
					fmt.Fprintln(out, m)
				}
			}
			return nil
		},
	}
	tf.add(c)
	c.Flags().StringSliceVar(&addrs, "addr", nil, "where the sending device listens (HOST:PORT), instead of looking on the LAN")
	c.Flags().StringSliceVar(&rendezvous, "rendezvous", nil, "a public device (HOST:PORT) the sender made its offer at (send --rendezvous), looked at after the LAN and before the DHT: both punch through their NATs (repeatable)")
	c.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: never); what arrived stays for the next run")
	return c
}

// ensureDaemon returns a client of home's daemon. With none running it
// creates the device if needed and runs one in this process until stop.
func ensureDaemon(c *cobra.Command, home string, tf transferFlags) (*daemon.Client, func(), error) {
	if _, err := os.Stat(config.Path(home)); errors.Is(err, os.ErrNotExist) {
		name, _ := os.Hostname()
		if name == "" {
			name = "blueshift"
		}
		if _, err := identity.Create(home); err != nil {
			return nil, nil, err
		}
		if err := config.New(name).Save(home); err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(filepath.Join(home, daemon.DBDir), 0o700); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(c.ErrOrStderr(), "device %q created in %s\n", name, home)
	}
	cl, err := daemon.NewClient(home)
	if err == nil {
		return cl, func() {}, nil
	}
	if !errors.Is(err, daemon.ErrNotRunning) {
		return nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(c.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := daemon.Open(daemon.Options{Home: home, Listen: tf.listen, Logger: log, NoDiscovery: tf.noDiscovery,
		NoDHT: tf.noDHT, NoPublicDHT: noPublicDHT(), NoQUIC: tf.noQUIC})
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Context()))
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintf(c.ErrOrStderr(), "warning: stopping the daemon: %v\n", err)
		}
	}
	cl, err = daemon.NewClient(home)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return cl, stop, nil
}

// watchShare polls the daemon until done says the share is complete, ctx
// ends, or the share is gone.
func watchShare(ctx context.Context, cl *daemon.Client, shareID string, done func(daemon.Status, daemon.ShareStatus) bool) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := cl.Status(ctx)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			i := slices.IndexFunc(st.Shares, func(s daemon.ShareStatus) bool { return s.ID == shareID })
			if i < 0 {
				return fmt.Errorf("share %s is no longer in the daemon's configuration", shareID)
			}
			if done(st, st.Shares[i]) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// transferProgress shows a transfer's progress: a bar on a terminal, a JSON object
// per change with --json, nothing otherwise.
type transferProgress struct {
	json  bool
	out   io.Writer
	bar   *progressbar.ProgressBar
	total int64
	last  string
	verb  string
	errw  io.Writer
}

func newTransferProgress(c *cobra.Command, asJSON bool, total int64, verb string) *transferProgress {
	p := &transferProgress{json: asJSON, out: c.OutOrStdout(), total: total, verb: verb, errw: c.ErrOrStderr()}
	if !asJSON && isTerminal(c.ErrOrStderr()) {
		p.bar = progressbar.NewOptions64(max(total, 1),
			progressbar.OptionSetWriter(c.ErrOrStderr()), progressbar.OptionShowBytes(true),
			progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSetDescription(verb))
	}
	return p
}

// set reports done bytes (-1: derive them from what the share still needs).
func (p *transferProgress) set(done int64, sh daemon.ShareStatus) {
	if done < 0 {
		p.total = max(p.total, sh.NeedBytes)
		done = p.total - sh.NeedBytes
	}
	if p.bar != nil {
		p.bar.ChangeMax64(max(p.total, 1))
		p.bar.Set64(done)
	}
	if p.json {
		line, _ := json.Marshal(map[string]any{"progress": p.verb, "bytes": done, "total": p.total, "need_items": sh.NeedItems, "peers": len(sh.Peers)})
		if string(line) != p.last {
			p.last = string(line)
			fmt.Fprintln(p.out, p.last)
		}
	}
}

func (p *transferProgress) done() {
	if p.bar != nil {
		p.bar.Finish()
		fmt.Fprintln(p.errw)
	}
}
