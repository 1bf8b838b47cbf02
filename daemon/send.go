package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
)

// A one-off send is a share made for one transfer. `blueshift send PATH...`
// stages the paths in a hidden folder beside the first one (hard links, so
// nothing is copied on the same file system), makes it a share, and invites
// to it read-only and single-use, with a short code: the code's PAKE
// (code.go) is the only secret that travels. `blueshift receive CODE DIR`
// joins by that code into a hidden folder in DIR, syncs like any share
// (content-addressed blocks, checked against their hashes, resumable after
// a kill: temps are kept and the share is found again in the
// configuration), and when it holds the sender's whole tree moves the items
// into DIR and leaves the share. The sender sees the receiver in sync and
// ends the share too; a send nobody received ends at its expiry
// (SweepSends). Re-running `send` with the same paths while the offer is
// open, or after its receiver joined, prints the same code, so a killed
// sender resumes where it stopped.
const (
	sendPrefix    = ".blueshift-send-"
	receivePrefix = ".blueshift-receive-"
	// DefaultSendExpiry is how long a send is offered when not told.
	DefaultSendExpiry = time.Hour
)

// SendOptions tune StartSend.
type SendOptions struct {
	Expires time.Duration // 0: DefaultSendExpiry
	// Addresses are where the receiver may reach this device; empty: from
	// the configuration (as for invitations).
	Addresses []string
	Now       time.Time // zero: time.Now
}

// Send is an open send.
type Send struct {
	ShareID string    `json:"share"`
	Stage   string    `json:"stage"` // the hidden folder the share syncs
	Code    string    `json:"code"`
	Link    string    `json:"link"`
	Expires time.Time `json:"expires"`
	Files   int       `json:"files"`
	Bytes   int64     `json:"bytes"`
	Resumed bool      `json:"resumed"` // an open send of the same paths was found
}

// StartSend offers paths (files or folders) for one receipt: see above.
func StartSend(home string, paths []string, opts SendOptions) (Send, error) {
	if len(paths) == 0 {
		return Send{}, errors.New("send: name at least one file or folder")
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.Expires == 0 {
		opts.Expires = DefaultSendExpiry
	}
	if opts.Expires < 0 {
		return Send{}, fmt.Errorf("send: an expiry of %s is in the past: give a positive duration like 1h", opts.Expires)
	}
	abs := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return Send{}, fmt.Errorf("send %s: %w", p, err)
		}
		if _, err := os.Lstat(a); err != nil {
			return Send{}, fmt.Errorf("send %s: %w", p, err)
		}
		h, err := resolve(home)
		if err != nil {
			return Send{}, err
		}
		if r, err := resolve(a); err == nil && (r == h || within(r, h) || within(h, r)) {
			return Send{}, fmt.Errorf("send %s: it is or holds this device's home %s (device.key and the share secrets): %w", p, h, ErrUnsafeShare)
		}
		abs[i] = a
	}
	if s, ok := openSend(home, abs, opts.Now); ok {
		files, bytes, err := stage(s.Stage, abs) // files may have been added or changed since
		if err != nil {
			return Send{}, err
		}
		s.Files, s.Bytes, s.Resumed = files, bytes, true
		return s, nil
	}

	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Send{}, err
	}
	dir := filepath.Join(filepath.Dir(abs[0]), sendPrefix+hex.EncodeToString(rnd[:]))
	if err := CheckSharePath(home, dir); err != nil {
		return Send{}, fmt.Errorf("send: %w", err)
	}
	files, bytes, err := stage(dir, abs)
	if err != nil {
		os.RemoveAll(dir)
		return Send{}, err
	}
	secret, err := share.NewSecret()
	if err != nil {
		os.RemoveAll(dir)
		return Send{}, err
	}
	key := share.FromSecret(secret)
	until := opts.Now.Add(opts.Expires).Truncate(time.Second).UTC()
	s := config.NewShare(key.ID().String(), dir, key.String())
	s.Name = "send-" + hex.EncodeToString(rnd[:3])
	s.SendUntil, s.SendPaths = until, abs
	if err := EditConfig(home, func(c *config.Config) error { return c.AddShare(s) }); err != nil {
		os.RemoveAll(dir)
		return Send{}, err
	}
	l, code, err := Invite(home, s.ID, InviteOptions{ReadOnly: true, SingleUse: true, Expires: opts.Expires, Addresses: opts.Addresses, Now: opts.Now})
	if err != nil {
		FinishSend(home, s.ID)
		return Send{}, err
	}
	err = EditConfig(home, func(c *config.Config) error {
		found, err := c.FindShare(s.ID)
		if err != nil {
			return err
		}
		found.SendCode = code
		return nil
	})
	if err != nil {
		FinishSend(home, s.ID)
		return Send{}, err
	}
	return Send{ShareID: s.ID, Stage: dir, Code: code, Link: l.String(), Expires: until, Files: files, Bytes: bytes}, nil
}

