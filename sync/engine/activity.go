package engine

import (
	"context"
	"fmt"
	"log/slog"
	gosync "sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/blueshift-sync/blueshift/index/record"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// fileLogLines is how many per-file info lines a share logs per
// fileLogWindow; past it, files are only counted and summarised in one line
// at the end of the batch (or of the window), so a sync of 100,000 files does
// not write 100,000 lines.
const (
	fileLogLines  = 20
	fileLogWindow = time.Second
)

// minBurst is the smallest token bucket of a rate limit: a limit far below
// a block's size still lets one block through at a time, in pieces.
const minBurst = 64 << 10

// EventKind says what happened to a file.
type EventKind string

// The kinds of Event.
const (
	FileApplied  EventKind = "file_applied" // a peer's version of a file, folder or link is in place
	FileDeleted  EventKind = "file_deleted" // a peer's deletion is done here
	FileConflict EventKind = "conflict"     // a losing version was set aside as a conflict copy
)

// Event is one change a peer's record made on this device's disk, for the
// log, the control API's event stream and hooks. Options.OnEvent receives
// them from the share's puller: it must not block.
type Event struct {
	Kind      EventKind
	Time      time.Time
	Share     share.ID
	ShareName string
	Path      record.Path
	Copy      record.Path // FileConflict: where the losing version went
	Peer      identity.DeviceID
	Bytes     int64 // the file's size (data, not holes)
}

// activity is a folder's transfer counters, rate limits and file log.
type activity struct {
	recv atomic.Int64 // block and inline bytes received for this share
	sent atomic.Int64 // block bytes served for this share

	mu struct {
		gosync.Mutex
		sendLimit, recvLimit *rate.Limiter // guarded by mu; nil: no limit
		windowStart          time.Time     // guarded by mu: start of the current log window
		lines                int           // guarded by mu: lines logged in the window
		quiet                map[EventKind]quietCount
	}
}

type quietCount struct {
	files int
	bytes int64
}

// SetRates changes the device-wide limits, in bytes per second, on block
// data sent to and received from all peers together; 0: no limit. It takes
// effect at once, pulls under way included.
func (e *Engine) SetRates(send, recv int64) {
	e.rates.mu.Lock()
	e.rates.mu.send, e.rates.mu.recv = newLimiter(send, e.rates.mu.send), newLimiter(recv, e.rates.mu.recv)
	e.rates.mu.Unlock()
}

// SetShareRates changes one share's limits (as SetRates); the device's
// limits apply too.
func (e *Engine) SetShareRates(id share.ID, send, recv int64) error {
	f := e.folder(id)
	if f == nil {
		return fmt.Errorf("set rates of share %s: %w", id, ErrUnknownShare)
	}
	f.act.mu.Lock()
	f.act.mu.sendLimit, f.act.mu.recvLimit = newLimiter(send, f.act.mu.sendLimit), newLimiter(recv, f.act.mu.recvLimit)
	f.act.mu.Unlock()
	return nil
}

// deviceRates are the engine-wide limits.
type deviceRates struct {
	mu struct {
		gosync.Mutex
		send, recv *rate.Limiter // guarded by mu; nil: no limit
	}
}

// newLimiter returns a limiter of bytesPerSec, reusing old (so waits under
// way see the new rate), or nil for no limit.
func newLimiter(bytesPerSec int64, old *rate.Limiter) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := int(max(bytesPerSec, minBurst))
	if old != nil {
		old.SetLimit(rate.Limit(bytesPerSec))
		old.SetBurst(burst)
		return old
	}
	l := rate.NewLimiter(rate.Limit(bytesPerSec), burst)
	l.AllowN(time.Now(), burst) // start empty: the limit holds from the first byte
	return l
}

// received counts n bytes that came from s for this folder (the session's
// and the folder's counters) and waits until the receive rate limits have
// room for them.
func (f *folder) received(ctx context.Context, s *Session, n int) error {
	s.countIn(n)
	f.act.recv.Add(int64(n))
	return f.waitRecv(ctx, n)
}

// waitRecv waits until n more bytes of f may be received; waitSend, sent.
func (f *folder) waitRecv(ctx context.Context, n int) error {
	f.e.rates.mu.Lock()
	dev := f.e.rates.mu.recv
	f.e.rates.mu.Unlock()
	f.act.mu.Lock()
	own := f.act.mu.recvLimit
	f.act.mu.Unlock()
	return waitBytes(ctx, n, dev, own)
}

