package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EEncryptedMember: alice (rw), eve (an encrypted member: a friend's
// NAS) and rob (ro). Rob is offline while alice writes; eve keeps
// everything, sealed; alice stops; rob starts and syncs the whole share
// from eve alone. Nothing of a name or a content is readable anywhere on
// eve: its home, its folder, its log.
func TestE2EEncryptedMember(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const (
		secretName = "plans-9f3c-secret"
		marker     = "MARKER-7d41-content"
	)
	a, e, r := newDevice(t, "alice"), newDevice(t, "eve"), newDevice(t, "rob")
	idE, idR := strings.TrimSpace(e.ok("id")), strings.TrimSpace(r.ok("id"))
	work := t.TempDir()
	fa, fe, fr := filepath.Join(work, "a"), filepath.Join(work, "e"), filepath.Join(work, "r")
	write(t, filepath.Join(fa, "before.txt"), "written while everyone was online\n")
	a.ok("share", "add", fa, "--name", "family")
	a.start()
	e.start()
	r.start()
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\neve:\n%s\nrob:\n%s", a.logText(), e.logText(), r.logText())
		}
	}()
	if _, errOut, code := a.cli("invite", "family", "--encrypted", "--read-only"); code != exitUsage {
		t.Fatalf("invite --encrypted --read-only: exit %d, want %d: %s", code, exitUsage, errOut)
	}
	e.ok("join", firstLine(a.ok("invite", "family", "--encrypted")), fe)
	r.ok("join", firstLine(a.ok("invite", "family", "--read-only")), fr)
	waitTrees(t, fa, fr, "rob joined", a, r)
	if l := a.waitMembers("family", "eve in the log at enc", func(l daemon.MemberList) bool {
		m, ok := memberOf(l, idE)
		return ok && m.Level == "enc"
	}); len(l.Members) != 3 {
		t.Fatalf("alice's log lists %d members, want 3", len(l.Members))
	}
	// Eve dialled alice, so alice cannot tell rob where eve listens: a NAS
	// would announce its address; here rob is told.
	stE, _ := e.status()
	r.ok("peer", "add", idE, "--addr", stE.Listen)
	r.waitFor("rob connected to eve (introduced by alice)", func(st daemon.Status) bool { return connectedTo(st, idE) })
	// Eve keeps no folder and announces no tree: she must not hold alice's
	// status out of "in sync".
	a.waitFor("alice in sync with eve connected", func(st daemon.Status) bool {
		return len(st.Shares) == 1 && st.Shares[0].InSync && connectedTo(st, idE)
	})
	r.stop()

	// Alice writes while rob is offline: a small file, a large one of
	// several blocks, a nested one, and a deletion.
	big := make([]byte, 700<<10)
	rand.Read(big)
	copy(big[300<<10:], marker)
	write(t, filepath.Join(fa, secretName+".txt"), "the "+marker+" in a small file\n")
	write(t, filepath.Join(fa, "sub", secretName+"-big.bin"), string(big))
	write(t, filepath.Join(fa, "sub", "deeper", "notes.txt"), "more "+marker+"\n")
	if err := os.Remove(filepath.Join(fa, "before.txt")); err != nil {
		t.Fatal(err)
	}
	const records = 6 // before.txt (deleted), the two files in sub, sub, sub/deeper, the small file
	a.waitFor("alice scanned everything", func(st daemon.Status) bool {
		return len(st.Shares) == 1 && st.Shares[0].Records == records
	})
	waitLog(t, a, fmt.Sprintf("records=%d", records), "alice brought eve up to date")
	a.stop()

	r.start()
	waitTrees(t, fa, fr, "rob synced from eve alone", a, e, r)
	if st, _ := r.status(); connectedTo(st, strings.TrimSpace(a.ok("id"))) {
		t.Fatal("rob is connected to alice, which is stopped")
	}
	checkVaultStatus(t, a, e, r, records)

	// The grep test: nothing of a name or content on eve (its store read
	// as it runs: the write-ahead log holds all it was given).
	grepTree(t, e.home, true, secretName, marker, "before.txt", "notes.txt")
	grepTree(t, fe, false, secretName, marker, "before.txt", "notes.txt") // eve's folder stays empty
	for _, m := range []string{secretName, marker, "notes.txt"} {
		if strings.Contains(e.logText(), m) {
			t.Errorf("eve's log holds %q", m)
		}
	}

	// Alice removes rob and writes on: what she writes is sealed under the
	// new epoch's key, which neither rob (removed) nor eve (encrypted)
	// holds, so rob gets nothing of it, from anyone.
	const after = "after-removal-5b2e"
	a.ok("peer", "add", idE, "--addr", stE.Listen) // alice restarts on another port: she dials eve
	a.start()
	a.waitFor("alice reconnected to eve", func(st daemon.Status) bool { return connectedTo(st, idE) })
	a.ok("member", "remove", "family", idR)
	write(t, filepath.Join(fa, after+".txt"), "written after rob left: "+marker+"\n")
	waitLog(t, a, fmt.Sprintf("records=%d", records+1), "alice sealed the new file for eve under epoch 1", "epoch=1")
	stA, _ := a.status()
	if l := e.waitMembers(stA.Shares[0].ID, "eve learns of the removal", func(l daemon.MemberList) bool { return l.Epoch == 1 }); slices.Contains(l.EpochKeys, 1) {
		t.Fatalf("eve, an encrypted member, holds the new epoch key: %v", l.EpochKeys)
	}
	noFile(t, filepath.Join(fr, after+".txt"), "rob was removed")
	e.stop()
	grepTree(t, e.home, true, after, marker)
}

