package daemon

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/sync/apply"
)

// Versions is GET /v1/shares/{share}/versions[?path=P]: the kept versions
// of P (or of every path), newest first.
type Versions struct {
	Share string        `json:"share"`
	Files []FileVersion `json:"files"`
}

// FileVersion is one path and its kept versions.
type FileVersion struct {
	Path     string    `json:"path"`
	Versions []Version `json:"versions"`
}

// Version is one kept copy.
type Version struct {
	Time time.Time `json:"time"` // when it was replaced or deleted (UTC, whole seconds); what --at picks by
	Size int64     `json:"size"`
	File string    `json:"file"` // where it is kept, relative to the share
}

// Restore is POST /v1/shares/{share}/versions/restore. At zero restores
// the newest version; else the newest kept at or before At.
type Restore struct {
	Path string    `json:"path"`
	At   time.Time `json:"at,omitzero"`
}

// Restored answers it.
type Restored struct {
	Path    string  `json:"path"`
	Version Version `json:"version"`
}

// sharePath checks a share-relative path a request names: slash-separated,
// inside the share, not in its metadata folder.
func sharePath(p string) (record.Path, error) {
	clean := path.Clean(strings.TrimPrefix(p, "./"))
	switch {
	case p == "" || clean == ".":
		return "", fmt.Errorf("%w: no path given", errBadRequest)
	case path.IsAbs(p) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(p, "\\") || strings.ContainsRune(p, 0):
		return "", fmt.Errorf("%w: path %q is outside the share: name a file by its path inside the share", apply.ErrOutsideShare, p)
	case clean == record.MetaDir || strings.HasPrefix(clean, record.MetaDir+"/"):
		return "", fmt.Errorf("%w: path %q is in the share's own %s folder, which holds no user files", errBadRequest, p, record.MetaDir)
	}
	return record.Path(clean), nil
}

func (d *Daemon) apiVersions(w http.ResponseWriter, r *http.Request) {
	s, id, err := d.runningShareOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var p record.Path
	if q := r.URL.Query().Get("path"); q != "" {
		if p, err = sharePath(q); err != nil {
			writeError(w, err)
			return
		}
	}
	all, err := d.eng.Versions(r.Context(), id, p)
	if err != nil {
		writeError(w, err)
		return
	}
	out := Versions{Share: s.ID, Files: []FileVersion{}}
	for fp, vs := range all {
		if len(vs) == 0 {
			continue
		}
		fv := FileVersion{Path: string(fp)}
		for _, v := range vs {
			fv.Versions = append(fv.Versions, Version{Time: v.Time, Size: v.Size, File: v.Path})
		}
		out.Files = append(out.Files, fv)
	}
	slices.SortFunc(out.Files, func(a, b FileVersion) int { return strings.Compare(a.Path, b.Path) })
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) apiRestore(w http.ResponseWriter, r *http.Request) {
	_, id, err := d.runningShareOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req Restore
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	p, err := sharePath(req.Path)
	if err != nil {
		writeError(w, err)
		return
	}
	v, err := d.eng.RestoreVersion(r.Context(), id, p, req.At)
	if err != nil {
		writeError(w, err)
		return
	}
	d.log.Info("restored a version", "path", p, "version", v.Path)
	writeJSON(w, http.StatusOK, Restored{Path: string(p), Version: Version{Time: v.Time, Size: v.Size, File: v.Path}})
}
