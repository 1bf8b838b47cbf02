package engine

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	gosync "sync"
	"testing"
	"time"
)

// A burst of files logs fileLogLines lines a window and one summary of the
// rest, while every file still reaches OnEvent.
func TestFileLogSummarisesBursts(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	var mu gosync.Mutex
	var events []Event
	var buf bytes.Buffer
	e := &Engine{clock: func() time.Time { return now }, opts: Options{OnEvent: func(ev Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}}}
	f := &folder{e: e, cfg: ShareConfig{Name: "s"}, log: slog.New(slog.NewTextHandler(&buf, nil))}
	for i := range 100 {
		f.noteFile(Event{Kind: FileApplied, Path: "f", Bytes: 10})
		if i%2 == 0 {
			f.noteFile(Event{Kind: FileDeleted, Path: "g"})
		}
	}
	f.summarise()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(events) != 150 {
		t.Fatalf("%d events, want 150", len(events))
	}
	if len(lines) != fileLogLines+2 {
		t.Fatalf("%d log lines, want %d (and two summaries):\n%s", len(lines), fileLogLines+2, buf.String())
	}
	var summaries string
	for _, l := range lines[fileLogLines:] {
		summaries += l + "\n"
	}
	// 20 logged of 150: 100 applied minus those logged, and the deletions.
	if !strings.Contains(summaries, "event=file_applied files=") || !strings.Contains(summaries, "event=file_deleted files=") {
		t.Fatalf("summaries:\n%s", summaries)
	}
	// A new window logs again.
	buf.Reset()
	now = now.Add(fileLogWindow)
	f.noteFile(Event{Kind: FileConflict, Path: "h", Copy: "h.sync-conflict-x"})
	if !strings.Contains(buf.String(), `msg="conflict: kept the losing copy"`) || !strings.Contains(buf.String(), "copy=h.sync-conflict-x") {
		t.Fatalf("next window:\n%s", buf.String())
	}
}

// A limit holds from the first byte: a wait longer than the caller can
// afford fails at once, and no limit never waits.
func TestRateLimitsWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := waitBytes(ctx, 1<<30, nil, nil); err != nil {
		t.Fatalf("no limit: %v", err)
	}
	l := newLimiter(64<<10, nil)
	if err := waitBytes(ctx, 64<<20, l); err == nil {
		t.Fatal("64 MiB at 64 KiB/s within a minute")
	}
	// A changed limit reaches the same limiter (waits under way see it).
	if l2 := newLimiter(1<<30, l); l2 != l || l.Limit() != 1<<30 {
		t.Fatal("the limit was not changed in place")
	}
	if newLimiter(0, l) != nil || newLimiter(-5, nil) != nil {
		t.Fatal("0 or a negative rate must mean no limit here (the CLI and API refuse them before)")
	}
}

func TestSafeDeviceName(t *testing.T) {
	for in, want := range map[string]string{
		"laptop": "laptop", "Bob's MacBook Pro": "Bob-s-MacBook-Pro", "../etc": "etc", "": "", "ünïcode": "n-code",
		strings.Repeat("x", 80): strings.Repeat("x", 32),
	} {
		if got := SafeDeviceName(in); got != want {
			t.Errorf("SafeDeviceName(%q) = %q, want %q", in, got, want)
		}
	}
}
