package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2EKeyringPair: alice has her own share docs, club (carol's, which
// alice joined read-write) and news (carol's, read-only). She pairs her
// new laptop with `pair`; the laptop joins the pair link into a folder and
// follows all three at alice's access, and later, a fourth share alice adds
// after pairing; a phone pairs by the short code. The keyring's records are
// sealed. Removing the laptop from the keyring (`pair remove`) removes it
// from every share alice may remove it from (a read-only holder may not:
// the result says so) and a new key epoch starts in each; the phone stays,
// until `member remove keyring` removes it the same way.
func TestE2EKeyringPair(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, l, c, p := newDevice(t, "alice"), newDevice(t, "laptop"), newDevice(t, "carol"), newDevice(t, "phone")
	idL, idP := strings.TrimSpace(l.ok("id")), strings.TrimSpace(p.ok("id"))
	work := t.TempDir()
	in := func(parts ...string) string { return filepath.Join(append([]string{work}, parts...)...) }
	write(t, in("a", "docs", "plan.txt"), "the plan\n")
	write(t, in("c", "club", "rules.txt"), "rule one\n")
	write(t, in("c", "news", "today.txt"), "sunny\n")
	a.ok("share", "add", in("a", "docs"), "--name", "docs")
	c.ok("share", "add", in("c", "club"), "--name", "club")
	c.ok("share", "add", in("c", "news"), "--name", "news")
	for _, d := range []*device{a, l, c, p} {
		d.start()
	}
	defer func() {
		if t.Failed() {
			t.Logf("alice:\n%s\nlaptop:\n%s\ncarol:\n%s\nphone:\n%s", a.logText(), l.logText(), c.logText(), p.logText())
		}
	}()
	a.ok("join", firstLine(c.ok("invite", "club")), in("a", "club"))
	a.ok("join", firstLine(c.ok("invite", "news", "--read-only")), in("a", "news"))
	waitTrees(t, in("c", "club"), in("a", "club"), "alice joined club", a, c)
	waitTrees(t, in("c", "news"), in("a", "news"), "alice joined news", a, c)

	// A share's link and a pair link are told apart; a share's link still
	// needs its PATH (usage error), a pair link does not.
	if _, errOut, code := l.cli("join", firstLine(a.ok("invite", "docs"))); code != exitUsage {
		t.Fatalf("join LINK without PATH: exit %d %s", code, errOut)
	}
	var pr daemon.PairResult
	if err := json.Unmarshal([]byte(a.ok("pair", "--json")), &pr); err != nil || !daemon.IsPairLink(pr.Link) || pr.Code == "" {
		t.Fatalf("pair --json: %+v %v", pr, err)
	}
	if _, err := daemon.ParseLink(pr.Link); err == nil {
		t.Fatal("a pair link reads as a share's link")
	}
	l.ok("join", pr.Link, in("l"))

	want := map[string]string{"docs": "read-write", "club": "read-write", "news": "read-only"}
	waitFollows := func(why string) {
		t.Helper()
		for name := range want {
			waitTrees(t, in("a", name), in("l", name), why+": "+name, a, l)
		}
		st, _ := l.status()
		for name, access := range want {
			var found bool
			for _, s := range st.Shares {
				if s.Name == name {
					found = true
					if s.Access != access || s.Path != in("l", name) || s.Join != nil {
						t.Errorf("%s: laptop has %s as %+v, want %s at %s, joined", why, name, s, access, in("l", name))
					}
				}
			}
			if !found {
				t.Errorf("%s: laptop does not follow %s", why, name)
			}
		}
	}
	waitFollows("paired")

	// A share added on alice after pairing reaches the laptop too.
	write(t, in("a", "later", "new.txt"), "added after pairing\n")
	a.ok("share", "add", in("a", "later"), "--name", "later")
	want["later"] = "read-write"
	waitFollows("a share added later")

	// A phone pairs by the short code instead, and follows all four.
	var pr2 daemon.PairResult
	if err := json.Unmarshal([]byte(a.ok("pair", "--json")), &pr2); err != nil {
		t.Fatal(err)
	}
	st, _ := a.status()
	p.ok("join", pr2.Code, in("p"), "--addr", st.Listen)
	for name := range want {
		waitTrees(t, in("a", name), in("p", name), "the phone paired by code: "+name, a, p)
	}

	// The laptop writes where alice may write, and it reaches her.
	write(t, in("l", "docs", "from-laptop.txt"), "hello from the laptop\n")
	waitTrees(t, in("a", "docs"), in("l", "docs"), "the laptop writes to docs", a, l)

	// Every member level in the logs is alice's own.
	for name, level := range map[string]string{"docs": "rw", "club": "rw", "news": "ro", "later": "rw"} {
		m, ok := memberOf(a.waitMembers(name, "the laptop in the log", func(ml daemon.MemberList) bool {
			_, ok := memberOf(ml, idL)
			return ok
		}), idL)
		if !ok || m.Level != level || m.Removed {
			t.Errorf("%s: the laptop is %+v, want level %s", name, m, level)
		}
	}

	// The records are sealed: no share key in clear in the keyring folder.
	cfgText, err := os.ReadFile(filepath.Join(a.home, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(a.home, daemon.KeyringDir))
	if err != nil {
		t.Fatal(err)
	}
	records := 0
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".cap") {
			continue
		}
		records++
		b, _ := os.ReadFile(filepath.Join(a.home, daemon.KeyringDir, e.Name()))
		for _, line := range strings.Split(string(cfgText), "\n") {
			if key, ok := strings.CutPrefix(strings.TrimSpace(line), "key = "); ok && strings.Contains(string(b), strings.Trim(key, `"`)) {
				t.Errorf("record %s holds a share key in clear", e.Name())
			}
		}
	}
	if records != 4 {
		t.Errorf("alice's keyring holds %d records, want 4", records)
	}

	// Out of the keyring, out of every share alice may remove it from.
	var rm daemon.KeyringRemoval
	if err := json.Unmarshal([]byte(a.ok("pair", "remove", idL, "--json")), &rm); err != nil || !rm.Keyring.Applied {
		t.Fatalf("pair remove: %+v %v", rm, err)
	}
	results := map[string]string{}
	for _, s := range rm.Shares {
		results[s.Name] = s.Result
	}
	for _, name := range []string{"docs", "club", "later"} {
		if results[name] != "removed" {
			t.Errorf("pair remove: %s: %q, want removed (all: %+v)", name, results[name], rm.Shares)
		}
		ml := a.members(name)
		if m, _ := memberOf(ml, idL); !m.Removed || ml.Epoch != 1 {
			t.Errorf("%s: after pair remove the laptop is %+v, epoch %d", name, m, ml.Epoch)
		}
	}
	if r := results["news"]; r == "" || r == "removed" {
		t.Errorf("pair remove: news (alice is read-only there): %q, want why it could not", r)
	}
	if m, _ := memberOf(a.members(daemon.KeyringName), idL); !m.Removed {
		t.Errorf("the laptop is still in the keyring: %+v", m)
	}
	// The phone stays: the removal is of one device.
	for _, name := range []string{daemon.KeyringName, "docs", "club", "later"} {
		if m, ok := memberOf(a.members(name), idP); !ok || m.Removed {
			t.Errorf("%s: the phone is %+v after the laptop's removal", name, m)
		}
	}
	// `member remove` of the keyring does the same, through the keyring loop.
	a.ok("member", "remove", daemon.KeyringName, idP)
	for _, name := range []string{"docs", "club", "later"} {
		a.waitMembers(name, "the phone removed through member remove keyring", func(ml daemon.MemberList) bool {
			m, ok := memberOf(ml, idP)
			return ok && m.Removed
		})
	}
	// Carol's club learns it from alice's log.
	c.waitMembers("club", "the laptop removed, relayed by alice", func(ml daemon.MemberList) bool {
		m, ok := memberOf(ml, idL)
		return ok && m.Removed
	})
}
