package main

import (
	"fmt"

	"github.com/blueshift-sync/blueshift/daemon"
)

// reachedText is how a connected peer is reached, in a few words:
// "quic punched via ABCD123 12ms", "tcp lan 0.3ms"; "-" when not connected.
func reachedText(p daemon.PeerStatus) string {
	if !p.Connected || p.Transport == "" {
		return "-"
	}
	s := p.Transport + " " + p.Reach
	switch {
	case p.ViaName != "":
		s += " via " + p.ViaName
	case p.Via != "":
		s += " via " + identityAbbrev(p.Via)
	}
	if p.RTTMillis > 0 {
		s += fmt.Sprintf(" %.3gms", p.RTTMillis)
	}
	return s
}
