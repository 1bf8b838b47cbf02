package daemon

import (
	"errors"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/relay"
)

// Relaying by members (peer/relay). Every device uses relays: its relay
// client dials circuits through a connected peer that relays when nothing
// else reaches a paired device, and answers relays' invitations. A device
// relays for others unless [device] relay = false or `run --relay=false`
// (a metered link), at most [device] relay_rate bytes per second (or
// --relay-rate), and only between devices that the signed membership log
// of a share it is a member of names as current members (relayAllowed).
// Both settings are the user's, in config.toml (or the flags of one run);
// they apply at start.

// errNoSharedShare is why a relay turns a device away.
var errNoSharedShare = errors.New("this device relays only for current members of a share it is a member of (by the share's membership log)")

// newRelayClient makes the relay client: the dialer of the manager dials
// relays; relayed devices are let in as the listeners let them in.
func (d *Daemon) newRelayClient(dialer conn.Transport) *relay.Client {
	return relay.NewClient(relay.ClientOptions{
		TLS:       d.tls,
		Transport: dialer,
		Accept:    d.acceptable,
		Logger:    d.log.With("part", "relay"),
	})
}

// relaying reports whether this device relays for others, and its cap in
// bytes per second (0: none).
func (d *Daemon) relaying(cfg *config.Config) (bool, int64) {
	if !cfg.Device.Relay || d.opts.NoRelay {
		return false, 0
	}
	if d.opts.RelayRate > 0 {
		return true, d.opts.RelayRate
	}
	return true, int64(cfg.Device.RelayRate)
}

// newRelayServer makes the relay server, or nil when this device does not
// relay; its listeners are diverted in listeners.
func (d *Daemon) newRelayServer(cfg *config.Config) *relay.Server {
	on, rate := d.relaying(cfg)
	if !on {
		d.log.Info("relaying for others off")
		return nil
	}
	if rate == 0 {
		rate = -1 // relay.Options: no cap
	}
	d.log.Info("relaying for devices that share a share with this one", "rate", config.Rate(max(rate, 0)).String())
	return relay.NewServer(relay.Options{
		Allowed: d.relayAllowed,
		Invite:  d.peers.RelayInvite,
		Rate:    rate,
		Logger:  d.log.With("part", "relay"),
	})
}

// relayAllowed is the relay's Allowed, decided from signed data only: a
// device that the membership log of a share this device is a current
// member of names as a current member (any level). A member is refused
// from the moment its removal is in the log; config.toml's peers decide
// nothing here.
func (d *Daemon) relayAllowed(id identity.DeviceID) error {
	for _, s := range d.config().Shares {
		if st := d.shareLog(s); currentIn(st, d.self) && currentIn(st, id) {
			return nil
		}
	}
	return errNoSharedShare
}

// relayStatus fills what this device relays for others.
func (d *Daemon) relayStatus(st *Status) {
	if d.relay == nil {
		return
	}
	n, bytes := d.relay.Stats()
	_, rate := d.relaying(d.config())
	st.Relay = &RelayStatus{Circuits: n, Bytes: bytes, Rate: rate}
}
