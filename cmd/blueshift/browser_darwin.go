package main

import "os/exec"

// openBrowser opens u in the default browser.
func openBrowser(u string) error { return exec.Command("open", u).Run() }
