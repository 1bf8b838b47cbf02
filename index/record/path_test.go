package record

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	long := strings.Repeat("x", MaxNameLen)
	tests := []struct {
		in  string
		bad string // substring of the error; "" means valid
	}{
		{"a", ""},
		{"a/b.txt", ""},
		{"dir/sub/file", ""},
		{".hidden", ""},
		{"a/.blueshift", ""}, // only the top-level metadata folder is special
		{".blueshiftignore", ""},
		{"..a/b..", ""},
		{"日本/ファイル", ""},
		{"sp ace/tab\tname", ""},
		{long, ""},
		{long + "/" + long, ""},

		{"", "empty"},
		{"/a", "absolute"},
		{"/", "absolute"},
		{"a/", "ends with '/'"},
		{"a//b", "empty component"},
		{".", `"." component`},
		{"..", `".." component`},
		{"a/./b", `"." component`},
		{"a/../b", `".." component`},
		{"a/..", `".." component`},
		{"a\x00b", "NUL"},
		{`a\b`, "backslash"},
		{"a/\xff", "UTF-8"},
		{long + "x", "component longer than 255"},
		{"a/" + long + "x", "component longer than 255"},
		{strings.Repeat("abcdefg/", 512) + "x", "longer than 4096"},
		{".blueshift", "metadata folder"},
		{".blueshift/versions/a", "metadata folder"},
	}
	for _, tt := range tests {
		p, err := ParsePath(tt.in)
		switch {
		case tt.bad == "" && err != nil:
			t.Errorf("ParsePath(%q) = %v, want valid", tt.in, err)
		case tt.bad == "" && string(p) != tt.in:
			t.Errorf("ParsePath(%q) = %q", tt.in, p)
		case tt.bad != "" && err == nil:
			t.Errorf("ParsePath(%q) = %q, want error %q", tt.in, p, tt.bad)
		case tt.bad != "" && !strings.Contains(err.Error(), tt.bad):
			t.Errorf("ParsePath(%q) error %q, want it to say %q", tt.in, err, tt.bad)
		case tt.bad != "" && !errors.Is(err, ErrInvalidPath):
			t.Errorf("ParsePath(%q) error %v is not ErrInvalidPath", tt.in, err)
		}
	}
}

func TestPathParts(t *testing.T) {
	tests := []struct {
		p         Path
		dir, base string
	}{
		{"a", "", "a"},
		{"a/b", "a", "b"},
		{"a/b/c.txt", "a/b", "c.txt"},
	}
	for _, tt := range tests {
		if got := tt.p.Dir(); string(got) != tt.dir {
			t.Errorf("%q.Dir() = %q, want %q", tt.p, got, tt.dir)
		}
		if got := tt.p.Base(); got != tt.base {
			t.Errorf("%q.Base() = %q, want %q", tt.p, got, tt.base)
		}
		if got, err := Join(tt.p.Dir(), tt.p.Base()); err != nil || got != tt.p {
			t.Errorf("Join(%q, %q) = %q, %v", tt.p.Dir(), tt.p.Base(), got, err)
		}
	}
	for _, bad := range []struct {
		dir  Path
		name string
	}{{"", ".blueshift"}, {"a", ".."}, {"a", "b/"}, {"a", ""}, {"", "x\\y"}} {
		if p, err := Join(bad.dir, bad.name); err == nil {
			t.Errorf("Join(%q, %q) = %q, want error", bad.dir, bad.name, p)
		}
	}
}

func TestFromOS(t *testing.T) {
	p, err := FromOS(Path("a/b/c").OS())
	if err != nil || p != "a/b/c" {
		t.Fatalf("FromOS round trip = %q, %v", p, err)
	}
	if _, err := FromOS("../escape"); !errors.Is(err, ErrInvalidPath) {
		t.Errorf("FromOS(../escape) = %v, want ErrInvalidPath", err)
	}
}
