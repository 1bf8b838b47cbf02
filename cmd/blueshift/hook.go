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
			h := config.Hook{Share: clean(args[0]), Event: args[1], Command: args[2:], Timeout: config.Duration{Duration: timeout}}
			err = daemon.EditConfig(home, func(cfg *config.Config) error {
				if h.Share != "*" {
					s, err := cfg.FindShare(h.Share)
					if err != nil {
						return fmt.Errorf("hook add: %w", err)
					}
					h.Share = s.ID
				}
				cfg.Hooks = append(cfg.Hooks, h)
				return nil
			})
			if err != nil {
				return err
			}
			return reloadDaemon(c, home)
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
			cfg, err := daemon.LoadConfig(home)
			if err != nil {
				return err
			}
			if asJSON {
				type row struct {
					N       int      `json:"n"`
					Share   string   `json:"share"`
					Event   string   `json:"event"`
					Command []string `json:"command"`
					Timeout string   `json:"timeout,omitempty"`
				}
				rows := []row{}
				for i, h := range cfg.Hooks {
					rows = append(rows, row{N: i + 1, Share: h.Share, Event: h.Event, Command: h.Command, Timeout: timeoutText(h.Timeout)})
				}
				return json.NewEncoder(c.OutOrStdout()).Encode(rows)
			}
			tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
			for i, h := range cfg.Hooks {
				share := h.Share
				if s, err := cfg.FindShare(h.Share); err == nil {
					share = s.Name
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, share, h.Event, strings.Join(h.Command, " "), timeoutText(h.Timeout))
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
			err = daemon.EditConfig(home, func(cfg *config.Config) error {
				if n > len(cfg.Hooks) {
					return fmt.Errorf("hook remove: there are %d hooks, no number %d (see `blueshift hook list`)", len(cfg.Hooks), n)
				}
				cfg.Hooks = slices.Delete(cfg.Hooks, n-1, n)
				return nil
			})
			if err != nil {
				return err
			}
			return reloadDaemon(c, home)
		},
	}
	c.AddCommand(add, list, remove)
	return c
}

func timeoutText(d config.Duration) string {
	if d.Duration == 0 {
		return ""
	}
	b, _ := d.MarshalText()
	return string(b)
}
