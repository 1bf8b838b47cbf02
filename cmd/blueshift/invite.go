package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
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
			if opts.Expires <= 0 {
				return usageError{fmt.Errorf("invite: --expires %s: give a positive duration like 24h or 30m (see '%s --help')", opts.Expires, c.CommandPath())}
			}
			if opts.Encrypted && opts.ReadOnly {
				return usageError{fmt.Errorf("invite: --encrypted and --read-only are two levels: choose one (see '%s --help')", c.CommandPath())}
			}
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			// The running daemon makes it (it knows its real address, port 0
			// resolved) and holds the invitation before anyone can read the
			// link: `invite | head -1` may end us at the first line.
			cl, err := runningDaemon(home)
			if err != nil {
				return err
			}
			var link, code, shareName string
			var expires time.Time
			if cl != nil {
				in, err := cl.Invite(c.Context(), daemon.InviteRequest{Share: clean(args[0]), ReadOnly: opts.ReadOnly,
					Encrypted: opts.Encrypted, Expires: opts.Expires.String(), SingleUse: opts.SingleUse})
				if err != nil {
					return err
				}
				link, code, shareName, expires = in.Link, in.Code, in.ShareName, in.Expires
			} else {
				// The link then names the configured listen address; a daemon
				// started with another --listen (or port 0) is not there.
				fmt.Fprintln(c.ErrOrStderr(), "(no daemon is running here: the link names the addresses of config.toml's [device] listen;\n"+
					" if `blueshift run` will use another --listen, start it first and invite again)")
				l, cd, err := daemon.Invite(home, clean(args[0]), opts)
				if err != nil {
					return err
				}
				link, code, shareName, expires = l.String(), cd, l.ShareName, l.Expires
			}
			fmt.Fprintln(c.OutOrStdout(), link)
			fmt.Fprintln(c.OutOrStdout(), code)
			access := "read-write"
			if opts.ReadOnly {
				access = "read-only"
			}
			if opts.Encrypted {
				access = "encrypted (store and serve, never read)"
			}
			use := "any number of devices"
			if opts.SingleUse {
				use = "one device"
			}
			fmt.Fprintf(c.ErrOrStderr(), "%s access to %q for %s, until %s. On the other device: blueshift join LINK PATH\n"+
				"or, on the same network while this daemon runs: blueshift join %s PATH\n",
				access, shareName, use, expires.Local().Format(time.DateTime), code)
			return nil
		},
	}
	c.Flags().BoolVar(&opts.ReadOnly, "read-only", false, "the joiner may read but not change the share")
	c.Flags().BoolVar(&opts.Encrypted, "encrypted", false, "the joiner stores and serves the share sealed, never reading names or contents")
	c.Flags().DurationVar(&opts.Expires, "expires", daemon.DefaultInviteExpiry, "how long the link works")
	c.Flags().BoolVar(&opts.SingleUse, "single-use", false, "the link pairs one device only")
	return c
}

