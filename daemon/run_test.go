package daemon

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// newHome makes a device home as `blueshift init` does.
func newHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if _, err := identity.Create(home); err != nil {
		t.Fatal(err)
	}
	if err := config.New("test").Save(home); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(home, DBDir), 0o700); err != nil {
		t.Fatal(err)
	}
	return home
}

// addShareToConfig writes a new share of a fresh folder holding a few files.
func addShareToConfig(t *testing.T, home string, n int) {
	t.Helper()
	dir := filepath.Join(filepath.Dir(home), fmt.Sprintf("share%d", n))
	for i := range 20 {
		p := filepath.Join(dir, fmt.Sprintf("d%d/f%d.txt", i%3, i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Repeat("x", 100*i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sec, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key := share.FromSecret(sec)
	s := config.NewShare(key.ID().String(), dir, key.String())
	s.Name = fmt.Sprintf("s%d", n)
	if err := EditConfig(home, func(c *config.Config) error { return c.AddShare(s) }); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer keeps log lines written from many goroutines.
type syncBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestRunStopsWhileSharesAreAdded stops the daemon while shares are being
// added (a reload from `share add`), at several moments: Run must return,
// with the index closed so that it opens again without complaint. Before,
// a share added as Run ended left a folder whose stop waited forever.
func TestRunStopsWhileSharesAreAdded(t *testing.T) {
	for round := range 6 {
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
		var adders gosync.WaitGroup
		adders.Go(func() {
			for n := 1; n <= 4; n++ {
				addShareToConfig(t, home, n)
				if d.Reload() != nil {
					return // not running yet, or stopping
				}
			}
		})
		// Stop at a different moment each round: at once, or after some
		// shares were added.
		time.Sleep(time.Duration(round) * 40 * time.Millisecond)
		began := time.Now()
		cancel()
		select {
		case err := <-ran:
			if err != nil {
				t.Fatalf("round %d: Run: %v", round, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: Run did not return within 30 s of its end\n%s", round, logs.String())
		}
		t.Logf("round %d: Run returned %v after its context ended", round, time.Since(began).Round(time.Millisecond))
		adders.Wait()
		reopenCleanly(t, home)
	}
}

// reopenCleanly opens the index again and checks that it says nothing
// worse than Info while opening (no recovery, no corruption).
func reopenCleanly(t *testing.T, home string) {
	t.Helper()
	var logs syncBuffer
	db, err := index.Open(filepath.Join(home, DBDir), index.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("reopen the index: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close the reopened index: %v", err)
	}
	if s := logs.String(); s != "" {
		t.Fatalf("reopening the index warned:\n%s", s)
	}
}