// openSend finds an unexpired send of exactly paths whose code is open,
// or that its receiver joined already (the single-use code is spent, the
// transfer goes on: a sender killed midway resumes it).
func openSend(home string, paths []string, now time.Time) (Send, bool) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return Send{}, false
	}
	for _, s := range cfg.Shares {
		if s.SendUntil.IsZero() || !s.SendUntil.After(now) || !slices.Equal(s.SendPaths, paths) {
			continue
		}
		for _, in := range cfg.Invites {
			if in.Share == s.ID && in.Code != "" && in.Expires.After(now) {
				return Send{ShareID: s.ID, Stage: s.Path, Code: in.Code, Link: in.Link, Expires: s.SendUntil}, true
			}
		}
		if s.SendCode != "" && len(s.Peers) > 0 {
			return Send{ShareID: s.ID, Stage: s.Path, Code: s.SendCode, Expires: s.SendUntil}, true
		}
	}
	return Send{}, false
}

// stage puts each path into dir under its base name: regular files as
// hard links (a copy where the file system refuses one), folders as
// folders, symlinks as symlinks. It returns the regular files and their
// bytes.
func stage(dir string, paths []string) (files int, bytes int64, err error) {
	// Its .blueshift folder first: a share around the staging folder then
	// takes it for a nested share from the moment anything is in it, and
	// never syncs the staged files (paths from outside it among them) to
	// its own members while the send's share is being added.
	if err := os.MkdirAll(filepath.Join(dir, record.MetaDir), 0o700); err != nil {
		return 0, 0, fmt.Errorf("send: make the staging folder %s: %w", dir, err)
	}
	seen := map[string]string{}
	for _, src := range paths {
		name := filepath.Base(src)
		if prev, ok := seen[name]; ok {
			return 0, 0, fmt.Errorf("send: %s and %s have the same name %q: send them separately or from one folder", prev, src, name)
		}
		seen[name] = src
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == record.MetaDir {
				return filepath.SkipDir // a share's own metadata is never sent
			}
			dst := filepath.Join(dir, name, rel)
			switch {
			case d.IsDir():
				return os.MkdirAll(dst, 0o755)
			case d.Type()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return err
				}
				if cur, err := os.Readlink(dst); err == nil && cur == target {
					return nil
				}
				os.Remove(dst)
				return os.Symlink(target, dst)
			case d.Type().IsRegular():
				fi, err := d.Info()
				if err != nil {
					return err
				}
				files++
				bytes += fi.Size()
				if di, err := os.Lstat(dst); err == nil && os.SameFile(fi, di) {
					return nil
				}
				os.Remove(dst)
				if err := os.Link(p, dst); err == nil {
					return nil
				}
				return copyFile(p, dst, fi.Mode().Perm())
			}
			return nil // devices, sockets, pipes: not files to send
		})
		if err != nil {
			return 0, 0, fmt.Errorf("send %s: %w", src, err)
		}
	}
	return files, bytes, nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// FinishSend ends a send: its share and invitation leave the
// configuration, a receiver paired only for it is forgotten, and the
// staging folder (links to the user's files, never the files themselves)
// is removed.
func FinishSend(home, shareID string) error {
	var dir string
	err := EditConfig(home, func(c *config.Config) error {
		s, err := c.FindShare(shareID)
		if err != nil {
			return nil // already ended
		}
		if s.SendUntil.IsZero() {
			return fmt.Errorf("finish send: share %q is not a send", s.Name)
		}
		dir = s.Path
		forgetShare(c, s.ID)
		return nil
	})
	if err != nil || dir == "" {
		return err
	}
	if !strings.HasPrefix(filepath.Base(dir), sendPrefix) {
		return fmt.Errorf("finish send: %s is not a staging folder; left as it is", dir)
	}
	return os.RemoveAll(dir)
}

// forgetShare removes share id, its invitations, and the peers that were
// members of it and of no other share.
func forgetShare(c *config.Config, id string) {
	s, err := c.RemoveShare(id)
	if err != nil {
		return
	}
	c.Invites = slices.DeleteFunc(c.Invites, func(in config.Invite) bool { return in.Share == id })
	for _, p := range s.Peers {
		if !slices.ContainsFunc(c.Shares, func(o config.Share) bool { return slices.Contains(o.Peers, p) }) {
			c.RemovePeer(p)
		}
	}
}

