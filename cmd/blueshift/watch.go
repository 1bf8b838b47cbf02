package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/blueshift-sync/blueshift/daemon"
)

// barWidth is the width of one progress bar, in characters.
const barWidth = 30

type watchOptions struct {
	watch, untilSynced, asJSON bool
	timeout                    time.Duration
}

// errSynced ends the event stream once every share is in sync.
var errSynced = errors.New("in sync")

// watchStatus prints every status update of the shares ref selects (all
// when empty): one line per share with a bar that moves with the bytes
// received, or, with asJSON, one JSON object per update. It runs until ctx
// ends, or with untilSynced until every share is in sync (nil), a share
// cannot get there, or the timeout (errors).
func watchStatus(ctx context.Context, cl *daemon.Client, ref string, o watchOptions, out io.Writer) error {
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	f, _ := out.(*os.File)
	tty := f != nil && term.IsTerminal(int(f.Fd()))
	bars := map[string]*progress{}
	drawn := 0
	var last daemon.Status
	enc := json.NewEncoder(out)
	err := cl.Events(ctx, func(ev daemon.Event) error {
		if ev.Status == nil {
			return nil
		}
		st := filterShares(*ev.Status, ref)
		last = st
		if ref != "" && len(st.Shares) == 0 {
			return fmt.Errorf("status: no share %q (`blueshift share list` shows the shares)", ref)
		}
		if o.asJSON {
			if err := enc.Encode(st); err != nil {
				return err
			}
		} else {
			if tty && drawn > 0 {
				fmt.Fprintf(out, "\x1b[%dA", drawn) // back up over the last drawing
			}
			drawn = 0
			for _, s := range st.Shares {
				p := bars[s.ID]
				if p == nil {
					p = &progress{startIn: s.BytesIn}
					bars[s.ID] = p
				}
				line := p.line(s)
				if tty {
					line = "\x1b[2K" + line
				}
				fmt.Fprintln(out, line)
				drawn++
			}
		}
		if !o.untilSynced {
			return nil
		}
		if why := cannotSync(st); why != "" {
			return errors.New(why)
		}
		if allSynced(st) {
			return errSynced
		}
		return nil
	}, daemon.EventStatus)
	switch {
	case errors.Is(err, errSynced):
		if !o.asJSON {
			fmt.Fprintln(out, "in sync")
		}
		return nil
	case err != nil:
		return fmt.Errorf("status --watch: %w", err)
	case o.untilSynced && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("status --until-synced: not in sync after %s: %s", o.timeout, whatIsLeft(last))
	}
	return nil
}

// allSynced: every share in sync, with a member connected when it has any.
func allSynced(st daemon.Status) bool {
	if len(st.Shares) == 0 {
		return false
	}
	for _, s := range st.Shares {
		if !s.InSync || (len(s.Members) > 0 && len(s.Peers) == 0) {
			return false
		}
	}
	return true
}

// cannotSync says why a share cannot come into sync without the user's
// help, or "".
func cannotSync(st daemon.Status) string {
	for _, s := range st.Shares {
		switch {
		case s.Paused:
			return fmt.Sprintf("share %s is paused: `blueshift resume %s` first", s.Name, s.Name)
		case s.Join != nil && s.Join.Refused != "":
			return fmt.Sprintf("share %s: the invitation was refused: %s", s.Name, s.Join.Refused)
		case s.DiskFull != nil:
			return fmt.Sprintf("share %s: %s", s.Name, s.Errors[0])
		case !s.Running && s.Join == nil:
			why := "not running"
			if len(s.Errors) > 0 {
				why = strings.Join(s.Errors, "; ")
			}
			return fmt.Sprintf("share %s cannot sync: %s", s.Name, why)
		}
	}
	return ""
}

func whatIsLeft(st daemon.Status) string {
	var parts []string
	for _, s := range st.Shares {
		if s.InSync {
			continue
		}
		p := fmt.Sprintf("%s needs %d items (%s)", s.Name, s.NeedItems, size(s.NeedBytes))
		if len(s.Members) > 0 && len(s.Peers) == 0 {
			p += ", no member connected"
		}
		if len(s.Errors) > 0 {
			p += ": " + s.Errors[len(s.Errors)-1]
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "no member connected to compare with"
	}
	return strings.Join(parts, "; ") + " (`blueshift ls-needed SHARE` says why)"
}

// progress is one share's bar: its total is the most bytes seen needed
// since the watch began, its value the bytes received since then (or what
// is no longer needed, if more: files built from local copies).
type progress struct {
	startIn int64
	most    int64
}

func (p *progress) line(s daemon.ShareStatus) string {
	p.most = max(p.most, s.NeedBytes)
	done := min(p.most, max(s.BytesIn-p.startIn, p.most-s.NeedBytes))
	frac := 1.0
	if p.most > 0 && !s.InSync {
		frac = float64(done) / float64(p.most)
	}
	if s.NeedBytes == 0 && s.InSync {
		frac = 1
	}
	full := int(frac * barWidth)
	bar := strings.Repeat("#", full) + strings.Repeat("-", barWidth-full)
	state := "syncing"
	switch {
	case s.Paused:
		state = "paused"
	case s.InSync && (len(s.Members) == 0 || len(s.Peers) > 0):
		state = "in sync"
	case len(s.Members) > 0 && len(s.Peers) == 0:
		state = "no member connected"
	case s.DiskFull != nil:
		state = "disk full"
	}
	return fmt.Sprintf("%-16s [%s] %3.0f%% %s of %s, %d items left, %s/s, ETA %s  %s",
		s.Name, bar, frac*100, size(done), size(p.most), s.NeedItems, size(int64(s.RateIn)), eta(s), state)
}

// eta is how long the share's needed bytes take at its rate.
func eta(s daemon.ShareStatus) string {
	switch {
	case s.NeedBytes == 0:
		return "-"
	case s.ETASeconds < 0:
		return "?"
	}
	return (time.Duration(s.ETASeconds) * time.Second).Round(time.Second).String()
}
