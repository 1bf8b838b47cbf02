package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
)

func newLsNeededCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ls-needed SHARE",
		Short: "List the files of a share not in sync yet, and why",
		Long: "Each path this device still needs and why: queued (about to be pulled), waiting for\n" +
			"peer (no connected member has its blocks now), disk full, or an error with its text.\n" +
			"On a read-only member, also its local changes, which are not shared: `blueshift revert\n" +
			"SHARE [PATH...]` puts the share's version back.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := clientOf(g, "ls-needed")
			if err != nil {
				return err
			}
			n, err := cl.Needed(c.Context(), clean(args[0]))
			if err != nil {
				return apiErr("ls-needed", err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), n)
			}
			if err := printNeeded(c.OutOrStdout(), n); err != nil {
				return err
			}
			printLocalChanges(c.OutOrStdout(), clean(args[0]), n.LocalChanges)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return c
}

func printNeeded(w io.Writer, n daemon.Needed) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSIZE\tFROM\tWHY")
	for _, f := range n.Files {
		why := f.Reason
		if f.Error != "" {
			why += ": " + f.Error
		}
		what := size(f.Bytes)
		if f.Deleted {
			what = "deletion"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Path, what, f.PeerName, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n.Total > len(n.Files) {
		fmt.Fprintf(w, "... and %d more\n", n.Total-len(n.Files))
	}
	return nil
}

// printLocalChanges lists a read-only member's local changes, if any.
func printLocalChanges(w io.Writer, share string, lc *daemon.LocalChanges) {
	if lc == nil {
		return
	}
	fmt.Fprintf(w, "\n%d local changes, not shared (`blueshift revert %s [PATH...]` puts the share's version back):\n", lc.Count, share)
	for _, c := range lc.Paths {
		fmt.Fprintf(w, "  %s\t%s\n", c.What, c.Path)
	}
	if lc.Count > len(lc.Paths) {
		fmt.Fprintf(w, "  ... and %d more\n", lc.Count-len(lc.Paths))
	}
}
