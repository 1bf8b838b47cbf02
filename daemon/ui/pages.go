package ui

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/blueshift-sync/blueshift/daemon"
)

// page is what every template gets.
type page struct {
	CSRF   string
	Title  string
	Nav    string
	Status daemon.Status
	Error  string // what went wrong with the request, for the user
	Done   string // what a POST did
	Data   any
}

// shareView is one share with its members resolved to devices.
type shareView struct {
	daemon.ShareStatus
	Members []memberView
}

type memberView struct {
	ID, Name  string
	Connected bool
	Address   string
	RateIn    float64
	RateOut   float64
}

func (s *Server) render(w http.ResponseWriter, name string, code int, p *page) {
	t := s.pages[name]
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// fill sets the title, navigation and status of p.
func (s *Server) fill(p *page, nav, title string) *page {
	p.Nav, p.Title, p.Status = nav, title, s.d.Status()
	return p
}

func shareViews(st daemon.Status) []shareView {
	peers := map[string]daemon.PeerStatus{}
	for _, p := range st.Peers {
		peers[p.ID] = p
	}
	out := make([]shareView, 0, len(st.Shares))
	for _, sh := range st.Shares {
		v := shareView{ShareStatus: sh}
		for _, id := range sh.Members {
			p := peers[id]
			v.Members = append(v.Members, memberView{ID: id, Name: p.Name, Connected: slices.Contains(sh.Peers, id),
				Address: p.Address, RateIn: p.RateIn, RateOut: p.RateOut})
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) serveShares(w http.ResponseWriter, r *http.Request, p *page) {
	s.fill(p, "shares", "Shares")
	p.Data = shareViews(p.Status)
	s.render(w, "shares", http.StatusOK, p)
}

// findShare is the share of st that id names, by ID or name.
func findShare(st daemon.Status, id string) (daemon.ShareStatus, bool) {
	for _, sh := range st.Shares {
		if sh.ID == id || sh.Name == id {
			return sh, true
		}
	}
	return daemon.ShareStatus{}, false
}

// shareFiles is a share's page: its state, needed files, conflicts and
// versions.
type shareFiles struct {
	Share       shareView
	Needed      []NeededFile
	NeededTotal int
	NoList      bool // the daemon counts needed files but does not list them
	Conflicts   []Conflict
	Versions    []Version
	Errors      []string
	// Members are the share's members from its signed log, with how each
	// is reached; HasLog false: no log yet.
	Members []memberRow
	HasLog  bool
	// Pending are the membership changes waiting for owners' approval.
	Pending []daemon.ChangeView
}

func (s *Server) serveShare(w http.ResponseWriter, r *http.Request, p *page) {
	s.fill(p, "shares", "Share")
	sh, ok := findShare(p.Status, r.PathValue("id"))
	if !ok {
		p.Error = fmt.Sprintf("no share %q on this device: pick one from the list", r.PathValue("id"))
		s.serveShares(w, r, p)
		return
	}
	p.Title = "Share " + sh.Name
	if p.Done == "" {
		p.Done = r.URL.Query().Get("done")
	}
	for _, v := range shareViews(p.Status) {
		if v.ID == sh.ID {
			sf := shareFiles{Share: v}
			var err error
			switch sf.Needed, sf.NeededTotal, err = s.files.Needed(sh); {
			case errors.Is(err, ErrNoList):
				sf.NoList = true
			case err != nil:
				sf.Errors = append(sf.Errors, err.Error())
			}
			if sf.Conflicts, err = s.conflicts(sh); err != nil {
				sf.Errors = append(sf.Errors, err.Error())
			}
			if sf.Versions, err = s.versions(sh); err != nil {
				sf.Errors = append(sf.Errors, err.Error())
			}
			var l daemon.MemberList
			if sf.Members, l, err = s.members(sh, p.Status); err != nil {
				sf.Errors = append(sf.Errors, err.Error())
			}
			sf.HasLog, sf.Pending = l.HasLog, l.Pending
			p.Data = sf
		}
	}
	s.render(w, "share", http.StatusOK, p)
}

// shareConflicts groups conflicts (or versions) by share for the pages.
type shareConflicts struct {
	Share     daemon.ShareStatus
	Conflicts []Conflict
	Versions  []Version
	Error     string
}

func (s *Server) serveConflicts(w http.ResponseWriter, r *http.Request, p *page) {
	s.listFiles(w, r, p, "conflicts", "Conflicts", http.StatusOK)
}

func (s *Server) serveVersions(w http.ResponseWriter, r *http.Request, p *page) {
	s.listFiles(w, r, p, "versions", "Versions", http.StatusOK)
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request, p *page, name, title string, code int) {
	s.fill(p, name, title)
	if p.Done == "" {
		p.Done = r.URL.Query().Get("done")
	}
	var out []shareConflicts
	for _, sh := range p.Status.Shares {
		sc := shareConflicts{Share: sh}
		var err error
		if name == "conflicts" {
			sc.Conflicts, err = s.conflicts(sh)
		} else {
			sc.Versions, err = s.versions(sh)
		}
		if err != nil {
			sc.Error = err.Error()
		}
		out = append(out, sc)
	}
	p.Data = out
	s.render(w, name, code, p)
}

func (s *Server) serveResolve(w http.ResponseWriter, r *http.Request, p *page) {
	sh, ok := findShare(s.d.Status(), r.PostFormValue("share"))
	if !ok {
		p.Error = fmt.Sprintf("no share %q on this device", r.PostFormValue("share"))
		s.listFiles(w, r, p, "conflicts", "Conflicts", http.StatusBadRequest)
		return
	}
	copyPath, keep := r.PostFormValue("copy"), Keep(r.PostFormValue("keep"))
	if err := s.files.Resolve(sh, copyPath, keep); err != nil {
		p.Error = err.Error()
		code := http.StatusInternalServerError
		if isBadRequest(err) {
			code = http.StatusBadRequest
		}
		s.listFiles(w, r, p, "conflicts", "Conflicts", code)
		return
	}
	http.Redirect(w, r, "/conflicts?done="+url.QueryEscape(fmt.Sprintf("resolved %s: kept %s", copyPath, keep)), http.StatusSeeOther)
}

func (s *Server) serveRestore(w http.ResponseWriter, r *http.Request, p *page) {
	sh, ok := findShare(s.d.Status(), r.PostFormValue("share"))
	if !ok {
		p.Error = fmt.Sprintf("no share %q on this device", r.PostFormValue("share"))
		s.listFiles(w, r, p, "versions", "Versions", http.StatusBadRequest)
		return
	}
	path := r.PostFormValue("path")
	var at time.Time
	if a := r.PostFormValue("at"); a != "" {
		var err error
		if at, err = time.Parse(time.RFC3339, a); err != nil {
			p.Error = fmt.Sprintf("restore %q: time %q: write it like 2026-12-03T10:15:00Z", path, a)
			s.listFiles(w, r, p, "versions", "Versions", http.StatusBadRequest)
			return
		}
	}
	if err := s.files.Restore(sh, path, at); err != nil {
		p.Error = err.Error()
		code := http.StatusInternalServerError
		if isBadRequest(err) {
			code = http.StatusBadRequest
		}
		s.listFiles(w, r, p, "versions", "Versions", code)
		return
	}
	http.Redirect(w, r, "/versions?done="+url.QueryEscape("restored "+path), http.StatusSeeOther)
}

// conflicts lists sh's conflicts with the start of both sides' text.
func (s *Server) conflicts(sh daemon.ShareStatus) ([]Conflict, error) {
	cs, err := s.files.Conflicts(sh)
	if err != nil || len(cs) == 0 {
		return cs, err
	}
	root, err := os.OpenRoot(sh.Path)
	if err != nil {
		return cs, nil // no previews
	}
	defer root.Close()
	for i := range cs {
		cs[i].Preview, cs[i].CopyPreview = preview(root, cs[i].Path), preview(root, cs[i].Copy)
	}
	return cs, nil
}

// versions lists sh's kept versions, newest first, each saying whether a
// file is at its path now.
func (s *Server) versions(sh daemon.ShareStatus) ([]Version, error) {
	vs, err := s.files.Versions(sh)
	if err != nil || len(vs) == 0 {
		return vs, err
	}
	slices.SortStableFunc(vs, func(a, b Version) int { return b.Time.Compare(a.Time) })
	if root, err := os.OpenRoot(sh.Path); err == nil {
		defer root.Close()
		for i := range vs {
			_, err := root.Lstat(filepath.FromSlash(vs[i].Path))
			vs[i].Current = err == nil
		}
	}
	return vs, nil
}

func (s *Server) serveDevices(w http.ResponseWriter, r *http.Request, p *page) {
	s.fill(p, "devices", "Devices")
	s.render(w, "devices", http.StatusOK, p)
}

// invitation is what the pairing page shows after making one.
type invitation struct {
	Share    string
	Link     string
	Code     string
	QR       template.URL // data: URL of the link's QR code (PNG)
	Expires  time.Time
	ReadOnly bool
}

func (s *Server) servePair(w http.ResponseWriter, r *http.Request, p *page) {
	s.fill(p, "pair", "Pair a device")
	s.render(w, "pair", http.StatusOK, p)
}

// serveInvite makes an invitation as `blueshift invite` does: the running
// daemon's real addresses, daemon.Invite, then a reload so the daemon
// holds the invitation before anyone reads the link.
func (s *Server) serveInvite(w http.ResponseWriter, r *http.Request, p *page) {
	s.fill(p, "pair", "Pair a device")
	fail := func(code int, err error) {
		p.Error = err.Error()
		s.render(w, "pair", code, p)
	}
	expires, err := time.ParseDuration(r.PostFormValue("expires"))
	if err != nil || expires <= 0 {
		fail(http.StatusBadRequest, fmt.Errorf("expiry %q: give a positive duration like 24h or 30m", r.PostFormValue("expires")))
		return
	}
	ref := r.PostFormValue("share")
	if _, ok := findShare(p.Status, ref); !ok {
		fail(http.StatusBadRequest, fmt.Errorf("no share %q on this device: pick one from the list", ref))
		return
	}
	req := daemon.InviteRequest{Share: ref, ReadOnly: r.PostFormValue("read_only") != "", SingleUse: r.PostFormValue("single_use") != "",
		Expires: expires.String()}
	var in daemon.Invitation
	if err := (apiFiles{api: s.api}).call(http.MethodPost, "/v1/invites", req, &in); err != nil {
		code := http.StatusInternalServerError
		if isBadRequest(err) {
			code = http.StatusBadRequest
		}
		fail(code, err)
		return
	}
	png, err := qrcode.Encode(in.Link, qrcode.Medium, 512)
	if err != nil {
		fail(http.StatusInternalServerError, fmt.Errorf("draw the QR code: %w", err))
		return
	}
	p.Data = invitation{Share: in.ShareName, Link: in.Link, Code: in.Code, Expires: in.Expires, ReadOnly: req.ReadOnly,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))}
	s.render(w, "pair", http.StatusOK, p)
}

func (s *Server) serveEventsPage(w http.ResponseWriter, r *http.Request, p *page) {
	s.fill(p, "events", "Events")
	s.render(w, "events", http.StatusOK, p)
}

// rateView is the rates page.
type rateView struct {
	Plot    template.HTML
	Samples int
	In, Out float64 // the latest sample
}

func (s *Server) rateView() rateView {
	h := s.rateHistory()
	v := rateView{Plot: ratePlot(h, s.now()), Samples: len(h)}
	if len(h) > 0 {
		v.In, v.Out = h[len(h)-1].In, h[len(h)-1].Out
	}
	return v
}

func (s *Server) serveRates(w http.ResponseWriter, r *http.Request, p *page) {
	s.fill(p, "rates", "Transfer rates")
	p.Data = s.rateView()
	s.render(w, "rates", http.StatusOK, p)
}

// serveRatePlot is the plot alone, which the rates page reloads.
func (s *Server) serveRatePlot(w http.ResponseWriter, r *http.Request, p *page) {
	p.Data = s.rateView()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	s.pages["rates"].ExecuteTemplate(w, "plot", p)
}
