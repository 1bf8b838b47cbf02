package ignore

import "testing"

func TestIgnored(t *testing.T) {
	root := (*Rules)(nil).Child("", []byte("*.log\n/build/\ntmp\n!keep.log\n# comment\n\n"))
	sub := root.Child("src", []byte("generated/\n*.o\n"))
	cases := []struct {
		rules *Rules
		path  string
		dir   bool
		want  bool
	}{
		{nil, "anything", false, false},
		{root, "a.log", false, true},
		{root, "deep/x/a.log", false, true},
		{root, "keep.log", false, false},
		{root, "build", true, true},
		{root, "build", false, false}, // "build/" matches folders only
		{root, "src/build", true, false},
		{root, "tmp", true, true},
		{root, "x/tmp", false, true},
		{root, "main.go", false, false},
		{sub, "src/generated", true, true},
		{sub, "generated", true, false}, // src's rules apply below src only
		{sub, "src/a.o", false, true},
		{sub, "a.o", false, false},
		{sub, "src/z.log", false, true}, // the root's rules still apply
		{sub, "src/main.go", false, false},
	}
	for _, c := range cases {
		if got := c.rules.Ignored(c.path, c.dir); got != c.want {
			t.Errorf("Ignored(%q, dir=%v) = %v, want %v", c.path, c.dir, got, c.want)
		}
	}
}

func FuzzRules(f *testing.F) {
	f.Add("*.log\n!a\n[\n(\n**/x/**\n\\#y", "a/b.log")
	f.Fuzz(func(t *testing.T, content, path string) {
		r := (*Rules)(nil).Child("", []byte(content))
		r.Ignored(path, false)
		r.Ignored(path, true)
	})
}
