package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/lag"
	"github.com/sluice-stream/sluice/internal/metrics"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/progress"
)

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// produce writes n records to each of partitions partitions.
func produce(t testing.TB, addr, topic string, partitions, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		for p := range partitions {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: fmt.Appendf(nil, "p%d-%d", p, i)})
		}
	}
	brokertest.ProduceSync(t, addr, recs...)
}

// collector keeps every progress report delivered to it.
type collector struct {
	mu  sync.Mutex
	all []*progress.Progress
}

func (c *collector) listener() progress.Listener {
	return progress.ListenerFuncs{OnProgress: func(e progress.ProgressEvent) {
		c.mu.Lock()
		c.all = append(c.all, e.Progress)
		c.mu.Unlock()
	}}
}

func (c *collector) reports() []*progress.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*progress.Progress(nil), c.all...)
}

type queryRun struct {
	q   *engine.Query
	mon *monitor.Monitor
	col *collector
	chk string
}

func startQuery(t *testing.T, addr, topic string, maxOffsets int, trig trigger.Trigger, mon *monitor.Monitor, beforeCommit func(int64) error) *queryRun {
	t.Helper()
	src, err := kafka.New(map[string]string{
		"kafka.bootstrap.servers": addr, "subscribe": topic,
		"startingOffsets": "earliest", "maxOffsetsPerTrigger": fmt.Sprint(maxOffsets),
	}, quiet)
	if err != nil {
		t.Fatalf("new source: %v", err)
	}
	col := &collector{}
	mon.Subscribe(col.listener())
	chk := filepath.Join(t.TempDir(), "chk")
	q, err := engine.Start(context.Background(), engine.Config{
		Name: "lagtest", Source: src, Sink: memory.New(), Trigger: trig, CheckpointDir: chk,
		Logger: quiet, Observers: []engine.Observer{mon}, Workers: 2, BeforeCommit: beforeCommit,
	})
	if err != nil {
		t.Fatalf("start query: %v", err)
	}
	r := &queryRun{q: q, mon: mon, col: col, chk: chk}
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *queryRun) stop(t *testing.T) {
	t.Helper()
	if err := r.q.Stop(); err != nil {
		t.Errorf("stop query: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.mon.Close(ctx); err != nil {
		t.Errorf("close monitor: %v", err)
	}
}

// waitFor polls the monitor's last progress until cond holds.
func waitFor(t *testing.T, mon *monitor.Monitor, timeout time.Duration, what string, cond func(*progress.Progress) bool) *progress.Progress {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p := mon.Last(); p != nil && cond(p) {
			return p
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last progress: %s", timeout, what, mon.Last().JSON())
	return nil
}

// readOffsetsFile reads the source offsets of offsets/<id>, directly from
// the file.
func readOffsetsFile(t *testing.T, chk string, id int64) map[partition.ID]int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chk, "offsets", fmt.Sprint(id)))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != "v1" {
		t.Fatalf("offsets/%d: unexpected content %q", id, b)
	}
	offs, err := kafka.ParseOffsetsJSON(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	return offs
}

func parseOffsets(t *testing.T, raw []byte) map[partition.ID]int64 {
	t.Helper()
	offs, err := kafka.ParseOffsetsJSON(progress.OffsetString(raw))
	if err != nil {
		t.Fatal(err)
	}
	return offs
}