func (f *folder) waitSend(ctx context.Context, n int) error {
	f.e.rates.mu.Lock()
	dev := f.e.rates.mu.send
	f.e.rates.mu.Unlock()
	f.act.mu.Lock()
	own := f.act.mu.sendLimit
	f.act.mu.Unlock()
	return waitBytes(ctx, n, dev, own)
}

// waitBytes takes n tokens from each limiter, in pieces no larger than its
// burst.
func waitBytes(ctx context.Context, n int, limiters ...*rate.Limiter) error {
	for _, l := range limiters {
		if l == nil {
			continue
		}
		for left := n; left > 0; {
			piece := min(left, l.Burst())
			if err := l.WaitN(ctx, piece); err != nil {
				return err
			}
			left -= piece
		}
	}
	return nil
}

// noteFile logs one applied, deleted or conflicted file (at most
// fileLogLines a window, the rest counted for summarise) and hands it to
// Options.OnEvent.
func (f *folder) noteFile(ev Event) {
	ev.Time, ev.Share, ev.ShareName = f.e.clock(), f.id, f.cfg.Name
	f.act.mu.Lock()
	if ev.Time.Sub(f.act.mu.windowStart) >= fileLogWindow {
		f.summariseLocked()
		f.act.mu.windowStart, f.act.mu.lines = ev.Time, 0
	}
	logIt := f.act.mu.lines < fileLogLines
	if logIt {
		f.act.mu.lines++
	} else {
		if f.act.mu.quiet == nil {
			f.act.mu.quiet = make(map[EventKind]quietCount)
		}
		q := f.act.mu.quiet[ev.Kind]
		q.files++
		q.bytes += ev.Bytes
		f.act.mu.quiet[ev.Kind] = q
	}
	f.act.mu.Unlock()
	if logIt {
		attrs := []any{"path", ev.Path, "peer", peerName(ev.Peer), "bytes", ev.Bytes}
		switch ev.Kind {
		case FileApplied:
			f.log.Info("file applied", attrs...)
		case FileDeleted:
			f.log.Info("file deleted", attrs...)
		case FileConflict:
			f.log.Info("conflict: kept the losing copy", append(attrs, "copy", ev.Copy)...)
		}
	}
	if f.e.opts.OnEvent != nil {
		f.e.opts.OnEvent(ev)
	}
}

// summarise logs one line per kind of what noteFile did not log since the
// last summary.
func (f *folder) summarise() {
	f.act.mu.Lock()
	defer f.act.mu.Unlock()
	f.summariseLocked()
}

func (f *folder) summariseLocked() {
	for kind, q := range f.act.mu.quiet {
		f.log.LogAttrs(context.Background(), slog.LevelInfo, "more files not logged one by one",
			slog.String("event", string(kind)), slog.Int("files", q.files), slog.Int64("bytes", q.bytes))
	}
	clear(f.act.mu.quiet)
}

// noteApplied is noteFile for a record settled without error.
func (f *folder) noteApplied(in incoming) {
	kind := FileApplied
	if in.rec.Deleted {
		kind = FileDeleted
	}
	size := in.rec.Size
	if in.rec.Deleted || in.rec.Kind != record.File {
		size = 0
	}
	f.noteFile(Event{Kind: kind, Path: in.rec.Path, Peer: in.from, Bytes: size})
}

// deviceName names device d in a conflict copy: its name as
// Options.DeviceName knows it, made safe for a file name, else its short ID.
func (e *Engine) deviceName(d record.Device) string {
	if e.opts.DeviceName != nil {
		if n := SafeDeviceName(e.opts.DeviceName(d)); n != "" {
			return n
		}
	}
	return deviceName(d)
}

// SafeDeviceName keeps letters, digits, '-' and '_' of name (a run of others
// becomes one '-'), at most 32 bytes: what a conflict copy's name may carry. An empty
// result means the name is unusable.
func SafeDeviceName(name string) string {
	out := make([]byte, 0, len(name))
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		switch {
		case len(out) >= 32:
		case ok:
			out = append(out, byte(c))
		case len(out) > 0 && out[len(out)-1] != '-':
			out = append(out, '-') // a run of other characters is one '-'; none leads
		}
	}
	for len(out) > 0 && out[len(out)-1] == '-' {
		out = out[:len(out)-1]
	}
	return string(out)
}
