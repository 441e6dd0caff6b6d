package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/progress"
)

// liveQuery starts a query over a backlog with the UI served on a random
// loopback port, and returns the server's base URL.
func liveQuery(t *testing.T) (*sluice.StreamingQuery, string, *[]*progress.Progress) {
	t.Helper()
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 4})
	var recs []*kgo.Record
	for i := 0; i < 20000; i++ {
		recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 4), Value: []byte(fmt.Sprintf(`{"n":%d}`, i))})
	}
	brokertest.ProduceSync(t, b.Addr(), recs...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := slog.New(slog.DiscardHandler)
	s := sluice.NewSession(sluice.WithLogger(log))
	var ps []*progress.Progress
	ch := make(chan *progress.Progress, 1000)
	q, err := s.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "orders").Option("startingOffsets", "earliest").
		Option("maxOffsetsPerTrigger", 100).Load().
		SelectExpr("CAST(value AS STRING) AS json").
		WriteStream().Format("noop").QueryName("orders").Option("checkpointLocation", t.TempDir()).
		Trigger(sluice.ProcessingTime("100 milliseconds")).
		AddListener(&progress.ListenerFuncs{OnProgress: func(e progress.ProgressEvent) { ch <- e.Progress }}).
		Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop() })
	go func() {
		for p := range ch {
			ps = append(ps, p)
		}
	}()
	srv, err := startUI(ctx, "127.0.0.1:0", "", q, s.MetricsHandler(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return q, "http://" + srv.Addr(), &ps
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	return body
}

// TestLiveAPIAndLimitsOverHTTP: the API serves a running query's progress,
// /metrics exports it, and POST .../limits changes the next batches'
// admitted total.
func TestLiveAPIAndLimitsOverHTTP(t *testing.T) {
	q, base, _ := liveQuery(t)
	waitFor(t, func() bool { return len(q.RecentProgress()) >= 3 })
	var list []struct {
		ID           string             `json:"id"`
		LastProgress *progress.Progress `json:"lastProgress"`
	}
	if err := json.Unmarshal(get(t, base+"/api/v1/queries"), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != q.ID() || list[0].LastProgress == nil || list[0].LastProgress.NumInputRows != 100 {
		t.Fatalf("/api/v1/queries = %+v", list)
	}
	metrics := string(get(t, base+"/metrics"))
	for _, name := range []string{"sluice_lag_records", "sluice_batch_duration_seconds", "sluice_input_rows_total", "sluice_checkpoint_bytes"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	resp, err := http.Post(base+"/api/v1/queries/"+q.ID()+"/limits", "application/json", bytes.NewBufferString(`{"maxOffsetsPerTrigger": 250}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST limits: %s %s", resp.Status, body)
	}
	after := len(q.RecentProgress())
	waitFor(t, func() bool { return len(q.RecentProgress()) >= after+3 })
	ps := q.RecentProgress()
	for _, p := range ps[after+1:] {
		if p.NumInputRows != 250 {
			t.Fatalf("batch %d after the HTTP change admitted %d, want 250", p.BatchID, p.NumInputRows)
		}
		if p.Sluice == nil || p.Sluice.Admission == nil || p.Sluice.Admission.MaxOffsetsPerTrigger != 250 {
			t.Fatalf("batch %d progress does not show the new limit: %+v", p.BatchID, p.Sluice)
		}
	}
	resp, _ = http.Post(base+"/api/v1/queries/"+q.ID()+"/limits", "application/json", bytes.NewBufferString(`{"maxOffsetsPerTrigger": -5}`))
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "maxOffsetsPerTrigger") {
		t.Fatalf("bad limits: %s %s, want 400 naming the key", resp.Status, body)
	}
}

// TestUIChartsRenderFromRunningQuery drives the page in headless Chromium
// against a real running query and checks the charts have data.
func TestUIChartsRenderFromRunningQuery(t *testing.T) {
	bin := chromiumPath(t)
	q, base, _ := liveQuery(t)
	waitFor(t, func() bool { return len(q.RecentProgress()) >= 5 })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bctx := headlessBrowser(t, ctx, bin)
	var got struct {
		Charts, Points, Batches, Partitions int
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/?poll=200")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := chromedp.Run(bctx, chromedp.Evaluate[string](`JSON.stringify(window.__sluiceRendered || {})`))
		if err != nil {
			t.Fatal(err)
		}
		json.Unmarshal([]byte(s), &got)
		if got.Charts >= 6 && got.Points > 0 && got.Batches >= 5 && got.Partitions == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("charts did not render from the running query: %+v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("SLUICE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, "ui-live-query.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rendered %+v; screenshot %s", got, path)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chromiumPath returns the headless browser the UI tests drive, skipping
// the test when none is installed (a failure with SLUICE_REQUIRE_INTEROP=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SLUICE_REQUIRE_INTEROP") == "1" {
		t.Fatal("chromium not found and SLUICE_REQUIRE_INTEROP=1")
	}
	t.Skip("chromium not found; set SLUICE_REQUIRE_INTEROP=1 to make this a failure")
	return ""
}

// headlessBrowser starts bin headless (no sandbox, GPU or background
// traffic, its own profile, a 1400×1000 window) for the test's duration
// and returns the context its tabs run in.
func headlessBrowser(t *testing.T, ctx context.Context, bin string) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	return bctx
}
