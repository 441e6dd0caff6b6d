package web

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// readiness is a Config.Ready whose answer a test changes.
type readiness struct {
	mu     sync.Mutex
	ok     bool
	reason string
}

func (r *readiness) set(ok bool, reason string) {
	r.mu.Lock()
	r.ok, r.reason = ok, reason
	r.mu.Unlock()
}

func (r *readiness) get() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok, r.reason
}

// Kubelet and Docker probe with the pod's or container's IP as Host and no
// credentials: /healthz and /readyz answer them on every listener policy
// (loopback with a foreign Host, off loopback with a token, off loopback
// with none), while the rest of the API stays closed to the same request.
func TestProbesAnswerWithoutTokenOrLoopbackHost(t *testing.T) {
	busy, _, _ := fixture()
	ready := &readiness{}
	for _, tc := range []struct {
		name     string
		token    string
		loopback bool
		apiCode  int // what GET /api/v1/queries gets from the same request
	}{
		{"loopback listener, pod IP as Host", "", true, http.StatusForbidden},
		{"off loopback with a token", "s3cret", false, http.StatusUnauthorized},
		{"off loopback without a token", "", false, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, Config{Token: tc.token, Ready: ready.get, Metrics: http.NotFoundHandler(),
				Queries: func() []Query { return []Query{busy} }}, tc.loopback)
			get := func(path, method string) (int, http.Header, string) {
				req, _ := http.NewRequest(method, ts.URL+path, nil)
				req.Host = "10.244.1.17:4040" // what kubelet sends
				code, hd, body := do(t, req)
				return code, hd, string(body)
			}
			if code, _, body := get("/api/v1/queries", http.MethodGet); code != tc.apiCode {
				t.Fatalf("GET /api/v1/queries: %d %s, want %d (the API stays protected)", code, body, tc.apiCode)
			}
			for _, step := range []struct {
				ok       bool
				reason   string
				wantCode int
				wantBody string
			}{
				{false, "starting", http.StatusServiceUnavailable, "not ready: starting\n"},
				{true, "", http.StatusOK, "ok\n"},
				{false, "failed", http.StatusServiceUnavailable, "not ready: failed\n"},
				{false, "", http.StatusServiceUnavailable, "not ready: unknown\n"},
			} {
				ready.set(step.ok, step.reason)
				code, hd, body := get(ReadyzPath, http.MethodGet)
				if code != step.wantCode || body != step.wantBody {
					t.Errorf("GET /readyz with Ready() = (%v, %q): %d %q, want %d %q", step.ok, step.reason, code, body, step.wantCode, step.wantBody)
				}
				if ct, cc := hd.Get("Content-Type"), hd.Get("Cache-Control"); !strings.HasPrefix(ct, "text/plain") || cc != "no-store" {
					t.Errorf("GET /readyz: Content-Type %q, Cache-Control %q; want text/plain, no-store", ct, cc)
				}
				// Liveness does not depend on readiness.
				if code, _, body := get(HealthzPath, http.MethodGet); code != http.StatusOK || body != "ok\n" {
					t.Errorf("GET /healthz with Ready() = (%v, %q): %d %q, want 200 \"ok\\n\"", step.ok, step.reason, code, body)
				}
			}
			if code, _, _ := get(HealthzPath, http.MethodHead); code != http.StatusOK {
				t.Errorf("HEAD /healthz: %d, want 200", code)
			}
			if code, _, _ := get(ReadyzPath, http.MethodPost); code != http.StatusMethodNotAllowed {
				t.Errorf("POST /readyz: %d, want 405", code)
			}
			// Only the exact paths are exempt.
			if code, _, body := get("/healthz/x", http.MethodGet); code == http.StatusOK {
				t.Errorf("GET /healthz/x: %d %s, want the API's refusal", code, body)
			}
		})
	}
}

// Without Config.Ready a running server is ready.
func TestReadyzWithoutReadyFunc(t *testing.T) {
	ts := newTestServer(t, Config{}, true)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+ReadyzPath, nil)
	if code, _, body := do(t, req); code != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("GET /readyz: %d %q, want 200 ok", code, body)
	}
}

// A real Server off loopback refuses to start without a token; with one it
// serves the probes to a client without it.
func TestServerProbesOffLoopback(t *testing.T) {
	s := NewServer(Config{Addr: "0.0.0.0:0", Token: "s3cret", Ready: func() (bool, string) { return false, "stopping" }})
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	port := s.Addr()[strings.LastIndexByte(s.Addr(), ':')+1:]
	for path, want := range map[string]int{HealthzPath: 200, ReadyzPath: 503, "/metrics": 401} {
		req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+path, nil)
		if code, _, body := do(t, req); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
}
