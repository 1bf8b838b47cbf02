package ui_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRefused: requests without a session, with a spent login token, from
// another origin, under another Host, without the CSRF token, or naming a
// path outside the share are refused with a clear message, and change
// nothing.
func TestRefused(t *testing.T) {
	alpha := startDevice(t, "alpha")
	dir := alpha.addShare("docs", map[string]string{"notes.txt": "mine\n"})
	copyName := "notes.sync-conflict-20261203-101500-OTHER12.txt"
	writeFile(t, filepath.Join(dir, copyName), "theirs\n")
	outside := filepath.Join(filepath.Dir(dir), "outside.txt")
	writeFile(t, outside, "not shared\n")
	writeFile(t, filepath.Join(dir, ".blueshift/versions/notes~20261203-090000.txt"), "old\n")
	s, _ := alpha.share("docs")

	signedIn := alpha.client()
	csrf := alpha.csrf(signedIn)
	anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	origin := map[string]string{"Origin": alpha.base}
	resolve := url.Values{"share": {s.ID}, "copy": {copyName}, "keep": {"copy"}, "csrf": {csrf}}
	with := func(v url.Values, k, val string) url.Values {
		o := url.Values{}
		for kk, vv := range v {
			o[kk] = vv
		}
		o.Set(k, val)
		return o
	}
	// wrong is the token with its first character changed.
	wrong := func(tok string) string {
		if tok[0] == 'A' {
			return "B" + tok[1:]
		}
		return "A" + tok[1:]
	}
	host := strings.TrimPrefix(alpha.base, "http://")
	_, port, _ := strings.Cut(host, ":")

	for _, tc := range []struct {
		name   string
		c      *http.Client
		path   string
		form   url.Values
		hdr    map[string]string
		status int
		says   string
	}{
		{"no session", anon, "/conflicts/resolve", resolve, origin, http.StatusUnauthorized, "not signed in"},
		{"another origin", signedIn, "/conflicts/resolve", resolve, map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden, "another site"},
		{"another site's referer", signedIn, "/conflicts/resolve", resolve, map[string]string{"Referer": "http://evil.example/x"}, http.StatusForbidden, "another site"},
		{"no origin at all", signedIn, "/conflicts/resolve", resolve, nil, http.StatusForbidden, "another site"},
		{"rebound host name", signedIn, "/conflicts/resolve", resolve, map[string]string{"Host": "evil.example:" + port, "Origin": "http://evil.example:" + port}, http.StatusForbidden, "DNS rebinding"},
		{"no CSRF token", signedIn, "/conflicts/resolve", with(resolve, "csrf", ""), origin, http.StatusForbidden, "CSRF"},
		{"wrong CSRF token", signedIn, "/conflicts/resolve", with(resolve, "csrf", wrong(csrf)), origin, http.StatusForbidden, "CSRF"},
		{"copy outside the share", signedIn, "/conflicts/resolve", with(resolve, "copy", "../outside.sync-conflict-20261203-101500-X.txt"), origin, http.StatusBadRequest, "outside the share"},
		{"absolute copy path", signedIn, "/conflicts/resolve", with(resolve, "copy", outside), origin, http.StatusBadRequest, "outside the share"},
		{"not a conflict copy", signedIn, "/conflicts/resolve", with(resolve, "copy", "other.txt"), origin, http.StatusBadRequest, "conflict copy"},
		{"unknown keep", signedIn, "/conflicts/resolve", with(resolve, "keep", "neither"), origin, http.StatusBadRequest, "keep &#34;neither&#34;"},
		{"unknown share", signedIn, "/conflicts/resolve", with(resolve, "share", "nope"), origin, http.StatusBadRequest, `no share &#34;nope&#34;`},
		{"restore outside the share", signedIn, "/versions/restore", url.Values{"share": {s.ID}, "path": {"../outside.txt"}, "csrf": {csrf}}, origin, http.StatusBadRequest, "outside the share"},
		{"restore an absolute path", signedIn, "/versions/restore", url.Values{"share": {s.ID}, "path": {outside}, "csrf": {csrf}}, origin, http.StatusBadRequest, "outside the share"},
		{"restore into .blueshift", signedIn, "/versions/restore", url.Values{"share": {s.ID}, "path": {".blueshift/versions/notes~20261203-090000.txt"}, "csrf": {csrf}}, origin, http.StatusBadRequest, "own .blueshift folder"},
		{"restore a version not kept", signedIn, "/versions/restore", url.Values{"share": {s.ID}, "path": {"notes.txt"}, "at": {"2020-01-01T00:00:00Z"}, "csrf": {csrf}}, origin, http.StatusBadRequest, "no such version"},
		{"restore a file never kept", signedIn, "/versions/restore", url.Values{"share": {s.ID}, "path": {"never.txt"}, "csrf": {csrf}}, origin, http.StatusBadRequest, "no such version"},
		{"restore at a bad time", signedIn, "/versions/restore", url.Values{"share": {s.ID}, "path": {"notes.txt"}, "at": {"yesterday"}, "csrf": {csrf}}, origin, http.StatusBadRequest, "write it like"},
		{"invite with a negative expiry", signedIn, "/pair", url.Values{"share": {s.ID}, "expires": {"-1h"}, "csrf": {csrf}}, origin, http.StatusBadRequest, "positive duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.c, alpha.base+tc.path, tc.form, tc.hdr)
			if code != tc.status || !strings.Contains(body, tc.says) {
				t.Fatalf("POST %s: %d %q, want %d saying %q", tc.path, code, body, tc.status, tc.says)
			}
			for p, want := range map[string]string{filepath.Join(dir, "notes.txt"): "mine\n", filepath.Join(dir, copyName): "theirs\n", outside: "not shared\n"} {
				if got := readFile(t, p); got != want {
					t.Fatalf("%s changed to %q", p, got)
				}
			}
		})
	}
	if cfg := readFile(t, filepath.Join(alpha.home, "config.toml")); strings.Contains(cfg, "[[invite]]") {
		t.Fatal("a refused invitation was saved")
	}

	t.Run("pages need a session", func(t *testing.T) {
		for _, p := range []string{"/", "/conflicts", "/versions", "/devices", "/pair", "/events", "/rates", "/sse", "/share/" + s.ID} {
			if body := get(t, anon, alpha.base+p, http.StatusUnauthorized); !strings.Contains(body, "blueshift ui") {
				t.Fatalf("GET %s without a session: %q", p, body)
			}
		}
	})
	t.Run("a login link works once", func(t *testing.T) {
		u, err := alpha.ui.LoginURL(alpha.base)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := anon.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cs := resp.Cookies()
		if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || strings.Contains(resp.Header.Get("Location"), "token") {
			t.Fatalf("login: %s, cookies %+v, to %q", resp.Status, cs, resp.Header.Get("Location"))
		}
		if body := get(t, anon, u, http.StatusUnauthorized); !strings.Contains(body, "used or expired") {
			t.Fatalf("second use: %q", body)
		}
		get(t, anon, alpha.base+"/login?token=guess", http.StatusUnauthorized)
	})
	t.Run("a forged cookie", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, alpha.base+"/", nil)
		req.AddCookie(&http.Cookie{Name: "blueshift-" + alpha.d.ID().String()[:8], Value: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAA"})
		resp, err := anon.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged cookie: %s", resp.Status)
		}
	})
	t.Run("mutations need POST", func(t *testing.T) {
		get(t, signedIn, alpha.base+"/conflicts/resolve?"+resolve.Encode(), http.StatusMethodNotAllowed)
		if got := readFile(t, filepath.Join(dir, "notes.txt")); got != "mine\n" {
			t.Fatalf("notes.txt changed to %q", got)
		}
	})
	t.Run("the key is the user's alone", func(t *testing.T) {
		fi, err := os.Stat(filepath.Join(alpha.home, "ui.key"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("ui.key has mode %v", fi.Mode().Perm())
		}
	})
	// And the same request, properly made, works: the refusals above were
	// the guard's, not a broken handler's.
	code, body := post(t, signedIn, alpha.base+"/conflicts/resolve", resolve, origin)
	if code != http.StatusSeeOther {
		t.Fatalf("resolve: %d %q", code, body)
	}
	if got := readFile(t, filepath.Join(dir, "notes.txt")); got != "theirs\n" {
		t.Fatalf("notes.txt holds %q after keeping the copy", got)
	}
}
