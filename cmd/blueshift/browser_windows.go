package main

import "os/exec"

// openBrowser opens u in the default browser.
func openBrowser(u string) error {
	return exec.Command("rundll32", "url.dll,FileProtocolHandler", u).Run()
}
