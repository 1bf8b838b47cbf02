package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blueshift-sync/blueshift/cmd/internal/netns"
)

// Users at work during a pull. Each round drops a folder of large and small
// files on the sender; while the receiver pulls it, a user on each side
// works: editor saves (write a temp, rename over the file), appends, a
// directory renamed while its files are being pulled, touch and chmod
// storms, and both users saving the same file (a conflict). Checked: the
// trees converge (names, modes, contents); every content a user last wrote
// at a path on either device survives, in a file, a conflict copy or a
// versions folder; the renamed folder ends as one folder at its new name
// with all its files; no editor temp comes back.

func activity(ctx context.Context, s *scenario) error {
	ep := netns.Endpoint{IP: "127.0.0.1"}
	a, err := s.newDevice(ctx, "sender", ep, filepath.Join(s.work, "sender"))
	if err != nil {
		return err
	}
	b, err := s.newDevice(ctx, "receiver", ep, filepath.Join(s.work, "receiver"))
	if err != nil {
		return err
	}
	if err := startSharing(ctx, s, "activity", a, b); err != nil {
		return err
	}
	ua, ub := &user{s: s, dev: a, final: map[string]string{}}, &user{s: s, dev: b, final: map[string]string{}}
	for r := 1; r <= s.t.activityRounds && ctx.Err() == nil; r++ {
		if err := activityRound(ctx, s, r, ua, ub); err != nil {
			return err
		}
	}
	return nil
}

