package daemon

import (
	"context"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/multicast"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// newMulticast opens the LAN multicast group blocks may travel by, on LAN
// discovery's interfaces, or nil when it is off: [device] multicast false,
// Options.NoMulticast, or LAN discovery off (multicast follows it: a
// device that may not announce itself on the LAN sends nothing there
// either). A group that cannot be opened (no multicast interface) is
// logged and left off: unicast serves.
func (d *Daemon) newMulticast(cfg *config.Config) *multicast.Group {
	if !cfg.Device.Multicast || d.opts.NoMulticast || !cfg.Device.Discovery || d.opts.NoDiscovery {
		return nil
	}
	g, err := multicast.Open(context.Background(), multicast.Options{
		Interfaces: discoveryInterfaces(cfg, d.opts.DiscoveryInterfaces),
		Port:       d.opts.MulticastPort,
		Log:        d.log.With("part", "multicast"),
	})
	if err != nil {
		d.log.Warn("LAN multicast off", "err", err)
		return nil
	}
	return g
}

// multicastCapabilities offers multicast in our Hello when it is on.
func (d *Daemon) multicastCapabilities() []string {
	if d.mcast == nil {
		return nil
	}
	return []string{wire.MulticastCapability}
}
