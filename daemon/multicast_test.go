package daemon

import (
	"context"
	"slices"
	"testing"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestMulticastFollowsDiscovery: LAN multicast is on where discovery is
// (here on loopback, the test's own group port), and each off switch turns
// it off: [device] multicast = false, Options.NoMulticast (run
// --no-multicast), and discovery off. The Hello offers it only when on.
func TestMulticastFollowsDiscovery(t *testing.T) {
	cases := []struct {
		name   string
		opts   Options
		device bool // [device] multicast
		want   bool
	}{
		{"on with discovery", Options{}, true, true},
		{"[device] multicast = false", Options{}, false, false},
		{"run --no-multicast", Options{NoMulticast: true}, true, false},
		{"discovery off", Options{NoDiscovery: true}, true, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			home := newHome(t)
			if err := EditConfig(home, func(cfg *config.Config) error { cfg.Device.Multicast = c.device; return nil }); err != nil {
				t.Fatal(err)
			}
			o := c.opts
			o.Home, o.Listen, o.DiscoveryInterfaces, o.NoDHT, o.UI = home, "127.0.0.1:0", []string{"lo"}, true, "off"
			o.MulticastPort = 21996 + i
			d, err := Open(o)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			defer d.Run(ctx) // closes everything Open made
			if on := d.Status().Multicast.On; on != c.want {
				if c.want && d.mcast == nil {
					t.Skip("no multicast on loopback here")
				}
				t.Fatalf("multicast on = %v, want %v", on, c.want)
			}
			offered := slices.Contains(d.capabilities(identity.DeviceID{1}), wire.MulticastCapability)
			if offered != c.want {
				t.Fatalf("Hello offers multicast: %v, want %v", offered, c.want)
			}
		})
	}
}