func activityRound(ctx context.Context, s *scenario, r int, ua, ub *user) error {
	a, b := ua.dev, ub.dev
	name := fmt.Sprintf("round-%d", r)
	stage := filepath.Join(s.work, "stage-"+name)
	// Large files, a folder of photos that will be renamed mid-pull, small
	// documents for the storms.
	const large, photos, docs = 4, 30, 60
	for i := range large {
		if _, err := writeRandom(filepath.Join(stage, "big", fmt.Sprintf("l%d.bin", i)), s.rng, s.t.activityData/2/large); err != nil {
			return err
		}
	}
	// Two folders of photos: the sender renames photos/2024 and the
	// receiver renames albums/2023 while each is being pulled.
	photoHash := map[string]string{}
	for i := range photos {
		n := fmt.Sprintf("p%02d.jpg", i)
		// Over 1 MiB each, so each photo is pulled and put in place on
		// its own (smaller files are staged and put in place together,
		// and the rename could not land between them).
		h, err := writeRandom(filepath.Join(stage, "photos", "2024", n), s.rng, max(s.t.activityData/4/photos, 1<<20+1<<16))
		if err != nil {
			return err
		}
		photoHash[n] = h
		if err := os.MkdirAll(filepath.Join(stage, "albums", "2023"), 0o755); err != nil {
			return err
		}
		if err := os.Link(filepath.Join(stage, "photos", "2024", n), filepath.Join(stage, "albums", "2023", n)); err != nil {
			return err
		}
	}
	for i := range docs {
		if _, err := writeRandom(filepath.Join(stage, "docs", fmt.Sprintf("d%02d.txt", i)), s.rng, int64(1<<10+s.rng.IntN(30<<10))); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(stage, "docs", "shared.txt"), []byte("the first version\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(stage, filepath.Join(a.dir, name)); err != nil {
		return err
	}
	s.runs++
	s.did("round %d: dropped %s in %d files on the sender; users start working while the receiver pulls", r, mib(s.t.activityData), large+photos+docs+1)

	// Wait until the receiver is pulling the photos (some there, not all),
	// so the work below, the folder's rename first, happens during the pull.
	pulled := 0
	for t0 := time.Now(); time.Since(t0) < s.t.timeout; time.Sleep(5 * time.Millisecond) {
		es, _ := os.ReadDir(filepath.Join(b.dir, name, "photos", "2024"))
		if pulled = len(es); pulled > 0 {
			break
		}
	}
	var ops [2]int
	var wg sync.WaitGroup
	work := func(u *user, i int, f func(step int)) {
		defer wg.Done()
		for step := range 60 {
			if ctx.Err() != nil {
				return
			}
			f(step)
			ops[i]++
			time.Sleep(30 * time.Millisecond)
		}
	}
	renamed, renamedB := false, false
	wg.Add(2)
	go work(ua, 0, func(step int) {
		p := name + "/docs/"
		ua.save(p+"shared.txt", fmt.Sprintf("the sender's save %d\n", step))
		ua.save(p+fmt.Sprintf("d%02d.txt", step%docs), fmt.Sprintf("the sender's edit %d of d%02d\n", step, step%docs))
		ua.appendTo(name+"/sender.log", fmt.Sprintf("sender line %d\n", step))
		if step == 0 {
			if err := os.Rename(filepath.Join(a.dir, name, "photos", "2024"), filepath.Join(a.dir, name, "photos", "2024-trip")); err == nil {
				renamed = true
			}
		}
		ua.touchAll(name + "/docs")
		ua.chmodAll(name+"/docs", step)
	})
	go work(ub, 1, func(step int) {
		if step == 0 {
			if err := os.Rename(filepath.Join(b.dir, name, "albums", "2023"), filepath.Join(b.dir, name, "albums", "2023-old")); err == nil {
				renamedB = true
			}
		}
		p := name + "/docs/"
		if step%3 == 0 {
			ub.save(p+"shared.txt", fmt.Sprintf("the receiver's save %d\n", step))
		}
		ub.save(name+"/receiver-notes.txt", fmt.Sprintf("the receiver's notes, save %d\n", step))
		ub.appendTo(name+"/receiver.log", fmt.Sprintf("receiver line %d\n", step))
		if step%5 == 0 {
			ub.touchAll(name + "/docs")
		}
	})
	wg.Wait()
	if err := ua.err(); err != nil {
		return err
	}
	if err := ub.err(); err != nil {
		return err
	}
	s.did("round %d: %d operations on the sender (renamed photos/2024 to photos/2024-trip when the receiver had %d of its %d photos; editor saves, appends, touch and chmod of %d files), %d on the receiver (saves, appends, touches)",
		r, ops[0], pulled, photos, docs, ops[1])

	took, err := converge(ctx, a, a.dir, b, b.dir, s.t.timeout)
	s.checkErr("trees converge after the users stop", err, fmt.Sprintf("round %d: names, modes and contents equal %.1f s after the last operation", r, took.Seconds()))
	// Every content a user last wrote at a path, somewhere.
	have := contentSet{}
	for _, d := range []*device{a, b} {
		snap, err := snapshot(d.dir)
		if err != nil {
			return err
		}
		for _, fi := range snap {
			have[fi.hash] = true
		}
		vs, err := versionsUnder(d.dir)
		if err != nil {
			return err
		}
		for h := range vs {
			have[h] = true
		}
	}
	var lost []string
	for _, u := range []*user{ua, ub} {
		for p, h := range u.final {
			if !have[h] {
				lost = append(lost, fmt.Sprintf("%s's last content of %s", u.dev.name, p))
			}
		}
	}
	slices.Sort(lost)
	s.check("no user content lost", len(lost) == 0, "round %d: %d last-written contents looked for in both folders, conflict copies and versions folders%s",
		r, len(ua.final)+len(ub.final), listIf(lost))
	// The renamed folder: one folder, at the new name, every photo in it.
	s.check("the folders were renamed during their pull", renamed && renamedB && pulled > 0 && pulled < photos,
		"the receiver had %d of %d photos when the sender renamed photos/2024; the receiver renamed albums/2023 at the same time: %v, %v", pulled, photos, renamed, renamedB)
	for _, rn := range []struct {
		by       string
		ok       bool
		old, new string
	}{{"the sender", renamed, "photos/2024", "photos/2024-trip"}, {"the receiver", renamedB, "albums/2023", "albums/2023-old"}} {
		if !rn.ok {
			continue
		}
		var bad []string
		for _, d := range []*device{a, b} {
			if _, err := os.Stat(filepath.Join(d.dir, name, rn.old)); err == nil {
				left, _ := os.ReadDir(filepath.Join(d.dir, name, rn.old))
				names := make([]string, 0, len(left))
				for _, e := range left {
					names = append(names, e.Name())
				}
				bad = append(bad, fmt.Sprintf("%s still has %s (%d entries: %s)", d.name, rn.old, len(left), strings.Join(names, " ")))
			}
			for n, h := range photoHash {
				got, _, err := hashFile(filepath.Join(d.dir, name, rn.new, n))
				if err != nil || got != h {
					bad = append(bad, fmt.Sprintf("%s: %s/%s missing or changed", d.name, rn.new, n))
				}
			}
		}
		slices.Sort(bad)
		s.check("a folder renamed by "+rn.by+" during its pull ends as one folder at the new name", len(bad) == 0,
			"round %d: %s -> %s, %d photos checked on both devices%s", r, rn.old, rn.new, len(photoHash), listIf(bad))
	}
	var temps []string
	for _, d := range []*device{a, b} {
		_ = filepath.WalkDir(d.dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() && e.Name() == ".blueshift" {
				// A temp synced before its rename is kept, once deleted, in
				// the versions folder, as every deleted file is.
				return filepath.SkipDir
			}
			if err == nil && strings.HasPrefix(e.Name(), ".#") {
				temps = append(temps, p)
			}
			return nil
		})
	}
	s.check("no editor temp comes back", len(temps) == 0, "round %d: %d found%s", r, len(temps), listIf(temps))
	shared, others := 0, 0
	snap, _ := snapshot(a.dir)
	for p := range snap {
		switch {
		case !isConflictCopy(p) || !strings.HasPrefix(p, name+"/"):
		case strings.HasPrefix(filepath.Base(p), "shared."):
			shared++
		default:
			others++
		}
	}
	s.did("round %d: conflict copies: %d of shared.txt (both users saved it), %d of files one user edited while the other only touched them", r, shared, others)
	return nil
}

