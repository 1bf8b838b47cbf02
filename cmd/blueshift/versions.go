package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
)

func newVersionsCmd(g *globals) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "versions",
		Short: "List and restore the old versions a share keeps",
		Long: "Every file a sync replaces or deletes is kept in the share's .blueshift/versions folder first,\n" +
			"as long as [[share]] versions_keep, versions_days and versions_max_mb in config.toml allow.",
	})
	var asJSON bool
	list := &cobra.Command{
		Use:   "list SHARE [PATH]",
		Short: "List the kept versions of a share, or of one path in it, newest first",
		Args:  rangeArgs(1, 2),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := clientOf(g, "versions list")
			if err != nil {
				return err
			}
			p := ""
			if len(args) == 2 {
				p = args[1]
			}
			vs, err := cl.Versions(c.Context(), clean(args[0]), p)
			if err != nil {
				return apiErr("versions list", err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), vs)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PATH\tREPLACED AT\tSIZE\t--at")
			for _, f := range vs.Files {
				for _, v := range f.Versions {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Path, v.Time.Local().Format(time.DateTime), size(v.Size), v.Time.UTC().Format(time.RFC3339))
				}
			}
			return tw.Flush()
		},
	}
	var at string
	restore := &cobra.Command{
		Use:   "restore SHARE PATH [--at TIME]",
		Short: "Put a kept version back (the newest, or the newest kept at or before --at)",
		Long: "PATH is the file's path inside the share. What is there now is kept as a version first,\n" +
			"and the restored file syncs to the other devices like any edit. TIME is RFC 3339\n" +
			"(2026-12-03T10:04:05Z), \"2026-12-03 10:04:05\" (local time) or as in a version's name\n" +
			"(20261203-100405, UTC).",
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			var when time.Time
			if at != "" {
				var err error
				if when, err = parseTime(at); err != nil {
					return usageError{fmt.Errorf("versions restore: --at %q: %w", at, err)}
				}
			}
			cl, err := clientOf(g, "versions restore")
			if err != nil {
				return err
			}
			res, err := cl.Restore(c.Context(), clean(args[0]), daemon.Restore{Path: args[1], At: when})
			if err != nil {
				return apiErr("versions restore", err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), res)
			}
			fmt.Fprintf(c.OutOrStdout(), "restored %s as it was replaced at %s (%s)\n", res.Path,
				res.Version.Time.Local().Format(time.DateTime), size(res.Version.Size))
			return nil
		},
	}
	restore.Flags().StringVar(&at, "at", "", "restore the newest version kept at or before this time")
	for _, sub := range []*cobra.Command{list, restore} {
		sub.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
		c.AddCommand(sub)
	}
	return c
}

// parseTime reads the time forms `versions restore --at` takes.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateTime, s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.Parse("20060102-150405", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("write it like 2026-12-03T10:04:05Z, \"2026-12-03 10:04:05\" or 20261203-100405")
}

// rangeArgs is cobra.RangeArgs that reports a usage error.
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.RangeArgs(lo, hi)(c, args); err != nil {
			return usageError{fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())}
		}
		return nil
	}
}
