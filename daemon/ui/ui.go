package ui

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	gosync "sync"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// Limits and intervals.
const (
	maxForm     = 64 << 10               // bytes of a form a POST may send
	statusEvery = 250 * time.Millisecond // how often the live stream looks for a change (as GET /v1/events)
	sampleEvery = 10 * time.Second       // rate samples for the plot
)

//go:embed static templates
var assets embed.FS

// Options configure a Server.
type Options struct {
	Daemon *daemon.Daemon
	// Files lists and resolves conflicts and versions and lists needed
	// files; nil: the daemon's control API when it has those endpoints
	// (apiFiles), else the share folders themselves (folderFiles).
	Files Files
	Now   func() time.Time // nil: time.Now
	// SampleEvery is the rate plot's sampling interval; 0: 10 s.
	SampleEvery time.Duration
}

// Server is the web UI of one daemon. It is an http.Handler; Run samples
// transfer rates until its context is done.
type Server struct {
	d      *daemon.Daemon
	api    http.Handler // the daemon's control API, called in process
	files  Files
	now    func() time.Time
	every  time.Duration
	key    []byte // HMAC key of sessions and CSRF tokens (KeyFile)
	cookie string // session cookie name: one per device, as cookies ignore ports
	pages  map[string]*template.Template
	mux    *http.ServeMux

	mu struct {
		gosync.Mutex
		logins map[string]time.Time // guarded by mu: unused login tokens and their expiry
		rates  []rateSample         // guarded by mu: the last hour, oldest first
	}
}

// New makes the web UI of d, loading (or making) the key in d's home.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Files == nil {
		opts.Files = folderFiles{now: opts.Now}
		if h, ok := any(opts.Daemon).(apiHandler); ok {
			opts.Files = apiFiles{api: h.Handler()}
		}
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = sampleEvery
	}
	key, err := loadKey(opts.Daemon.Home())
	if err != nil {
		return nil, err
	}
	s := &Server{d: opts.Daemon, api: opts.Daemon.Handler(), files: opts.Files, now: opts.Now, every: opts.SampleEvery, key: key,
		cookie: "blueshift-" + opts.Daemon.ID().String()[:8]}
	s.mu.logins = make(map[string]time.Time)
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}
	s.mux = s.routes()
	return s, nil
}

// ServeHTTP serves the UI.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Run samples the transfer rates for the plot until ctx is done.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		s.sampleRates(s.d.Status())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.serveLogin)
	mux.HandleFunc("GET /{$}", s.guard(s.serveShares))
	mux.HandleFunc("GET /share/{id}", s.guard(s.serveShare))
	mux.HandleFunc("/share/{id}/revert", s.guard(postOnly(s.serveRevert)))
	mux.HandleFunc("/share/{id}/approve", s.guard(postOnly(s.serveApprove)))
	mux.HandleFunc("GET /conflicts", s.guard(s.serveConflicts))
	mux.HandleFunc("/conflicts/resolve", s.guard(postOnly(s.serveResolve)))
	mux.HandleFunc("GET /versions", s.guard(s.serveVersions))
	mux.HandleFunc("/versions/restore", s.guard(postOnly(s.serveRestore)))
	mux.HandleFunc("GET /devices", s.guard(s.serveDevices))
	mux.HandleFunc("GET /pair", s.guard(s.servePair))
	mux.HandleFunc("POST /pair", s.guard(s.serveInvite))
	mux.HandleFunc("GET /events", s.guard(s.serveEventsPage))
	mux.HandleFunc("GET /rates", s.guard(s.serveRates))
	mux.HandleFunc("GET /rates/plot", s.guard(s.serveRatePlot))
	mux.HandleFunc("GET /sse", s.guard(s.serveSSE))
	// Anything else, whatever its method, passes the same guard first.
	mux.HandleFunc("/", s.guard(func(w http.ResponseWriter, r *http.Request, _ *page) { http.NotFound(w, r) }))
	return mux
}

// postOnly answers anything but POST with 405: a link or an image cannot
// change anything.
func postOnly(next func(http.ResponseWriter, *http.Request, *page)) func(http.ResponseWriter, *http.Request, *page) {
	return func(w http.ResponseWriter, r *http.Request, p *page) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		next(w, r, p)
	}
}

// parsePages parses each page with the layout and the shared fragments.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"size": sizeText,
		"files": func(n int) string { // "1 file", "2 files"
			if n == 1 {
				return "1 file"
			}
			return fmt.Sprintf("%d files", n)
		},
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.Local().Format(time.DateTime)
		},
		"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"rate":    func(r float64) string { return sizeText(int64(r)) + "/s" },
		// done is how many of a share's records are in place.
		"done": func(records uint64, need int) uint64 {
			if uint64(max(need, 0)) > records {
				return 0
			}
			return records - uint64(need)
		},
	}
	names, err := fs.Glob(assets, "templates/page_*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/fragments.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse UI template %s: %w", n, err)
		}
		out[n[len("templates/page_"):len(n)-len(".html")]] = t
	}
	return out, nil
}