func newJoinCmd(g *globals) *cobra.Command {
	var addrs []string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "join LINK|CODE PATH | join PAIRLINK|CODE [DIR]",
		Short: "Join a share from an invite link or code into the folder PATH",
		Long: "Join the share an invite link carries into PATH (created when missing). Files already\n" +
			"in PATH are merged with the share's, never clobbered: a file both sides have in\n" +
			"different versions becomes a conflict copy. Given a short code instead of a link, it\n" +
			"looks for the inviting device on the LAN (or at --addr) and joins through its invitation.\n" +
			"With the daemon running, join waits (--wait) for the inviter's answer: it fails (exit 1)\n" +
			"with the inviter's reason if the invitation is refused, and takes the share back out.\n" +
			"A pair link (from `blueshift pair`, or its code) makes this device follow every share of the\n" +
			"device that made it, each in DIR/<share name> (DIR: your home folder by default).",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) == 1 && !daemon.IsCode(args[0]) && !daemon.IsPairLink(args[0]) {
				return exactArgs(2)(c, args) // a share's link needs its PATH
			}
			if err := cobra.RangeArgs(1, 2)(c, args); err != nil {
				return usageError{fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			path := "" // a pair link's DIR defaults to the user's home
			if len(args) == 2 {
				if path, err = filepath.Abs(args[1]); err != nil {
					return err
				}
			}
			cl, err := runningDaemon(home)
			if err != nil {
				return err
			}
			if cl != nil {
				// The running daemon joins, and presents the join at once.
				req := daemon.JoinRequest{Path: path, Addresses: addrs}
				if daemon.IsCode(args[0]) {
					req.Code = args[0]
				} else {
					req.Link = args[0]
				}
				res, err := cl.Join(c.Context(), req)
				if err != nil {
					return err
				}
				return awaitJoin(c, cl, res, wait)
			}
			var res daemon.JoinResult
			if daemon.IsCode(args[0]) {
				res, err = daemon.JoinByCode(c.Context(), home, args[0], path, daemon.CodeJoinOptions{Addresses: addrs})
			} else {
				res, err = daemon.Join(home, args[0], path, time.Time{})
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), res.ShareID)
			fmt.Fprintf(c.ErrOrStderr(), "joined into %s; the invitation goes to %s when the daemon runs (`blueshift run`);\n"+
				"`blueshift status` then shows whether it was accepted\n", res.Path, res.Inviter)
			return nil
		},
	}
	c.Flags().StringSliceVar(&addrs, "addr", nil, "with a code: where the inviting device listens (HOST:PORT), instead of looking on the LAN")
	c.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the inviter's answer (0: do not wait)")
	return c
}

// awaitJoin waits, at most wait, for the inviter's answer to a join the
// running daemon presents: accepted (the share ID on stdout, exit 0),
// refused (the join taken back, exit 1 with the inviter's reason), or no
// answer yet (exit 0: the daemon keeps trying, status shows the outcome).
func awaitJoin(c *cobra.Command, cl *daemon.Client, res daemon.Joined, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		st, err := cl.Status(c.Context())
		if err != nil {
			return err
		}
		var ss *daemon.ShareStatus
		for i := range st.Shares {
			if st.Shares[i].ID == res.Share {
				ss = &st.Shares[i]
			}
		}
		switch {
		case ss == nil:
			return fmt.Errorf("join: the daemon does not have share %s: was it removed meanwhile?", res.Share)
		case ss.Join == nil:
			fmt.Fprintln(c.OutOrStdout(), res.Share)
			fmt.Fprintf(c.ErrOrStderr(), "joined into %s: %s accepted this device; syncing\n", res.Path, res.Inviter)
			return nil
		case ss.Join.Refused != "":
			if err := cl.CancelJoin(c.Context(), res); err != nil {
				return fmt.Errorf("join: %s refused the invitation: %s; and taking the share back out failed: %w", res.Inviter, ss.Join.Refused, err)
			}
			advice := ""
			if !strings.Contains(ss.Join.Refused, "new link") {
				advice = "; ask its owner for a new link (`blueshift invite`)"
			}
			return fmt.Errorf("join: device %s refused the invitation: %s%s", res.Inviter, ss.Join.Refused, advice)
		case !time.Now().Before(deadline):
			fmt.Fprintln(c.OutOrStdout(), res.Share)
			why := "it is not reachable from here so far"
			if peerConnected(st, res.Inviter) {
				why = "it has not answered yet"
			}
			if ss.Join.LastErr != "" {
				why += " (" + ss.Join.LastErr + ")"
			}
			fmt.Fprintf(c.ErrOrStderr(), "joined into %s, but %s has not accepted the invitation yet: %s.\n"+
				"The daemon keeps trying; `blueshift status` shows when it is accepted or refused.\n", res.Path, res.Inviter, why)
			return nil
		}
		select {
		case <-c.Context().Done():
			return c.Context().Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func peerConnected(st daemon.Status, id string) bool {
	for _, p := range st.Peers {
		if p.ID == id && p.Connected {
			return true
		}
	}
	return false
}
