package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

const (
	// statusEvery is how often a stream looks for a change of status.
	statusEvery = 250 * time.Millisecond
	// stateEvery is how often the daemon looks for shares coming into sync
	// and members joining, for the share_in_sync and member_joined events.
	stateEvery = 500 * time.Millisecond
	// subscriberQueue bounds the events waiting for one slow stream; past
	// it events are dropped and the stream told how many ("dropped").
	subscriberQueue = 1024
)

// events fans events out to the streams of GET /v1/events. publish never
// blocks: a stream that does not keep up loses events and is told so.
type events struct {
	mu   gosync.Mutex
	subs map[*subscriber]struct{} // guarded by mu
	// changed holds the shares a file event came from since watchStates
	// last looked: a share that left sync and came back between two of its
	// looks still gets its share_in_sync.
	changed map[string]bool // guarded by mu
}

type subscriber struct {
	ch      chan Event
	dropped int64 // guarded by events.mu
}

func (h *events) subscribe() (*subscriber, func()) {
	s := &subscriber{ch: make(chan Event, subscriberQueue)}
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[*subscriber]struct{})
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}

// takeDropped returns and resets how many events s missed.
func (h *events) takeDropped(s *subscriber) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := s.dropped
	s.dropped = 0
	return n
}

// takeChanged reports whether a file event came from share since the last
// call, and forgets it.
func (h *events) takeChanged(share string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.changed[share]
	delete(h.changed, share)
	return c
}

func (h *events) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ev.Type {
	case EventFileApplied, EventFileDeleted, EventConflict:
		if h.changed == nil {
			h.changed = make(map[string]bool)
		}
		h.changed[ev.Share] = true
	}
	for s := range h.subs {
		select {
		case s.ch <- ev:
		default:
			s.dropped++
		}
	}
}

// onEngineEvent is the engine's Options.OnEvent: called from a puller, it
// must not block.
func (d *Daemon) onEngineEvent(e engine.Event) {
	ev := Event{
		Time: e.Time.UTC(), Share: e.Share.String(), ShareName: e.ShareName, Path: string(e.Path),
		Copy: string(e.Copy), Bytes: e.Bytes,
	}
	switch e.Kind {
	case engine.FileApplied:
		ev.Type = EventFileApplied
	case engine.FileDeleted:
		ev.Type = EventFileDeleted
	case engine.FileConflict:
		ev.Type = EventConflict
	default:
		ev.Type = string(e.Kind)
	}
	if e.Peer != (identity.DeviceID{}) {
		ev.Peer = e.Peer.String()
		ev.PeerName = d.peerName(e.Peer)
	}
	d.publish(ev)
}

// configPeerName is peer's [[peer]] name, or "" (cheap: no connection
// lookup, for the engine's callbacks).
func (d *Daemon) configPeerName(id identity.DeviceID) string {
	for _, p := range d.config().Peers {
		if p.ID == id.String() {
			return p.Name
		}
	}
	return ""
}

// watchStates publishes share_in_sync when a share comes into sync and
// member_joined when a share gains a member, until ctx is done.
func (d *Daemon) watchStates(ctx context.Context) {
	inSync := map[string]bool{}
	members := map[string][]string{}
	first := true
	t := time.NewTicker(stateEvery)
	defer t.Stop()
	for {
		st := d.Status()
		now := time.Now().UTC()
		for _, s := range st.Shares {
			changed := d.events.takeChanged(s.ID)
			if s.InSync && (!inSync[s.ID] || changed) && !first {
				d.publish(Event{Type: EventShareInSync, Time: now, Share: s.ID, ShareName: s.Name})
			}
			inSync[s.ID] = s.InSync
			old, known := members[s.ID]
			for _, m := range s.Members {
				if known && !slices.Contains(old, m) {
					ev := Event{Type: EventMemberJoined, Time: now, Share: s.ID, ShareName: s.Name, Peer: m}
					if id, err := identity.ParseDeviceID(m); err == nil {
						ev.PeerName = d.peerName(id)
					}
					d.publish(ev)
				}
			}
			members[s.ID] = slices.Clone(s.Members)
		}
		first = false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// apiEvents is GET /v1/events: newline-delimited JSON events (or Server-Sent
// Events when the request accepts text/event-stream), until the client
// goes. ?types=a,b keeps only those types ("status" among them or not).
func (d *Daemon) apiEvents(w http.ResponseWriter, r *http.Request) {
	var want map[string]bool
	if t := r.URL.Query().Get("types"); t != "" {
		want = map[string]bool{}
		for _, k := range strings.Split(t, ",") {
			want[strings.TrimSpace(k)] = true
		}
	}
	keep := func(typ string) bool { return want == nil || want[typ] }
	sse := strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	sub, unsubscribe := d.events.subscribe()
	defer unsubscribe()
	if sse {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
	}
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush() // the client is subscribed from here on
	}
	send := func(ev Event) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if sse {
			_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b)
		} else {
			_, err = w.Write(append(b, '\n'))
		}
		if err == nil && fl != nil {
			fl.Flush()
		}
		return err
	}
	var last []byte
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		if keep(EventStatus) {
			st := d.Status()
			b, _ := json.Marshal(st)
			if !bytes.Equal(b, last) {
				last = b
				if send(Event{Type: EventStatus, Time: time.Now().UTC(), Status: &st}) != nil {
					return
				}
			}
		}
		if n := d.events.takeDropped(sub); n > 0 && keep(EventDropped) {
			if send(Event{Type: EventDropped, Time: time.Now().UTC(), Dropped: n}) != nil {
				return
			}
		}
	wait:
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-sub.ch:
				if keep(ev.Type) && send(ev) != nil {
					return
				}
			case <-t.C:
				break wait
			}
		}
	}
}
