package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
	"github.com/blueshift-sync/blueshift/peer/conn"
	"github.com/blueshift-sync/blueshift/peer/identity"
	"github.com/blueshift-sync/blueshift/peer/wire"
)

// TestE2EInviteHeldBeforePrinted: `invite` whose stdout is a pipe nobody
// reads any more (as in `invite | head -1`) dies at its first write; the
// invitation it made must already be in the running daemon by then. A
// stranger connecting is let in (an invitation is open) and offered it,
// sealed, in the daemon's Hello.
func TestE2EInviteHeldBeforePrinted(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a := newDevice(t, "alice")
	dir := filepath.Join(t.TempDir(), "a")
	write(t, filepath.Join(dir, "f"), "data")
	a.ok("share", "add", dir)
	a.start()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before the first line
	cmd := exec.Command(bin, "--home", a.home, "invite", "a")
	cmd.Stdout, cmd.Stderr = w, io.Discard
	err = cmd.Run()
	w.Close()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("invite into a closed pipe: %v (want death by SIGPIPE at its first write)", err)
	}

	st, _ := a.status()
	id, err := identity.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), e2eDeadline)
	defer cancel()
	s, err := conn.NewTLS(id, slog.New(slog.DiscardHandler)).DialAny(ctx, st.Listen)
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.Open(ctx, s, wire.Hello{DeviceName: "stranger"}, nothing{}, conn.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("a stranger is not let in, so the daemon holds no open invitation: %v", err)
	}
	defer c.Close()
	if n := len(c.PeerHello().SealedInvites); n != 0 {
		t.Fatalf("the daemon offers %d sealed invitations to a stranger: a code is a PAKE's password now, never offered", n)
	}
	cfg, err := daemon.LoadConfig(a.home)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Invites) != 1 || cfg.Invites[0].Code == "" {
		t.Fatalf("the daemon holds %d invitations, want the 1 made before dying, with its code", len(cfg.Invites))
	}
	if !strings.HasPrefix(st.Listen, "127.0.0.1:") {
		t.Fatalf("daemon listens on %s, not loopback", st.Listen)
	}
}

// nothing answers no request: the stranger only reads the Hello.
type nothing struct{}

func (nothing) HandleRequest(context.Context, wire.Message) (wire.Message, error) {
	return wire.Errorf(wire.CodeRefused, "no"), nil
}

func (nothing) HandleMessage(context.Context, wire.Message) error { return nil }