func equalOffsets(a, b map[partition.ID]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sumOffsets(o map[partition.ID]int64) int64 {
	var s int64
	for _, v := range o {
		s += v
	}
	return s
}

func health(p *progress.Progress) string {
	if p.Sluice == nil || p.Sluice.Health == nil {
		return ""
	}
	return p.Sluice.Health.Status
}

func lagRecords(p *progress.Progress) int64 {
	if p.Sluice == nil || p.Sluice.Lag == nil {
		return -1
	}
	return p.Sluice.Lag.Records
}

// TestLagFromBacklogAndProducer drains a backlog with a small
// maxOffsetsPerTrigger, then runs a producer faster than the limit, then
// stops it, and checks progress, lag and health through all three phases.
func TestLagFromBacklogAndProducer(t *testing.T) {
	const (
		partitions = 4
		backlog    = 100 // per partition
		limit      = 100 // maxOffsetsPerTrigger, per batch over all partitions
	)
	b := brokertest.Start(t, broker.TopicSpec{Name: "orders", Partitions: partitions})
	produce(t, b.Addr(), "orders", partitions, backlog)

	mon := monitor.New(monitor.WithHealth(lag.Config{Window: 5}), monitor.WithLagSampling(100*time.Millisecond, 200))
	// Once phase 2 starts, the first batch to commit writes one record
	// to each partition before its commit: records that arrive while a
	// batch runs, which only the batch-end sample can see (whether the
	// background producer lands one inside a batch is up to timing).
	var duringBatch atomic.Int32 // 1: armed, 2: done
	var hookErr atomic.Value
	hookClient := brokertest.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	beforeCommit := func(int64) error {
		if !duringBatch.CompareAndSwap(1, 2) {
			return nil
		}
		var recs []*kgo.Record
		for p := range partitions {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(p), Value: []byte("y")})
		}
		if err := hookClient.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			hookErr.Store(err.Error())
		}
		return nil
	}
	r := startQuery(t, b.Addr(), "orders", limit, trigger.Trigger{Kind: trigger.ProcessingTime, Interval: 200 * time.Millisecond}, mon, beforeCommit)

	// Phase 1: the backlog drains, 100 records per batch.
	waitFor(t, mon, 15*time.Second, "the backlog to drain", func(p *progress.Progress) bool { return lagRecords(p) == 0 })
	phase1 := mon.Recent()
	if len(phase1) != partitions*backlog/limit {
		t.Fatalf("backlog drained in %d batches, want %d", len(phase1), partitions*backlog/limit)
	}
	for i, p := range phase1 {
		wantBehind := int64(partitions*backlog - limit*(i+1))
		s := p.Sluice
		switch {
		case p.NumInputRows != limit:
			t.Errorf("batch %d: numInputRows %d, want %d", p.BatchID, p.NumInputRows, limit)
		case s.Lag.Records != wantBehind:
			t.Errorf("batch %d: lag %d records, want %d", p.BatchID, s.Lag.Records, wantBehind)
		case wantBehind > 0 && !(float64(s.Lag.Seconds) > 0):
			t.Errorf("batch %d: %d records behind but lag seconds %v", p.BatchID, wantBehind, s.Lag.Seconds)
		case wantBehind == 0 && float64(s.Lag.Seconds) != 0:
			t.Errorf("batch %d: caught up but lag seconds %v", p.BatchID, s.Lag.Seconds)
		case s.Health.Status != "OK":
			t.Errorf("batch %d: health %s (%s) while draining a static backlog, want OK", p.BatchID, s.Health.Status, s.Health.Reason)
		case len(s.Lag.Partitions) != partitions:
			t.Errorf("batch %d: %d partition lags, want %d", p.BatchID, len(s.Lag.Partitions), partitions)
		}
		if got := p.Sources[0].Metrics["maxOffsetsBehindLatest"]; wantBehind > 0 && got != fmt.Sprint(wantBehind/partitions) {
			t.Errorf("batch %d: Spark maxOffsetsBehindLatest %q, want %d", p.BatchID, got, wantBehind/partitions)
		}
		if wantBehind > 0 && s.Lag.DrainETASeconds.IsNever() {
			t.Errorf("batch %d: drain ETA never with no arrivals", p.BatchID)
		}
	}

	// Phase 2: a producer at ~1000 records/s against a limit of 500/s.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var produced int64
	cl := brokertest.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	firstPhase2 := phase1[len(phase1)-1].BatchID + 1
	duringBatch.Store(1)
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var recs []*kgo.Record
			for p := range partitions {
				for range 5 {
					recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(p), Value: []byte("x")})
				}
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				if ctx.Err() == nil {
					t.Errorf("produce: %v", err)
				}
				return
			}
			produced += int64(len(recs))
		}
	})
	waitFor(t, mon, 15*time.Second, "WARN while the producer outpaces the limit", func(p *progress.Progress) bool { return health(p) == "WARN" })
	if sec := mon.LagSeconds(); !(sec > 0) {
		t.Errorf("LagSeconds() = %v while behind a fast producer", sec)
	}
	if snap := mon.Snapshot(); snap.Lag == nil || snap.Lag.Records <= 0 || snap.Limits == nil || snap.Limits.MaxOffsetsPerTrigger != limit ||
		snap.Diagnosis == nil || snap.Diagnosis.Limiting == "" || !snap.Active {
		t.Errorf("live snapshot while behind: %+v", snap)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()

	// Phase 3: the producer stopped; the query catches up.
	if e := hookErr.Load(); e != nil {
		t.Fatalf("produce inside a batch: %v", e)
	}
	if duringBatch.Load() != 2 {
		t.Fatal("no batch committed during phase 2")
	}
	total := int64(partitions*backlog) + produced + partitions
	final := waitFor(t, mon, 20*time.Second, "the query to catch up", func(p *progress.Progress) bool {
		return sumOffsets(parseOffsets(t, p.Sources[0].EndOffset)) == total
	})
	r.stop(t)

	if s := final.Sluice; s.Lag.Records != 0 || float64(s.Lag.Seconds) != 0 || s.Health.Status != "OK" {
		t.Errorf("after catching up: lag %d records / %v s, health %s (%s); want 0, 0, OK",
			s.Lag.Records, s.Lag.Seconds, s.Health.Status, s.Health.Reason)
	}
	all := r.col.reports()
	sawWarn, sawInterpolated, sawArrivedDuringBatch := false, false, false
	for i, p := range all {
		if p.BatchID != int64(i) {
			t.Fatalf("report %d is batch %d", i, p.BatchID)
		}
		// Offsets consistent with the checkpoint files.
		end := readOffsetsFile(t, r.chk, p.BatchID)
		if got := parseOffsets(t, p.Sources[0].EndOffset); !equalOffsets(got, end) {
			t.Errorf("batch %d: endOffset %v, offsets/%d has %v", p.BatchID, got, p.BatchID, end)
		}
		// As Spark: batch 0 has no start offset (null); later batches
		// start where offsets/N-1 ended.
		var start map[partition.ID]int64
		if p.BatchID > 0 {
			start = parseOffsets(t, p.Sources[0].StartOffset)
			if prev := readOffsetsFile(t, r.chk, p.BatchID-1); !equalOffsets(start, prev) {
				t.Errorf("batch %d: startOffset %v, offsets/%d has %v", p.BatchID, start, p.BatchID-1, prev)
			}
		} else if string(p.Sources[0].StartOffset) != "" && string(p.Sources[0].StartOffset) != "null" {
			t.Errorf("batch 0: startOffset %s, want null (earliest: all 0, in sources/0/0)", p.Sources[0].StartOffset)
		}
		for _, k := range []string{"latestOffset", "getBatch", "queryPlanning", "walCommit", "addBatch", "commitOffsets", "triggerExecution"} {
			if _, ok := p.DurationMs[k]; !ok {
				t.Errorf("batch %d: durationMs lacks %q: %v", p.BatchID, k, p.DurationMs)
			}
		}
		if d := p.DurationMs; d["triggerExecution"] < d["latestOffset"]+d["queryPlanning"]+d["walCommit"]+d["getBatch"]+d["addBatch"]+d["commitOffsets"]-6 {
			t.Errorf("batch %d: durationMs parts exceed triggerExecution: %v", p.BatchID, d)
		}
		if n := sumOffsets(end) - sumOffsets(start); n != p.NumInputRows || p.NumInputRows > limit {
			t.Errorf("batch %d: numInputRows %d, offsets advanced by %d, limit %d", p.BatchID, p.NumInputRows, n, limit)
		}
		// Lag is measured against the head sampled when the batch
		// committed: at least what the plan left (latestOffset −
		// endOffset), more when records arrived while the batch ran.
		latest := parseOffsets(t, p.Sources[0].LatestOffset)
		planned := sumOffsets(latest) - sumOffsets(end)
		var perPartition int64
		for _, pl := range p.Sluice.Lag.Partitions {
			perPartition += pl.OffsetsBehind
		}
		if p.Sluice.Lag.Records < planned || p.Sluice.Lag.Records != perPartition {
			t.Errorf("batch %d: lag %d records (partitions sum to %d), latestOffset - endOffset = %d", p.BatchID, p.Sluice.Lag.Records, perPartition, planned)
		}
		if p.Sluice.Lag.Records > planned {
			sawArrivedDuringBatch = true
		}
		if p.Sluice.Admission.LimitBound != (planned > 0) {
			t.Errorf("batch %d: limitBound %v with %d records left by the plan", p.BatchID, p.Sluice.Admission.LimitBound, planned)
		}
		st := health(p)
		if st == "WARN" {
			sawWarn = true
			if p.BatchID < firstPhase2 {
				t.Errorf("batch %d: WARN while draining the initial backlog (producer started before batch %d)", p.BatchID, firstPhase2)
			}
		}
		if st != "OK" && st != "WARN" {
			t.Errorf("batch %d: health %s (%s)", p.BatchID, st, p.Sluice.Health.Reason)
		}
		for _, pl := range p.Sluice.Lag.Partitions {
			if pl.LagMethod == string(lag.MethodInterpolated) && pl.OffsetsBehind > 0 && float64(pl.LagSeconds) > 0 {
				sawInterpolated = true
			}
		}
		if p.Sluice.Timing.TriggerIntervalMs != 200 || p.Sluice.Checkpoint == nil || p.Sluice.Checkpoint.Files == 0 {
			t.Errorf("batch %d: timing %+v checkpoint %+v", p.BatchID, p.Sluice.Timing, p.Sluice.Checkpoint)
		}
	}
	if !sawWarn {
		t.Error("no report with WARN")
	}
	if !sawInterpolated {
		t.Error("no partition lag in seconds interpolated from the latest-offset samples while the producer ran")
	}
	if !sawArrivedDuringBatch {
		t.Error("no batch reported records that arrived while it ran (the batch-end sample)")
	}
	if sec := mon.LagSeconds(); sec != 0 {
		t.Errorf("LagSeconds() = %v after catching up", sec)
	}
	snap := mon.Snapshot()
	if snap.Active || snap.Health == nil || snap.Health.Status != "OK" || snap.Lag.Records != 0 || snap.LastProgress.BatchID != final.BatchID {
		t.Errorf("snapshot after stop: %+v", snap)
	}
}

