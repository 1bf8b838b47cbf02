package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/sync/apply"
	"github.com/blueshift-sync/blueshift/sync/engine"
)

// errNoConflict: a resolve named a path with no conflict copy.
var errNoConflict = errors.New("no conflict")

// Conflicts is GET /v1/conflicts (every running share) and GET
// /v1/shares/{share}/conflicts.
type Conflicts struct {
	Conflicts []Conflict `json:"conflicts"`
}

// Conflict is one conflict copy beside the path it lost to: both versions
// with their devices (by name, and the ID when this device knows it).
type Conflict struct {
	Share     string      `json:"share"`
	ShareName string      `json:"share_name"`
	Path      string      `json:"path"` // share-relative
	Copy      string      `json:"copy"`
	Original  SideVersion `json:"original"` // at Path: the version that won
	Conflict  SideVersion `json:"conflict"` // at Copy: the version set aside
}

// SideVersion is one of a conflict's two versions.
type SideVersion struct {
	Exists   bool      `json:"exists"`
	Device   string    `json:"device"`              // the device's name
	DeviceID string    `json:"device_id,omitempty"` // its ID, when known
	Mine     bool      `json:"mine"`                // made by this device
	Time     time.Time `json:"time"`                // modification time
	Size     int64     `json:"size"`
}

// Resolve is POST /v1/shares/{share}/conflicts/resolve. Path is the
// original's path or the copy's; Copy picks one copy when a path has
// several. Keep is "mine" (this device's version), "theirs" (the other
// device's), "original", "copy" or "both" (the copy stays under a plain
// name, "NAME (DEVICE).EXT").
type Resolve struct {
	Path string `json:"path"`
	Copy string `json:"copy,omitempty"`
	Keep string `json:"keep"`
}