// user edits one device's folder and remembers the last content it wrote at
// each path (relative to the folder): what must survive.
type user struct {
	s     *scenario
	dev   *device
	mu    sync.Mutex
	final map[string]string
	first error
}

func (u *user) fail(err error) {
	u.mu.Lock()
	if u.first == nil {
		u.first = err
	}
	u.mu.Unlock()
}

func (u *user) err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.first
}

// save writes content the way editors do: a temp beside the file, then a
// rename over it.
func (u *user) save(rel, content string) {
	p := filepath.Join(u.dev.dir, rel)
	tmp := filepath.Join(filepath.Dir(p), ".#"+filepath.Base(p)+".tmp")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.fail(err)
		return
	}
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		u.fail(err)
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		u.fail(err)
		return
	}
	u.mu.Lock()
	u.final[rel] = hashBytes([]byte(content))
	u.mu.Unlock()
}

// appendTo appends a line; the file's whole content is what must survive.
func (u *user) appendTo(rel, line string) {
	p := filepath.Join(u.dev.dir, rel)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		u.fail(err)
		return
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		u.fail(err)
		return
	}
	h, _, err := hashFile(p)
	if err != nil {
		u.fail(err)
		return
	}
	u.mu.Lock()
	u.final[rel] = h
	u.mu.Unlock()
}

// touchAll sets the modification time of every file in dir to now.
func (u *user) touchAll(dir string) {
	now := time.Now()
	es, _ := os.ReadDir(filepath.Join(u.dev.dir, dir))
	for _, e := range es {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".#") {
			_ = os.Chtimes(filepath.Join(u.dev.dir, dir, e.Name()), now, now)
		}
	}
}

// chmodAll flips every file in dir between 0644 and 0600.
func (u *user) chmodAll(dir string, step int) {
	mode := os.FileMode(0o644)
	if step%2 == 1 {
		mode = 0o600
	}
	es, _ := os.ReadDir(filepath.Join(u.dev.dir, dir))
	for _, e := range es {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".#") {
			_ = os.Chmod(filepath.Join(u.dev.dir, dir, e.Name()), mode)
		}
	}
}