// TestHealthStopsBetweenBatches checks that the live evaluation turns STOP
// when a batch does not commit for longer than the threshold while behind,
// without any new progress report.
func TestHealthStopsBetweenBatches(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "t", Partitions: 2})
	produce(t, b.Addr(), "t", 2, 50)
	release := make(chan struct{})
	blocked := make(chan struct{})
	// The threshold leaves room for batch 1 to reach its hook on a loaded
	// machine (300 ms was passed there before the first check).
	mon := monitor.New(monitor.WithHealth(lag.Config{StopAfter: 1500 * time.Millisecond}))
	r := startQuery(t, b.Addr(), "t", 20, trigger.Trigger{}, mon, func(id int64) error {
		if id == 1 {
			close(blocked)
			<-release
		}
		return nil
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	<-blocked
	snap := mon.Snapshot()
	if snap.Health.Status != "OK" || snap.Lag.Records != 80 || !snap.Status.IsTriggerActive || !snap.Active {
		t.Fatalf("right after batch 0: %+v, health %+v", snap, snap.Health)
	}
	deadline := time.Now().Add(10 * time.Second)
	for snap.Health.Status != "STOP" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		snap = mon.Snapshot()
	}
	if snap.Health.Status != "STOP" || !strings.Contains(snap.Health.Reason, "no commit for") {
		t.Fatalf("health while batch 1 hangs: %+v", snap.Health)
	}
	js, err := json.Marshal(snap)
	if err != nil {
		t.Fatalf("marshal snapshot: %v", err)
	}
	for _, want := range []string{`"health":{"status":"STOP"`, `"lag":{"records":80,`, `"active":true`, `"lastProgress":{"id":"` + r.q.ID() + `"`, `"limits":{`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("snapshot JSON lacks %s:\n%s", want, js)
		}
	}
	if got := len(r.col.reports()); got != 1 {
		t.Errorf("%d progress reports while batch 1 hangs, want 1", got)
	}
	close(release)
	p := waitFor(t, mon, 10*time.Second, "the backlog to drain", func(p *progress.Progress) bool { return lagRecords(p) == 0 })
	if health(p) != "OK" {
		t.Errorf("after draining: %s (%s)", health(p), p.Sluice.Health.Reason)
	}
	if s := mon.Snapshot(); s.Health.Status != "OK" {
		t.Errorf("live health after draining: %+v", s.Health)
	}
}

