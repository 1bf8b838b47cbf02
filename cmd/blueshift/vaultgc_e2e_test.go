package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EVaultCollects: alice (rw) writes keep.bin and big.bin, then
// overwrites big.bin and deletes it; eve (an encrypted member, run with a
// grace of one second) ends up holding exactly the sealed blocks she held
// before big.bin existed: its old sealed blocks left her store, keep.bin's
// stayed. Alice stops; rob (ro), offline since big.bin's first version,
// syncs the whole share from eve alone.
func TestE2EVaultCollects(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, e, r := newDevice(t, "alice"), newDevice(t, "eve"), newDevice(t, "rob")
	idE := strings.TrimSpace(e.ok("id"))
	work := t.TempDir()
	fa, fe, fr := filepath.Join(work, "a"), filepath.Join(work, "e"), filepath.Join(work, "r")
	random := func(n int) string {
		b := make([]byte, n)
		rand.Read(b)
		return string(b)
	}
	write(t, filepath.Join(fa, "keep.bin"), random(400<<10))
	write(t, filepath.Join(fa, "small.txt"), "small\n")
	a.ok("share", "add", fa, "--name", "family")
	a.start()
	e.startRun("--vault-grace", "1s")
	r.start()
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\neve:\n%s\nrob:\n%s", a.logText(), e.logText(), r.logText())
		}
	}()
	e.ok("join", firstLine(a.ok("invite", "family", "--encrypted")), fe)
	r.ok("join", firstLine(a.ok("invite", "family", "--read-only")), fr)
	stE, _ := e.status()
	r.ok("peer", "add", idE, "--addr", stE.Listen)
	vault := func(st daemon.Status) *daemon.VaultStatus {
		if len(st.Shares) != 1 {
			return nil
		}
		return st.Shares[0].Vault
	}
	// Before big.bin: what eve keeps of keep.bin and small.txt.
	before := vault(e.waitFor("eve keeps keep.bin and small.txt", func(st daemon.Status) bool {
		v := vault(st)
		return v != nil && v.Items == 2 && v.BlockBytes >= 400<<10
	}))

	write(t, filepath.Join(fa, "big.bin"), random(700<<10))
	waitTrees(t, fa, fr, "rob has big.bin", a, r)
	v1 := vault(e.waitFor("eve keeps big.bin", func(st daemon.Status) bool {
		v := vault(st)
		return v != nil && v.Items == 3 && v.BlockBytes >= before.BlockBytes+700<<10
	}))
	r.ok("peer", "add", idE, "--addr", stE.Listen) // rob's next start finds eve
	r.stop()

	write(t, filepath.Join(fa, "big.bin"), random(650<<10))
	v2 := vault(e.waitFor("eve has big.bin's new item", func(st daemon.Status) bool {
		v := vault(st)
		return v != nil && v.Generation > v1.Generation
	}))
	if err := os.Remove(filepath.Join(fa, "big.bin")); err != nil {
		t.Fatal(err)
	}
	e.waitFor("eve holds keep.bin's sealed blocks only", func(st daemon.Status) bool {
		v := vault(st)
		return v != nil && v.Generation > v2.Generation && v.Items == 3 &&
			v.Blocks == before.Blocks && v.BlockBytes == before.BlockBytes
	})
	if !strings.Contains(e.logText(), "collected sealed blocks no item names") {
		t.Error("eve's log does not say she collected blocks")
	}
	a.stop()

	r.start()
	waitTrees(t, fa, fr, "rob synced from eve alone", e, r)
	if _, err := os.Stat(filepath.Join(fr, "big.bin")); !os.IsNotExist(err) {
		t.Fatalf("big.bin on rob after it was deleted: %v", err)
	}
}

// TestE2EVaultIntroduced: eve (an encrypted member) joined alice (rw) by
// dialling her; rob (ro) joins later and is told nothing of eve but what
// alice introduces. Rob finds eve from that alone, and once alice has
// written more and stopped, rob syncs the whole share from eve.
func TestE2EVaultIntroduced(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, e, r := newDevice(t, "alice"), newDevice(t, "eve"), newDevice(t, "rob")
	idA, idE := strings.TrimSpace(a.ok("id")), strings.TrimSpace(e.ok("id"))
	work := t.TempDir()
	fa, fe, fr := filepath.Join(work, "a"), filepath.Join(work, "e"), filepath.Join(work, "r")
	write(t, filepath.Join(fa, "before.txt"), "written before rob joined\n")
	a.ok("share", "add", fa, "--name", "family")
	a.start()
	e.start()
	r.start()
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\neve:\n%s\nrob:\n%s", a.logText(), e.logText(), r.logText())
		}
	}()
	e.ok("join", firstLine(a.ok("invite", "family", "--encrypted")), fe)
	a.waitFor("alice connected to eve", func(st daemon.Status) bool { return connectedTo(st, idE) })
	r.ok("join", firstLine(a.ok("invite", "family", "--read-only")), fr)
	waitTrees(t, fa, fr, "rob joined", a, r)
	// Directly, at an address alice gave: not relayed through alice.
	r.waitFor("rob connected directly to eve, introduced by alice", func(st daemon.Status) bool {
		for _, p := range st.Peers {
			if p.ID == idE && p.Connected && p.Transport != "relay" {
				return true
			}
		}
		return false
	})
	r.stop()

	big := make([]byte, 500<<10)
	rand.Read(big)
	write(t, filepath.Join(fa, "after.bin"), string(big))
	write(t, filepath.Join(fa, "sub", "notes.txt"), "written while rob was away\n")
	waitLog(t, a, "records=4", "alice brought eve up to date") // before.txt, after.bin, sub, sub/notes.txt
	a.stop()

	r.start()
	waitTrees(t, fa, fr, "rob synced from eve alone", e, r)
	if st, _ := r.status(); connectedTo(st, idA) {
		t.Fatal("rob is connected to alice, which is stopped")
	}
}
