package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/config"
)

// The configuration endpoints refuse bad input with a clear error and the
// right status, and change nothing.
func TestAPIConfigBadInput(t *testing.T) {
	d, home := runDaemon(t)
	h := d.Handler()
	file := filepath.Join(t.TempDir(), "file.txt")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(config.Path(home))
	for _, tc := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"POST", "/v1/shares", `{"path":"relative/dir"}`, 400, "not absolute"},
		{"POST", "/v1/shares", `{"path":"/no/such/folder"}`, 400, "create the folder first"},
		{"POST", "/v1/shares", `{"path":"` + file + `"}`, 400, "not a folder"},
		{"POST", "/v1/shares", `{"path":"` + home + `"}`, 400, "home"},
		{"POST", "/v1/shares", `{"path":"/tmp","colour":"red"}`, 400, "unknown field"},
		{"POST", "/v1/shares/nope/remove", "", 404, "nope"},
		{"POST", "/v1/peers", `{"id":"not-a-device"}`, 400, "blueshift id"},
		{"POST", "/v1/peers/nope/remove", "", 404, "nope"},
		{"POST", "/v1/hooks", `{"share":"s0","event":"file_eaten","command":["true"]}`, 400, "not one of"},
		{"POST", "/v1/hooks", `{"share":"s0","event":"file_applied","command":[]}`, 400, "give the command"},
		{"POST", "/v1/hooks", `{"share":"s0","event":"file_applied","command":["true"],"timeout":"-3s"}`, 400, "positive duration"},
		{"POST", "/v1/hooks", `{"share":"nope","event":"file_applied","command":["true"]}`, 404, "nope"},
		{"POST", "/v1/hooks/1/remove", "", 404, "no number 1"},
		{"POST", "/v1/hooks/one/remove", "", 400, "not a hook number"},
		{"POST", "/v1/invites", `{"share":"nope"}`, 404, "nope"},
		{"POST", "/v1/invites", `{"share":"s0","expires":"-1h"}`, 400, "positive duration"},
		{"POST", "/v1/joins", `{"link":"blueshift://garbage","path":"rel"}`, 400, "not absolute"},
		{"POST", "/v1/joins", `{"path":"/tmp/x"}`, 400, "a link or a code"},
		{"POST", "/v1/joins", `{"code":"hello","path":"/tmp/x"}`, 400, "not a code"},
		{"POST", "/v1/sends", `{"paths":[]}`, 400, "at least one"},
		{"POST", "/v1/sends", `{"paths":["rel/x"]}`, 400, "not absolute"},
		{"POST", "/v1/sends", `{"paths":["` + file + `"],"expires":"soon"}`, 400, "positive duration"},
		{"POST", "/v1/receives", `{"code":"nope","dir":"/tmp"}`, 400, "not a code"},
		{"POST", "/v1/receives", `{"code":"ABCDE-FGHJK","dir":"rel"}`, 400, "not absolute"},
		{"POST", "/v1/receives/nope/finish", "", 404, "nope"},
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
}

// A share added through the API runs when the answer comes; one removed
// has stopped; a hook added is run by the daemon.
func TestAPIConfigApplied(t *testing.T) {
	d, _ := runDaemon(t)
	h := d.Handler()
	dir := t.TempDir()
	code, body := call(t, h, "POST", "/v1/shares", `{"path":"`+dir+`","name":"docs"}`)
	var e ShareEntry
	if code != 200 || json.Unmarshal([]byte(body), &e) != nil || e.Name != "docs" || e.Access != "read-write" || e.Path != dir {
		t.Fatalf("POST /v1/shares: %d %s", code, body)
	}
	running := func(id string) bool {
		for _, s := range d.Status().Shares {
			if s.ID == id {
				return s.Running
			}
		}
		return false
	}
	if !running(e.ID) {
		t.Fatalf("share %s is not running when POST /v1/shares answers", e.ID)
	}
	if code, body := call(t, h, "POST", "/v1/hooks", `{"share":"docs","event":"*","command":["true"]}`); code != 200 {
		t.Fatalf("POST /v1/hooks: %d %s", code, body)
	}
	if n := len(d.Status().Hooks); n != 1 {
		t.Fatalf("the daemon runs %d hooks after POST /v1/hooks", n)
	}
	code, body = call(t, h, "POST", "/v1/shares/docs/remove", "")
	var rm RemovedShare
	if code != 200 || json.Unmarshal([]byte(body), &rm) != nil || rm.ID != e.ID {
		t.Fatalf("remove: %d %s", code, body)
	}
	if running(e.ID) {
		t.Fatalf("share %s still runs after its removal", e.ID)
	}
}