// scrape fetches the registry through the Prometheus HTTP handler and
// returns the series of query "lagtest" by "name{label=value,...}" (labels
// other than query, sorted).
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			mine := false
			for _, l := range m.GetLabel() {
				if l.GetName() == "query" {
					mine = l.GetValue() == "lagtest"
					continue
				}
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if !mine {
				continue
			}
			key := name
			if len(labels) > 0 {
				slices.Sort(labels)
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[key+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// TestMetricsScrape runs a query exporting metrics and scrapes the
// Prometheus handler while a batch hangs, then after the query stopped.
func TestMetricsScrape(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "m", Partitions: 2})
	produce(t, b.Addr(), "m", 2, 100)
	reg := prometheus.NewRegistry()
	mets, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	release, blocked := make(chan struct{}), make(chan struct{})
	mon := monitor.New(monitor.WithMetrics(mets))
	r := startQuery(t, b.Addr(), "m", 50, trigger.Trigger{}, mon, func(id int64) error {
		if id == 2 {
			close(blocked)
			<-release
		}
		return nil
	})
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	<-blocked // batches 0 and 1 done: 100 of 200 records read

	got := scrape(t, reg)
	positive := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) }
	checks := []struct {
		series string
		ok     func(float64) bool
		want   string
	}{
		{"sluice_batches_total", func(v float64) bool { return v == 2 }, "2"},
		{"sluice_input_rows_total", func(v float64) bool { return v == 100 }, "100"},
		{"sluice_output_rows_total", func(v float64) bool { return v == 100 }, "100"},
		{"sluice_input_bytes_total", positive, "> 0"},
		{"sluice_lag_records", func(v float64) bool { return v == 100 }, "100"},
		{"sluice_partition_lag_records{partition=0,topic=m}", func(v float64) bool { return v == 50 }, "50"},
		{"sluice_partition_lag_records{partition=1,topic=m}", func(v float64) bool { return v == 50 }, "50"},
		{"sluice_topic_lag_records{topic=m}", func(v float64) bool { return v == 100 }, "100"},
		{"sluice_lag_seconds", positive, "> 0"},
		{"sluice_partition_lag_seconds{partition=0,topic=m}", positive, "> 0"},
		{"sluice_input_rows_per_second", positive, "> 0"},
		{"sluice_processed_rows_per_second", positive, "> 0"},
		{"sluice_batch_duration_seconds_count", func(v float64) bool { return v == 2 }, "2"},
		{"sluice_batch_duration_seconds_sum", positive, "> 0"},
		{"sluice_last_batch_duration_seconds", positive, "> 0"},
		{"sluice_worker_busy_ratio", func(v float64) bool { return v > 0 && v <= 1 }, "in (0, 1]"},
		{"sluice_busy_ratio", func(v float64) bool { return v > 0 && v <= 1 }, "in (0, 1]"},
		{"sluice_task_skew_ratio", func(v float64) bool { return v >= 1 }, ">= 1"},
		{"sluice_checkpoint_bytes", positive, "> 0"},
		{"sluice_checkpoint_files", func(v float64) bool { return v >= 5 }, ">= 5 (metadata, sources/0/0, offsets 0-2, commits 0-1)"},
		{"sluice_health_status{status=OK}", func(v float64) bool { return v == 1 }, "1"},
		{"sluice_health_status{status=STOP}", func(v float64) bool { return v == 0 }, "0"},
		{"sluice_admission_limit_records", func(v float64) bool { return v == 50 }, "50"},
		{"sluice_drain_eta_seconds", positive, "finite > 0"},
		{"sluice_drain_never", func(v float64) bool { return v == 0 }, "0"},
		{"sluice_capacity_rows_per_second", positive, "> 0"},
		{"sluice_trigger_interval_seconds", func(v float64) bool { return v == 0 }, "0 (default trigger)"},
	}
	for _, c := range checks {
		v, ok := got[c.series]
		if !ok {
			t.Errorf("%s: not scraped", c.series)
			continue
		}
		if !c.ok(v) {
			t.Errorf("%s = %v, want %s", c.series, v, c.want)
		}
	}
	if t.Failed() {
		t.Logf("scraped: %v", got)
	}

	close(release)
	waitFor(t, mon, 10*time.Second, "the backlog to drain", func(p *progress.Progress) bool { return lagRecords(p) == 0 })
	r.stop(t)
	if left := scrape(t, reg); len(left) != 0 {
		t.Errorf("series of the terminated query are still exported: %v", left)
	}
}
