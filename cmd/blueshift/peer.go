package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

func newPeerCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "peer",
		Short: "List, add and remove known devices",
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List known devices: ID, name, addresses",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			peers, err := listVia(c, home, (*daemon.Client).Peers, daemon.Peers)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, p := range peers {
				fmt.Fprintf(tw, "%s\t%s\t%v\n", p.ID, p.Name, p.Addresses)
			}
			return tw.Flush()
		},
	}
	var addrs []string
	var name string
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Add a known device (or more addresses of one)",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			id, err := identity.ParseDeviceID(clean(args[0]))
			if err != nil {
				return usageError{fmt.Errorf("peer add: %w: copy the ID `blueshift id` printed on that device", err)}
			}
			req := daemon.AddPeerRequest{ID: id.String(), Name: name, Addresses: addrs}
			return viaDaemon(c, home, func(cl *daemon.Client) error {
				_, err := cl.AddPeer(c.Context(), req)
				return err
			}, func() error {
				_, err := daemon.AddPeerOffline(home, req)
				return err
			})
		},
	}
	add.Flags().StringSliceVar(&addrs, "addr", nil, "HOST:PORT where the device listens (repeatable)")
	add.Flags().StringVar(&name, "name", "", "a label for the device")
	var removeJSON bool
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Forget a device (by ID or name) and stop syncing with it",
		Long: "Forget a device (by ID or name) and stop syncing with it: one you paired, or one a member\n" +
			"introduced (the running daemon forgets the introduction). A device a share's membership log\n" +
			"names stays a member and may be introduced again: `member remove SHARE DEVICE` takes it out.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			var e daemon.PeerEntry
			err = viaDaemon(c, home, func(cl *daemon.Client) error {
				e, err = cl.RemovePeer(c.Context(), clean(args[0]))
				return err
			}, func() error {
				e, err = daemon.RemovePeerOffline(home, clean(args[0]))
				return err
			})
			if err != nil {
				return err
			}
			return printRemovedPeer(c, e, removeJSON)
		},
	}
	remove.Flags().BoolVar(&removeJSON, "json", false, "print JSON for scripts")
	c.AddCommand(list, add, remove)
	return c
}

// printRemovedPeer says which device `peer remove` removed and, when a
// share's membership log still names it, that it may come back.
func printRemovedPeer(c *cobra.Command, e daemon.PeerEntry, asJSON bool) error {
	if asJSON {
		return printJSON(c.OutOrStdout(), e)
	}
	name := ""
	if e.Name != "" {
		name = " (" + e.Name + ")"
	}
	fmt.Fprintf(c.OutOrStdout(), "removed device %s%s\n", e.ID, name)
	if e.Note != "" {
		fmt.Fprintln(c.OutOrStdout(), e.Note)
	}
	return nil
}
