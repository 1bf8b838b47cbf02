package ui

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/blueshift-sync/blueshift/daemon"
)

// memberRow is one member of a share as its page shows it: its level
// from the share's signed membership log (GET /v1/members), and how this
// device reaches it now (GET /v1/status's peers).
type memberRow struct {
	daemon.MemberView
	Reach     string  // lan, direct, punched, relayed; empty: not connected
	Transport string  // quic, tcp
	Via       string  // the relay or introducer, by name when known
	RTTMillis float64 // 0: not measured yet
	Address   string
}

// ReachText is how the member is reached, in words.
func (m memberRow) ReachText() string {
	switch m.Reach {
	case "":
		return ""
	case "lan":
		return "LAN"
	case "punched":
		return "direct (punched through NAT via " + m.Via + ")"
	case "relayed":
		return "relayed by " + m.Via
	}
	return m.Reach
}

// members lists sh's members from its signed membership log, each with
// how it is reached; the log's absence (it comes from the members once
// connected) is no error: hasLog false.
func (s *Server) members(sh daemon.ShareStatus, st daemon.Status) (rows []memberRow, l daemon.MemberList, err error) {
	if err := (apiFiles{api: s.api}).call(http.MethodGet, "/v1/members?share="+url.QueryEscape(sh.ID), nil, &l); err != nil {
		return nil, l, fmt.Errorf("members of %s: %w", sh.Name, err)
	}
	peers := map[string]daemon.PeerStatus{}
	names := map[string]string{}
	for _, p := range st.Peers {
		peers[p.ID] = p
		names[p.ID] = p.Name
	}
	for _, m := range l.Members {
		r := memberRow{MemberView: m}
		if p, ok := peers[m.Device]; ok && p.Connected && !m.Self {
			r.Reach, r.Transport, r.RTTMillis, r.Address = p.Reach, p.Transport, p.RTTMillis, p.Address
			r.Via = p.Via
			if n := names[p.Via]; n != "" {
				r.Via = n
			}
			if r.Reach == "" {
				r.Reach = "direct"
			}
		}
		if r.Name == "" {
			r.Name = names[m.Device]
		}
		rows = append(rows, r)
	}
	return rows, l, nil
}

// serveApprove signs a change waiting for the owners' approval (POST
// /v1/members/approve), as `blueshift member approve` does.
func (s *Server) serveApprove(w http.ResponseWriter, r *http.Request, p *page) {
	sh, ok := findShare(s.d.Status(), r.PathValue("id"))
	if !ok {
		p.Error = fmt.Sprintf("no share %q on this device", r.PathValue("id"))
		s.serveShares(w, r, p)
		return
	}
	req := struct {
		Share  string `json:"share"`
		Change string `json:"change"`
	}{sh.ID, r.PostFormValue("change")}
	var res daemon.ChangeResult
	if err := (apiFiles{api: s.api}).call(http.MethodPost, "/v1/members/approve", req, &res); err != nil {
		p.Error = "approve: " + err.Error()
		s.serveShare(w, r, p)
		return
	}
	done := fmt.Sprintf("approved change %s: %d of %d owners' signatures", res.Change, res.Have, res.Need)
	if res.Applied {
		done = fmt.Sprintf("approved change %s: it took effect", res.Change)
	}
	http.Redirect(w, r, "/share/"+url.PathEscape(sh.ID)+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}

// serveRevert puts the share's version back over a read-only member's
// local edits (POST /v1/revert): all of them, or the path given.
func (s *Server) serveRevert(w http.ResponseWriter, r *http.Request, p *page) {
	sh, ok := findShare(s.d.Status(), r.PathValue("id"))
	if !ok {
		p.Error = fmt.Sprintf("no share %q on this device", r.PathValue("id"))
		s.serveShares(w, r, p)
		return
	}
	req := struct {
		Share string   `json:"share"`
		Paths []string `json:"paths"`
	}{Share: sh.ID}
	if path := r.PostFormValue("path"); path != "" {
		req.Paths = []string{path}
	}
	var res daemon.RevertResult
	if err := (apiFiles{api: s.api}).call(http.MethodPost, "/v1/revert", req, &res); err != nil {
		p.Error = "revert: " + err.Error()
		s.serveShare(w, r, p)
		return
	}
	done := fmt.Sprintf("put the share's version back over %d local changes; the local copies are in the versions folder", res.Reverted)
	http.Redirect(w, r, "/share/"+url.PathEscape(sh.ID)+"?done="+url.QueryEscape(done), http.StatusSeeOther)
}
