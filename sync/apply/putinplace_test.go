package apply

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestPutInPlaceUserWins covers the moment between checking what a path
// holds and renaming new content over it: whatever a user does to the path
// in that moment, their file stays where it was (ErrChanged, so the engine
// looks again), or, when the check still holds, the old file is kept as a
// version. The user acts after the check (putInPlace is called with the
// state seen then) or after the version was linked (swapChecked).
func TestPutInPlaceUserWins(t *testing.T) {
	cases := []struct {
		name     string
		atLink   bool                         // the user acts after the version link, not the check
		before   string                       // the file at the check ("" none)
		user     func(t *testing.T, p string) // what the user does after the check
		want     string                       // the file at the path afterwards
		changed  bool                         // ErrChanged expected
		versions []string                     // contents in the versions folder
	}{
		{name: "created where there was nothing", user: func(t *testing.T, p string) { write(t, p, "user new") },
			want: "user new", changed: true},
		{name: "saved over by rename", before: "old", user: func(t *testing.T, p string) {
			write(t, p+".part", "user saved")
			if err := os.Rename(p+".part", p); err != nil {
				t.Fatal(err)
			}
		}, want: "user saved", changed: true, versions: []string{"user saved"}},
		{name: "saved over by rename after the link", atLink: true, before: "old", user: func(t *testing.T, p string) {
			write(t, p+".part", "user saved")
			if err := os.Rename(p+".part", p); err != nil {
				t.Fatal(err)
			}
		}, want: "user saved", changed: true, versions: []string{"old"}},
		{name: "edited in place after the link", atLink: true, before: "old", user: func(t *testing.T, p string) { write(t, p, "user edited, longer") },
			want: "user edited, longer", changed: true, versions: []string{"user edited, longer"}},
		{name: "deleted after the link", atLink: true, before: "old", user: func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, changed: true, versions: []string{"old"}},
		{name: "edited in place", before: "old", user: func(t *testing.T, p string) { write(t, p, "user edited, longer") },
			want: "user edited, longer", changed: true, versions: []string{"user edited, longer"}},
		{name: "deleted", before: "old", user: func(t *testing.T, p string) {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}, changed: true},
		{name: "untouched", before: "old", user: func(*testing.T, string) {}, want: "new", versions: []string{"old"}},
		{name: "nothing, untouched", user: func(*testing.T, string) {}, want: "new"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, dir := openTest(t, Options{})
			p := filepath.Join(dir, "d", "f.txt")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.before != "" {
				write(t, p, tc.before)
			}
			d, _, err := r.openDir("d", false, false)
			if err != nil {
				t.Fatal(err)
			}
			defer r.dirs.release(d)
			cur, err := statAt(d, "f.txt")
			if err != nil {
				t.Fatal(err)
			}
			tmp, err := r.createTemp()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tmp.f.WriteString("new"); err != nil {
				t.Fatal(err)
			}
			tmp.f.Close()
			tmp.f = nil

			if tc.atLink {
				if _, err := r.keepVersionIn(d, "f.txt", false); err != nil {
					t.Fatal(err)
				}
				tc.user(t, p)
				err = r.swapChecked(tmp.d, tmp.base, d, "f.txt", cur)
			} else {
				tc.user(t, p)
				_, err = r.putInPlace(tmp.d, tmp.base, d, "f.txt", cur)
			}
			if errors.Is(err, ErrChanged) != tc.changed || (err != nil && !tc.changed) {
				t.Fatalf("putInPlace: %v, want ErrChanged %v", err, tc.changed)
			}
			if got, _ := os.ReadFile(p); string(got) != tc.want {
				t.Fatalf("path holds %q, want %q", got, tc.want)
			}
			if tc.changed {
				tmp.remove() // what every caller does on error
			} else {
				tmp.release()
			}
			noTemps(t, dir, "after putInPlace")
			var kept []string
			vs, _ := filepath.Glob(filepath.Join(dir, versionsDir, "d", "*"))
			for _, v := range vs {
				kept = append(kept, readFile(t, v))
			}
			if !slices.Equal(kept, tc.versions) {
				t.Fatalf("versions %q, want %q", kept, tc.versions)
			}
		})
	}
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
