package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blueshift-sync/blueshift/daemon"
)

// TestE2ENestedShares: three shares nested in one another, each with its
// own members, and every device sees exactly its part. Alice owns
// Family, Family/Parents and Family/Parents/Private; Bob is in Family
// only, Carol in Family and Parents, Dan in all three (nested the same way
// on his disk). A file moved by Alice across a boundary leaves the devices
// that are not members of its new share.
func TestE2ENestedShares(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end")
	}
	a, b, c, d := newDevice(t, "alice"), newDevice(t, "bob"), newDevice(t, "carol"), newDevice(t, "dan")
	work := t.TempDir()
	root := func(dev string, parts ...string) string {
		return filepath.Join(append([]string{work, dev, "Family"}, parts...)...)
	}
	write(t, root("a", "shopping.txt"), "milk\n")
	write(t, root("a", "photos", "beach.jpg"), "sand\n")
	write(t, root("a", "Parents", "budget.txt"), "numbers\n")
	write(t, root("a", "Parents", "gifts", "list.txt"), "a bike\n")
	write(t, root("a", "Parents", "Private", "diary.txt"), "dear diary\n")
	// The inner shares first: the outer one then never indexes their files.
	privateID := strings.TrimSpace(a.ok("share", "add", root("a", "Parents", "Private"), "--name", "private"))
	parentsID := strings.TrimSpace(a.ok("share", "add", root("a", "Parents"), "--name", "parents"))
	a.ok("share", "add", root("a"), "--name", "family")
	for _, dev := range []*device{a, b, c, d} {
		dev.start()
	}
	join := func(dev *device, share, dir string) {
		t.Helper()
		link := strings.SplitN(a.ok("invite", share), "\n", 2)[0]
		dev.ok("join", link, dir)
	}
	join(b, "family", root("b"))
	join(c, "family", root("c"))
	join(c, "parents", root("c", "Parents"))
	join(d, "family", root("d"))
	join(d, "parents", root("d", "Parents"))
	join(d, "private", root("d", "Parents", "Private"))

	all := userTree(t, root("a"))
	part := func(keep func(p string) bool) map[string]string {
		out := map[string]string{}
		for p, v := range maps.All(all) {
			if keep(p) {
				out[p] = v
			}
		}
		return out
	}
	// A share's folder shows in the share around it as an empty folder
	// (the placeholder), nothing of what is inside.
	inParents := func(p string) bool { return strings.HasPrefix(p, "Parents/") }
	inPrivate := func(p string) bool { return strings.HasPrefix(p, "Parents/Private/") }
	want := map[*device]map[string]string{
		b: part(func(p string) bool { return !inParents(p) }),
		c: part(func(p string) bool { return !inPrivate(p) }),
		d: all,
	}
	dirs := map[*device]string{b: root("b"), c: root("c"), d: root("d")}
	check := func(why string) {
		t.Helper()
		for _, dev := range []*device{b, c, d} {
			waitTreeIs(t, dirs[dev], want[dev], why+": "+dev.name, a, dev)
		}
	}
	check("first sync")

	// Across the boundary: out of Parents into Family (Bob now sees it),
	// and out of Family into Private (Bob and Carol no longer do).
	if err := os.Rename(root("a", "Parents", "budget.txt"), root("a", "budget.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(root("a", "shopping.txt"), root("a", "Parents", "Private", "shopping.txt")); err != nil {
		t.Fatal(err)
	}
	all = userTree(t, root("a"))
	want = map[*device]map[string]string{
		b: part(func(p string) bool { return !inParents(p) }),
		c: part(func(p string) bool { return !inPrivate(p) }),
		d: all,
	}
	check("moves across boundaries")

	// Each outer share's log holds a signed mount entry (path, inner share
	// ID) made by alice, relayed to every member, the inner share's members
	// or not.
	mounted := func(dev *device, ref, path, id string) {
		t.Helper()
		dev.waitMembers(ref, "the mount of "+path, func(l daemon.MemberList) bool {
			return len(l.Mounts) == 1 && l.Mounts[0].Path == path && l.Mounts[0].Share == id
		})
	}
	for _, dev := range []*device{a, b, c, d} {
		mounted(dev, "family", "Parents", parentsID)
	}
	for _, dev := range []*device{a, c, d} {
		mounted(dev, "parents", "Private", privateID)
	}
	// Bob sees Parents as a placeholder: what he writes into it is refused
	// by the members of family (the folder is the parents share's), while
	// what he writes beside it syncs.
	write(t, root("b", "Parents", "intruder.txt"), "not a parent\n")
	write(t, root("b", "after-intruder.txt"), "beside it\n")
	for _, dev := range []*device{a, c, d} {
		waitFileIs(t, filepath.Join(dirOf(dev, root), "after-intruder.txt"), "beside it\n", a, b, dev)
		noFile(t, filepath.Join(dirOf(dev, root), "Parents", "intruder.txt"), dev.name+" took bob's file inside the parents' share")
	}
	if l := a.members("family"); !strings.Contains(strings.Join(l.Refused, "\n"), "intruder.txt") {
		t.Errorf("alice's family does not say it refused bob's file: %v", l.Refused)
	}
}

// dirOf is dev's Family folder in TestE2ENestedShares.
func dirOf(dev *device, root func(string, ...string) string) string {
	return root(map[string]string{"alice": "a", "bob": "b", "carol": "c", "dan": "d"}[dev.name])
}

// waitFileIs polls until path holds want.
func waitFileIs(t *testing.T, path, want string, devs ...*device) {
	t.Helper()
	for deadline := time.Now().Add(e2eDeadline); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && string(b) == want {
			return
		}
	}
	var logs strings.Builder
	for _, d := range devs {
		logs.WriteString("--- " + d.name + " log:\n" + d.logText() + "\n")
	}
	t.Fatalf("%s never held %q\n%s", path, want, logs.String())
}

// waitTreeIs polls until dir holds exactly want (tree's form), failing
// with the difference at the deadline.
func waitTreeIs(t *testing.T, dir string, want map[string]string, why string, devs ...*device) {
	t.Helper()
	var diff string
	for deadline := time.Now().Add(e2eDeadline); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if diff = treeDiff(userTree(t, dir), want); diff == "" {
			return
		}
	}
	var logs strings.Builder
	for _, d := range devs {
		logs.WriteString("--- " + d.name + " log:\n" + d.logText() + "\n")
	}
	have := slices.Sorted(maps.Keys(userTree(t, dir)))
	t.Fatalf("%s: %s holds %v: %s\n%s", why, dir, have, diff, logs.String())
}

// userTree is tree without the .blueshift folders of nested shares (their
// versions differ from device to device).
func userTree(t *testing.T, dir string) map[string]string {
	out := tree(t, dir)
	for p := range out {
		if p == ".blueshift" || strings.HasSuffix(p, "/.blueshift") || strings.Contains(p, "/.blueshift/") || strings.HasPrefix(p, ".blueshift/") {
			delete(out, p)
		}
	}
	return out
}
