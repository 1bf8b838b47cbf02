package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
)

// runDaemon opens and runs a daemon of a new home with one share "s0"
// until the test ends.
func runDaemon(t *testing.T) (*Daemon, string) {
	t.Helper()
	home := newHome(t)
	addShareToConfig(t, home, 0)
	var logs syncBuffer
	d, err := Open(Options{Home: home, Listen: "127.0.0.1:0", NoDiscovery: true,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := d.Status()
		if len(st.Shares) == 1 && st.Shares[0].Running && st.Shares[0].Records > 0 {
			return d, home
		}
		if time.Now().After(deadline) {
			t.Fatalf("the share did not start: %+v\n%s", st, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func call(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// Bad requests get a clear error with the right status and change nothing:
// rates of 0 or below, paths outside the share, versions that do not
// exist, conflicts that do not exist, unknown fields and endpoints.
func TestAPIBadInput(t *testing.T) {
	d, home := runDaemon(t)
	h := d.Handler()
	before, _ := os.ReadFile(config.Path(home))
	for _, tc := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"POST", "/v1/rates", `{"send":"0"}`, 400, "above 0"},
		{"POST", "/v1/rates", `{"recv":"-1MiB"}`, 400, "above 0"},
		{"POST", "/v1/rates", `{"share":"s0","send":"-5"}`, 400, "above 0"},
		{"POST", "/v1/rates", `{"send":"quick"}`, 400, "invalid rate"},
		{"POST", "/v1/rates", `{}`, 400, "give a send or a receive rate"},
		{"POST", "/v1/rates", `{"send":"1MiB","turbo":true}`, 400, "unknown field"},
		{"POST", "/v1/rates", `{"share":"nope","send":"1MiB"}`, 404, "nope"},
		{"POST", "/v1/shares/s0/versions/restore", `{"path":"../../etc/passwd"}`, 400, "outside the share"},
		{"POST", "/v1/shares/s0/versions/restore", `{"path":"/etc/passwd"}`, 400, "outside the share"},
		{"POST", "/v1/shares/s0/versions/restore", `{"path":".blueshift/versions/x"}`, 400, ".blueshift"},
		{"POST", "/v1/shares/s0/versions/restore", `{"path":"d0/f0.txt"}`, 404, "no such version"},
		{"POST", "/v1/shares/s0/versions/restore", `{"path":"d0/f0.txt","at":"2001-01-01T00:00:00Z"}`, 404, "no such version"},
		{"GET", "/v1/shares/s0/versions?path=../x", "", 400, "outside the share"},
		{"POST", "/v1/shares/s0/conflicts/resolve", `{"path":"d0/f0.txt","keep":"mine"}`, 404, "no conflict copy"},
		{"POST", "/v1/shares/s0/conflicts/resolve", `{"path":"../up","keep":"mine"}`, 400, "outside the share"},
		{"GET", "/v1/shares/nope/needed", "", 404, "nope"},
		{"POST", "/v1/shares/nope/pause", "", 404, "nope"},
		{"GET", "/v1/frobnicate", "", 404, "no endpoint"},
	} {
		code, body := call(t, h, tc.method, tc.path, tc.body)
		var e APIError
		if code != tc.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s %s %s: %d %s; want %d saying %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.says)
		}
	}
	if after, _ := os.ReadFile(config.Path(home)); !bytes.Equal(before, after) {
		t.Fatalf("refused requests changed config.toml:\n%s", after)
	}

	// A paused share answers 409 for what needs it running.
	if code, body := call(t, h, "POST", "/v1/shares/s0/pause", ""); code != 200 {
		t.Fatalf("pause: %d %s", code, body)
	}
	if code, body := call(t, h, "GET", "/v1/shares/s0/needed", ""); code != 409 || !strings.Contains(body, "paused") {
		t.Fatalf("needed of a paused share: %d %s", code, body)
	}
	if code, body := call(t, h, "POST", "/v1/shares/s0/resume", ""); code != 200 {
		t.Fatalf("resume: %d %s", code, body)
	}
}

// The handler serves Server-Sent Events to a client that asks for them (the
// web UI), newline-delimited JSON otherwise.
func TestAPIEventsAsServerSentEvents(t *testing.T) {
	d, _ := runDaemon(t)
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, sse := range []bool{true, false} {
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/events?types=status", nil)
		if sse {
			req.Header.Set("Accept", "text/event-stream")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		resp.Body.Close()
		switch {
		case err != nil:
			t.Fatal(err)
		case sse && (resp.Header.Get("Content-Type") != "text/event-stream" || line != "event: status\n"):
			t.Fatalf("SSE: %s %q", resp.Header.Get("Content-Type"), line)
		case !sse && !strings.HasPrefix(line, `{"type":"status"`):
			t.Fatalf("NDJSON: %q", line)
		}
	}
}
