package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// apiFiles is Files over the control API's own endpoints (GET
// /v1/shares/{share}/conflicts, …/versions, …/needed; POST
// …/conflicts/resolve, …/versions/restore), called in process on the
// daemon's Handler: the web UI and the command line then run the very
// same code.
type apiFiles struct{ api http.Handler }

// apiHandler is the daemon's control API, where the daemon has one.
type apiHandler interface{ Handler() http.Handler }

// call sends one request to the API and decodes its JSON answer into out;
// an answer other than 200 is an error carrying the API's message.
func (a apiFiles) call(method, path string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://blueshift"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	rec := &recorder{Code: http.StatusOK, header: http.Header{}}
	a.api.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &e) == nil && e.Error != "" {
			err := errors.New(e.Error)
			if rec.Code == http.StatusBadRequest || rec.Code == http.StatusNotFound {
				err = fmt.Errorf("%w: %s", errRefused, e.Error)
			}
			return err
		}
		return fmt.Errorf("%s %s: %d", method, path, rec.Code)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rec.Body.Bytes(), out)
}

// errRefused marks what the API refused as a bad request (400, 404).
var errRefused = errors.New("refused")

func sharePrefix(sh daemon.ShareStatus) string { return "/v1/shares/" + url.PathEscape(sh.ID) }

func (a apiFiles) Conflicts(sh daemon.ShareStatus) ([]Conflict, error) {
	type side struct {
		Exists bool      `json:"exists"`
		Device string    `json:"device"`
		Time   time.Time `json:"time"`
		Size   int64     `json:"size"`
	}
	var resp struct {
		Conflicts []struct {
			Path     string `json:"path"`
			Copy     string `json:"copy"`
			Original side   `json:"original"`
			Conflict side   `json:"conflict"`
		} `json:"conflicts"`
	}
	if err := a.call(http.MethodGet, sharePrefix(sh)+"/conflicts", nil, &resp); err != nil {
		return nil, err
	}
	out := make([]Conflict, 0, len(resp.Conflicts))
	for _, c := range resp.Conflicts {
		v := Conflict{Path: c.Path, Copy: c.Copy, Device: c.Conflict.Device, Winner: c.Original.Device,
			Time: c.Conflict.Time, CopySize: c.Conflict.Size, CopyMod: c.Conflict.Time, Size: -1}
		if c.Original.Exists {
			v.Size, v.ModTime = c.Original.Size, c.Original.Time
		}
		out = append(out, v)
	}
	return out, nil
}

func (a apiFiles) Resolve(sh daemon.ShareStatus, copyPath string, keep Keep) error {
	req := struct {
		Path string `json:"path"`
		Copy string `json:"copy"`
		Keep string `json:"keep"`
	}{copyPath, copyPath, string(keep)}
	return a.call(http.MethodPost, sharePrefix(sh)+"/conflicts/resolve", req, nil)
}

func (a apiFiles) Versions(sh daemon.ShareStatus) ([]Version, error) {
	var resp struct {
		Files []struct {
			Path     string `json:"path"`
			Versions []struct {
				Time time.Time `json:"time"`
				Size int64     `json:"size"`
				File string    `json:"file"`
			} `json:"versions"`
		} `json:"files"`
	}
	if err := a.call(http.MethodGet, sharePrefix(sh)+"/versions", nil, &resp); err != nil {
		return nil, err
	}
	var out []Version
	for _, f := range resp.Files {
		for _, v := range f.Versions {
			out = append(out, Version{Path: f.Path, Stored: v.File, Time: v.Time, Size: v.Size})
		}
	}
	return out, nil
}

func (a apiFiles) Restore(sh daemon.ShareStatus, p string, at time.Time) error {
	req := struct {
		Path string    `json:"path"`
		At   time.Time `json:"at,omitzero"`
	}{p, at}
	return a.call(http.MethodPost, sharePrefix(sh)+"/versions/restore", req, nil)
}

func (a apiFiles) Needed(sh daemon.ShareStatus) ([]NeededFile, int, error) {
	var resp struct {
		Total int          `json:"total"`
		Files []NeededFile `json:"files"`
	}
	if err := a.call(http.MethodGet, sharePrefix(sh)+"/needed?limit=200", nil, &resp); err != nil {
		return nil, 0, err
	}
	return resp.Files, resp.Total, nil
}

// recorder is the http.ResponseWriter of an in-process API call.
type recorder struct {
	Code   int
	Body   bytes.Buffer
	header http.Header
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.Body.Write(b)
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.Code, r.wrote = code, true
	}
}
