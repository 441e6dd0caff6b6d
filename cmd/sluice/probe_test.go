package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/web"
)

// uiPort waits for `sluice run`'s "live UI and API" log line and returns
// the port.
func uiPort(t *testing.T, stderr *syncBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`live UI and API" url=http://[^ ]*:(\d+)/`)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the UI did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe GETs path on the UI port the way kubelet does: the pod IP as Host,
// no credentials. A refused connection is code 0.
func probe(t *testing.T, port, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+port+path, nil)
	req.Host = "10.244.1.17:" + port
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitProbe polls path until it answers code, and returns the body.
func waitProbe(t *testing.T, port, path string, code int) string {
	t.Helper()
	var got int
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, body = probe(t, port, path); got == code {
			return body
		}
	}
	t.Fatalf("GET %s: %d %q, want %d", path, got, body, code)
	return ""
}

// blackHole accepts connections and never answers: a Kafka bootstrap
// address that keeps a query in start-up.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// The HTTP server of `sluice run` starts before the query: during start-up
// (here: a broker that never answers) /healthz is 200 and /readyz 503
// "starting", and a signal then stops the run cleanly.
func TestRunProbesDuringStartup(t *testing.T) {
	p := writePipeline(t, blackHole(t), "processingTime: 100 milliseconds", "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runPipeline(ctx, []string{p, "--ui-addr", "127.0.0.1:0", "--quiet"}, io.Discard, &stderr)
	}()
	port := uiPort(t, &stderr)
	if code, body := probe(t, port, web.HealthzPath); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz during start-up: %d %q, want 200 ok", code, body)
	}
	// Still starting a while later: the broker never answers.
	time.Sleep(300 * time.Millisecond)
	if code, body := probe(t, port, web.ReadyzPath); code != 503 || body != "not ready: starting\n" {
		t.Errorf("GET /readyz during start-up: %d %q, want 503 \"not ready: starting\"", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run after a signal during start-up: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "signal received during start-up") {
		t.Errorf("the run did not stop in start-up:\n%s", stderr.String())
	}
}

// Once the query runs /readyz is 200; after a signal, while the running
// batch finishes and commits, it is 503 "stopping" (the server outlives
// the signal), and the batch still commits.
func TestRunProbesRunningAndStopping(t *testing.T) {
	b := startOrders(t, 300)
	p, chk := slowPipeline(t, b.Addr(), "30ms") // 100 rows: 3 s per batch
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runPipeline(ctx, []string{p, "--ui-addr", "127.0.0.1:0", "--quiet"}, io.Discard, &stderr)
	}()
	port := uiPort(t, &stderr)
	waitProbe(t, port, web.ReadyzPath, 200)
	if code, body := probe(t, port, web.HealthzPath); code != 200 || body != "ok\n" {
		t.Errorf("GET /healthz while running: %d %q, want 200 ok", code, body)
	}
	waitInFlight(t, chk, 0)
	cancel() // what SIGTERM does
	if body := waitProbe(t, port, web.ReadyzPath, 503); body != "not ready: stopping\n" {
		t.Errorf("GET /readyz after the signal: %q, want \"not ready: stopping\"", body)
	}
	if code, body := probe(t, port, web.HealthzPath); code != 200 {
		t.Errorf("GET /healthz while stopping: %d %q, want 200 (the process is alive)", code, body)
	}
	if err := <-done; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(chk, "commits", "0")); err != nil {
		t.Errorf("the batch running at the signal did not commit: %v", err)
	}
	if code, _ := probe(t, port, web.HealthzPath); code != 0 {
		t.Errorf("GET /healthz after the run returned: %d, want the connection refused", code)
	}
}

// runState's answers after the query ends: "terminated" for a finished
// availableNow query, "failed" for one that failed (a missing topic).
func TestRunStateAfterTermination(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "present", Partitions: 1})
	for _, tc := range []struct{ topic, want string }{{"present", notReadyTerminated}, {"absent", notReadyFailed}} {
		st := &runState{}
		if ok, reason := st.ready(); ok || reason != notReadyStarting {
			t.Fatalf("ready() before start = (%v, %q), want (false, %q)", ok, reason, notReadyStarting)
		}
		s := sluice.NewSession(sluice.WithLogger(slog.New(slog.DiscardHandler)))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		q, err := s.ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", tc.topic).Load().
			WriteStream().Format("noop").Trigger(sluice.AvailableNow()).Start(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		st.started(q)
		_ = q.AwaitTermination(ctx)
		cancel()
		if ok, reason := st.ready(); ok || reason != tc.want {
			t.Errorf("topic %q: ready() after termination = (%v, %q), want (false, %q)", tc.topic, ok, reason, tc.want)
		}
		if len(st.queries()) != 1 {
			t.Errorf("topic %q: queries() lists %d queries, want 1", tc.topic, len(st.queries()))
		}
	}
}

// sluice probe exits 0 on a 2xx answer and 1 otherwise, printing the
// endpoint's line; a bad URL is a usage error.
func TestProbeCommand(t *testing.T) {
	var ready atomic.Bool
	srv := web.NewServer(web.Config{Addr: "127.0.0.1:0", Ready: func() (bool, string) {
		if ready.Load() {
			return true, ""
		}
		return false, notReadyStarting
	}})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	base := "http://" + srv.Addr()
	for _, tc := range []struct {
		args       []string
		ready      bool
		code       int
		out, inErr string
	}{
		{[]string{base + "/healthz"}, false, 0, "ok\n", ""},
		{[]string{base + "/readyz"}, true, 0, "ok\n", ""},
		{[]string{"--timeout", "2s", base + "/readyz"}, false, 1, "", "503 Service Unavailable: not ready: starting"},
		{[]string{base + "/nope"}, true, 1, "", "404 Not Found"},
		{[]string{"ftp://x/readyz"}, true, 2, "", "is not an http:// or https:// URL"},
		{[]string{base + "/healthz", base + "/readyz"}, true, 2, "", "one URL expected"},
	} {
		ready.Store(tc.ready)
		var stdout, stderr strings.Builder
		code := realMain(append([]string{"probe"}, tc.args...), &stdout, &stderr)
		if code != tc.code || stdout.String() != tc.out || !strings.Contains(stderr.String(), tc.inErr) {
			t.Errorf("sluice probe %q: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr containing %q",
				tc.args, code, stdout.String(), stderr.String(), tc.code, tc.out, tc.inErr)
		}
	}
	srv.Close()
	var stderr strings.Builder
	if code := realMain([]string{"probe", base + "/healthz"}, io.Discard, &stderr); code != 1 || !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("sluice probe on a closed server: exit %d, stderr %q; want 1 and connection refused", code, stderr.String())
	}
}
