package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

func newConflictsCmd(g *globals) *cobra.Command {
	c := group(&cobra.Command{
		Use:   "conflicts",
		Short: "List, show and resolve conflict copies",
		Long: "A conflict copy (NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICE.EXT) holds the version that\n" +
			"lost when two devices changed a file at once; DEVICE is the name of the device that made it.",
	})
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [SHARE]",
		Short: "List every conflict copy, with both versions' devices, times and sizes",
		Args:  maxArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := clientOf(g, "conflicts list")
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 1 {
				ref = clean(args[0])
			}
			cs, err := cl.Conflicts(c.Context(), ref)
			if err != nil {
				return apiErr("conflicts list", err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), cs)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SHARE\tPATH\tKEPT (DEVICE, TIME, SIZE)\tCONFLICT COPY (DEVICE, TIME, SIZE)")
			for _, x := range cs.Conflicts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.ShareName, x.Path, side(x.Original), side(x.Conflict))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show PATH",
		Short: "Show one conflict: both versions, their devices (names and IDs), times and sizes",
		Long:  "PATH is the file or its conflict copy, as a path on this machine (relative to the current folder or absolute).",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ref, rel, err := pathInShare(c.Context(), g, "conflicts show", args[0])
			if err != nil {
				return err
			}
			cl, err := clientOf(g, "conflicts show")
			if err != nil {
				return err
			}
			cs, err := cl.Conflicts(c.Context(), ref)
			if err != nil {
				return apiErr("conflicts show", err)
			}
			var found []daemon.Conflict
			for _, x := range cs.Conflicts {
				if x.Path == rel || x.Copy == rel {
					found = append(found, x)
				}
			}
			if len(found) == 0 {
				return fmt.Errorf("conflicts show: %s has no conflict copy (`blueshift conflicts list` shows them)", args[0])
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), daemon.Conflicts{Conflicts: found})
			}
			for _, x := range found {
				showConflict(c.OutOrStdout(), x)
			}
			return nil
		},
	}
	var keep string
	resolve := &cobra.Command{
		Use:   "resolve PATH --keep mine|theirs|both",
		Short: "End a conflict: keep this device's version, the other device's, or both",
		Long: "PATH is the file or its conflict copy, as a path on this machine. --keep mine keeps the\n" +
			"version this device made, theirs the other device's, both keeps the two (the copy renamed\n" +
			"NAME (DEVICE).EXT). Whatever is replaced or removed goes to the versions folder first.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			switch keep {
			case "mine", "theirs", "both":
			default:
				return usageError{fmt.Errorf("conflicts resolve: --keep %q: say mine, theirs or both", keep)}
			}
			ref, rel, err := pathInShare(c.Context(), g, "conflicts resolve", args[0])
			if err != nil {
				return err
			}
			cl, err := clientOf(g, "conflicts resolve")
			if err != nil {
				return err
			}
			x, err := cl.Resolve(c.Context(), ref, daemon.Resolve{Path: rel, Keep: keep})
			if err != nil {
				return apiErr("conflicts resolve", err)
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), x)
			}
			fmt.Fprintf(c.OutOrStdout(), "resolved %s: kept %s\n", x.Path, keep)
			return nil
		},
	}
	resolve.Flags().StringVar(&keep, "keep", "", "mine, theirs or both (required)")
	for _, sub := range []*cobra.Command{list, show, resolve} {
		sub.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
		c.AddCommand(sub)
	}
	return c
}

func side(v daemon.SideVersion) string {
	if !v.Exists {
		return "gone"
	}
	who := v.Device
	if v.Mine {
		who += " (this device)"
	}
	return fmt.Sprintf("%s, %s, %s", who, v.Time.Local().Format(time.DateTime), size(v.Size))
}

func showConflict(w io.Writer, x daemon.Conflict) {
	fmt.Fprintf(w, "share %s: %s\n", x.ShareName, x.Path)
	for _, s := range []struct {
		what, path string
		v          daemon.SideVersion
	}{{"kept at the path", x.Path, x.Original}, {"conflict copy", x.Copy, x.Conflict}} {
		id := s.v.DeviceID
		if id == "" {
			id = "unknown"
		}
		fmt.Fprintf(w, "  %s: %s\n    device %s (%s)\n    %s, %s\n", s.what, s.path, s.v.Device, id,
			s.v.Time.Local().Format(time.DateTime), size(s.v.Size))
	}
}

// pathInShare finds the share holding the path p names on this machine
// and p's path inside it; a path in no share is a usage error.
func pathInShare(ctx context.Context, g *globals, verb, p string) (share, rel string, err error) {
	home, err := g.homeOf()
	if err != nil {
		return "", "", err
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", "", usageError{fmt.Errorf("%s: %q: %w", verb, p, err)}
	}
	// The running daemon's shares (GET /v1/shares), else config.toml's.
	cfg := &config.Config{}
	if cl, err := runningDaemon(home); err != nil {
		return "", "", err
	} else if cl != nil {
		shares, err := cl.Shares(ctx)
		if err != nil {
			return "", "", err
		}
		for _, sh := range shares {
			cfg.Shares = append(cfg.Shares, config.Share{ID: sh.ID, Name: sh.Name, Path: sh.Path})
		}
	} else if cfg, err = daemon.LoadConfig(home); err != nil {
		return "", "", err
	}
	s, err := cfg.ShareAt(abs)
	if err != nil {
		return "", "", usageError{fmt.Errorf("%s: %s is in no share (`blueshift share list` shows them): %w", verb, abs, config.ErrNotFound)}
	}
	r, err := filepath.Rel(s.Path, abs)
	if err != nil || r == "." || !filepath.IsLocal(r) {
		return "", "", usageError{fmt.Errorf("%s: %s is not a file inside share %s", verb, abs, s.Name)}
	}
	return s.ID, filepath.ToSlash(r), nil
}

// group makes c a command of sub-verbs: run without one, or with an
// unknown one, it is a usage error.
func group(c *cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageError{fmt.Errorf("%s: say which (see '%s --help')", c.CommandPath(), c.CommandPath())}
		}
		return usageError{fmt.Errorf("%s: unknown verb %q (see '%s --help')", c.CommandPath(), strings.Join(args, " "), c.CommandPath())}
	}
	return c
}
