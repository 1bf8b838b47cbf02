package ui

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestExpiry: a login token lasts loginTokenTTL and a session sessionTTL.
func TestExpiry(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	s := &Server{key: make([]byte, keySize), cookie: "c", now: func() time.Time { return now }}
	s.mu.logins = map[string]time.Time{}

	u, err := s.LoginURL("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	tok := u[len("http://127.0.0.1:1/login?token="):]
	now = now.Add(loginTokenTTL)
	if s.redeemLogin(tok) {
		t.Fatal("an expired login token was accepted")
	}

	v, _, err := s.newSession()
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "c", Value: v})
	if _, ok := s.session(r); !ok {
		t.Fatal("a fresh session was refused")
	}
	other := &Server{key: []byte("another key of thirty-two bytes!"), cookie: "c", now: s.now}
	if _, ok := other.session(r); ok {
		t.Fatal("a session signed with another key was accepted")
	}
	now = now.Add(sessionTTL)
	if _, ok := s.session(r); ok {
		t.Fatal("an expired session was accepted")
	}
}
