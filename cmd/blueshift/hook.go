package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

func newHookCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "hook",
		Short: "Run commands on events: files applied, deleted or in conflict, a share in sync, a member joined",
		Long: "Run commands on events. A hook gets the event as one JSON object on stdin and as\n" +
			"BLUESHIFT_EVENT, BLUESHIFT_SHARE, BLUESHIFT_PATH, ... in its environment. It never holds\n" +
			"sync up: it is killed after its timeout, and events beyond its queue are dropped and\n" +
			"counted (`status` shows each hook's runs, failures and drops). Events: " + strings.Join(config.HookEvents, ", ") + ", or *.",
	}
	var timeout time.Duration
	add := &cobra.Command{
		Use:   "add SHARE EVENT COMMAND [ARG...]",
		Short: "Run COMMAND on EVENT in SHARE (a name, an ID, or * for every share)",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 3 {
				return usageError{fmt.Errorf("%s: want SHARE EVENT COMMAND [ARG...] (see '%s --help')", c.CommandPath(), c.CommandPath())}
			}
			if args[1] != "*" && !slices.Contains(config.HookEvents, args[1]) {
				return usageError{fmt.Errorf("%s: event %q is not one of %s or *", c.CommandPath(), args[1], strings.Join(config.HookEvents, ", "))}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			if timeout < 0 {
				return usageError{fmt.Errorf("hook add: --timeout %s is negative", timeout)}
			}
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			req := daemon.AddHookRequest{Share: clean(args[0]), Event: args[1], Command: args[2:]}
			if timeout > 0 {
				req.Timeout = timeout.String()
			}
			return viaDaemon(c, home, func(cl *daemon.Client) error {
				_, err := cl.AddHook(c.Context(), req)
				return err
			}, func() error {
				_, err := daemon.AddHook(home, req)
				return err
			})
		},
	}
	add.Flags().DurationVar(&timeout, "timeout", 0, "kill a run after this long (default 30s); give it before SHARE")
	// Everything after SHARE is the command's, its flags included.
	add.Flags().SetInterspersed(false)
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List the hooks, numbered for `hook remove`",
		Args:  exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			hooks, err := listVia(c, home, (*daemon.Client).Hooks, daemon.Hooks)
			if err != nil {
				return err
			}
			if asJSON {
				if hooks == nil {
					hooks = []daemon.HookEntry{}
				}
				return json.NewEncoder(c.OutOrStdout()).Encode(hooks)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, h := range hooks {
				share := h.Share
				if h.ShareName != "" {
					share = h.ShareName
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", h.N, share, h.Event, strings.Join(h.Command, " "), h.Timeout)
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	remove := &cobra.Command{
		Use:   "remove N",
		Short: "Remove hook N (as `hook list` numbers them)",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 {
				return usageError{fmt.Errorf("hook remove: %q is not a hook number (see `blueshift hook list`)", args[0])}
			}
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			return viaDaemon(c, home, func(cl *daemon.Client) error {
				_, err := cl.RemoveHook(c.Context(), n)
				return err
			}, func() error {
				_, err := daemon.RemoveHook(home, n)
				return err
			})
		},
	}
	c.AddCommand(add, list, remove)
	return c
}
