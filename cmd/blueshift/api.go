package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon"
)

// clientOf connects to the daemon of g's home, or says how to start it.
func clientOf(g *globals, verb string) (*daemon.Client, error) {
	home, err := g.homeOf()
	if err != nil {
		return nil, err
	}
	cl, err := daemon.NewClient(home)
	if errors.Is(err, daemon.ErrNotRunning) {
		return nil, fmt.Errorf("%s: %w: start it with `blueshift run`", verb, err)
	}
	return cl, err
}

// apiErr makes a request the daemon refused as wrong (400) a usage error.
func apiErr(verb string, err error) error {
	var ae *daemon.APIError
	if errors.As(err, &ae) && ae.Code == http.StatusBadRequest {
		return usageError{fmt.Errorf("%s: %w", verb, err)}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", verb, err)
	}
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addRateFlags adds --max-send-rate and --max-recv-rate.
func addRateFlags(c *cobra.Command) {
	c.Flags().String("max-send-rate", "", `limit on bytes sent per second, like "2MiB", "500kB" or "65536" ("unlimited" lifts it where that applies)`)
	c.Flags().String("max-recv-rate", "", "limit on bytes received per second (as --max-send-rate)")
}

// rateFlag reads one rate flag: "" when not given; a rate of 0, a negative
// one or one that does not parse is a usage error.
func rateFlag(c *cobra.Command, name string, allowUnlimited bool) (string, error) {
	v, _ := c.Flags().GetString(name)
	if !c.Flags().Changed(name) {
		return "", nil
	}
	if allowUnlimited && (v == "unlimited" || v == "none") {
		return "unlimited", nil
	}
	if _, err := config.ParseRate(v); err != nil {
		return "", usageError{fmt.Errorf("%s --%s: %w", c.CommandPath(), name, err)}
	}
	return v, nil
}

// runRates are run's rate flags in bytes per second (0: not given).
func runRates(c *cobra.Command) (send, recv int64, err error) {
	for i, name := range []string{"max-send-rate", "max-recv-rate"} {
		v, err := rateFlag(c, name, false)
		if err != nil || v == "" {
			if err != nil {
				return 0, 0, err
			}
			continue
		}
		r, _ := config.ParseRate(v)
		if i == 0 {
			send = int64(r)
		} else {
			recv = int64(r)
		}
	}
	return send, recv, nil
}

// runningDaemon returns a client of home's daemon, or nil when none runs:
// a verb then does its work on home's files itself, which is safe only
// then (a running daemon owns its database and applies what it changes).
func runningDaemon(home string) (*daemon.Client, error) {
	cl, err := daemon.NewClient(home)
	if errors.Is(err, daemon.ErrNotRunning) {
		return nil, nil
	}
	return cl, err
}

// notRunningNote says a change waits for the daemon.
func notRunningNote(c *cobra.Command) {
	fmt.Fprintln(c.ErrOrStderr(), "(the daemon is not running: the change applies when `blueshift run` starts)")
}

// viaDaemon runs api on home's running daemon, or local on home's files
// when none runs (and says the change waits for it).
func viaDaemon(c *cobra.Command, home string, api func(*daemon.Client) error, local func() error) error {
	cl, err := runningDaemon(home)
	if err != nil {
		return err
	}
	if cl != nil {
		return api(cl)
	}
	if err := local(); err != nil {
		return err
	}
	notRunningNote(c)
	return nil
}

// listVia is what a list verb shows: what home's running daemon says
// (api), or, when none runs, what home's configuration holds (local).
func listVia[T any](c *cobra.Command, home string, api func(*daemon.Client, context.Context) (T, error), local func(*config.Config) T) (T, error) {
	var zero T
	cl, err := runningDaemon(home)
	if err != nil {
		return zero, err
	}
	if cl != nil {
		return api(cl, c.Context())
	}
	cfg, err := daemon.LoadConfig(home)
	if err != nil {
		return zero, err
	}
	return local(cfg), nil
}
