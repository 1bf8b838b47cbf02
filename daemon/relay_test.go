package daemon

import (
	"context"
	"errors"
	"testing"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// TestRelayingSettings: a device relays by default, capped at 1 MiB/s;
// [device] relay = false or Options.NoRelay (run --relay=false) turn it
// off (no relay server: its listeners are not diverted, and the manager
// offers no relay1, as peer's TestRelayWhenNothingElseReaches shows of a
// device that does not relay); relay_rate or Options.RelayRate (run
// --relay-rate) set the cap.
func TestRelayingSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(*config.Config)
		opts     Options
		on       bool
		wantRate int64
	}{
		{"default", nil, Options{}, true, 1 << 20},
		{"config off", func(c *config.Config) { c.Device.Relay = false }, Options{}, false, 0},
		{"flag off", nil, Options{NoRelay: true}, false, 0},
		{"config rate", func(c *config.Config) { c.Device.RelayRate = 2 << 20 }, Options{}, true, 2 << 20},
		{"flag rate", func(c *config.Config) { c.Device.RelayRate = 2 << 20 }, Options{RelayRate: 3 << 20}, true, 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := newHome(t)
			if tc.edit != nil {
				if err := EditConfig(home, func(c *config.Config) error { tc.edit(c); return nil }); err != nil {
					t.Fatal(err)
				}
			}
			opts := tc.opts
			opts.Home, opts.Listen, opts.NoDiscovery, opts.NoDHT, opts.UI = home, "127.0.0.1:0", true, true, "off"
			d, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			runUntilCleanup(t, d)
			on, rate := d.relaying(d.config())
			if on != tc.on || (d.relay != nil) != tc.on || rate != tc.wantRate {
				t.Fatalf("relaying %v (server %v), rate %d; want %v, %d", on, d.relay != nil, rate, tc.on, tc.wantRate)
			}
			st := d.Status()
			if (st.Relay != nil) != tc.on || (st.Relay != nil && st.Relay.Rate != tc.wantRate) {
				t.Fatalf("status relay %+v; want on %v at %d", st.Relay, tc.on, tc.wantRate)
			}
		})
	}
}

// TestRelayAllowed: the relay serves configured peers that share a share
// with it, and nobody else.
func TestRelayAllowed(t *testing.T) {
	home := newHome(t)
	member, _ := identity.Generate()
	friend, _ := identity.Generate()
	stranger, _ := identity.Generate()
	addShareToConfig(t, home, 0)
	err := EditConfig(home, func(c *config.Config) error {
		for _, id := range []identity.DeviceID{member.ID(), friend.ID()} {
			if err := c.AddPeer(config.Peer{ID: id.String(), Name: id.Abbrev()}); err != nil {
				return err
			}
		}
		c.Shares[0].Peers = []string{member.ID().String()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(Options{Home: home, Listen: "127.0.0.1:0", NoDiscovery: true, NoDHT: true, UI: "off"})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, d)
	if err := d.relayAllowed(member.ID()); err != nil {
		t.Errorf("a member of a share: %v", err)
	}
	if err := d.relayAllowed(friend.ID()); !errors.Is(err, errNoSharedShare) {
		t.Errorf("a peer sharing no share: %v, want errNoSharedShare", err)
	}
	if err := d.relayAllowed(stranger.ID()); !errors.Is(err, errNotPaired) {
		t.Errorf("a stranger: %v, want errNotPaired", err)
	}
}

// runUntilCleanup runs d until the test ends.
func runUntilCleanup(t *testing.T, d *Daemon) {
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("run: %v", err)
		}
	})
}
