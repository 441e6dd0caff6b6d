package web

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A loopback server used to answer any Host, so a page on attacker.example
// whose name is re-pointed at 127.0.0.1 (DNS rebinding) could read the API
// and change limits. Only loopback names are accepted now.
func TestLoopbackRefusesForeignHost(t *testing.T) {
	busy, idle, _ := fixture()
	ts := newTestServer(t, Config{Queries: func() []Query { return []Query{busy, idle} }}, true)
	port := ts.URL[strings.LastIndexByte(ts.URL, ':')+1:]
	for _, host := range []string{"attacker.example", "attacker.example:" + port, "127.0.0.1.nip.io:" + port,
		"localhost.attacker.example", "192.0.2.1:" + port, "0.0.0.0:" + port} {
		for _, path := range []string{"/api/v1/queries", "/api/v1/server", "/metrics", "/", "/assets/app.js"} {
			req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
			req.Host = host
			if code, _, body := do(t, req); code != http.StatusForbidden || !strings.Contains(string(body), "Host") {
				t.Errorf("GET %s with Host %q: %d %s, want 403 naming the Host", path, host, code, body)
			}
		}
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/queries/q-orders/limits", strings.NewReader(`{"maxOffsetsPerTrigger": 1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Host = host
		if code, _, body := do(t, req); code != http.StatusForbidden {
			t.Errorf("POST limits with Host %q: %d %s, want 403", host, code, body)
		}
	}
	// HTTP/1.0 without a Host header: refused as well.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/api/v1/queries", nil)
	req.Host = ""
	newHandler(Config{}, slog.New(slog.DiscardHandler), true).ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Errorf("GET without Host: %d, want 403", rec.Code)
	}
	if calls := busy.calls(); len(calls) != 0 {
		t.Fatalf("limits changed through a foreign Host: %q", calls)
	}
	for _, host := range []string{"localhost:" + port, "LocalHost:" + port, "127.0.0.1:" + port, "[::1]:" + port, "localhost", "127.0.0.1", "[::1]"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/queries", nil)
		req.Host = host
		if code, _, body := do(t, req); code != http.StatusOK {
			t.Errorf("GET with Host %q: %d %s, want 200", host, code, body)
		}
	}
	req, _ = http.NewRequest(http.MethodPost, ts.URL+"/api/v1/queries/q-orders/limits", strings.NewReader(`{"maxOffsetsPerTrigger": 1}`))
	req.Header.Set("Content-Type", "application/json")
	req.Host = "localhost:" + port
	if code, _, body := do(t, req); code != http.StatusOK {
		t.Errorf("POST limits with Host localhost: %d %s, want 200", code, body)
	}
}

// Off loopback every request needs the token, as a bearer token or as the
// password of HTTP Basic authentication (which browsers prompt for).
func TestNonLoopbackNeedsTokenForEverything(t *testing.T) {
	busy, _, _ := fixture()
	ts := newTestServer(t, Config{Token: "s3cret", Metrics: http.NotFoundHandler(), Queries: func() []Query { return []Query{busy} }}, false)
	for _, path := range []string{"/api/v1/queries", "/api/v1/queries/q-orders/progress", "/api/v1/server", "/metrics", "/", "/assets/app.js"} {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + basic("admin", "wrong"), "s3cret"} {
			req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
			req.Host = "sluice.example.com:4040" // any Host: the token is the protection off loopback
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			code, hd, body := do(t, req)
			if code != http.StatusUnauthorized {
				t.Errorf("GET %s with Authorization %q: %d %s, want 401", path, auth, code, body)
			}
			if ch := strings.Join(hd.Values("WWW-Authenticate"), ", "); !strings.Contains(ch, "Bearer") || !strings.Contains(ch, "Basic") {
				t.Errorf("GET %s: WWW-Authenticate %q, want Bearer and Basic challenges", path, ch)
			}
		}
	}
	for _, auth := range []string{"Bearer s3cret", "Basic " + basic("", "s3cret"), "Basic " + basic("prometheus", "s3cret")} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/queries", nil)
		req.Header.Set("Authorization", auth)
		if code, _, body := do(t, req); code != http.StatusOK {
			t.Errorf("GET with %q: %d %s, want 200", auth, code, body)
		}
	}
}

// Off loopback without a token nothing is served, and a Server refuses to
// start that way.
func TestNonLoopbackWithoutTokenServesNothing(t *testing.T) {
	busy, _, _ := fixture()
	ts := newTestServer(t, Config{Queries: func() []Query { return []Query{busy} }}, false)
	for _, path := range []string{"/api/v1/queries", "/api/v1/server", "/"} {
		if code, _, body := get(t, ts.URL+path); code != http.StatusForbidden || !strings.Contains(string(body), "token") {
			t.Errorf("GET %s: %d %s, want 403 asking for a token", path, code, body)
		}
	}
	err := NewServer(Config{Addr: "0.0.0.0:0"}).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0:0 is not a loopback address") || !strings.Contains(err.Error(), "SLUICE_UI_TOKEN") {
		t.Fatalf("Start on 0.0.0.0 without a token: %v, want an error asking for a token", err)
	}
	s := NewServer(Config{Addr: "0.0.0.0:0", Token: "t"})
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start on 0.0.0.0 with a token: %v", err)
	}
	s.Close()
}

func basic(user, pass string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
