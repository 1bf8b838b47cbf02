package ui_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestBrowserReadOnlyMember drives the UI of rob, a read-only member of
// alice's share, in Chromium: the events page shows each file alice's
// edits bring (the per-file event stream, live); the share page lists
// both members with their access from the signed membership log and how
// alice is reached (LAN, round trip); rob's own edit is listed as a local
// change, not shared, and the revert button puts alice's version back on
// disk, rob's copy kept in the versions folder. Screenshots of both pages
// are saved.
func TestBrowserReadOnlyMember(t *testing.T) {
	ctx := browser(t)
	alice := startDevice(t, "alice")
	rob := startDevice(t, "rob")
	dirA := alice.addShare("home", map[string]string{"recipe.txt": "the family recipe\n", "list.txt": "milk\n"})
	waitFor(t, "alice's share in sync", func() bool { s, ok := alice.share("home"); return ok && s.InSync })
	addrs, err := daemon.Addresses(nil, alice.d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	link, _, err := daemon.Invite(alice.home, "home", daemon.InviteOptions{ReadOnly: true, Addresses: addrs})
	if err != nil {
		t.Fatal(err)
	}
	alice.reload()
	dirR := filepath.Join(filepath.Dir(rob.home), "home-rob")
	if _, err := daemon.Join(rob.home, link.String(), dirR, time.Time{}); err != nil {
		t.Fatal(err)
	}
	rob.reload()
	waitFor(t, "rob in sync", func() bool {
		s, ok := rob.share("home")
		return ok && s.InSync && readFile(t, filepath.Join(dirR, "recipe.txt")) == "the family recipe\n"
	})
	aliceID := alice.d.ID().String()
	waitFor(t, "rob holds the membership log with both members, and a round trip to alice", func() bool {
		l, err := rob.d.Members("home")
		if err != nil || len(l.Members) != 2 {
			return false
		}
		for _, p := range rob.d.Status().Peers {
			if p.ID == aliceID && p.Connected && p.RTTMillis > 0 {
				return true
			}
		}
		return false
	})

	// The events page, open while alice adds a file: its line arrives live.
	login(t, ctx, rob)
	run(t, ctx, "rob's events page", chromedp.Navigate(rob.base+"/events"), chromedp.WaitVisible(chromedp.CSS(`#events li`)))
	writeFile(t, filepath.Join(dirA, "new.txt"), "fresh from alice\n")
	run(t, ctx, "the file's event, live", chromedp.WaitVisible(chromedp.CSS(`#events li.file[data-type="file_applied"]`)))
	events := value(t, ctx, "the events", chromedp.Text(chromedp.CSS(`#events`)))
	if !strings.Contains(events, "share home: new.txt applied from alice") {
		t.Fatalf("the events page shows %q", events)
	}
	screenshot(t, ctx, "events_files")

	// Rob edits a file: a local change, not shared.
	writeFile(t, filepath.Join(dirR, "recipe.txt"), "rob's own recipe\n")
	waitFor(t, "rob's local change in status", func() bool {
		s, _ := rob.share("home")
		return s.LocalChanges != nil && s.LocalChanges.Count == 1
	})
	s, _ := rob.share("home")
	// ls-needed's endpoint lists it too.
	rec := httptest.NewRecorder()
	rob.d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/shares/home/needed", nil))
	var needed daemon.Needed
	if err := json.Unmarshal(rec.Body.Bytes(), &needed); err != nil || rec.Code != http.StatusOK ||
		needed.LocalChanges == nil || needed.LocalChanges.Count != 1 || string(needed.LocalChanges.Paths[0].Path) != "recipe.txt" {
		t.Fatalf("GET /v1/shares/home/needed on rob: %d %s", rec.Code, rec.Body)
	}

	run(t, ctx, "rob's share page", chromedp.Navigate(rob.base+"/share/"+s.ID),
		chromedp.WaitVisible(chromedp.CSS(`#members tr[data-level="rw"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#local-changes`)))
	aliceRow := `#members tr[data-device="` + aliceID + `"]`
	level := value(t, ctx, "alice's level", chromedp.AttributeValue(chromedp.CSS(aliceRow), "data-level")).Value
	reach := value(t, ctx, "how alice is reached", chromedp.AttributeValue(chromedp.CSS(aliceRow), "data-reach")).Value
	row := value(t, ctx, "alice's row", chromedp.Text(chromedp.CSS(aliceRow)))
	if level != "rw" || reach != "lan" || !strings.Contains(row, "alice") || !strings.Contains(row, "LAN") || !strings.Contains(row, " ms") {
		t.Fatalf("alice's member row: level %q, reach %q, text %q", level, reach, row)
	}
	robRow := `#members tr[data-device="` + rob.d.ID().String() + `"]`
	if lv := value(t, ctx, "rob's level", chromedp.AttributeValue(chromedp.CSS(robRow), "data-level")).Value; lv != "ro" {
		t.Fatalf("rob is shown as %q, want ro", lv)
	}
	local := value(t, ctx, "the local changes", chromedp.Text(chromedp.CSS(`table.local`)))
	if !strings.Contains(local, "recipe.txt") || !strings.Contains(local, "changed") {
		t.Fatalf("the local changes show %q", local)
	}
	screenshot(t, ctx, "share_readonly")

	run(t, ctx, "revert recipe.txt",
		chromedp.Click(chromedp.CSS(`table.local tr[data-path="recipe.txt"] button.revert`)),
		chromedp.WaitVisible(chromedp.CSS(`#done`)))
	waitFor(t, "rob's recipe.txt back to alice's version", func() bool {
		return readFile(t, filepath.Join(dirR, "recipe.txt")) == "the family recipe\n"
	})
	if got := readFile(t, filepath.Join(dirA, "recipe.txt")); got != "the family recipe\n" {
		t.Fatalf("rob's edit reached alice: %q", got)
	}
	kept, _ := filepath.Glob(filepath.Join(dirR, ".blueshift", "versions", "recipe*"))
	if !slices.ContainsFunc(kept, func(p string) bool { b, _ := os.ReadFile(p); return string(b) == "rob's own recipe\n" }) {
		t.Fatalf("rob's edit is not in the versions folder: %v", kept)
	}
	screenshot(t, ctx, "share_reverted")
}

// TestBrowserApprove: alice and bob own a share with k = 2; carol joins
// through alice's link, a change that waits for a second owner. Bob's
// share page lists it with an Approve button; clicking it makes carol a
// writer, and she syncs.
func TestBrowserApprove(t *testing.T) {
	ctx := browser(t)
	alice, bob, carol := startDevice(t, "alice"), startDevice(t, "bob"), startDevice(t, "carol")
	alice.addShare("team", map[string]string{"plan.txt": "the plan\n"})
	waitFor(t, "alice's share in sync", func() bool { s, ok := alice.share("team"); return ok && s.InSync })
	addrs, err := daemon.Addresses(nil, alice.d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	join := func(dev *device, name string) string {
		t.Helper()
		l, _, err := daemon.Invite(alice.home, "team", daemon.InviteOptions{Addresses: addrs})
		if err != nil {
			t.Fatal(err)
		}
		alice.reload()
		dir := filepath.Join(filepath.Dir(dev.home), "team-"+name)
		if _, err := daemon.Join(dev.home, l.String(), dir, time.Time{}); err != nil {
			t.Fatal(err)
		}
		dev.reload()
		return dir
	}
	join(bob, "bob")
	bobID, carolID := bob.d.ID().String(), carol.d.ID().String()
	waitFor(t, "bob holds the log", func() bool { l, err := bob.d.Members("team"); return err == nil && len(l.Members) == 2 })
	if _, err := alice.d.SetOwners("team", []string{bobID}, 2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "bob an owner, k = 2", func() bool {
		l, err := bob.d.Members("team")
		if err != nil || l.Threshold != 2 {
			return false
		}
		return slices.ContainsFunc(l.Members, func(m daemon.MemberView) bool { return m.Device == bobID && m.Owner })
	})
	dirC := join(carol, "carol")
	waitFor(t, "carol's addition pending on bob", func() bool { l, err := bob.d.Members("team"); return err == nil && len(l.Pending) == 1 })
	if got := readFile(t, filepath.Join(dirC, "plan.txt")); got == "the plan\n" {
		t.Fatal("carol got the files before the second owner approved")
	}

	s, _ := bob.share("team")
	login(t, ctx, bob)
	run(t, ctx, "bob's share page", chromedp.Navigate(bob.base+"/share/"+s.ID),
		chromedp.WaitVisible(chromedp.CSS(`table.pending button.approve`)))
	if txt := value(t, ctx, "the pending change", chromedp.Text(chromedp.CSS(`table.pending`))); !strings.Contains(txt, "1 of 2") {
		t.Fatalf("the pending change shows %q", txt)
	}
	screenshot(t, ctx, "share_pending")
	run(t, ctx, "approve", chromedp.Click(chromedp.CSS(`table.pending button.approve`)), chromedp.WaitVisible(chromedp.CSS(`#done`)))
	if done := value(t, ctx, "the answer", chromedp.Text(chromedp.CSS(`#done`))); !strings.Contains(done, "took effect") {
		t.Fatalf("after approving: %q", done)
	}
	waitFor(t, "carol a writer on alice", func() bool {
		l, err := alice.d.Members("team")
		return err == nil && len(l.Pending) == 0 &&
			slices.ContainsFunc(l.Members, func(m daemon.MemberView) bool { return m.Device == carolID && m.Level == "rw" })
	})
	waitFor(t, "carol syncs", func() bool { return readFile(t, filepath.Join(dirC, "plan.txt")) == "the plan\n" })
}
