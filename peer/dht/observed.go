package dht

import (
	"crypto/rand"
	"net/netip"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Asking a DHT node where it sees a socket: every KRPC reply carries the
// address the query came from (BEP 42's "ip"), so a ping sent from a
// socket other than the node's (a QUIC socket behind a NAT) tells that
// socket's public mapping, as STUN would.

// PingQuery is a KRPC ping whose transaction ID is tid; send it from the
// socket whose public address is wanted.
func PingQuery(tid string) []byte {
	var id krpc.ID
	rand.Read(id[:])
	b, _ := bencode.Marshal(krpc.Msg{T: tid, Y: "q", Q: "ping", A: &krpc.MsgArgs{ID: id}})
	return b
}

// ObservedIn returns the address a KRPC reply with transaction ID tid
// says its query came from; ok is false for any other packet.
func ObservedIn(b []byte, tid string) (netip.AddrPort, bool) {
	var m krpc.Msg
	if err := bencode.Unmarshal(b, &m); err != nil || m.T != tid || m.Y != "r" {
		return netip.AddrPort{}, false
	}
	u := m.IP.UDP()
	if u == nil {
		return netip.AddrPort{}, false
	}
	ap := u.AddrPort()
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return ap, ap.IsValid() && ap.Port() != 0
}
