package hooks

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func start(t *testing.T, hooks ...Hook) *Runner {
	t.Helper()
	r := New(nil)
	r.Set(hooks)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The command gets the event on stdin and in its environment, only for
// the event and share it names.
func TestHookGetsTheEvent(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	r := start(t, Hook{Share: "S1", Event: "file_applied", Command: []string{"sh", "-c",
		`{ cat; echo; echo "$BLUESHIFT_EVENT $BLUESHIFT_SHARE $BLUESHIFT_PATH"; } >> "$0"`, log}})
	ev := map[string]any{"type": "file_applied", "share": "S1", "path": "a b.txt"}
	js, _ := json.Marshal(ev)
	r.Fire(Event{Type: "file_deleted", Share: "S1", JSON: []byte(`{}`)}) // another event
	r.Fire(Event{Type: "file_applied", Share: "S2", JSON: []byte(`{}`)}) // another share
	r.Fire(Event{Type: "file_applied", Share: "S1", JSON: js, Env: map[string]string{"PATH": "a b.txt"}})
	waitFor(t, "the hook's run", func() bool { return r.Status()[0].Runs == 1 })
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || lines[0] != string(js) || lines[1] != "file_applied S1 a b.txt" {
		t.Fatalf("the hook saw %q", lines)
	}
	if st := r.Status()[0]; st.Failures != 0 || st.Dropped != 0 {
		t.Fatalf("status %+v", st)
	}
}

// A hook that hangs is killed at its timeout, children too, and the next
// event still runs; a failing hook's error and output reach its status.
func TestHookHangsAndFails(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "child-survived")
	r := start(t,
		Hook{Event: "*", Timeout: 300 * time.Millisecond, Command: []string{"sh", "-c", `(sleep 2; touch "$0") & sleep 60`, marker}},
		Hook{Event: "conflict", Command: []string{"sh", "-c", "echo broken >&2; exit 3"}},
	)
	r.Fire(Event{Type: "conflict", Share: "S", JSON: []byte(`{}`)})
	r.Fire(Event{Type: "conflict", Share: "S", JSON: []byte(`{}`)})
	waitFor(t, "two runs of each", func() bool {
		st := r.Status()
		return st[0].Runs == 2 && st[1].Runs == 2
	})
	st := r.Status()
	if st[0].Failures != 2 || !strings.Contains(st[0].LastError, "killed after") {
		t.Errorf("hanging hook: %+v", st[0])
	}
	if st[1].Failures != 2 || !strings.Contains(st[1].LastError, "broken") || !strings.Contains(st[1].LastError, "exit status 3") {
		t.Errorf("failing hook: %+v", st[1])
	}
	time.Sleep(2500 * time.Millisecond) // the child's sleep 2, had it survived
	if _, err := os.Stat(marker); err == nil {
		t.Error("a hook's child outlived the hook's timeout")
	}
}

// Fire never blocks: a flood beyond the queue is dropped and counted.
func TestHookFloodDrops(t *testing.T) {
	r := start(t, Hook{Event: "*", Command: []string{"sleep", "1"}})
	for range QueueLen + 100 {
		r.Fire(Event{Type: "file_applied", JSON: []byte(`{}`)})
	}
	if d := r.Status()[0].Dropped; d < 99 {
		t.Fatalf("dropped %d events of a flood of %d into a queue of %d", d, QueueLen+100, QueueLen)
	}
}

func TestHookCheck(t *testing.T) {
	bad := []Hook{{Event: "file_applied"}, {Event: "nope", Command: []string{"x"}}, {Event: "*", Command: []string{"x"}, Timeout: -1}}
	for _, h := range bad {
		if h.Check() == nil {
			t.Errorf("%+v passed the check", h)
		}
	}
	r := start(t, bad...)
	if n := len(r.Status()); n != 0 {
		t.Fatalf("%d invalid hooks run", n)
	}
}
