// Package hooks runs the user's commands on a daemon's events: a file
// applied, deleted or set aside as a conflict, a share in sync, a member
// joined ([[hook]] in config.toml, or `blueshift hook add`).
//
// A hook never holds sync up. Fire only queues: each hook has its own
// bounded queue and one worker, so a hook that hangs delays only itself
// (each run is killed after its timeout, with the process group it
// started), and a hook that cannot keep up loses events, counted in its
// Status and logged, never blocking the caller. The event reaches the
// command as one JSON object on stdin and as BLUESHIFT_* environment
// variables; its stdout and stderr (the first few KiB) go to the log
// when it fails.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	gosync "sync"
	"time"
)

// Events a hook may name; "*" names them all.
var Events = []string{"file_applied", "file_deleted", "conflict", "share_in_sync", "member_joined"}

const (
	// DefaultTimeout bounds one run of a hook that sets none.
	DefaultTimeout = 30 * time.Second
	// QueueLen is how many events a hook's queue holds before it drops.
	QueueLen = 256
	// maxOutput is how much of a failed run's output is kept.
	maxOutput = 4 << 10
)

// Hook is one command to run on events.
type Hook struct {
	Share   string   // share ID; empty: every share
	Event   string   // one of Events, or "*"
	Command []string // program and arguments: no shell unless the user names one
	Timeout time.Duration
}

func (h Hook) String() string {
	share := h.Share
	if share == "" {
		share = "*"
	}
	return fmt.Sprintf("%s on %s in %s", strings.Join(h.Command, " "), h.Event, share)
}

// Check reports what is wrong with h, if anything.
func (h Hook) Check() error {
	if len(h.Command) == 0 || h.Command[0] == "" {
		return errors.New("hook has no command")
	}
	if h.Event != "*" && !slices.Contains(Events, h.Event) {
		return fmt.Errorf("hook event %q is not one of %s or *", h.Event, strings.Join(Events, ", "))
	}
	if h.Timeout < 0 {
		return fmt.Errorf("hook timeout %s is negative", h.Timeout)
	}
	return nil
}

// Event is what happened, as the hook sees it.
type Event struct {
	Type  string // one of Events
	Share string // share ID
	JSON  []byte // the whole event: the command's stdin
	// Env are extra variables (without the BLUESHIFT_ prefix): PATH,
	// PEER, BYTES... BLUESHIFT_EVENT and BLUESHIFT_SHARE are always set.
	Env map[string]string
}

// Status is one hook's record since the daemon started.
type Status struct {
	Hook      string    `json:"hook"`
	Runs      int64     `json:"runs"`
	Failures  int64     `json:"failures"`
	Dropped   int64     `json:"dropped"` // events lost: its queue was full
	LastError string    `json:"last_error,omitempty"`
	LastRun   time.Time `json:"last_run,omitempty"`
}

// Runner runs hooks. Start it with Run; Set replaces the hooks at any
// time (runs under way finish).
type Runner struct {
	log *slog.Logger

	mu struct {
		gosync.Mutex
		workers []*worker // guarded by mu
		ctx     context.Context
		wg      *gosync.WaitGroup
	}
}

// worker is one hook's queue and its counters.
type worker struct {
	hook  Hook
	queue chan Event
	stop  chan struct{}

	mu struct {
		gosync.Mutex
		st Status
	}
}

// New returns a Runner that logs to log.
func New(log *slog.Logger) *Runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{log: log}
}

// Run runs the hooks' workers until ctx ends, and waits for them.
func (r *Runner) Run(ctx context.Context) {
	var wg gosync.WaitGroup
	r.mu.Lock()
	r.mu.ctx, r.mu.wg = ctx, &wg
	for _, w := range r.mu.workers {
		wg.Go(func() { r.work(ctx, w) })
	}
	r.mu.Unlock()
	<-ctx.Done()
	r.mu.Lock()
	r.mu.ctx = nil
	r.mu.Unlock()
	wg.Wait()
}

// Set replaces the hooks. Invalid ones are skipped and logged.
func (r *Runner) Set(hooks []Hook) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.mu.workers {
		close(w.stop)
	}
	r.mu.workers = nil
	for _, h := range hooks {
		if err := h.Check(); err != nil {
			r.log.Warn("hook skipped", "hook", h.String(), "err", err)
			continue
		}
		if h.Timeout == 0 {
			h.Timeout = DefaultTimeout
		}
		w := &worker{hook: h, queue: make(chan Event, QueueLen), stop: make(chan struct{})}
		w.mu.st.Hook = h.String()
		r.mu.workers = append(r.mu.workers, w)
		if r.mu.ctx != nil {
			ctx := r.mu.ctx
			r.mu.wg.Go(func() { r.work(ctx, w) })
		}
	}
}

// Wants reports whether some hook takes events of type typ in share, so a
// caller builds an event only for hooks that run on it.
func (r *Runner) Wants(typ, share string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.mu.workers {
		if w.wants(typ, share) {
			return true
		}
	}
	return false
}

func (w *worker) wants(typ, share string) bool {
	return (w.hook.Event == "*" || w.hook.Event == typ) && (w.hook.Share == "" || w.hook.Share == share)
}

// Fire queues ev for every hook that wants it; it never blocks.
func (r *Runner) Fire(ev Event) {
	r.mu.Lock()
	workers := r.mu.workers
	r.mu.Unlock()
	for _, w := range workers {
		if !w.wants(ev.Type, ev.Share) {
			continue
		}
		select {
		case w.queue <- ev:
		default:
			w.mu.Lock()
			w.mu.st.Dropped++
			n := w.mu.st.Dropped
			w.mu.Unlock()
			if n == 1 || n%100 == 0 {
				r.log.Warn("hook cannot keep up; events dropped", "hook", w.hook.String(), "dropped", n)
			}
		}
	}
}

// Status returns every hook's record.
func (r *Runner) Status() []Status {
	r.mu.Lock()
	workers := r.mu.workers
	r.mu.Unlock()
	out := make([]Status, 0, len(workers))
	for _, w := range workers {
		w.mu.Lock()
		out = append(out, w.mu.st)
		w.mu.Unlock()
	}
	return out
}

func (r *Runner) work(ctx context.Context, w *worker) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case ev := <-w.queue:
			err := r.runOnce(ctx, w.hook, ev)
			w.mu.Lock()
			w.mu.st.Runs++
			w.mu.st.LastRun = time.Now().UTC()
			if err != nil {
				w.mu.st.Failures++
				w.mu.st.LastError = err.Error()
			}
			w.mu.Unlock()
			if err != nil {
				r.log.Warn("hook failed", "hook", w.hook.String(), "event", ev.Type, "err", err)
			}
		}
	}
}

// runOnce runs the hook's command for ev, killed (with its children) after
// the hook's timeout.
func (r *Runner) runOnce(ctx context.Context, h Hook, ev Event) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Command[0], h.Command[1:]...)
	cmd.Stdin = bytes.NewReader(ev.JSON)
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "BLUESHIFT_EVENT="+ev.Type, "BLUESHIFT_SHARE="+ev.Share)
	for k, v := range ev.Env {
		cmd.Env = append(cmd.Env, "BLUESHIFT_"+k+"="+v)
	}
	killGroup(cmd)
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("killed after %s: %s", h.Timeout, out.String())
	}
	return fmt.Errorf("%w: %s", err, out.String())
}

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct {
	mu  gosync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxOutput - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.buf.String())
}
