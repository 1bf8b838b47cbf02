package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blueshift-sync/blueshift/daemon"
)

// envNoPublicDHT, when set to anything, forbids a daemon this process
// runs to bootstrap its DHT node from the public routers
// (daemon.Options.NoPublicDHT): it fails to start instead, asking for
// --no-dht or --bootstrap. The end-to-end tests set it, so that none of
// their daemons asks the internet whatever its flags; unset, as for users,
// it changes nothing.
const envNoPublicDHT = "BLUESHIFT_NO_PUBLIC_DHT"

// noPublicDHT reports whether the environment forbids the public routers.
func noPublicDHT() bool { return os.Getenv(envNoPublicDHT) != "" }

// addDHTFlags adds the DHT flags of `run`.
func addDHTFlags(c *cobra.Command, noDHT *bool, bootstrap *[]string, listen *string) {
	c.Flags().BoolVar(noDHT, "no-dht", false, "no DHT node: peers are found on the LAN and at their configured addresses only, whatever [dht] enabled says")
	c.Flags().StringArrayVar(bootstrap, "bootstrap", nil, "HOST:PORT of a DHT node to start from (repeatable); replaces [dht] bootstrap and the public routers")
	c.Flags().StringVar(listen, "dht-listen", "", "UDP HOST:PORT of the DHT node (default [dht] listen, else the peer port + 1; port 0 picks a free one)")
}

// checkDHTFlags refuses a --bootstrap or --dht-listen that is not
// host:port, before the daemon starts.
func checkDHTFlags(bootstrap []string, listen string) error {
	for _, b := range bootstrap {
		host, port, err := net.SplitHostPort(b)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || host == "" || perr != nil || n == 0 {
			return fmt.Errorf("run: --bootstrap %q: give a DHT node as HOST:PORT, like 192.0.2.9:6881", b)
		}
	}
	if listen != "" {
		if _, port, err := net.SplitHostPort(listen); err != nil || func() bool { _, e := strconv.ParseUint(port, 10, 16); return e != nil }() {
			return fmt.Errorf("run: --dht-listen %q: give a UDP HOST:PORT, like 127.0.0.1:0", listen)
		}
	}
	return nil
}

// printDHT is the DHT line of `status`.
func printDHT(w io.Writer, d *daemon.DHTStatus) {
	if d == nil {
		fmt.Fprintln(w, "DHT off")
		return
	}
	fmt.Fprintf(w, "DHT node on %s, %d nodes known, publishing %s\n", d.Listen, d.Nodes, strings.Join(d.Published, " "))
}
