package daemon

import (
	"encoding/json"
	"strconv"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/daemon/hooks"
)

// publish hands an event to the event stream's subscribers and to the
// hooks that want it; neither blocks (hooks queue, subscribers drop).
func (d *Daemon) publish(ev Event) {
	d.events.publish(ev)
	if ev.Type == EventStatus || ev.Type == EventDropped || !d.hooks.Wants(ev.Type, ev.Share) {
		return // nothing to build: one event per file applied is a hot path
	}
	js, _ := json.Marshal(ev)
	env := map[string]string{"SHARE_NAME": ev.ShareName, "PATH": ev.Path, "PEER": ev.Peer, "PEER_NAME": ev.PeerName}
	if ev.Copy != "" {
		env["COPY"] = ev.Copy
	}
	if ev.Bytes != 0 {
		env["BYTES"] = strconv.FormatInt(ev.Bytes, 10)
	}
	d.hooks.Fire(hooks.Event{Type: ev.Type, Share: ev.Share, JSON: js, Env: env})
}

// hookList is the [[hook]] entries of cfg for the runner: shares named by
// ID ("*" or empty: all).
func hookList(cfg *config.Config) []hooks.Hook {
	var out []hooks.Hook
	for _, h := range cfg.Hooks {
		share := h.Share
		if share == "*" {
			share = ""
		} else if s, err := cfg.FindShare(share); err == nil {
			share = s.ID
		}
		out = append(out, hooks.Hook{Share: share, Event: h.Event, Command: h.Command, Timeout: h.Timeout.Duration})
	}
	return out
}
