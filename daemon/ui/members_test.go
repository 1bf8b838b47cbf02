package ui

import (
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// How a member is reached, in the words the share page shows, for each
// way daemon.PeerStatus reports (the browser test sees LAN only: punched
// and relayed paths need NATs and a relay).
func TestReachText(t *testing.T) {
	for _, tc := range []struct {
		reach, via, want string
	}{
		{"", "", ""},
		{"lan", "", "LAN"},
		{"direct", "", "direct"},
		{"punched", "carol", "direct (punched through NAT via carol)"},
		{"relayed", "relay-box", "relayed by relay-box"},
	} {
		r := memberRow{MemberView: daemon.MemberView{Device: "D"}, Reach: tc.reach, Via: tc.via}
		if got := r.ReachText(); got != tc.want {
			t.Errorf("reach %q via %q: %q, want %q", tc.reach, tc.via, got, tc.want)
		}
	}
}
