package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// maxEventLog bounds the lines a stream sends for one status change.
const maxEventLog = 32

// serveSSE streams Server-Sent Events while the page is open: "shares" and
// "devices" (the pages' live parts, rendered) and "log" (one line per
// change), whenever the daemon's status changes, looked at as often as GET
// /v1/events does.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, p *page) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	var last []byte
	var prev *daemon.Status
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	evs, unsubscribe := s.d.Subscribe()
	defer unsubscribe()
	for {
		st := s.d.Status()
		b, _ := json.Marshal(st)
		if !bytes.Equal(b, last) {
			last = b
			p.Status = st
			p.Data = shareViews(st)
			if err := s.sendFragment(w, "shares", "shares", p); err != nil {
				return
			}
			if err := s.sendFragment(w, "devices", "devicelist", p); err != nil {
				return
			}
			for _, line := range changes(prev, st, s.now()) {
				if err := sendEvent(w, "log", `<li>`+template.HTMLEscapeString(line)+`</li>`); err != nil {
					return
				}
			}
			prev = &st
			fl.Flush()
		}
		// File events, at most maxEventLog a tick: a burst of thousands is
		// summed up in one line rather than sent to the browser.
		sent, skipped := 0, 0
	wait:
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-evs:
				line := fileEvent(ev, s.now())
				switch {
				case line == "":
				case sent >= maxEventLog:
					skipped++
				default:
					sent++
					if sendEvent(w, "log", `<li class="file" data-type="`+ev.Type+`">`+template.HTMLEscapeString(line)+`</li>`) != nil {
						return
					}
					fl.Flush()
				}
			case <-t.C:
				break wait
			}
		}
		if skipped > 0 {
			line := s.now().Local().Format(time.TimeOnly) + fmt.Sprintf(" and %d more files applied, deleted or in conflict", skipped)
			if sendEvent(w, "log", `<li class="file">`+template.HTMLEscapeString(line)+`</li>`) != nil {
				return
			}
			fl.Flush()
		}
	}
}

// fileEvent says in words what one file event of the daemon's stream did
// ("" for events the status lines already tell).
func fileEvent(ev daemon.Event, now time.Time) string {
	at := now.Local().Format(time.TimeOnly) + " "
	from := ev.PeerName
	if from == "" {
		from = ev.Peer
	}
	switch ev.Type {
	case daemon.EventFileApplied:
		return at + fmt.Sprintf("share %s: %s applied from %s (%s)", ev.ShareName, ev.Path, from, sizeText(ev.Bytes))
	case daemon.EventFileDeleted:
		return at + fmt.Sprintf("share %s: %s deleted by %s", ev.ShareName, ev.Path, from)
	case daemon.EventConflict:
		return at + fmt.Sprintf("share %s: conflict on %s: %s's version kept as %s", ev.ShareName, ev.Path, from, ev.Copy)
	case daemon.EventMemberJoined:
		return at + fmt.Sprintf("share %s: %s joined", ev.ShareName, from)
	}
	return ""
}

func (s *Server) sendFragment(w http.ResponseWriter, event, tmpl string, p *page) error {
	var b bytes.Buffer
	if err := s.pages["shares"].ExecuteTemplate(&b, tmpl, p); err != nil {
		return err
	}
	return sendEvent(w, event, b.String())
}

// sendEvent writes one event; each line of data gets its own "data:".
func sendEvent(w http.ResponseWriter, event, data string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "event: %s\n", event)
	for _, line := range strings.Split(data, "\n") {
		fmt.Fprintf(&b, "data: %s\n", strings.TrimRight(line, "\r"))
	}
	b.WriteString("\n")
	_, err := w.Write([]byte(b.String()))
	return err
}

// changes says in words what differs from prev to st (everything, for the
// first status of a stream).
func changes(prev *daemon.Status, st daemon.Status, now time.Time) []string {
	at := now.Local().Format(time.TimeOnly) + " "
	var out []string
	add := func(f string, a ...any) {
		if len(out) < maxEventLog {
			out = append(out, at+fmt.Sprintf(f, a...))
		}
	}
	oldShares := map[string]daemon.ShareStatus{}
	oldPeers := map[string]daemon.PeerStatus{}
	if prev != nil {
		for _, sh := range prev.Shares {
			oldShares[sh.ID] = sh
		}
		for _, p := range prev.Peers {
			oldPeers[p.ID] = p
		}
	} else {
		add("watching device %s (%s)", st.Name, st.Device)
	}
	for _, sh := range st.Shares {
		o, had := oldShares[sh.ID]
		switch {
		case !had || o.InSync != sh.InSync || o.NeedItems != sh.NeedItems:
			if sh.InSync {
				add("share %s: in sync (%d records)", sh.Name, sh.Records)
			} else {
				add("share %s: %d files, %s to pull", sh.Name, sh.NeedItems, sizeText(sh.NeedBytes))
			}
		}
		if had && sh.Conflicts > o.Conflicts {
			add("share %s: %d new conflict copies (see Conflicts)", sh.Name, sh.Conflicts-o.Conflicts)
		}
		if strings.Join(sh.Errors, "\n") != strings.Join(o.Errors, "\n") {
			for _, e := range sh.Errors {
				add("share %s: %s", sh.Name, e)
			}
		}
	}
	for _, p := range st.Peers {
		o := oldPeers[p.ID]
		name := p.Name
		if name == "" {
			name = p.ID
		}
		switch {
		case p.Connected && !o.Connected:
			add("device %s connected from %s", name, p.Address)
		case !p.Connected && o.Connected:
			add("device %s disconnected", name)
		}
	}
	return out
}
