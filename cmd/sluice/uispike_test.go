package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/loadgen"
)

// TestUIUnderASpike drives the live UI in headless Chromium against a real
// query during a spike: a producer at 200 records/s jumps to 1,000/s
// while maxOffsetsPerTrigger admits 200 per 500 ms trigger (400/s). The
// page must show the arrival series sampled between batches, the
// diagnosis that the read limit binds with a suggested limit, markers on
// the capped batches, and the batch table with Spark's durationMs
// breakdown. It saves ui-spike.png in $SLUICE_SCREENSHOT_DIR.
func TestUIUnderASpike(t *testing.T) {
	bin := chromiumPath(t)
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: 4})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	s := sluice.NewSession(sluice.WithLogger(log))
	q, err := s.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "orders").Option("startingOffsets", "earliest").
		Option("maxOffsetsPerTrigger", 200).Load().
		SelectExpr("CAST(value AS STRING) AS json").
		WriteStream().Format("noop").QueryName("orders").Option("checkpointLocation", t.TempDir()).
		Trigger(sluice.ProcessingTime("500 milliseconds")).
		Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop() })
	shape, err := loadgen.NewShape(loadgen.ShapeOrders, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stopProducer := context.WithCancel(ctx)
	defer stopProducer()
	produced := make(chan error, 1)
	go func() {
		_, err := loadgen.Run(pctx, loadgen.Config{Brokers: []string{b.Addr()}, Topic: "orders", Duration: time.Minute,
			Profile: loadgen.Spike{Base: 200, Factor: 5, At: 2 * time.Second, For: time.Minute}, Shape: shape, Seed: 1,
			Keys: loadgen.Keys{Count: 1000}})
		if err != nil && pctx.Err() == nil {
			t.Errorf("producer: %v", err)
		}
		produced <- err
	}()
	defer func() { stopProducer(); <-produced }()
	srv, err := startUI(ctx, "127.0.0.1:0", "", q, s.MetricsHandler(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	bctx := headlessBrowser(t, ctx, bin)
	if _, err := chromedp.Run(bctx, chromedp.Navigate("http://"+srv.Addr()+"/?poll=250")); err != nil {
		t.Fatal(err)
	}
	type page struct {
		R struct {
			ArrivalPoints, LimitMarks, BatchRows, Findings, Batches int
		} `json:"r"`
		Diagnosis string   `json:"diagnosis"`
		Rows      []string `json:"rows"`
		Start     string   `json:"start"`
		Errors    []string `json:"errors"`
	}
	const read = `JSON.stringify({r: window.__sluiceRendered || {}, errors: window.__sluiceErrors || [],
	  diagnosis: document.getElementById('diagnosis').textContent,
	  start: document.getElementById('q-start').textContent,
	  rows: [...document.querySelectorAll('#batch-rows tr')].map(tr => [...tr.cells].map(c => c.textContent).join('|'))})`
	var got page
	deadline := time.Now().Add(45 * time.Second)
	for {
		js, err := chromedp.Run(bctx, chromedp.Evaluate[string](read))
		if err != nil {
			t.Fatal(err)
		}
		got = page{}
		json.Unmarshal([]byte(js), &got)
		if got.R.ArrivalPoints >= 5 && got.R.LimitMarks >= 2 && got.R.BatchRows >= 5 &&
			strings.Contains(got.Diagnosis, "read limit is binding") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not show the spike within 45 s: %+v", got)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(got.Errors) > 0 {
		t.Fatalf("page errors: %q", got.Errors)
	}
	// A suggested limit: one that drains the backlog, or, when the measured
	// batch cost says no limit that fits the trigger keeps up, the largest
	// that does.
	if !strings.Contains(got.Diagnosis, "raising maxOffsetsPerTrigger to ≈") && !strings.Contains(got.Diagnosis, "even maxOffsetsPerTrigger ≈") {
		t.Errorf("diagnosis %q does not suggest a limit", got.Diagnosis)
	}
	// The newest row: batch, UTC start, rows capped at 200, the limit and
	// the seven durationMs columns, lag, health.
	cells := strings.Split(got.Rows[0], "|")
	if len(cells) != 13 || !strings.HasSuffix(cells[1], "Z") || !strings.HasPrefix(cells[3], "200") {
		t.Errorf("newest batch row %q", got.Rows[0])
	}
	capped := 0
	for _, r := range got.Rows {
		if strings.Contains(r, "capped") {
			capped++
		}
	}
	if capped == 0 {
		t.Errorf("no batch row marked capped: %q", got.Rows)
	}
	if _, err := time.Parse(time.RFC3339Nano, got.Start); err != nil {
		t.Errorf("start time %q is not ISO 8601: %v", got.Start, err)
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
	path := filepath.Join(dir, "ui-spike.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("page %+v; screenshot %s", got.R, path)
}
