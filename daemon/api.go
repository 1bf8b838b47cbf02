package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/sync/apply"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// maxRequestBody bounds a request's JSON body; every request is small.
const maxRequestBody = 64 << 10

// Handler is the control API, every endpoint docs/api.md lists, under
// /v1/. The daemon serves it on its Unix socket (mode 0600: only its user
// reaches it); the web UI mounts the same handler on its loopback listener
// behind its own authentication and CSRF checks, which this handler does
// not do. Handlers are thin: they parse, call the engine or the
// configuration, and answer JSON; errors are {"error": "..."} with 400
// (the request is wrong: a bad rate, a path outside the share), 404 (no
// such share, version or conflict), 409 (the state forbids it: the share is
// paused) or 500.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	d.routes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &APIError{Code: http.StatusNotFound, Message: fmt.Sprintf("no endpoint %s %s (docs/api.md lists them)", r.Method, r.URL.Path)})
	})
	return mux
}

// router registers endpoints: an *http.ServeMux, or a test listing them.
type router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// routes registers every endpoint, one line each; docs/api.md lists the
// same (TestAPIDocumented holds the two together).
func (d *Daemon) routes(mux router) {
	mux.HandleFunc("GET /v1/status", d.apiStatus)
	mux.HandleFunc("POST /v1/reload", d.apiReload)
	mux.HandleFunc("GET /v1/events", d.apiEvents)
	mux.HandleFunc("GET /v1/shares", d.apiShares)
	mux.HandleFunc("POST /v1/shares", d.apiAddShare)
	mux.HandleFunc("POST /v1/shares/{share}/remove", d.apiRemoveShare)
	mux.HandleFunc("GET /v1/shares/{share}/needed", d.apiNeeded)
	mux.HandleFunc("POST /v1/pause", d.apiPause(true))
	mux.HandleFunc("POST /v1/resume", d.apiPause(false))
	mux.HandleFunc("POST /v1/shares/{share}/pause", d.apiPause(true))
	mux.HandleFunc("POST /v1/shares/{share}/resume", d.apiPause(false))
	mux.HandleFunc("GET /v1/rates", d.apiRates)
	mux.HandleFunc("POST /v1/rates", d.apiSetRates)
	mux.HandleFunc("GET /v1/shares/{share}/versions", d.apiVersions)
	mux.HandleFunc("POST /v1/shares/{share}/versions/restore", d.apiRestore)
	mux.HandleFunc("GET /v1/conflicts", d.apiConflicts)
	mux.HandleFunc("GET /v1/shares/{share}/conflicts", d.apiConflicts)
	mux.HandleFunc("POST /v1/shares/{share}/conflicts/resolve", d.apiResolve)
	mux.HandleFunc("GET /v1/peers", d.apiPeers)
	mux.HandleFunc("POST /v1/peers", d.apiAddPeer)
	mux.HandleFunc("POST /v1/peers/{peer}/remove", d.apiRemovePeer)
	mux.HandleFunc("GET /v1/hooks", d.apiHooks)
	mux.HandleFunc("POST /v1/hooks", d.apiAddHook)
	mux.HandleFunc("POST /v1/hooks/{n}/remove", d.apiRemoveHook)
	mux.HandleFunc("POST /v1/invites", d.apiInvite)
	mux.HandleFunc("POST /v1/joins", d.apiJoin)
	mux.HandleFunc("POST /v1/joins/cancel", d.apiCancelJoin)
	mux.HandleFunc("POST /v1/sends", d.apiSend)
	mux.HandleFunc("POST /v1/sends/{share}/finish", d.apiFinishSend)
	mux.HandleFunc("POST /v1/receives", d.apiReceive)
	mux.HandleFunc("POST /v1/receives/{share}/finish", d.apiFinishReceive)
	mux.HandleFunc("POST /v1/ui/login", d.serveUILogin)
	d.memberRoutes(mux)
	d.keyringRoutes(mux)
}

// APIError is an error the control API answers with its HTTP status; the
// client returns it as is, so the command line can tell a refused request
// (400) from a failure.
type APIError struct {
	Code    int    `json:"-"`
	Message string `json:"error"`
}

func (e *APIError) Error() string { return e.Message }

// Errors a handler returns, classed for their HTTP status.
var (
	errBadRequest = errors.New("bad request")
	errConflict   = errors.New("not now")
)

func (d *Daemon) apiReload(w http.ResponseWriter, r *http.Request) {
	if err := d.Reload(); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// runningShare returns the share r's {share} names (ID or name), and its
// ID, if the engine runs it: a paused share answers 409.
func (d *Daemon) shareOf(r *http.Request) (config.Share, share.ID, error) {
	ref := r.PathValue("share")
	s, err := d.config().FindShare(ref)
	if err != nil {
		return config.Share{}, share.ID{}, err
	}
	id, err := share.ParseID(s.ID)
	if err != nil {
		return config.Share{}, share.ID{}, err
	}
	return *s, id, nil
}

// runningShareOf is shareOf for a share that must be running.
func (d *Daemon) runningShareOf(r *http.Request) (config.Share, share.ID, error) {
	s, id, err := d.shareOf(r)
	if err != nil {
		return s, id, err
	}
	if s.Paused || d.config().Device.Paused {
		return s, id, fmt.Errorf("%w: share %s is paused: resume it first (`blueshift resume %s`)", errConflict, s.Name, s.Name)
	}
	return s, id, nil
}

// decodeBody reads r's JSON body into v, strictly.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: read the request: %v", errBadRequest, err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers err with the status its class says.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var ae *APIError
	switch {
	case errors.As(err, &ae):
		code = ae.Code
	case errors.Is(err, errBadRequest), errors.Is(err, apply.ErrUnsafePath), errors.Is(err, apply.ErrOutsideShare),
		errors.Is(err, config.ErrBadRate), errors.Is(err, config.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, config.ErrNotFound), errors.Is(err, apply.ErrNoVersion), errors.Is(err, engine.ErrUnknownShare),
		errors.Is(err, errNoConflict):
		code = http.StatusNotFound
	case errors.Is(err, errConflict), errors.Is(err, apply.ErrChanged):
		code = http.StatusConflict
	}
	writeJSON(w, code, APIError{Message: err.Error()})
}
