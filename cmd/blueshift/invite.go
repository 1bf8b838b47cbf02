package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/sync/daemon"
)

func newInviteCmd(g *globals) *cobra.Command {
	var opts daemon.InviteOptions
	c := &cobra.Command{
		Use:   "invite SHARE",
		Short: "Print a link and a short code that let another device join a share",
		Long: "Print a link (first line of stdout) that lets another device join SHARE with\n" +
			"`blueshift join LINK PATH`. It carries this device's ID and addresses and the access\n" +
			"it grants; it expires (default 24h) and can be single-use. Treat it like a password.\n" +
			"The second line is a short code (XXXXX-XXXXX) for the same invitation, to read aloud:\n" +
			"`blueshift join CODE PATH` finds this device on the LAN while its daemon runs.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			// The running daemon knows its real address (port 0 resolved).
			if cl, err := daemon.NewClient(home); err == nil {
				st, err := cl.Status(c.Context())
				if err != nil {
					return err
				}
				cfg, err := daemon.LoadConfig(home)
				if err != nil {
					return err
				}
				if opts.Addresses, err = daemon.Addresses(cfg.Device.Announce, st.Listen); err != nil {
					return err
				}
			} else if errors.Is(err, daemon.ErrNotRunning) {
				// The link then names the configured listen address; a daemon
				// started with another --listen (or port 0) is not there.
				fmt.Fprintln(c.ErrOrStderr(), "(no daemon is running here: the link names the addresses of config.toml's [device] listen;\n"+
					" if `blueshift run` will use another --listen, start it first and invite again)")
			} else {
				return err
			}
			l, code, err := daemon.Invite(home, clean(args[0]), opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), l.String())
			fmt.Fprintln(c.OutOrStdout(), code)
			access := "read-write"
			if opts.ReadOnly {
				access = "read-only"
			}
			use := "any number of devices"
			if opts.SingleUse {
				use = "one device"
			}
			fmt.Fprintf(c.ErrOrStderr(), "%s access to %q for %s, until %s. On the other device: blueshift join LINK PATH\n"+
				"or, on the same network while this daemon runs: blueshift join %s PATH\n",
				access, l.ShareName, use, l.Expires.Local().Format(time.DateTime), code)
			return reloadDaemon(c, home)
		},
	}
	c.Flags().BoolVar(&opts.ReadOnly, "read-only", false, "the joiner may read but not change the share")
	c.Flags().DurationVar(&opts.Expires, "expires", daemon.DefaultInviteExpiry, "how long the link works")
	c.Flags().BoolVar(&opts.SingleUse, "single-use", false, "the link pairs one device only")
	return c
}

func newJoinCmd(g *globals) *cobra.Command {
	var addrs []string
	c := &cobra.Command{
		Use:   "join LINK|CODE PATH",
		Short: "Join a share from an invite link or code into the folder PATH",
		Long: "Join the share an invite link carries into PATH (created when missing). Files already\n" +
			"in PATH are merged with the share's, never clobbered: a file both sides have in\n" +
			"different versions becomes a conflict copy. Given a short code instead of a link, it\n" +
			"looks for the inviting device on the LAN (or at --addr) and joins through its invitation.",
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			var res daemon.JoinResult
			if daemon.IsCode(args[0]) {
				res, err = daemon.JoinByCode(c.Context(), home, args[0], args[1], daemon.CodeJoinOptions{Addresses: addrs})
			} else {
				res, err = daemon.Join(home, args[0], args[1], time.Time{})
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), res.ShareID)
			fmt.Fprintf(c.ErrOrStderr(), "joined into %s; syncing with %s starts when the daemon runs\n", res.Path, res.Inviter)
			return reloadDaemon(c, home)
		},
	}
	c.Flags().StringSliceVar(&addrs, "addr", nil, "with a code: where the inviting device listens (HOST:PORT), instead of looking on the LAN")
	return c
}
