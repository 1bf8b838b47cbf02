package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
)

func newEventsCmd(g *globals) *cobra.Command {
	var asJSON, withStatus bool
	c := &cobra.Command{
		Use:   "events",
		Short: "Print what happens, as it happens, until interrupted",
		Long: "One line per event: file_applied, file_deleted, conflict (path, peer, bytes),\n" +
			"share_in_sync, member_joined; dropped if this reader fell behind. --json prints each\n" +
			"as one JSON object (newline-delimited) for hooks and scripts; --status adds a status\n" +
			"snapshot whenever it changes. docs/api.md describes the fields.",
		Args: exactArgs(0),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := clientOf(g, "events")
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt)
			defer stop()
			types := []string{daemon.EventFileApplied, daemon.EventFileDeleted, daemon.EventConflict,
				daemon.EventShareInSync, daemon.EventMemberJoined, daemon.EventDropped}
			if withStatus {
				types = append(types, daemon.EventStatus)
			}
			out := c.OutOrStdout()
			enc := json.NewEncoder(out)
			err = cl.Events(ctx, func(ev daemon.Event) error {
				if asJSON {
					return enc.Encode(ev)
				}
				_, err := fmt.Fprintln(out, eventText(ev))
				return err
			}, types...)
			return err
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print newline-delimited JSON for scripts")
	c.Flags().BoolVar(&withStatus, "status", false, "also print status snapshots")
	return c
}

func eventText(ev daemon.Event) string {
	at := ev.Time.Local().Format(time.TimeOnly)
	peer := ev.PeerName
	if peer == "" {
		peer = identityAbbrev(ev.Peer)
	}
	switch ev.Type {
	case daemon.EventFileApplied:
		return fmt.Sprintf("%s %s: %s from %s (%s)", at, ev.ShareName, ev.Path, peer, size(ev.Bytes))
	case daemon.EventFileDeleted:
		return fmt.Sprintf("%s %s: %s deleted by %s", at, ev.ShareName, ev.Path, peer)
	case daemon.EventConflict:
		return fmt.Sprintf("%s %s: conflict on %s with %s: the other version is %s", at, ev.ShareName, ev.Path, peer, ev.Copy)
	case daemon.EventShareInSync:
		return fmt.Sprintf("%s %s: in sync", at, ev.ShareName)
	case daemon.EventMemberJoined:
		return fmt.Sprintf("%s %s: %s joined", at, ev.ShareName, peer)
	case daemon.EventDropped:
		return fmt.Sprintf("%s %d events missed (this reader was too slow)", at, ev.Dropped)
	case daemon.EventStatus:
		b, _ := json.Marshal(ev.Status)
		return fmt.Sprintf("%s status %s", at, b)
	}
	return fmt.Sprintf("%s %s", at, ev.Type)
}
