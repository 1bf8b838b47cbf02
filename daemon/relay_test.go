package daemon

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/relay"
	"github.com/blueshift-sync/blueshift/peer/transport"
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

// TestRelayAllowed: the relay serves the devices the membership log of a
// share it is a member of names as current members, and nobody else (a
// [[peer]] sharing no share, a stranger); a member it removes is refused a
// circuit from the moment the removal is in the log, at either end.
func TestRelayAllowed(t *testing.T) {
	home := newHome(t)
	member, _ := identity.Generate()
	other, _ := identity.Generate()
	friend, _ := identity.Generate()
	stranger, _ := identity.Generate()
	addShareToConfig(t, home, 0)
	err := EditConfig(home, func(c *config.Config) error {
		for _, id := range []identity.DeviceID{member.ID(), other.ID(), friend.ID()} {
			if err := c.AddPeer(config.Peer{ID: id.String(), Name: id.Abbrev()}); err != nil {
				return err
			}
		}
		c.Shares[0].Peers = []string{member.ID().String(), other.ID().String()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(Options{Home: home, Listen: "127.0.0.1:0", NoDiscovery: true, NoDHT: true, NoQUIC: true, UI: "off"})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, d)
	// The share's log starts at the first apply (a migrated genesis naming
	// the configured peers).
	waitUntil(t, "the share's membership log", func() bool { return d.relayAllowed(member.ID()) == nil })
	if err := d.relayAllowed(other.ID()); err != nil {
		t.Errorf("a member of a share: %v", err)
	}
	if err := d.relayAllowed(friend.ID()); !errors.Is(err, errNoSharedShare) {
		t.Errorf("a peer sharing no share: %v, want errNoSharedShare", err)
	}
	if err := d.relayAllowed(stranger.ID()); !errors.Is(err, errNoSharedShare) {
		t.Errorf("a stranger: %v, want errNoSharedShare", err)
	}

	// A real circuit from the member: let through to the invitation (the
	// other member is not connected, so it ends there).
	mtls := conn.NewTLS(member, testLogger(t))
	mc := relay.NewClient(relay.ClientOptions{TLS: mtls, Transport: &conn.Dialer{TCP: mtls}, Accept: func(identity.DeviceID) error { return nil }})
	defer mc.Close()
	via := []transport.Addr{transport.From(transport.TCP, d.Addr().(*net.TCPAddr).AddrPort())}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = mc.Dial(ctx, d.ID(), via, other.ID())
	if !errors.Is(err, relay.ErrRefused) || strings.Contains(err.Error(), "may not use this relay") {
		t.Fatalf("a member's circuit: %v; want it let in, refused only because the target is away", err)
	}

	if _, err := d.RemoveMember("s0", member.ID().String()); err != nil {
		t.Fatal(err)
	}
	if err := d.relayAllowed(member.ID()); !errors.Is(err, errNoSharedShare) {
		t.Errorf("a removed member: %v, want errNoSharedShare", err)
	}
	// Written back into config.toml by hand: the log still decides.
	err = EditConfig(home, func(c *config.Config) error {
		c.Shares[0].Peers = append(c.Shares[0].Peers, member.ID().String())
		return nil
	})
	if err == nil {
		err = d.Reload()
	}
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := d.config().FindShare("s0"); !slices.Contains(s.Peers, member.ID().String()) {
		t.Fatalf("the removed member is not back in the share's peers: %v", s.Peers)
	}
	if err := d.relayAllowed(member.ID()); !errors.Is(err, errNoSharedShare) {
		t.Errorf("a removed member config.toml names again: %v, want errNoSharedShare", err)
	}
	_, err = mc.Dial(ctx, d.ID(), via, other.ID())
	if !errors.Is(err, relay.ErrRefused) || !strings.Contains(err.Error(), "may not use this relay") {
		t.Fatalf("the removed member's circuit: %v; want it refused as a relay client", err)
	}
	otls := conn.NewTLS(other, testLogger(t))
	oc := relay.NewClient(relay.ClientOptions{TLS: otls, Transport: &conn.Dialer{TCP: otls}, Accept: func(identity.DeviceID) error { return nil }})
	defer oc.Close()
	_, err = oc.Dial(ctx, d.ID(), via, member.ID())
	if !errors.Is(err, relay.ErrRefused) || !strings.Contains(err.Error(), "may not use this relay") {
		t.Fatalf("a circuit to the removed member: %v; want it refused", err)
	}
}

// waitUntil polls cond until it holds, or fails the test after a generous
// deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
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
