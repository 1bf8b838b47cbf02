package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
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
			cfg, err := daemon.LoadConfig(home)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, p := range cfg.Peers {
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
			err = daemon.EditConfig(home, func(cfg *config.Config) error {
				return cfg.AddPeer(config.Peer{ID: id.String(), Name: name, Addresses: addrs})
			})
			if err != nil {
				return err
			}
			return reloadDaemon(c, home)
		},
	}
	add.Flags().StringSliceVar(&addrs, "addr", nil, "HOST:PORT where the device listens (repeatable)")
	add.Flags().StringVar(&name, "name", "", "a label for the device")
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Forget a device (by ID or name) and stop syncing with it",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			err = daemon.EditConfig(home, func(cfg *config.Config) error {
				_, err := cfg.RemovePeer(clean(args[0]))
				return err
			})
			if err != nil {
				return err
			}
			return reloadDaemon(c, home)
		},
	}
	c.AddCommand(list, add, remove)
	return c
}
