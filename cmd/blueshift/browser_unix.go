//go:build !windows && !darwin

package main

import "os/exec"

// openBrowser opens u in the desktop's browser (xdg-open returns once it
// has handed the link over).
func openBrowser(u string) error { return exec.Command("xdg-open", u).Run() }
