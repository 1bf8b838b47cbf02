package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

func newPauseCmd(g *globals, pause bool) *cobra.Command {
	var asJSON bool
	verb, what := "resume", "Sync a paused share again, or the whole device"
	if pause {
		verb, what = "pause", "Stop syncing a share, or the whole device, until resumed"
	}
	c := &cobra.Command{
		Use:   verb + " [SHARE]",
		Short: what,
		Long: what + ".\nWithout SHARE: every share. The state is kept in config.toml ([device] paused,\n" +
			"[[share]] paused), so it survives a restart; resuming the device leaves paused shares paused.",
		Args: maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := clientOf(g, verb)
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 1 {
				ref = clean(args[0])
			}
			res, err := cl.Pause(c.Context(), ref, pause)
			if err != nil {
				return apiErr(verb, err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), res)
			}
			target := "every share"
			if ref != "" {
				target = "share " + ref
			}
			fmt.Fprintf(c.OutOrStdout(), "%sd %s\n", verb, target)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return c
}

func newRateCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "rate [SHARE]",
		Short: "Show or change the bandwidth limits, of the device or of one share, live",
		Long: "Without flags: print the limits. --max-send-rate and --max-recv-rate set them at once\n" +
			"(\"2MiB\", \"500kB\", \"65536\" bytes per second; \"unlimited\" lifts one); a rate of 0 or a\n" +
			"negative one is refused. Limits are kept in config.toml; a share's apply besides the device's.",
		Args: maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			send, err := rateFlag(c, "max-send-rate", true)
			if err != nil {
				return err
			}
			recv, err := rateFlag(c, "max-recv-rate", true)
			if err != nil {
				return err
			}
			cl, err := clientOf(g, "rate")
			if err != nil {
				return err
			}
			var rates daemon.Rates
			if send == "" && recv == "" {
				rates, err = cl.Rates(c.Context())
			} else {
				req := daemon.SetRates{Send: send, Recv: recv}
				if len(args) == 1 {
					req.Share = clean(args[0])
				}
				rates, err = cl.SetRates(c.Context(), req)
			}
			if err != nil {
				return apiErr("rate", err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), rates)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "WHAT\tSEND\tRECEIVE")
			fmt.Fprintf(tw, "device\t%s\t%s\n", config.Rate(rates.Send), config.Rate(rates.Recv))
			for _, s := range rates.Shares {
				fmt.Fprintf(tw, "share %s\t%s\t%s\n", s.Name, config.Rate(s.Send), config.Rate(s.Recv))
			}
			return tw.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	addRateFlags(c)
	return c
}

// maxArgs is cobra.MaximumNArgs that reports a usage error.
func maxArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.MaximumNArgs(n)(c, args); err != nil {
			return usageError{fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())}
		}
		return nil
	}
}
