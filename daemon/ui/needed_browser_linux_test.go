package ui_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestBrowserNeededError drives bob's share page in Chromium while a file
// alice added cannot be written on bob: the folder it goes in is
// immutable there (chattr +i, which even root cannot write through). The
// page says the share still needs one file and lists it with its size,
// the reason "error", the sender and the error's text; a screenshot is
// saved. Once the folder is writable again the file arrives and the page
// says nothing is needed.
func TestBrowserNeededError(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	alice := startDevice(t, "alice")
	bob := startDevice(t, "bob")
	dirA := alice.addShare("home", map[string]string{"locked/old.txt": "here before\n"})
	waitFor(t, "alice's share in sync", func() bool { s, ok := alice.share("home"); return ok && s.InSync })
	addrs, err := daemon.Addresses(nil, alice.d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	link, _, err := daemon.Invite(alice.home, "home", daemon.InviteOptions{Addresses: addrs})
	if err != nil {
		t.Fatal(err)
	}
	alice.reload()
	dirB := filepath.Join(filepath.Dir(bob.home), "home-bob")
	if _, err := daemon.Join(bob.home, link.String(), dirB, time.Time{}); err != nil {
		t.Fatal(err)
	}
	bob.reload()
	waitFor(t, "bob in sync", func() bool {
		s, ok := bob.share("home")
		return ok && s.InSync && readFile(t, filepath.Join(dirB, "locked", "old.txt")) == "here before\n"
	})

	unlock := immutable(t, filepath.Join(dirB, "locked"))
	const content = "cannot land on bob\n"
	writeFile(t, filepath.Join(dirA, "locked", "new.txt"), content)
	var needed daemon.Needed
	waitFor(t, "bob's needed list shows locked/new.txt with an error", func() bool {
		rec := httptest.NewRecorder()
		bob.d.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/shares/home/needed", nil))
		needed = daemon.Needed{}
		return rec.Code == http.StatusOK && json.Unmarshal(rec.Body.Bytes(), &needed) == nil &&
			len(needed.Files) == 1 && needed.Files[0].Reason == "error" && needed.Files[0].Error != ""
	})
	why := needed.Files[0].Error
	if needed.Files[0].Path != "locked/new.txt" || !strings.Contains(why, "operation not permitted") {
		t.Fatalf("bob's needed list: %+v", needed)
	}

	s, _ := bob.share("home")
	login(t, ctx, bob)
	run(t, ctx, "bob's share page", chromedp.Navigate(bob.base+"/share/"+s.ID),
		chromedp.WaitVisible(chromedp.CSS(`table.needed`)))
	summary := value(t, ctx, "the needed summary", chromedp.Text(chromedp.CSS(`#needed`)))
	if !strings.Contains(summary, "1 file,") {
		t.Fatalf("bob's share page says %q, want 1 file still needed", summary)
	}
	row := value(t, ctx, "the needed file's row", chromedp.Text(chromedp.CSS(`table.needed tr:nth-child(2)`)))
	for _, want := range []string{"locked/new.txt", "19 B", "error", "(from alice)", why} {
		if !strings.Contains(row, want) {
			t.Fatalf("bob's needed row %q lacks %q", row, want)
		}
	}
	screenshot(t, ctx, "share_needed")

	unlock()
	waitFor(t, "locked/new.txt on bob", func() bool {
		s, ok := bob.share("home")
		return ok && s.InSync && readFile(t, filepath.Join(dirB, "locked", "new.txt")) == content
	})
	run(t, ctx, "bob's share page, in sync", chromedp.Navigate(bob.base+"/share/"+s.ID),
		chromedp.WaitVisible(chromedp.CSS(`#needed.ok`)))
	if n := value(t, ctx, "needed tables", chromedp.Evaluate[int](`document.querySelectorAll("table.needed").length`)); n != 0 {
		t.Fatalf("bob's share page in sync still has %d needed tables", n)
	}
}

// immutable makes dir immutable (chattr +i) until the returned func or the
// test's cleanup undoes it; it skips the test where the file system or
// the user cannot.
func immutable(t *testing.T, dir string) (undo func()) {
	t.Helper()
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Skipf("chattr +i %s: %v: %s (needs root and a file system with attributes)", dir, err, out)
	}
	done := false
	undo = func() {
		if done {
			return
		}
		done = true
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v: %s", dir, err, out)
		}
	}
	t.Cleanup(undo) // registered after t.TempDir: runs before its removal
	return undo
}
