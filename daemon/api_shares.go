package daemon

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/share"
)

// The shares endpoints: GET /v1/shares, POST /v1/shares, POST
// /v1/shares/{share}/remove. AddShare and RemoveShare do the work on a
// home's files; the daemon's handlers call them on its own home and then
// reload, and `share add|remove` call them directly only when no daemon
// runs.

// ShareEntry is one share of GET /v1/shares.
type ShareEntry struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Access string `json:"access"` // read-write, read-only, ...; "?" when the key does not parse
	Path   string `json:"path"`
}

// AddShareRequest is the body of POST /v1/shares.
type AddShareRequest struct {
	Path string `json:"path"`           // absolute: the daemon's working folder is not the caller's
	Name string `json:"name,omitempty"` // default: the folder's name
}

// RemovedShare is what POST /v1/shares/{share}/remove answers.
type RemovedShare struct {
	ShareEntry
	// Around are the shares whose folder holds the removed one's: they
	// sync its files from now on, to their own members.
	Around []ShareEntry `json:"around"`
	// HooksRemoved counts the [[hook]]s of this share that went with it.
	HooksRemoved int `json:"hooks_removed"`
	// Warning is set when the folder could not be unmarked as a share
	// root (a share around it keeps skipping it).
	Warning string `json:"warning,omitempty"`
	// KeyringRecord is set when the share's record left this device's
	// keyring: the person's other devices stop following it (keyring.go).
	KeyringRecord bool `json:"keyring_record_removed,omitempty"`
	// KeyringHolders names the other devices of this device's keyring that
	// are members of the share too: one that follows it from the keyring
	// leaves it; one that joined it on its own keeps it, and puts its
	// record back into the keyring (keyring.go).
	KeyringHolders []string `json:"keyring_holders,omitempty"`
}

// Shares lists home's shares.
func Shares(cfg *config.Config) []ShareEntry {
	out := []ShareEntry{}
	for _, s := range cfg.Shares {
		out = append(out, shareEntry(s))
	}
	return out
}

// AddShare makes the folder path (absolute) a new share of home, with a
// fresh secret. Refused: a path that is not a folder, and what
// CheckSharePath refuses.
func AddShare(home string, req AddShareRequest) (ShareEntry, error) {
	path := req.Path
	if !filepath.IsAbs(path) {
		return ShareEntry{}, fmt.Errorf("%w: share add: path %q is not absolute", errBadRequest, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return ShareEntry{}, fmt.Errorf("%w: share add: %v: create the folder first", errBadRequest, err)
	}
	if !fi.IsDir() {
		return ShareEntry{}, fmt.Errorf("%w: share add: %s is not a folder", errBadRequest, path)
	}
	if err := CheckSharePath(home, path); err != nil {
		return ShareEntry{}, fmt.Errorf("%w: share add: %v", errBadRequest, err)
	}
	// Removed here before: a nested share boundary again.
	if err := index.UnmarkRemoved(path); err != nil {
		return ShareEntry{}, fmt.Errorf("share add: %w", err)
	}
	secret, err := share.NewSecret()
	if err != nil {
		return ShareEntry{}, err
	}
	key := share.FromSecret(secret)
	s := config.NewShare(key.ID().String(), path, key.String())
	if req.Name != "" {
		s.Name = req.Name
	}
	if err := EditConfig(home, func(cfg *config.Config) error { return cfg.AddShare(s) }); err != nil {
		return ShareEntry{}, fmt.Errorf("share add: %w", err)
	}
	return shareEntry(s), nil
}

// RemoveShare takes the share ref names out of home's configuration, with
// its open invitations and its hooks; its files and .blueshift folder stay.
func RemoveShare(home, ref string) (RemovedShare, error) {
	var out RemovedShare
	var peers []string
	err := EditConfig(home, func(cfg *config.Config) error {
		s, err := cfg.RemoveShare(ref)
		if err != nil {
			return err
		}
		out.ShareEntry, peers = shareEntry(s), s.Peers
		kept := cfg.Invites[:0]
		for _, in := range cfg.Invites {
			if in.Share != s.ID {
				kept = append(kept, in)
			}
		}
		cfg.Invites = kept
		n := len(cfg.Hooks)
		cfg.Hooks = slices.DeleteFunc(cfg.Hooks, func(h config.Hook) bool { return h.Share == s.ID || h.Share == s.Name })
		out.HooksRemoved = n - len(cfg.Hooks)
		for _, o := range cfg.Shares {
			if rel, err := filepath.Rel(o.Path, s.Path); err == nil && rel != "." && filepath.IsLocal(rel) {
				out.Around = append(out.Around, shareEntry(o))
			}
		}
		return nil
	})
	if err != nil {
		return RemovedShare{}, fmt.Errorf("share remove: %w", err)
	}
	// Its .blueshift folder stays (the versions in it are the user's
	// files) but no longer marks a nested share: a share around the
	// folder syncs it from now on, like any folder of its own.
	if err := index.MarkRemoved(out.Path); err != nil {
		out.Warning = fmt.Sprintf("%v; a share around %s keeps skipping it until %s is deleted",
			err, out.Path, filepath.Join(out.Path, ".blueshift"))
	}
	if out.Around == nil {
		out.Around = []ShareEntry{}
	}
	if out.KeyringRecord, out.KeyringHolders, err = dropRecord(home, out.ID, peers); err != nil {
		if out.Warning != "" {
			out.Warning += "; "
		}
		out.Warning += err.Error()
	}
	return out, nil
}

func shareEntry(s config.Share) ShareEntry {
	e := ShareEntry{ID: s.ID, Name: s.Name, Access: "?", Path: s.Path}
	if k, err := share.ParseKey(s.Key); err == nil {
		e.Access = k.Level().String()
	}
	return e
}

func (d *Daemon) apiShares(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Shares(d.config()))
}

func (d *Daemon) apiAddShare(w http.ResponseWriter, r *http.Request) {
	var req AddShareRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	e, err := AddShare(d.home, req)
	d.answerReloaded(w, e, err)
}

func (d *Daemon) apiRemoveShare(w http.ResponseWriter, r *http.Request) {
	d.keepRemoved(r.PathValue("share"))
	out, err := RemoveShare(d.home, r.PathValue("share"))
	d.answerReloaded(w, out, err)
}

// answerReloaded answers v once the daemon has applied the configuration
// an endpoint just changed, or err.
func (d *Daemon) answerReloaded(w http.ResponseWriter, v any, err error) {
	if err == nil {
		if rerr := d.Reload(); rerr != nil {
			err = fmt.Errorf("the configuration is saved, but the daemon did not apply it: %w", rerr)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
