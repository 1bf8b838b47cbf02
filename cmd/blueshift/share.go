package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
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
			req := daemon.AddShareRequest{Path: path, Name: name}
			cl, err := runningDaemon(home)
			if err != nil {
				return err
			}
			var e daemon.ShareEntry
			if cl != nil {
				e, err = cl.AddShare(c.Context(), req)
			} else {
				e, err = daemon.AddShare(home, req)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), e.ID)
			if cl == nil {
				notRunningNote(c)
			}
			return nil
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
			shares, err := listVia(c, home, (*daemon.Client).Shares, daemon.Shares)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, s := range shares {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Name, s.Access, s.Path)
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
			cl, err := runningDaemon(home)
			if err != nil {
				return err
			}
			var removed daemon.RemovedShare
			if cl != nil {
				removed, err = cl.RemoveShare(c.Context(), clean(args[0]))
			} else {
				removed, err = daemon.RemoveShare(home, clean(args[0]))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.ErrOrStderr(), "share %q is no longer synced; its files stay in %s\n", removed.Name, removed.Path)
			if removed.HooksRemoved > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "its %d hooks are removed too\n", removed.HooksRemoved)
			}
			if removed.KeyringRecord {
				fmt.Fprintf(c.ErrOrStderr(), "it left your keyring too: your other devices stop following it (their copies of its files stay)\n")
			}
			if len(removed.KeyringHolders) > 0 {
				fmt.Fprintf(c.ErrOrStderr(), "note: your device(s) %s are members of it too: one that follows it from your keyring leaves it; "+
					"one that joined it on its own keeps syncing it and puts it back in your keyring (this device does not follow it again): remove it there too to drop it everywhere\n",
					strings.Join(removed.KeyringHolders, ", "))
			}
			if removed.Warning != "" {
				fmt.Fprintf(c.ErrOrStderr(), "warning: %s\n", removed.Warning)
			}
			for _, o := range removed.Around {
				fmt.Fprintf(c.ErrOrStderr(), "note: %s is inside share %q (%s), which syncs it from now on: "+
					"its files go to that share's members too (list it in that share's .blueshiftignore if they should not see them)\n",
					removed.Path, o.Name, o.Path)
			}
			if cl == nil {
				notRunningNote(c)
			}
			return nil
		},
	}
	c.AddCommand(add, list, remove, newShareOwnersCmd(g))
	return c
}
