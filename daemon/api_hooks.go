package daemon

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/config"
)

// The hooks' endpoints: GET /v1/hooks, POST /v1/hooks, POST
// /v1/hooks/{n}/remove. Hooks added by verb live in config.toml's [[hook]]
// tables, beside those the user wrote: one list, numbered from 1 in file
// order. AddHook and RemoveHook edit a home's configuration; the daemon's
// handlers call them on its home and reload, `hook add|remove` call them
// directly only when no daemon runs.

// HookEntry is one hook of GET /v1/hooks.
type HookEntry struct {
	N         int      `json:"n"`     // its number, for POST /v1/hooks/{n}/remove
	Share     string   `json:"share"` // share ID, or "*" (or empty): every share
	ShareName string   `json:"share_name,omitempty"`
	Event     string   `json:"event"`
	Command   []string `json:"command"`
	Timeout   string   `json:"timeout,omitempty"` // "30s"; absent: the default
}

// AddHookRequest is the body of POST /v1/hooks.
type AddHookRequest struct {
	Share   string   `json:"share"` // ID, name, or "*"
	Event   string   `json:"event"` // one of config.HookEvents, or "*"
	Command []string `json:"command"`
	Timeout string   `json:"timeout,omitempty"` // a Go duration; absent: the default
}

// Hooks lists cfg's hooks, numbered from 1.
func Hooks(cfg *config.Config) []HookEntry {
	out := []HookEntry{}
	for i, h := range cfg.Hooks {
		e := HookEntry{N: i + 1, Share: h.Share, Event: h.Event, Command: h.Command}
		if s, err := cfg.FindShare(h.Share); err == nil {
			e.ShareName = s.Name
		}
		if h.Timeout.Duration != 0 {
			b, _ := h.Timeout.MarshalText()
			e.Timeout = string(b)
		}
		out = append(out, e)
	}
	return out
}

// AddHook appends a hook to home's configuration. The share is stored by
// ID, so renaming it keeps the hook.
func AddHook(home string, req AddHookRequest) (HookEntry, error) {
	if req.Event != "*" && !slices.Contains(config.HookEvents, req.Event) {
		return HookEntry{}, fmt.Errorf("%w: hook add: event %q is not one of %s or *", errBadRequest, req.Event, strings.Join(config.HookEvents, ", "))
	}
	if len(req.Command) == 0 || req.Command[0] == "" {
		return HookEntry{}, fmt.Errorf("%w: hook add: give the command to run", errBadRequest)
	}
	var timeout time.Duration
	if req.Timeout != "" {
		t, err := time.ParseDuration(req.Timeout)
		if err != nil || t < 0 {
			return HookEntry{}, fmt.Errorf("%w: hook add: timeout %q: give a positive duration like 30s", errBadRequest, req.Timeout)
		}
		timeout = t
	}
	h := config.Hook{Share: strings.TrimSpace(req.Share), Event: req.Event, Command: req.Command, Timeout: config.Duration{Duration: timeout}}
	var out HookEntry
	err := EditConfig(home, func(cfg *config.Config) error {
		if h.Share != "*" {
			s, err := cfg.FindShare(h.Share)
			if err != nil {
				return err
			}
			h.Share = s.ID
		}
		cfg.Hooks = append(cfg.Hooks, h)
		out = Hooks(cfg)[len(cfg.Hooks)-1]
		return nil
	})
	if err != nil {
		return HookEntry{}, fmt.Errorf("hook add: %w", err)
	}
	return out, nil
}

// RemoveHook removes hook n (numbered from 1, as Hooks numbers them).
func RemoveHook(home string, n int) (HookEntry, error) {
	var out HookEntry
	err := EditConfig(home, func(cfg *config.Config) error {
		if n < 1 || n > len(cfg.Hooks) {
			return fmt.Errorf("%w: there are %d hooks, no number %d (see `blueshift hook list`)", config.ErrNotFound, len(cfg.Hooks), n)
		}
		out = Hooks(cfg)[n-1]
		cfg.Hooks = slices.Delete(cfg.Hooks, n-1, n)
		return nil
	})
	if err != nil {
		return HookEntry{}, fmt.Errorf("hook remove: %w", err)
	}
	return out, nil
}

func (d *Daemon) apiHooks(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, Hooks(d.config()))
}

func (d *Daemon) apiAddHook(w http.ResponseWriter, r *http.Request) {
	var req AddHookRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	e, err := AddHook(d.home, req)
	d.answerReloaded(w, e, err)
}

func (d *Daemon) apiRemoveHook(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil {
		writeError(w, fmt.Errorf("%w: %q is not a hook number (see `blueshift hook list`)", errBadRequest, r.PathValue("n")))
		return
	}
	e, err := RemoveHook(d.home, n)
	d.answerReloaded(w, e, err)
}
