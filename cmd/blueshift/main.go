// Command blueshift is the Blueshift daemon and its command line.
//
// It is thin: each verb parses its flags, calls the package that owns the
// work, and prints the result. Exit codes a script can rely on:
//
//	0  success
//	1  the operation failed (the message says why and what to do)
//	2  the command line was wrong (unknown verb, bad flag, missing argument)
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError marks an error in how the command was called.
type usageError struct{ error }

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "blueshift:", err)
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command ") {
		return exitUsage
	}
	return exitFail
}

// globals are the flags every verb takes.
type globals struct {
	home string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "blueshift",
		Short:         "Peer-to-peer folder sync: no server in the middle",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.home, "home", "", "device home folder (default $BLUESHIFT_HOME, else the platform's config folder)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	root.AddCommand(
		newInitCmd(g), newIDCmd(g), newRunCmd(g),
		newShareCmd(g), newInviteCmd(g), newJoinCmd(g),
		newStatusCmd(g), newPeerCmd(g),
		newInspectCmd(g), newUICmd(g),
		newSendCmd(g), newReceiveCmd(g), newHookCmd(g),
		newMemberCmd(g), newRevertCmd(g), newPairCmd(g),
		newLsNeededCmd(g), newConflictsCmd(g), newVersionsCmd(g),
		newPauseCmd(g, true), newPauseCmd(g, false), newRateCmd(g), newEventsCmd(g),
	)
	return root
}

// exactArgs is cobra.ExactArgs that reports a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(c, args); err != nil {
			return usageError{fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())}
		}
		return nil
	}
}