// waitLog polls d's log for a line holding both "encrypted member up to
// date" and want.
func waitLog(t *testing.T, d *device, want, why string, also ...string) {
	t.Helper()
	deadline := time.Now().Add(e2eDeadline)
	for {
		for _, l := range strings.Split(d.logText(), "\n") {
			if strings.Contains(l, "encrypted member up to date") && strings.Contains(l, want) &&
				!slices.ContainsFunc(also, func(s string) bool { return !strings.Contains(l, s) }) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line with %q after %s", why, want, e2eDeadline)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// grepTree fails the test if a file under dir holds, or is named with, one
// of the markers (grep -r, in Go).
func grepTree(t *testing.T, dir string, someFile bool, markers ...string) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		for _, m := range markers {
			if strings.Contains(d.Name(), m) {
				t.Errorf("%s is named with %q", p, m)
			}
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		n++
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("%s holds %q", p, m)
			}
		}
		return nil
	})
	if someFile && n == 0 {
		t.Errorf("no file under %s: nothing was grepped", dir)
	}
}

// checkVaultStatus: eve's status shows what she keeps of the share (one
// sealed item per path alice pushed, the blocks of the large file, her
// generation, alice's last push) and that rob is connected; rob's shows
// what he last took from eve, at her generation. Text and --json.
func checkVaultStatus(t *testing.T, a, e, r *device, records int) {
	t.Helper()
	idA, idR := strings.TrimSpace(a.ok("id")), strings.TrimSpace(r.ok("id"))
	stE := e.waitFor("eve shows rob connected to her share", func(st daemon.Status) bool {
		return len(st.Shares) == 1 && slices.Contains(st.Shares[0].Peers, idR)
	})
	s := stE.Shares[0]
	v := s.Vault
	if s.Access != "encrypted" || !s.Running || !s.InSync || v == nil {
		t.Fatalf("eve's share: access %q, running %v, in sync %v, vault %+v", s.Access, s.Running, s.InSync, v)
	}
	if v.Items != records || v.Blocks < 2 || v.BlockBytes < 700<<10 || v.ItemBytes == 0 || v.Generation == 0 {
		t.Fatalf("eve keeps %+v; want %d items and the large file's blocks (700 KiB or more)", v, records)
	}
	if len(v.Pushers) != 1 || v.Pushers[0].ID != idA || v.Pushers[0].Items != records || v.Pushers[0].LastPush == nil {
		t.Fatalf("eve's pushers: %+v; want alice, %d items, a last push", v.Pushers, records)
	}
	if slices.Contains(s.Peers, idA) {
		t.Fatal("eve shows alice connected, who is stopped")
	}
	out := e.ok("status")
	for _, want := range []string{"sealed", fmt.Sprintf("keeps %d sealed items", records), "pushed by " + identityAbbrev(idA), fmt.Sprintf("generation %d", v.Generation)} {
		if !strings.Contains(out, want) {
			t.Errorf("eve's status lacks %q:\n%s", want, out)
		}
	}
	var js daemon.Status
	if err := json.Unmarshal([]byte(e.ok("status", "--json")), &js); err != nil || len(js.Shares) != 1 || js.Shares[0].Vault == nil || js.Shares[0].Vault.Items != records {
		t.Fatalf("eve's status --json: %v: %+v", err, js.Shares)
	}

	idE := strings.TrimSpace(e.ok("id"))
	stR := r.waitFor("rob shows what he took from eve", func(st daemon.Status) bool {
		return len(st.Shares) == 1 && len(st.Shares[0].VaultPulls) == 1 && st.Shares[0].VaultPulls[0].Generation == v.Generation
	})
	p := stR.Shares[0].VaultPulls[0]
	if p.ID != idE || !p.Connected || p.Pulled == nil || p.Items == 0 || p.Total < p.Items || p.Total > records || p.Locked != 0 || p.Checked.IsZero() {
		t.Fatalf("rob's pull from eve: %+v", p)
	}
	if out := r.ok("status"); !strings.Contains(out, "from encrypted member") || !strings.Contains(out, fmt.Sprintf("at its generation %d", v.Generation)) {
		t.Errorf("rob's status does not show his pulls from eve:\n%s", out)
	}
}
