package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newInspectCmd groups the verbs that look inside the index without a daemon.
func newInspectCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "inspect",
		Short: "Look inside files and folders the way the index sees them",
	}
	c.AddCommand(&cobra.Command{
		Use:   "chunks FILE",
		Short: "Print one JSON line per chunk of FILE: offset, length, hash",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return errors.New("not implemented yet")
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "root DIR",
		Short: "Scan DIR into a throw-away index and print its Merkle root and record count",
		Args:  exactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return errors.New("not implemented yet")
		},
	})
	return c
}
