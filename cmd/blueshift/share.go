package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/share"
)

func newShareCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "share",
		Short: "Add, list and remove shared folders",
	}
	var name string
	add := &cobra.Command{
		Use:   "add PATH",
		Short: "Make a folder a share and print its ID",
		Long: "Make a folder a share and print its ID. Refused: a file system's root, this device's\n" +
			"home (--home: it holds device.key and every share's secret), a folder inside the home\n" +
			"and a folder holding it. A share inside another share's folder is synced by itself:\n" +
			"the share around it leaves that folder alone.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			fi, err := os.Stat(path)
			if err != nil {
				return fmt.Errorf("share add: %w: create the folder first", err)
			}
			if !fi.IsDir() {
				return fmt.Errorf("share add: %s is not a folder", path)
			}
			if err := daemon.CheckSharePath(home, path); err != nil {
				return fmt.Errorf("share add: %w", err)
			}
			// Removed here before: a nested share boundary again.
			if err := index.UnmarkRemoved(path); err != nil {
				return fmt.Errorf("share add: %w", err)
			}
			secret, err := share.NewSecret()
			if err != nil {
				return err
			}
			key := share.FromSecret(secret)
			s := config.NewShare(key.ID().String(), path, key.String())
			if name != "" {
				s.Name = name
			}
			if err := daemon.EditConfig(home, func(cfg *config.Config) error { return cfg.AddShare(s) }); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), s.ID)
			return reloadDaemon(c, home)
		},
	}
	add.Flags().StringVar(&name, "name", "", "a local label (default: the folder's name)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the shares: ID, name, access, path",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			cfg, err := daemon.LoadConfig(home)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, s := range cfg.Shares {
				access := "?"
				if k, err := share.ParseKey(s.Key); err == nil {
					access = k.Level().String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Name, access, s.Path)
			}
			return tw.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove SHARE",
		Short: "Stop syncing a share (by ID or name); its files stay where they are",
		Long: "Stop syncing a share (by ID or name); its files and its .blueshift folder (old versions)\n" +
			"stay where they are. If the folder is inside another share, that share syncs it from now\n" +
			"on, with its own members; the command says so.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			var removed config.Share
			var around []config.Share // shares that hold the removed folder
			err = daemon.EditConfig(home, func(cfg *config.Config) error {
				s, err := cfg.RemoveShare(clean(args[0]))
				removed = s
				kept := cfg.Invites[:0]
				for _, in := range cfg.Invites {
					if in.Share != s.ID {
						kept = append(kept, in)
					}
				}
				cfg.Invites = kept
				for _, o := range cfg.Shares {
					if rel, err := filepath.Rel(o.Path, s.Path); err == nil && rel != "." && filepath.IsLocal(rel) {
						around = append(around, o)
					}
				}
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "share %q is no longer synced; its files stay in %s\n", removed.Name, removed.Path)
			// Its .blueshift folder stays (the versions in it are the user's
			// files) but no longer marks a nested share: a share around the
			// folder syncs it from now on, like any folder of its own.
			if err := index.MarkRemoved(removed.Path); err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %v; a share around %s keeps skipping it until %s is deleted\n",
					err, removed.Path, filepath.Join(removed.Path, ".blueshift"))
			}
			for _, o := range around {
				fmt.Fprintf(c.ErrOrStderr(), "note: %s is inside share %q (%s), which syncs it from now on: "+
					"its files go to that share's members too (list it in that share's .blueshiftignore if they should not see them)\n",
					removed.Path, o.Name, o.Path)
			}
			return reloadDaemon(c, home)
		},
	}
	c.AddCommand(add, list, remove, newShareOwnersCmd(g))
	return c
}
