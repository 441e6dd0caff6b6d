package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/progress"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture returns three queries: "orders" with 30 reports and settable
// limits, an idle unnamed query with no report, and a plain Spark-shaped
// query with limits it cannot change.
func fixture() (*limitQuery, *fakeQuery, *fakeQuery) {
	busy := &limitQuery{fakeQuery: fakeQuery{
		id: "q-orders", runID: "run-1", name: "orders",
		status: progress.Status{Message: progress.MsgProcessingNewData, IsDataAvailable: true, IsTriggerActive: true},
		recent: simulate("q-orders", "run-1", "orders", 30, t0),
	}}
	idle := &fakeQuery{id: "q-idle", runID: "run-2", status: progress.Status{Message: progress.MsgWaitingForData}}
	plain := &fakeQuery{id: "q-plain", runID: "run-3", name: "plain", status: nil,
		recent: plainProgress("q-plain", "run-3", 5, t0)}
	return busy, idle, plain
}

func newTestServer(t *testing.T, cfg Config, loopback bool) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newHandler(cfg, slog.New(slog.DiscardHandler), loopback))
	t.Cleanup(ts.Close)
	return ts
}

func do(t *testing.T, req *http.Request) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, resp.Header, b
}

func get(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, req)
}

func TestQueriesAPI(t *testing.T) {
	busy, idle, plain := fixture()
	ts := newTestServer(t, Config{Queries: func() []Query { return []Query{busy, idle, plain, nil} }}, true)

	t.Run("list", func(t *testing.T) {
		code, hd, body := get(t, ts.URL+"/api/v1/queries")
		if code != 200 || hd.Get("Content-Type") != "application/json" || hd.Get("Cache-Control") != "no-store" {
			t.Fatalf("status %d, headers %v", code, hd)
		}
		var got []struct {
			ID           string             `json:"id"`
			RunID        string             `json:"runId"`
			Name         *string            `json:"name"`
			Status       *progress.Status   `json:"status"`
			LastProgress *progress.Progress `json:"lastProgress"`
			Limits       limitsCaps         `json:"limits"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("decode %s: %v", body, err)
		}
		if len(got) != 3 {
			t.Fatalf("got %d queries, want 3 (nil skipped): %s", len(got), body)
		}
		b := got[0]
		if b.ID != "q-orders" || b.RunID != "run-1" || b.Name == nil || *b.Name != "orders" {
			t.Errorf("busy query identity = %+v", b)
		}
		if b.Status == nil || b.Status.Message != progress.MsgProcessingNewData || !b.Status.IsTriggerActive {
			t.Errorf("busy status = %+v", b.Status)
		}
		if b.LastProgress == nil || b.LastProgress.BatchID != 29 || b.LastProgress.Sluice == nil ||
			b.LastProgress.Sluice.Lag.Records != busy.recent[29].Sluice.Lag.Records {
			t.Errorf("busy lastProgress = %+v", b.LastProgress)
		}
		if !b.Limits.Settable || !b.Limits.Readable {
			t.Errorf("busy limits caps = %+v", b.Limits)
		}
		i := got[1]
		if i.Name != nil || i.LastProgress != nil || i.Status.Message != progress.MsgWaitingForData || i.Limits.Settable {
			t.Errorf("idle query = %+v", i)
		}
		if !strings.Contains(string(body), `"name":null`) || !strings.Contains(string(body), `"lastProgress":null`) {
			t.Errorf("idle query should have null name and lastProgress: %s", body)
		}
		if p := got[2]; p.Status != nil || p.LastProgress == nil || p.LastProgress.Sluice != nil {
			t.Errorf("plain query = %+v", p)
		}
	})

	t.Run("no registry", func(t *testing.T) {
		ts := newTestServer(t, Config{}, true)
		code, _, body := get(t, ts.URL+"/api/v1/queries")
		if code != 200 || strings.TrimSpace(string(body)) != "[]" {
			t.Fatalf("got %d %s, want 200 []", code, body)
		}
	})

	tests := []struct {
		name      string
		path      string
		code      int
		wantBatch []int64 // batch ids of a progress answer
		wantID    string  // id of a query answer
		wantErr   string  // substring of the error message
	}{
		{name: "by id", path: "/api/v1/queries/q-orders", code: 200, wantID: "q-orders"},
		{name: "by name", path: "/api/v1/queries/plain", code: 200, wantID: "q-plain"},
		{name: "unknown", path: "/api/v1/queries/nope", code: 404, wantErr: `no query with id or name "nope"`},
		{name: "all progress", path: "/api/v1/queries/q-orders/progress", code: 200, wantBatch: seq(0, 30)},
		{name: "last 5", path: "/api/v1/queries/q-orders/progress?limit=5", code: 200, wantBatch: seq(25, 5)},
		{name: "limit above size", path: "/api/v1/queries/q-plain/progress?limit=50", code: 200, wantBatch: seq(0, 5)},
		{name: "limit 0", path: "/api/v1/queries/q-orders/progress?limit=0", code: 200, wantBatch: []int64{}},
		{name: "bad limit", path: "/api/v1/queries/q-orders/progress?limit=-1", code: 400, wantErr: "limit must be"},
		{name: "idle progress", path: "/api/v1/queries/q-idle/progress", code: 200, wantBatch: []int64{}},
		{name: "progress unknown", path: "/api/v1/queries/x/progress", code: 404, wantErr: "no query"},
		{name: "limits readable", path: "/api/v1/queries/q-orders/limits", code: 200},
		{name: "limits unreadable", path: "/api/v1/queries/q-idle/limits", code: 501, wantErr: "cannot report"},
		{name: "unknown api", path: "/api/v2/queries", code: 404, wantErr: "no such endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hd, body := get(t, ts.URL+tc.path)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if hd.Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", hd.Get("Content-Type"))
			}
			if tc.wantErr != "" {
				var e errorJSON
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tc.wantErr) {
					t.Errorf("error body %s, want %q", body, tc.wantErr)
				}
			}
			if tc.wantID != "" {
				var q queryJSON
				if err := json.Unmarshal(body, &q); err != nil || q.ID != tc.wantID {
					t.Errorf("query body %s, want id %s", body, tc.wantID)
				}
			}
			if tc.wantBatch != nil {
				var ps []progress.Progress
				if err := json.Unmarshal(body, &ps); err != nil {
					t.Fatalf("decode %s: %v", body, err)
				}
				ids := []int64{}
				for _, p := range ps {
					ids = append(ids, p.BatchID)
				}
				if fmt.Sprint(ids) != fmt.Sprint(tc.wantBatch) {
					t.Errorf("batch ids %v, want %v", ids, tc.wantBatch)
				}
			}
		})
	}
}

func seq(from, n int64) []int64 {
	out := []int64{}
	for i := range n {
		out = append(out, from+i)
	}
	return out
}

// TestProgressRoundTrip checks that the progress served is byte for byte
// what the query's reports marshal to.
func TestProgressRoundTrip(t *testing.T) {
	busy, _, _ := fixture()
	ts := newTestServer(t, Config{Queries: func() []Query { return []Query{busy} }}, true)
	_, _, body := get(t, ts.URL+"/api/v1/queries/q-orders/progress?limit=1")
	want := "[" + busy.recent[29].JSON() + "]\n"
	if string(body) != want {
		t.Fatalf("served\n%s\nwant\n%s", body, want)
	}
}

func TestMetricsPageAndAssets(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintln(w, "sluice_up 1")
	})
	with := newTestServer(t, Config{Metrics: metrics}, true)
	without := newTestServer(t, Config{}, true)
	version, err := os.ReadFile("assets/vendor/UPLOT_VERSION")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		base     string
		path     string
		code     int
		ctype    string
		contains string
		header   [2]string
	}{
		{"metrics", with.URL, "/metrics", 200, "text/plain; version=0.0.4", "sluice_up 1", [2]string{}},
		{"metrics missing", without.URL, "/metrics", 404, "text/plain; charset=utf-8", "not configured", [2]string{}},
		{"page", with.URL, "/", 200, "text/html; charset=utf-8", `id="chart-lag-records"`, [2]string{"Content-Security-Policy", contentSecurityPolicy}},
		{"page frame guard", with.URL, "/", 200, "text/html; charset=utf-8", "/assets/app.js", [2]string{"X-Frame-Options", "DENY"}},
		{"app js", with.URL, "/assets/app.js", 200, "text/javascript; charset=utf-8", "__sluiceRendered", [2]string{"Cache-Control", "no-cache"}},
		{"css", with.URL, "/assets/app.css", 200, "text/css; charset=utf-8", "--ok", [2]string{}},
		{"uplot", with.URL, "/assets/vendor/uPlot.iife.min.js", 200, "text/javascript; charset=utf-8", "(v" + strings.TrimSpace(string(version)) + ")", [2]string{}},
		{"uplot css", with.URL, "/assets/vendor/uPlot.min.css", 200, "text/css; charset=utf-8", ".uplot", [2]string{}},
		{"uplot license", with.URL, "/assets/vendor/LICENSE.uPlot", 200, "", "MIT License", [2]string{}},
		{"generate script not served", with.URL, "/assets/vendor/update.sh", 404, "", "", [2]string{}},
		{"unknown page", with.URL, "/nope", 404, "", "", [2]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, hd, body := get(t, tc.base+tc.path)
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			if tc.ctype != "" && hd.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", hd.Get("Content-Type"), tc.ctype)
			}
			if !strings.Contains(string(body), tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if tc.header[0] != "" && hd.Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s = %q, want %q", tc.header[0], hd.Get(tc.header[0]), tc.header[1])
			}
			if hd.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("missing nosniff")
			}
		})
	}
}

// httpStatusErr is an error carrying its own HTTP status.
type httpStatusErr struct{ code int }

func (e httpStatusErr) Error() string   { return fmt.Sprintf("query busy (%d)", e.code) }
func (e httpStatusErr) HTTPStatus() int { return e.code }

func TestSetLimits(t *testing.T) {
	const good = `{"maxOffsetsPerTrigger": 500}`
	tests := []struct {
		name     string
		loopback bool
		token    string
		query    string // id in the URL
		setErr   error
		header   map[string]string
		body     string
		code     int
		applied  bool   // SetLimits was called with the body
		wantBody string // substring of the answer
	}{
		{name: "loopback open", loopback: true, query: "q-orders", body: good, code: 200, applied: true, wantBody: `"maxOffsetsPerTrigger":500`},
		{name: "charset param ok", loopback: true, query: "q-orders", body: good, header: map[string]string{"Content-Type": "application/json; charset=utf-8"}, code: 200, applied: true},
		{name: "same origin ok", loopback: true, query: "q-orders", body: good, header: map[string]string{"Origin": "http://HOST", "Sec-Fetch-Site": "same-origin"}, code: 200, applied: true},
		{name: "by name", loopback: true, query: "orders", body: good, code: 200, applied: true},
		{name: "non-loopback without token refused", loopback: false, query: "q-orders", body: good, code: 403, wantBody: "no token was configured"},
		{name: "non-loopback with token", loopback: false, token: "s3cret", query: "q-orders", body: good, header: map[string]string{"Authorization": "Bearer s3cret"}, code: 200, applied: true},
		{name: "scheme case-insensitive", loopback: false, token: "s3cret", query: "q-orders", body: good, header: map[string]string{"Authorization": "bearer s3cret"}, code: 200, applied: true},
		{name: "non-loopback wrong token", loopback: false, token: "s3cret", query: "q-orders", body: good, header: map[string]string{"Authorization": "Bearer s3cre"}, code: 401, wantBody: "a valid token is required"},
		{name: "non-loopback no header", loopback: false, token: "s3cret", query: "q-orders", body: good, code: 401},
		{name: "basic auth is not bearer", loopback: false, token: "s3cret", query: "q-orders", body: good, header: map[string]string{"Authorization": "Basic s3cret"}, code: 401},
		{name: "loopback with token needs it", loopback: true, token: "s3cret", query: "q-orders", body: good, code: 401},
		{name: "loopback with token given", loopback: true, token: "s3cret", query: "q-orders", body: good, header: map[string]string{"Authorization": "Bearer s3cret"}, code: 200, applied: true},
		{name: "cross-site origin", loopback: true, query: "q-orders", body: good, header: map[string]string{"Origin": "http://evil.example"}, code: 403, wantBody: "origin"},
		{name: "cross-site fetch metadata", loopback: true, query: "q-orders", body: good, header: map[string]string{"Sec-Fetch-Site": "cross-site"}, code: 403},
		{name: "form post refused", loopback: true, query: "q-orders", body: good, header: map[string]string{"Content-Type": "text/plain"}, code: 415},
		{name: "unknown query", loopback: true, query: "nope", body: good, code: 404},
		{name: "unsupported query", loopback: true, query: "q-idle", body: good, code: 501, wantBody: "does not support"},
		{name: "not an object", loopback: true, query: "q-orders", body: `[1,2]`, code: 400, wantBody: "JSON object"},
		{name: "invalid json", loopback: true, query: "q-orders", body: `{"a":`, code: 400},
		{name: "empty body", loopback: true, query: "q-orders", body: ``, code: 400},
		{name: "too big", loopback: true, query: "q-orders", body: `{"a":"` + strings.Repeat("x", maxLimitsBody) + `"}`, code: 413},
		{name: "rejected by query", loopback: true, query: "q-orders", setErr: errors.New("maxOffsetsPerTrigger must be ≥ minOffsetsPerTrigger"), body: good, code: 400, applied: true, wantBody: "must be"},
		{name: "query says unsupported", loopback: true, query: "q-orders", setErr: fmt.Errorf("adaptive: %w", errors.ErrUnsupported), body: good, code: 501, applied: true},
		{name: "query picks status", loopback: true, query: "q-orders", setErr: httpStatusErr{409}, body: good, code: 409, applied: true, wantBody: "busy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			busy, idle, _ := fixture()
			busy.err = tc.setErr
			ts := newTestServer(t, Config{Token: tc.token, Queries: func() []Query { return []Query{busy, idle} }}, tc.loopback)
			req, err := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/queries/"+tc.query+"/limits", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.header {
				req.Header.Set(k, strings.ReplaceAll(v, "HOST", strings.TrimPrefix(ts.URL, "http://")))
			}
			code, hd, body := do(t, req)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if code == 401 && hd.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("body %s does not contain %q", body, tc.wantBody)
			}
			calls := busy.calls()
			if tc.applied {
				if len(calls) != 1 || calls[0] != tc.body {
					t.Errorf("SetLimits calls %q, want [%q]", calls, tc.body)
				}
			} else if len(calls) != 0 {
				t.Errorf("SetLimits called with %q, want no call", calls)
			}
		})
	}
}

func TestServerInfo(t *testing.T) {
	tests := []struct {
		loopback bool
		token    string
		want     string
	}{
		{true, "", `{"loopback":true,"writes":"open"}`},
		{true, "t", `{"loopback":true,"writes":"token"}`},
		// Off loopback without a token nothing is served (see
		// TestNonLoopbackWithoutTokenServesNothing); with one, reads need it.
		{false, "t", `{"loopback":false,"writes":"token"}`},
	}
	for _, tc := range tests {
		ts := newTestServer(t, Config{Token: tc.token}, tc.loopback)
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/api/v1/server", nil)
		req.Header.Set("Authorization", "Bearer "+tc.token)
		_, _, body := do(t, req)
		if strings.TrimSpace(string(body)) != tc.want {
			t.Errorf("loopback=%v token=%q: %s, want %s", tc.loopback, tc.token, body, tc.want)
		}
	}
}

func TestMethodNotAllowed(t *testing.T) {
	busy, _, _ := fixture()
	ts := newTestServer(t, Config{Queries: func() []Query { return []Query{busy} }}, true)
	for _, c := range []struct{ method, path string }{
		{http.MethodDelete, "/api/v1/queries/q-orders"},
		{http.MethodPost, "/api/v1/queries/q-orders/progress"},
		{http.MethodPut, "/api/v1/queries/q-orders/limits"},
	} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, nil)
		if code, _, _ := do(t, req); code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d, want 405", c.method, c.path, code)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 4040}, true},
		{&net.TCPAddr{IP: net.ParseIP("127.3.4.5"), Port: 1}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 1}, true},
		{&net.TCPAddr{IP: net.ParseIP("0.0.0.0"), Port: 1}, false},
		{&net.TCPAddr{IP: net.ParseIP("::"), Port: 1}, false},
		{&net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 1}, false},
		{&net.TCPAddr{Port: 1}, false},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	}
	for _, tc := range tests {
		if got := isLoopback(tc.addr); got != tc.want {
			t.Errorf("isLoopback(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestStartClose(t *testing.T) {
	busy, _, _ := fixture()
	s := NewServer(Config{Addr: "127.0.0.1:0", Queries: func() []Query { return []Query{busy} }})
	if s.Addr() != "" {
		t.Fatalf("Addr before Start = %q", s.Addr())
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr = %q", addr)
	}
	if err := s.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	_, _, body := get(t, "http://"+addr+"/api/v1/server")
	if !strings.Contains(string(body), `"writes":"open"`) {
		t.Errorf("loopback listener should allow writes: %s", body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := http.Get("http://" + addr + "/"); err == nil {
		t.Error("server still answers after Close")
	}
}

func TestStartStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := NewServer(Config{Addr: "127.0.0.1:0"})
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	cancel()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("server still listening after its context was cancelled")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after cancel: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	if err := NewServer(Config{Addr: "127.0.0.1:bad"}).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "web: listen on 127.0.0.1:bad") {
		t.Errorf("bad port: %v", err)
	}
	if got := NewServer(Config{}).cfg.Addr; got != DefaultAddr {
		t.Errorf("default addr %q", got)
	}
	if err := NewServer(Config{}).Close(); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
}

// FuzzLimitsBody checks that any body gets a 2xx or 4xx answer and that
// only JSON objects reach SetLimits.
func FuzzLimitsBody(f *testing.F) {
	for _, s := range []string{`{"maxOffsetsPerTrigger":1}`, `[]`, ``, `{`, ` {"a":null} `, `null`, `"x"`, "{\"a\":1}\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		busy, _, _ := fixture()
		h := newHandler(Config{Queries: func() []Query { return []Query{busy} }}, slog.New(slog.DiscardHandler), true)
		req := httptest.NewRequest(http.MethodPost, "/api/v1/queries/q-orders/limits", strings.NewReader(body))
		req.Host = "127.0.0.1:4040"
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("body %q: status %d", body, rec.Code)
		}
		for _, c := range busy.calls() {
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(c), &m) != nil {
				t.Fatalf("SetLimits got a non-object %q", c)
			}
		}
		if rec.Code == 200 && len(busy.calls()) != 1 {
			t.Fatalf("200 without a SetLimits call")
		}
	})
}

// TestGroupAPI checks GET /api/v1/queries/{id}/group and the group flag of
// the query list: the group of a group-mode query, 404 for a query not in
// group mode, 501 for one that cannot describe a group, 502 when the
// broker cannot be asked.
func TestGroupAPI(t *testing.T) {
	grouped := groupFixture()
	notGrouped := &groupQuery{fakeQuery: fakeQuery{id: "q-solo", runID: "run-5"}}
	failing := &groupQuery{fakeQuery: fakeQuery{id: "q-down", runID: "run-6"}, inGroup: true, err: errors.New("dial tcp 10.0.0.9:9092: connection refused")}
	_, _, plain := fixture()
	ts := newTestServer(t, Config{Queries: func() []Query { return []Query{grouped, notGrouped, failing, plain} }}, true)

	code, _, body := get(t, ts.URL+"/api/v1/queries")
	var list []struct {
		ID      string    `json:"id"`
		Reports queryCaps `json:"reports"`
	}
	if err := json.Unmarshal(body, &list); code != 200 || err != nil || len(list) != 4 {
		t.Fatalf("list: %d %v %s", code, err, body)
	}
	for i, want := range []bool{true, false, true, false} {
		if list[i].Reports.Group != want {
			t.Errorf("%s: reports.group = %v, want %v", list[i].ID, list[i].Reports.Group, want)
		}
	}
	for _, tc := range []struct {
		id       string
		code     int
		contains string
	}{
		{"q-group", 200, `"protocol":"cooperative-sticky"`},
		{"q-solo", 404, "does not run in group mode"},
		{"q-plain", 501, "cannot describe a consumer group"},
		{"q-down", 502, "connection refused"},
		{"q-none", 404, "no query with id or name"},
	} {
		code, _, body := get(t, ts.URL+"/api/v1/queries/"+tc.id+"/group")
		if code != tc.code || !strings.Contains(string(body), tc.contains) {
			t.Errorf("%s: HTTP %d %s, want %d with %q", tc.id, code, body, tc.code, tc.contains)
		}
	}
	if grouped.asked != 1 || notGrouped.asked != 0 {
		t.Errorf("DescribeGroup called %d and %d times, want once for the group-mode query only", grouped.asked, notGrouped.asked)
	}
}