func (d *Daemon) apiConflicts(w http.ResponseWriter, r *http.Request) {
	out := Conflicts{Conflicts: []Conflict{}}
	cfg := d.config()
	shares := cfg.Shares
	if r.PathValue("share") != "" {
		s, _, err := d.runningShareOf(r)
		if err != nil {
			writeError(w, err)
			return
		}
		shares = shares[:0:0]
		shares = append(shares, s)
	}
	for _, s := range shares {
		cs, err := d.shareConflicts(r, s.ID, s.Name, s.Path)
		if errors.Is(err, engine.ErrUnknownShare) {
			continue // paused or not started: nothing to say of it now
		}
		if err != nil {
			writeError(w, err)
			return
		}
		out.Conflicts = append(out.Conflicts, cs...)
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) shareConflicts(r *http.Request, shareID, name, dir string) ([]Conflict, error) {
	id, err := parseShareID(shareID)
	if err != nil {
		return nil, err
	}
	cs, err := d.eng.Conflicts(r.Context(), id)
	if err != nil {
		return nil, err
	}
	out := make([]Conflict, 0, len(cs))
	for _, c := range cs {
		out = append(out, d.describeConflict(shareID, name, dir, c))
	}
	return out, nil
}

// describeConflict fills both sides: the original's device from its record
// in the index, the copy's from its name.
func (d *Daemon) describeConflict(shareID, name, dir string, c apply.Conflict) Conflict {
	id, _ := parseShareID(shareID)
	out := Conflict{Share: shareID, ShareName: name, Path: string(c.Path), Copy: string(c.Copy)}
	self := engine.SafeDeviceName(d.ownName())
	out.Conflict = SideVersion{Device: c.Device, Time: c.Time}
	if fi, err := os.Lstat(fsPath(dir, c.Copy)); err == nil {
		out.Conflict.Exists, out.Conflict.Size = true, fi.Size()
	}
	if c.Device == self {
		out.Conflict.Mine, out.Conflict.DeviceID = true, d.self.String()
	} else if pid, ok := d.deviceByName(c.Device); ok {
		out.Conflict.DeviceID = pid.String()
	}
	if fi, err := os.Lstat(fsPath(dir, c.Path)); err == nil {
		out.Original.Exists, out.Original.Size, out.Original.Time = true, fi.Size(), fi.ModTime().UTC()
	}
	if rec, ok, err := d.eng.LocalRecord(id, c.Path); err == nil && ok {
		out.Original.Device = d.deviceName(rec.ModifiedBy)
		if pid, ok := d.deviceByShort(rec.ModifiedBy); ok {
			out.Original.DeviceID = pid.String()
			out.Original.Mine = pid == d.self
		}
	}
	return out
}

func (d *Daemon) apiResolve(w http.ResponseWriter, r *http.Request) {
	s, id, err := d.runningShareOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var req Resolve
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	p, err := sharePath(req.Path)
	if err != nil {
		writeError(w, err)
		return
	}
	cs, err := d.eng.Conflicts(r.Context(), id)
	if err != nil {
		writeError(w, err)
		return
	}
	var match []apply.Conflict
	for _, c := range cs {
		if (c.Path == p || c.Copy == p) && (req.Copy == "" || string(c.Copy) == req.Copy) {
			match = append(match, c)
		}
	}
	switch {
	case len(match) == 0:
		writeError(w, fmt.Errorf("%w: %q in share %s has no conflict copy (`blueshift conflicts list` shows them)", errNoConflict, p, s.Name))
		return
	case len(match) > 1:
		writeError(w, fmt.Errorf("%w: %q has %d conflict copies: name the copy to resolve (its path, or \"copy\")", errBadRequest, p, len(match)))
		return
	}
	c := match[0]
	desc := d.describeConflict(s.ID, s.Name, s.Path, c)
	var keep apply.ResolveKeep
	switch req.Keep {
	case "original":
		keep = apply.KeepOriginal
	case "copy":
		keep = apply.KeepCopy
	case "both":
		keep = apply.KeepBoth
	case "mine", "theirs":
		// The copy is named by the device whose version lost: it is mine
		// when that device is this one.
		copyMine := desc.Conflict.Mine
		if copyMine == (req.Keep == "mine") {
			keep = apply.KeepCopy
		} else {
			keep = apply.KeepOriginal
		}
	default:
		writeError(w, fmt.Errorf("%w: keep %q: say mine, theirs or both", errBadRequest, req.Keep))
		return
	}
	if err := d.eng.ResolveConflict(r.Context(), id, c, keep); err != nil {
		writeError(w, err)
		return
	}
	d.log.Info("resolved a conflict", "share", s.Name, "path", c.Path, "copy", c.Copy, "keep", req.Keep)
	writeJSON(w, http.StatusOK, desc)
}

// ownName is this device's name: [device] name, else the host name.
func (d *Daemon) ownName() string {
	if n := d.config().Device.Name; n != "" {
		return n
	}
	n, _ := os.Hostname()
	return n
}

// deviceName is the engine's Options.DeviceName: the name of the device
// whose short ID is short, "" when unknown.
func (d *Daemon) deviceName(short record.Device) string {
	if short == d.self.Short() {
		return d.ownName()
	}
	if id, ok := d.deviceByShort(short); ok {
		if n := d.configPeerName(id); n != "" {
			return n
		}
		for _, c := range d.peers.Connected() {
			if c.Device == id {
				return c.Name
			}
		}
	}
	return ""
}

func (d *Daemon) deviceByShort(short record.Device) (identity.DeviceID, bool) {
	if short == d.self.Short() {
		return d.self, true
	}
	for _, p := range d.config().Peers {
		if id, err := identity.ParseDeviceID(p.ID); err == nil && id.Short() == short {
			return id, true
		}
	}
	return identity.DeviceID{}, false
}

// deviceByName finds the peer whose name, as a conflict copy spells it, is
// name: a [[peer]] name, or the name a connected peer gave in its Hello.
func (d *Daemon) deviceByName(name string) (identity.DeviceID, bool) {
	for _, p := range d.config().Peers {
		if engine.SafeDeviceName(p.Name) == name {
			if id, err := identity.ParseDeviceID(p.ID); err == nil {
				return id, true
			}
		}
	}
	for _, c := range d.peers.Connected() {
		if engine.SafeDeviceName(c.Name) == name {
			return c.Device, true
		}
	}
	return identity.DeviceID{}, false
}

func fsPath(dir string, p record.Path) string {
	return filepath.Join(dir, filepath.FromSlash(string(p)))
}

func parseShareID(s string) (share.ID, error) { return share.ParseID(s) }
