package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
)

func newPairCmd(g *globals) *cobra.Command {
	var opts daemon.InviteOptions
	var asJSON bool
	c := &cobra.Command{
		Use:   "pair",
		Short: "Print a pair link and a short code that make another device of yours follow every share",
		Long: "Print a pair link (first line of stdout) and a short code (second line) for another device\n" +
			"of yours: `blueshift join PAIRLINK [DIR]` (or `blueshift join CODE [DIR]` on the same network)\n" +
			"there makes it a member of this device's keyring, a private share of your devices whose\n" +
			"sealed records are the keys of your shares. It then follows every share you have, at the\n" +
			"access you have, each in DIR/<share name> (DIR: its user's home folder by default), and\n" +
			"the shares added later on any of your devices. The first pair makes the keyring.\n" +
			"`blueshift pair remove DEVICE` takes a device out of the keyring and out of every share.",
		Args: noArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if opts.Expires <= 0 {
				return usageError{fmt.Errorf("pair: --expires %s: give a positive duration like 24h or 30m (see '%s --help')", opts.Expires, c.CommandPath())}
			}
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			var res daemon.PairResult
			cl, err := runningDaemon(home)
			switch {
			case err != nil:
				return err
			case cl != nil:
				// The daemon holds the invitation (and writes the records)
				// before anyone can read the link.
				res, err = cl.Pair(c.Context(), daemon.PairRequest{Expires: opts.Expires.String(), SingleUse: opts.SingleUse})
			default:
				fmt.Fprintln(c.ErrOrStderr(), "(no daemon is running here: the link names the addresses of config.toml's [device] listen;\n"+
					" if `blueshift run` will use another --listen, start it first and pair again)")
				res, err = daemon.Pair(home, opts)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), res)
			}
			fmt.Fprintln(c.OutOrStdout(), res.Link)
			fmt.Fprintln(c.OutOrStdout(), res.Code)
			fmt.Fprintf(c.ErrOrStderr(), "pairs a device of yours until %s. On it: blueshift join PAIRLINK [DIR]\n"+
				"or, on the same network while this daemon runs: blueshift join %s [DIR]\n",
				res.Expires.Local().Format(time.DateTime), res.Code)
			return nil
		},
	}
	c.Flags().DurationVar(&opts.Expires, "expires", time.Hour, "how long the pair link works")
	c.Flags().BoolVar(&opts.SingleUse, "single-use", true, "the link pairs one device only")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts: {link, code, keyring, expires}")

	var removeJSON bool
	remove := &cobra.Command{
		Use:   "remove DEVICE",
		Short: "Take a device (ID or peer name) out of the keyring and out of every share",
		Long: "Take a device (device ID or peer name) out of this person's keyring, and out of every\n" +
			"share this device holds that it is a member of: a Remove in each share's membership log,\n" +
			"which starts a new key epoch sealed to the remaining members. It keeps what it already had.\n" +
			"(`blueshift member remove keyring DEVICE` does the same.)",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := memberClient(g)
			if err != nil {
				return err
			}
			r, err := cl.RemoveFromKeyring(c.Context(), clean(args[0]))
			if err != nil {
				return err
			}
			if removeJSON {
				return printJSON(c.OutOrStdout(), r)
			}
			if !r.Keyring.Applied {
				fmt.Fprintf(c.OutOrStdout(), "the removal waits for the keyring owners' approval (change %s, %d of %d)\n", r.Keyring.Change, r.Keyring.Have, r.Keyring.Need)
				return nil
			}
			fmt.Fprintf(c.OutOrStdout(), "removed %s from the keyring\n", r.Device)
			for _, s := range r.Shares {
				fmt.Fprintf(c.OutOrStdout(), "  %s (%s): %s\n", s.Name, s.Share, s.Result)
			}
			return nil
		},
	}
	remove.Flags().BoolVar(&removeJSON, "json", false, "print JSON for scripts")
	c.AddCommand(remove)
	return c
}

// noArgs is cobra.NoArgs that reports a usage error.
func noArgs(c *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s: unexpected argument %q (see '%s --help')", c.CommandPath(), args[0], c.CommandPath())}
	}
	return nil
}
