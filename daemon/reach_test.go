package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/config"
	"github.com/blueshift-sync/blueshift/index/share"
	"github.com/blueshift-sync/blueshift/peer/identity"
)

// TestSyncOverQUIC: two daemons on 127.0.0.1 whose only address for each
// other is a quic:// one sync a share, and status says the peer is reached
// over QUIC, on the LAN (loopback), with a round-trip time.
func TestSyncOverQUIC(t *testing.T) {
	sec, err := share.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	key := share.FromSecret(sec)
	homeA, homeB := newHome(t), newHome(t)
	idA, _ := identity.Load(homeA)
	idB, _ := identity.Load(homeB)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, d := range []string{dirA, dirB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	content := bytes.Repeat([]byte("over quic "), 300_000) // 3 MB: many blocks
	if err := os.WriteFile(filepath.Join(dirA, "file.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	logger := func(name string) *slog.Logger {
		return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("dev", name)
	}
	configure := func(home, dir string, peer identity.DeviceID, addrs []string) {
		err := EditConfig(home, func(c *config.Config) error {
			if err := c.AddPeer(config.Peer{ID: peer.String(), Name: "peer", Addresses: addrs}); err != nil {
				return err
			}
			s := config.NewShare(key.ID().String(), dir, key.String())
			s.Peers = []string{peer.String()}
			return c.AddShare(s)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	configure(homeA, dirA, idB.ID(), nil)
	a, err := Open(Options{Home: homeA, Listen: "127.0.0.1:0", NoDiscovery: true, Logger: logger("a")})
	if err != nil {
		t.Fatal(err)
	}
	if a.QUICAddr() == nil || a.QUICAddr().String() != a.Addr().String() {
		t.Fatalf("QUIC listens on %v, want the TCP listener's port %v", a.QUICAddr(), a.Addr())
	}
	configure(homeB, dirB, idA.ID(), []string{"quic://" + a.QUICAddr().String()})
	b, err := Open(Options{Home: homeB, Listen: "127.0.0.1:0", NoDiscovery: true, Logger: logger("b")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- a.Run(ctx) }()
	go func() { done <- b.Run(ctx) }()
	defer func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, _ := os.ReadFile(filepath.Join(dirB, "file.bin"))
		st := b.Status()
		if bytes.Equal(got, content) && len(st.Peers) == 1 && st.Peers[0].RTTMillis > 0 {
			p := st.Peers[0]
			if p.Transport != "quic" || p.Reach != "lan" || !p.Connected {
				t.Fatalf("peer status %+v: want connected over quic on the lan", p)
			}
			if st.QUIC == "" {
				t.Fatal("status names no QUIC address")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file not synced over QUIC; b's status: %+v", st.Peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
