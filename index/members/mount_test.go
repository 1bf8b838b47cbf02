package members

import (
	"errors"
	"testing"
)

// TestMountRules: a writer records a nested share as a mount; a read-only
// member, a stranger, a second mount at the same path or of the same share,
// and an unmount of nothing are refused; an unmount frees the path.
func TestMountRules(t *testing.T) {
	w := newWorld(t, "a", "r", "x")
	s := w.genesis("a")
	if err := s.Append(w.entry(s, "a", add(w.id("r"), ReadOnly))); err != nil {
		t.Fatal(err)
	}
	inner, other := [32]byte{1, 2, 3}, [32]byte{4, 5, 6}
	mount := func(p string, id [32]byte, un bool) Body {
		return Body{Kind: KindMount, Mount: Mount{Path: p, Inner: id, Unmount: un}}
	}
	if err := s.Append(w.entry(s, "a", mount("Parents", inner, false))); err != nil {
		t.Fatal(err)
	}
	if got := s.Mounts(); len(got) != 1 || got["Parents"] != inner {
		t.Fatalf("mounts %v", got)
	}
	for _, tt := range []struct {
		name string
		e    *Entry
	}{
		{"a read-only member mounts", w.entry(s, "r", mount("Kids", other, false))},
		{"a stranger mounts", w.entry(s, "x", mount("Kids", other, false))},
		{"a second mount at a path", w.entry(s, "a", mount("Parents", other, false))},
		{"the same share mounted twice", w.entry(s, "a", mount("Elsewhere", inner, false))},
		{"an unmount of another share", w.entry(s, "a", mount("Parents", other, true))},
		{"a read-only member unmounts", w.entry(s, "r", mount("Parents", inner, true))},
	} {
		if err := s.Check(tt.e); !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v, want ErrRefused", tt.name, err)
		}
	}
	if err := s.Append(w.entry(s, "a", mount("Parents", inner, true))); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(w.entry(s, "a", mount("Parents/Sub", inner, false))); err != nil {
		t.Fatalf("mount after the unmount: %v", err)
	}
	// What a replay of the log says is what the log said.
	r, err := Replay(w.share, w.sharePK, s.Entries(0))
	if err != nil || len(r.Mounts()) != 1 || r.Mounts()["Parents/Sub"] != inner {
		t.Fatalf("replay: %v %v", r.Mounts(), err)
	}
}

func TestMountPathsValidated(t *testing.T) {
	w := newWorld(t, "a")
	s := w.genesis("a")
	for _, p := range []string{"", ".", "..", "../x", "/abs", "a//b", "a/./b", "a/", ".blueshift", ".blueshift/x", "a\\b", "a\x00b"} {
		b := Body{Kind: KindMount, Mount: Mount{Path: p, Inner: [32]byte{9}}, Share: w.share, Seq: uint64(s.Len()), Prev: s.Head(), Author: w.id("a")}
		if _, err := NewEntry(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("mount path %q: %v, want ErrInvalid", p, err)
		}
	}
	b := Body{Kind: KindMount, Mount: Mount{Path: "x", Inner: w.share}, Share: w.share, Seq: uint64(s.Len()), Prev: s.Head(), Author: w.id("a")}
	if _, err := NewEntry(b); !errors.Is(err, ErrInvalid) {
		t.Errorf("a share mounted in itself: %v", err)
	}
}

// TestStoreMounted: a path strictly inside a mount is the inner share's,
// the mount's own folder and paths beside it are not; a store opened again
// reads the mounts back from Pebble.
func TestStoreMounted(t *testing.T) {
	w := newWorld(t, "a")
	st, db := openStore(t)
	s := w.genesis("a")
	e := w.entry(s, "a", Body{Kind: KindMount, Mount: Mount{Path: "Family/Parents", Inner: [32]byte{7}}})
	if err := s.Append(e); err != nil {
		t.Fatal(err)
	}
	var raw [][]byte
	for _, e := range s.Entries(0) {
		raw = append(raw, e.Encode())
	}
	if n, err := st.Merge(w.share, w.sharePK, raw); err != nil || n != 2 {
		t.Fatalf("merge: %d %v", n, err)
	}
	for _, store := range []*Store{st, Open(db)} {
		if _, err := store.State(w.share, w.sharePK); err != nil { // loads the log
			t.Fatal(err)
		}
		for p, want := range map[string]bool{
			"Family/Parents/a.txt": true, "Family/Parents/x/y": true,
			"Family/Parents": false, "Family/ParentsX/a": false, "Family/a.txt": false, "a": false,
		} {
			if m, got := store.Mounted(w.share, p); got != want || got && m != "Family/Parents" {
				t.Errorf("Mounted(%q) = %q, %v; want %v", p, m, got, want)
			}
		}
	}
}
