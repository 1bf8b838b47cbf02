package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
)

// The membership verbs talk to the running daemon: the log lives in its
// database and is relayed by it.

func newMemberCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "member",
		Short: "List, remove and approve a share's members (its signed membership log)",
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list SHARE",
		Short: "Every member of a share: its level (rw, ro, enc), who added it and when, online or not",
		Long: "Every member of a share as its signed membership log says: its level (rw, ro, enc), whether\n" +
			"it is an owner, who added it and when, online or not, and removed members. Also the changes\n" +
			"waiting for owners' approval (approve one with `blueshift member approve SHARE CHANGE`) and\n" +
			"the membership changes and records refused lately.",
		Args: exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := memberClient(g)
			if err != nil {
				return err
			}
			l, err := cl.Members(c.Context(), clean(args[0]))
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), l)
			}
			printMembers(c.OutOrStdout(), l)
			return nil
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	var removeJSON bool
	remove := &cobra.Command{
		Use:   "remove SHARE DEVICE",
		Short: "Remove a member (device ID or peer name): every member refuses it from then on",
		Long: "Remove a member (device ID or peer name). Every member refuses it from then on, it gets\n" +
			"nothing written after the removal, a new key epoch starts (its key sealed to the remaining\n" +
			"members), and the invitation it joined with stops working. It keeps what it already had.\n" +
			"Removing a writer when the share has several owners (threshold 2 or more), or an owner,\n" +
			"needs the other owners' approval.",
		Args: exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := memberClient(g)
			if err != nil {
				return err
			}
			r, err := cl.RemoveMember(c.Context(), clean(args[0]), clean(args[1]))
			if err != nil {
				return err
			}
			return printChange(c, r, removeJSON, "removed")
		},
	}
	remove.Flags().BoolVar(&removeJSON, "json", false, "print JSON for scripts")
	var approveJSON bool
	approve := &cobra.Command{
		Use:   "approve SHARE CHANGE",
		Short: "Sign a change waiting for owners' approval (its ID from `member list`)",
		Args:  exactArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := memberClient(g)
			if err != nil {
				return err
			}
			r, err := cl.ApproveChange(c.Context(), clean(args[0]), clean(args[1]))
			if err != nil {
				return err
			}
			return printChange(c, r, approveJSON, "approved; it took effect")
		},
	}
	approve.Flags().BoolVar(&approveJSON, "json", false, "print JSON for scripts")
	c.AddCommand(list, remove, approve)
	return c
}

// newShareOwnersCmd is `blueshift share owners`.
func newShareOwnersCmd(g *globals) *cobra.Command {
	var add []string
	var threshold int
	var asJSON bool
	c := &cobra.Command{
		Use:   "owners SHARE [--add DEVICE]... [--threshold K]",
		Short: "Add owners of a share and set how many of them (k of n) must sign a change to who may write",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(add) == 0 && threshold == 0 {
				return usageError{fmt.Errorf("share owners: give --add DEVICE or --threshold K (see '%s --help')", c.CommandPath())}
			}
			if threshold < 0 {
				return usageError{fmt.Errorf("share owners: --threshold %d: give 1 or more", threshold)}
			}
			cl, err := memberClient(g)
			if err != nil {
				return err
			}
			r, err := cl.SetOwners(c.Context(), clean(args[0]), add, threshold)
			if err != nil {
				return err
			}
			return printChange(c, r, asJSON, "owners changed")
		},
	}
	c.Flags().StringSliceVar(&add, "add", nil, "a member to make an owner (device ID or peer name; it must be rw)")
	c.Flags().IntVar(&threshold, "threshold", 0, "owners that must sign a change to who may write or own (default: unchanged)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return c
}

func memberClient(g *globals) (*daemon.Client, error) {
	home, err := g.homeOf()
	if err != nil {
		return nil, err
	}
	cl, err := daemon.NewClient(home)
	if err != nil {
		return nil, fmt.Errorf("%w: start it with `blueshift run`", err)
	}
	return cl, nil
}

func printChange(c *cobra.Command, r daemon.ChangeResult, asJSON bool, done string) error {
	if asJSON {
		return printJSON(c.OutOrStdout(), r)
	}
	if r.Applied {
		fmt.Fprintf(c.OutOrStdout(), "%s (change %s)\n", done, r.Change)
		return nil
	}
	fmt.Fprintf(c.OutOrStdout(), "change %s waits for the owners' approval: %d of %d signatures; "+
		"on another owner's device: blueshift member approve SHARE %s\n", r.Change, r.Have, r.Need, r.Change)
	return nil
}

func printMembers(w io.Writer, l daemon.MemberList) {
	if !l.HasLog {
		fmt.Fprintf(w, "share %q has no membership log yet: it comes from its members once connected\n", l.Name)
		return
	}
	fmt.Fprintf(w, "share %q: %d members, owners' threshold %d, key epoch %d\n", l.Name, len(l.Members), l.Threshold, l.Epoch)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tNAME\tLEVEL\tADDED BY\tADDED\tSTATE")
	for _, m := range l.Members {
		state := "offline"
		switch {
		case m.Removed:
			state = "removed " + m.RemovedAt.Local().Format(time.DateTime)
		case m.Self:
			state = "this device"
		case m.Online:
			state = "online"
		}
		level := m.Level
		if m.Owner {
			level += " owner"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", abbrev(m.Device), m.Name, level, abbrev(m.AddedBy), m.AddedAt.Local().Format(time.DateTime), state)
	}
	tw.Flush()
	for _, p := range l.Pending {
		fmt.Fprintf(w, "pending %s: %s (by %s; %d of %d owners)\n", p.ID, p.Summary, abbrev(p.Author), len(p.Approvals), p.Need)
	}
	for _, r := range l.Refused {
		fmt.Fprintf(w, "refused: %s\n", r)
	}
}

func abbrev(id string) string {
	if len(id) > 15 {
		return id[:15]
	}
	return id
}

// newRevertCmd is `blueshift revert`.
func newRevertCmd(g *globals) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "revert SHARE [PATH...]",
		Short: "Put the share's version back over this device's local edits (a read-only member's)",
		Long: "Put the share's version back over this device's local edits, which a read-only member\n" +
			"cannot share (`status` lists them): changed and deleted files get the share's content\n" +
			"again, files the share does not have are removed; each local copy goes to the share's\n" +
			".blueshift/versions folder first. With PATHs, only those (and what is below them).",
		Args: func(c *cobra.Command, args []string) error {
			if len(args) < 1 {
				return usageError{fmt.Errorf("revert: give the share (see '%s --help')", c.CommandPath())}
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := memberClient(g)
			if err != nil {
				return err
			}
			r, err := cl.Revert(c.Context(), clean(args[0]), args[1:])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), r)
			}
			fmt.Fprintf(c.OutOrStdout(), "%d paths put back to the share's version; local copies are in .blueshift/versions\n", r.Reverted)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON for scripts")
	return c
}
