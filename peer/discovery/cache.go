package discovery

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
)

// cache maps device IDs to the addresses their announcements gave, and
// remembers, per device and family, the time of the last accepted
// announcement so that a replay is refused. It is safe for concurrent use.
type cache struct {
	ttl        time.Duration // how long an announced address stays
	keepReplay time.Duration // how long replay state outlives the last packet
	max        int           // devices remembered at most

	mu struct {
		sync.Mutex
		devices map[identity.DeviceID]*cacheEntry
	}
}

type cacheEntry struct {
	last  [2]time.Time                 // last accepted announcement time, by family (0: IPv4, 1: IPv6)
	seen  time.Time                    // local time of the last accepted packet, for eviction
	addrs map[netip.AddrPort]time.Time // address -> expiry
}

func newCache(ttl, keepReplay time.Duration, max int) *cache {
	c := &cache{ttl: ttl, keepReplay: keepReplay, max: max}
	c.mu.devices = make(map[identity.DeviceID]*cacheEntry)
	return c
}

// accept records an announcement that has already been verified and found
// fresh. It fails with ErrReplay if the device has already had an
// announcement at this time or later on this family. added reports whether
// an address the cache did not hold (unexpired) came in.
func (c *cache) accept(id identity.DeviceID, fam family, at time.Time, addrs []netip.AddrPort, now time.Time) (added bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.mu.devices[id]
	if e == nil {
		c.makeRoomLocked(now)
		e = &cacheEntry{addrs: make(map[netip.AddrPort]time.Time)}
		c.mu.devices[id] = e
	}
	slot := 0
	if fam == family6 {
		slot = 1
	}
	if !at.After(e.last[slot]) {
		return false, ErrReplay
	}
	e.last[slot] = at
	e.seen = now
	for _, ap := range addrs {
		if exp, ok := e.addrs[ap]; !ok || !exp.After(now) {
			added = true
		}
		e.addrs[ap] = now.Add(c.ttl)
	}
	return added, nil
}

// lookup returns the device's unexpired addresses, sorted.
func (c *cache) lookup(id identity.DeviceID, now time.Time) []netip.AddrPort {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.mu.devices[id]
	if e == nil {
		return nil
	}
	var out []netip.AddrPort
	for ap, exp := range e.addrs {
		if exp.After(now) {
			out = append(out, ap)
		} else {
			delete(e.addrs, ap)
		}
	}
	slices.SortFunc(out, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return out
}

// makeRoomLocked keeps the map under max: first it drops devices with no
// live address whose replay state has aged out (any replay of theirs is
// stale by now), then, if still full, the device heard from least recently.
func (c *cache) makeRoomLocked(now time.Time) {
	if len(c.mu.devices) < c.max {
		return
	}
	for id, e := range c.mu.devices {
		if e.seen.Add(c.keepReplay).Before(now) && e.seen.Add(c.ttl).Before(now) {
			delete(c.mu.devices, id)
		}
	}
	for len(c.mu.devices) >= c.max {
		var oldest identity.DeviceID
		var oldestSeen time.Time
		first := true
		for id, e := range c.mu.devices {
			if first || e.seen.Before(oldestSeen) {
				oldest, oldestSeen, first = id, e.seen, false
			}
		}
		delete(c.mu.devices, oldest)
	}
}
