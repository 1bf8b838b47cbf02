package peer

import (
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
)

// TestEventsInOrderOnQuickRedial: a connection ends and the peer redials
// before its OnDisconnect has returned (a slow handler, or a loaded
// machine). The new connection's OnConnect must wait for it: events for one
// device never overlap. Before, a connection that had already left the
// kept set was not waited for, which TestSimultaneousDial hit under load
// ("events out of order").
func TestEventsInOrderOnQuickRedial(t *testing.T) {
	a, b := newNode(t, "a"), newNode(t, "b")
	// Only a is slow to hear of a drop; b redials at once.
	slow := func(o *Options) {
		record := o.OnDisconnect
		o.OnDisconnect = func(id identity.DeviceID, err error) {
			time.Sleep(time.Second) // far longer than b's redial backoff
			record(id, err)
		}
	}
	a.startWith(map[identity.DeviceID][]string{b.ID(): nil}, slow, nil)
	b.start(map[identity.DeviceID][]string{a.ID(): {a.addr}}) // b redials at once
	waitFor(t, "connected", func() bool { return connectedTo(a, b)() && connectedTo(b, a)() })
	for round := range 3 {
		a.m.mu.Lock()
		l := a.m.mu.links[b.ID()]
		a.m.mu.Unlock()
		l.c.Close()
		waitFor(t, "reconnected, old connection's events done", func() bool {
			return connectedTo(a, b)() && connectedTo(b, a)() && a.events.live() == 1 && b.events.live() == 1 &&
				a.events.connectsN() == round+2
		})
	}
	for _, n := range []*node{a, b} {
		n.events.mu.Lock()
		overlapped := n.events.overlapped
		n.events.mu.Unlock()
		if overlapped {
			t.Fatalf("%s: an OnConnect came before the previous connection's OnDisconnect", n.name)
		}
	}
}

func (ev *events) connectsN() int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return ev.connects
}
