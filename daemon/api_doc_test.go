package daemon

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// routeList records the patterns routes registers.
type routeList []string

func (l *routeList) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*l = append(*l, pattern)
}

// docEndpoints are the endpoints docs/api.md's table lists, one a row.
func docEndpoints(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `((?:GET|POST|PUT|DELETE) /v1/[^`]*)` \\|")
	var out []string
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) < 20 {
		t.Fatalf("docs/api.md's table lists %d endpoints; has its format changed?", len(out))
	}
	return out
}

// TestAPIDocumented holds the mux and docs/api.md together: every endpoint
// registered is a row of the table, and every row is served by the
// handler registered under that very pattern.
func TestAPIDocumented(t *testing.T) {
	documented := docEndpoints(t)
	var registered routeList
	d := &Daemon{}
	d.routes(&registered)
	for _, p := range registered {
		if !slices.Contains(documented, p) {
			t.Errorf("endpoint %q is registered but not in docs/api.md's table", p)
		}
	}
	mux := d.Handler().(*http.ServeMux)
	for _, p := range documented {
		if !slices.Contains(registered, p) {
			t.Errorf("docs/api.md lists %q, which the daemon does not register", p)
			continue
		}
		method, path, _ := strings.Cut(p, " ")
		path = regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllString(path, "x")
		_, got := mux.Handler(httptest.NewRequest(method, path, nil))
		if got != p {
			t.Errorf("%s %s is served by %q, not by the documented %q", method, path, got, p)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(documented)))) != len(documented) {
		t.Errorf("docs/api.md lists an endpoint twice: %q", documented)
	}
}
