package ui

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Limits of the UI's credentials.
const (
	keySize       = 32
	loginTokenTTL = 10 * time.Minute
	sessionTTL    = 30 * 24 * time.Hour
	maxLogins     = 64 // unused login tokens kept; older ones are dropped
)

// KeyFile is the web UI's secret key in the device home (mode 0600): it
// signs session cookies and derives CSRF tokens, so sessions outlive a
// restart of the daemon and no other local user can forge one.
const KeyFile = "ui.key"

// Errors a refused request is answered with.
var (
	errNoSession = errors.New("not signed in: open the link `blueshift ui` prints (each works once)")
	errOrigin    = errors.New("refused: the request comes from another site (its Origin or Referer is not this UI)")
	errHost      = errors.New("refused: the Host header is not this UI's loopback address (DNS rebinding?)")
	errCSRF      = errors.New("refused: the form's CSRF token is missing or wrong; reload the page and try again")
)

// loadKey reads home's UI key, making it on first use.
func loadKey(home string) ([]byte, error) {
	p := filepath.Join(home, KeyFile)
	b, err := os.ReadFile(p)
	if err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) != keySize {
			return nil, fmt.Errorf("web UI key %s is damaged: delete it and restart the daemon (browsers then sign in again)", p)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read web UI key: %w", err)
	}
	k := make([]byte, keySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("make web UI key: %w", err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("write web UI key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(k) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return nil, fmt.Errorf("write web UI key %s: %w", p, err)
	}
	return k, nil
}

// LoginURL mints a one-time token and returns base's login link with it.
func (s *Server) LoginURL(base string) (string, error) {
	var b [keySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make login token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for t, exp := range s.mu.logins {
		if !now.Before(exp) || len(s.mu.logins) >= maxLogins {
			delete(s.mu.logins, t)
		}
	}
	s.mu.logins[tok] = now.Add(loginTokenTTL)
	return base + "/login?token=" + url.QueryEscape(tok), nil
}

// redeemLogin spends a login token: true once per token, while it lasts.
func (s *Server) redeemLogin(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.mu.logins[tok]
	delete(s.mu.logins, tok)
	return ok && s.now().Before(exp)
}

// A session cookie is base64(nonce 16 | expiry unix 8) "." base64(HMAC).
func (s *Server) newSession() (value string, nonce []byte, err error) {
	body := make([]byte, 24)
	if _, err := rand.Read(body[:16]); err != nil {
		return "", nil, fmt.Errorf("make session: %w", err)
	}
	binary.BigEndian.PutUint64(body[16:], uint64(s.now().Add(sessionTTL).Unix()))
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(s.mac("session", body)), body[:16], nil
}

// session checks r's session cookie and returns its nonce.
func (s *Server) session(r *http.Request) ([]byte, bool) {
	c, err := r.Cookie(s.cookie)
	if err != nil {
		return nil, false
	}
	b64, sig64, ok := strings.Cut(c.Value, ".")
	if !ok {
		return nil, false
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64)
	sig, err2 := base64.RawURLEncoding.DecodeString(sig64)
	if err1 != nil || err2 != nil || len(body) != 24 || !hmac.Equal(sig, s.mac("session", body)) {
		return nil, false
	}
	if exp := time.Unix(int64(binary.BigEndian.Uint64(body[16:])), 0); !s.now().Before(exp) {
		return nil, false
	}
	return body[:16], true
}

// csrf is the CSRF token of a session: pages embed it, POSTs send it back.
func (s *Server) csrf(nonce []byte) string {
	return base64.RawURLEncoding.EncodeToString(s.mac("csrf", nonce))
}

func (s *Server) mac(purpose string, b []byte) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(b)
	return m.Sum(nil)
}

// checkHost refuses a Host that is not a loopback address or localhost:
// a DNS name pointed at 127.0.0.1 (rebinding) does not reach the UI.
func checkHost(r *http.Request) error {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errHost
}

// checkOrigin requires a mutating request to come from a page of this UI:
// its Origin (or, without one, its Referer) must be http://HOST.
func checkOrigin(r *http.Request) error {
	want := "http://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		if o != want {
			return errOrigin
		}
		return nil
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || ref.Scheme+"://"+ref.Host != want {
		return errOrigin
	}
	return nil
}

// checkCSRF compares the token a POST carries (header or form field).
func (s *Server) checkCSRF(r *http.Request, nonce []byte) error {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf(nonce))) != 1 {
		return errCSRF
	}
	return nil
}

// guard wraps every handler but login and static files: a loopback Host,
// a valid session, and for POST a same-origin request with its CSRF token.
func (s *Server) guard(next func(http.ResponseWriter, *http.Request, *page)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := checkHost(r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		nonce, ok := s.session(r)
		if !ok {
			http.Error(w, errNoSession.Error(), http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if r.Method != http.MethodPost {
				http.Error(w, "use POST", http.StatusMethodNotAllowed)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := checkOrigin(r); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			if err := s.checkCSRF(r, nonce); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		next(w, r, &page{CSRF: s.csrf(nonce)})
	}
}

// serveLogin exchanges a one-time token for a session cookie.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	if err := checkHost(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if !s.redeemLogin(r.URL.Query().Get("token")) {
		http.Error(w, "this login link is unknown, used or expired: run `blueshift ui` again for a new one", http.StatusUnauthorized)
		return
	}
	v, _, err := s.newSession()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookie, Value: v, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
	// The token leaves the address bar and the history.
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