// SweepSends ends the sends whose offer expired; it returns how many.
func SweepSends(home string, now time.Time) (int, error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, s := range cfg.Shares {
		if !s.SendUntil.IsZero() && !s.SendUntil.After(now) {
			if err := FinishSend(home, s.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			n++
		}
	}
	return n, errors.Join(errs...)
}

// sweepEvery is how often a running daemon ends expired sends.
const sweepEvery = 30 * time.Second

// sweepSends ends expired sends now and every sweepEvery until ctx ends.
func (d *Daemon) sweepSends(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		n, err := SweepSends(d.home, time.Now())
		if err != nil {
			d.log.Warn("end expired sends", "err", err)
		}
		if n > 0 {
			d.log.Info("sends expired without a receiver; offers withdrawn", "sends", n)
			if err := d.Reload(); err != nil {
				d.log.Warn("reload after ending sends", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Receive is a receive in progress.
type Receive struct {
	ShareID string `json:"share"`
	Stage   string `json:"stage"` // the hidden folder the share syncs into
	Into    string `json:"into"`  // where the items go when complete
	Inviter string `json:"from"`
	Resumed bool   `json:"resumed"` // a receive into the same folder was found and goes on
}

// StartReceive joins the send a code stands for into a hidden folder of
// dir, or finds the receive into dir a killed run left and goes on with it.
func StartReceive(ctx context.Context, home, code, dir string, opts CodeJoinOptions) (Receive, error) {
	into, err := filepath.Abs(dir)
	if err != nil {
		return Receive{}, err
	}
	if fi, err := os.Stat(into); err != nil || !fi.IsDir() {
		return Receive{}, fmt.Errorf("receive into %s: not a folder (%v); create it first", dir, err)
	}
	if cfg, err := LoadConfig(home); err == nil {
		for _, s := range cfg.Shares {
			if s.ReceiveInto == into {
				return Receive{ShareID: s.ID, Stage: s.Path, Into: into, Inviter: s.JoinFrom, Resumed: true}, nil
			}
		}
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Receive{}, err
	}
	stageDir := filepath.Join(into, receivePrefix+hex.EncodeToString(rnd[:]))
	// Marked as a share's folder before anything arrives (see stage), so a
	// share around DIR does not sync a half-received send to its members.
	if err := os.MkdirAll(filepath.Join(stageDir, record.MetaDir), 0o700); err != nil {
		return Receive{}, fmt.Errorf("receive: make the staging folder in %s: %w", into, err)
	}
	res, err := JoinByCode(ctx, home, code, stageDir, opts)
	if err != nil {
		os.RemoveAll(stageDir) // a fresh name: nothing of the user's is in it
		return Receive{}, err
	}
	err = EditConfig(home, func(c *config.Config) error {
		s, err := c.FindShare(res.ShareID)
		if err != nil {
			return err
		}
		s.ReceiveInto = into
		s.Name = "receive-" + hex.EncodeToString(rnd[:3])
		return nil
	})
	if err != nil {
		return Receive{}, err
	}
	return Receive{ShareID: res.ShareID, Stage: stageDir, Into: into, Inviter: res.Inviter}, nil
}

// FinishReceive ends a complete receive: the share leaves the
// configuration (and the sender, if paired only for it), and each item the
// staging folder holds moves into the receive folder, under a new name
// ("NAME (2).EXT") where that name is taken. It returns the paths made.
func FinishReceive(home, shareID string) ([]string, error) {
	var s config.Share
	err := EditConfig(home, func(c *config.Config) error {
		found, err := c.FindShare(shareID)
		if err != nil {
			return err
		}
		if found.ReceiveInto == "" {
			return fmt.Errorf("finish receive: share %q is not a receive", found.Name)
		}
		s = *found
		forgetShare(c, s.ID)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(filepath.Base(s.Path), receivePrefix) {
		return nil, fmt.Errorf("finish receive: %s is not a staging folder; left as it is", s.Path)
	}
	entries, err := os.ReadDir(s.Path)
	if err != nil {
		return nil, fmt.Errorf("finish receive: %w", err)
	}
	var made []string
	for _, e := range entries {
		if e.Name() == record.MetaDir {
			continue
		}
		dst := freeName(s.ReceiveInto, e.Name())
		if err := os.Rename(filepath.Join(s.Path, e.Name()), dst); err != nil {
			return made, fmt.Errorf("finish receive: move %s into %s: %w; what was received stays in %s", e.Name(), s.ReceiveInto, err, s.Path)
		}
		made = append(made, dst)
	}
	return made, os.RemoveAll(s.Path)
}

// freeName returns dir/name, or dir/"NAME (N).EXT" for the first N that
// is not taken.
func freeName(dir, name string) string {
	p := filepath.Join(dir, name)
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return p
	}
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for n := 2; ; n++ {
		p = filepath.Join(dir, base+" ("+strconv.Itoa(n)+")"+ext)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			return p
		}
	}
}
