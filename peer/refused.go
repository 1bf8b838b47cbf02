package peer

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
)

// Attempt is a connection the manager refused: a device that is not paired
// tried to connect, or Admit turned it away. Status shows these so a user
// can pair a device that is knocking.
type Attempt struct {
	Device identity.DeviceID
	Addr   netip.AddrPort
	Time   time.Time
	Reason string // why, as the peer was told
}

// refusedLog keeps the last attempt of each of the last n devices refused,
// newest last, so that a device knocking every few seconds takes one line.
// Safe for concurrent use.
type refusedLog struct {
	n  int
	mu struct {
		sync.Mutex
		ring []Attempt // at most n, oldest first
	}
}

// add records a; first reports whether the device was not listed yet.
func (r *refusedLog) add(a Attempt) (first bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first = true
	if i := slices.IndexFunc(r.mu.ring, func(b Attempt) bool { return b.Device == a.Device }); i >= 0 {
		r.mu.ring = slices.Delete(r.mu.ring, i, i+1)
		first = false
	}
	if len(r.mu.ring) == r.n {
		copy(r.mu.ring, r.mu.ring[1:])
		r.mu.ring = r.mu.ring[:r.n-1]
	}
	r.mu.ring = append(r.mu.ring, a)
	return first
}

func (r *refusedLog) list() []Attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Attempt(nil), r.mu.ring...)
}
