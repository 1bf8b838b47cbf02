package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/daemon/ui"
)

// newUI makes the web UI `blueshift run` serves.
func newUI(d *daemon.Daemon) (daemon.WebUI, error) {
	return ui.New(ui.Options{Daemon: d})
}

func newUICmd(g *globals) *cobra.Command {
	var printURL, asJSON bool
	c := &cobra.Command{
		Use:   "ui",
		Short: "Open the web UI of the running daemon in the browser",
		Long: "Open the web UI the daemon serves on loopback (`blueshift run --ui`) in the browser,\n" +
			"signed in through a one-time link. --print-url prints the link instead (each link works\n" +
			"once, for 10 minutes; run it again for another).",
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			home, err := g.homeOf()
			if err != nil {
				return err
			}
			cl, err := daemon.NewClient(home)
			if err != nil {
				return fmt.Errorf("ui: %w: start it with `blueshift run`", err)
			}
			u, err := cl.UILogin(c.Context())
			if err != nil {
				return fmt.Errorf("ui: %w", err)
			}
			switch {
			case asJSON:
				return json.NewEncoder(c.OutOrStdout()).Encode(daemon.UILogin{URL: u})
			case printURL:
				fmt.Fprintln(c.OutOrStdout(), u)
				return nil
			}
			if err := openBrowser(u); err != nil {
				fmt.Fprintf(c.ErrOrStderr(), "could not start a browser (%v): open this link (it works once):\n", err)
				fmt.Fprintln(c.OutOrStdout(), u)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&printURL, "print-url", false, "print the one-time link instead of opening a browser")
	c.Flags().BoolVar(&asJSON, "json", false, `print {"url": LINK} instead of opening a browser`)
	return c
}
