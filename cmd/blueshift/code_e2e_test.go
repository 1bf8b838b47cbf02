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
}
