package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EJoinByCode: the short code from `invite` is enough to join; a
// wrong code finds nothing and writes nothing. Both joins are given the
// inviter's loopback address (--addr), so they never listen on the LAN;
// finding the inviter by LAN discovery is TestE2ELANDiscovery's, in network
// namespaces.
func TestE2EJoinByCode(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b := newDevice(t, "alice"), newDevice(t, "bob")
	work := t.TempDir()
	fa, fb := filepath.Join(work, "a"), filepath.Join(work, "b")
	write(t, filepath.Join(fa, "hello.txt"), "hello by code\n")
	a.ok("share", "add", fa, "--name", "stuff")
	a.start()
	b.start()
	lines := strings.Split(strings.TrimSpace(a.ok("invite", "stuff")), "\n")
	if len(lines) != 2 || !daemon.IsCode(lines[1]) {
		t.Fatalf("invite printed %q, want a link and a code", lines)
	}
	code := lines[1]
	st, _ := a.status()

	wrong := []byte(code)
	wrong[0] = map[bool]byte{true: 'A', false: 'B'}[wrong[0] != 'A']
	if _, errOut, exit := b.cli("join", string(wrong), fb, "--addr", st.Listen); exit != 1 || !strings.Contains(errOut, "no device") {
		t.Fatalf("a wrong code: exit %d, %s", exit, errOut)
	}
	if _, err := os.Stat(fb); !os.IsNotExist(err) {
		t.Fatalf("a wrong code made the folder: %v", err)
	}

	b.ok("join", strings.ToLower(code), fb, "--addr", st.Listen)
	waitTrees(t, fa, fb, "join by code", a, b)

	// A code guessed at: three requests with its locator and a wrong
	// password close it, and the right code no longer opens anything.
	lines = strings.Split(strings.TrimSpace(a.ok("invite", "stuff")), "\n")
	code = lines[1]
	wrong = []byte(code)
	wrong[len(wrong)-1] = map[bool]byte{true: 'A', false: 'B'}[wrong[len(wrong)-1] != 'A']
	for try := 1; try <= 3; try++ {
		if _, errOut, exit := b.cli("join", string(wrong), filepath.Join(work, "guess"), "--addr", st.Listen); exit != 1 || !strings.Contains(errOut, "no device") {
			t.Fatalf("wrong password, try %d: exit %d, %s", try, exit, errOut)
		}
	}
	if _, errOut, exit := b.cli("join", code, filepath.Join(work, "late"), "--addr", st.Listen); exit != 1 || !strings.Contains(errOut, "no device") {
		t.Fatalf("the right code after three wrong tries: exit %d, %s (want it closed)", exit, errOut)
	}
	for _, dir := range []string{"guess", "late"} {
		if _, err := os.Stat(filepath.Join(work, dir)); !os.IsNotExist(err) {
			t.Fatalf("a refused code made the folder %s: %v", dir, err)
		}
	}
	cfg, err := daemon.LoadConfig(a.home)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range cfg.Invites {
		if in.Code != "" && strings.EqualFold(strings.ReplaceAll(in.Code, "-", ""), strings.ReplaceAll(code, "-", "")) {
			t.Fatalf("the code %s is still open after three wrong tries", code)
		}
	}
}
