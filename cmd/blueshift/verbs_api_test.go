package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// localVerbs need no daemon: they work on the home's files or on their
// arguments alone (docs/api.md says so).
var localVerbs = map[string]bool{
	"init":           true, // makes the home
	"id":             true, // reads device.key
	"run":            true, // is the daemon
	"inspect chunks": true, // a file's chunks, no share involved
	"inspect root":   true, // a folder's Merkle root, no share involved
}

// TestEveryVerbHasAnEndpoint walks the command tree: every verb but the
// local ones must name the endpoint it calls in docs/api.md's table (whose
// rows TestAPIDocumented holds to the daemon's mux), so no verb reaches
// into a running daemon's files behind its back.
func TestEveryVerbHasAnEndpoint(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(?:GET|POST|PUT|DELETE) /v1/[^`]*` \\|[^|]*\\|(.*)\\|$")
	var cli []string
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		cli = append(cli, m[1])
	}
	if len(cli) < 20 {
		t.Fatalf("docs/api.md's table has %d rows with a CLI column; has its format changed?", len(cli))
	}
	named := func(verb string) bool {
		for _, c := range cli {
			for _, end := range []string{"`", " "} {
				if strings.Contains(c, "`"+verb+end) {
					return true
				}
			}
		}
		return false
	}
	var verbs []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() {
			verbs = append(verbs, strings.TrimPrefix(c.CommandPath(), "blueshift "))
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRootCmd())
	if len(verbs) < 30 {
		t.Fatalf("found %d verbs: %q", len(verbs), verbs)
	}
	for _, v := range verbs {
		if localVerbs[v] {
			if named(v) {
				t.Errorf("verb %q is listed as local but docs/api.md names an endpoint for it", v)
			}
			continue
		}
		if !named(v) {
			t.Errorf("verb %q names no endpoint in docs/api.md's table: give it one (daemon/api_*.go), or list it in localVerbs if it needs no daemon", v)
		}
	}
	t.Logf("%d verbs: %q", len(verbs), verbs)
}
