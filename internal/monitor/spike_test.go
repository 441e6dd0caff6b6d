package monitor_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/sink/sinktest"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/sourcetest"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/internal/trigger/triggertest"
	"github.com/sluice-stream/sluice/progress"
)

// simStart is a whole multiple of the trigger intervals used below.
var simStart = time.UnixMilli(1_700_000_000_000)

// producer appends records to a fake source's partitions at a rate that is
// a function of (virtual) time, spreading them evenly.
type producer struct {
	src        *sourcetest.Source
	partitions int
	rate       func(sinceStart time.Duration) float64
	mu         sync.Mutex
	carry      float64
	next       int
	total      int64
}

// arrive appends what arrives in [from, to).
func (p *producer) arrive(from, to time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	const step = 10 * time.Millisecond
	for t := from; t.Before(to); t = t.Add(step) {
		d := min(step, to.Sub(t))
		p.carry += p.rate(t.Sub(simStart)) * d.Seconds()
	}
	n := int(p.carry)
	p.carry -= float64(n)
	for i := 0; i < n; i++ {
		p.src.AppendN(int32(p.next), 1)
		p.next = (p.next + 1) % p.partitions
	}
	p.total += int64(n)
}

// simulation runs a query on the fake clock: every batch takes batchTime
// (the sink's commit advances the clock), records arrive continuously at
// prod's rate, and the query stops once the clock passes until.
type simulation struct {
	src       *sourcetest.Source
	snk       *sinktest.Sink
	clk       *triggertest.Clock
	prod      *producer
	mon       *monitor.Monitor
	col       *collector
	batchTime time.Duration
}

func newSimulation(partitions int, limit int64, rate func(time.Duration) float64, batchTime time.Duration) *simulation {
	src := sourcetest.New(sourcetest.Options{Partitions: partitions, Defaults: source.ReadLimit{MaxRows: limit}, ChunkRows: 500})
	s := &simulation{src: src, snk: sinktest.New("main", nil), clk: triggertest.New(simStart), batchTime: batchTime,
		prod: &producer{src: src, partitions: partitions, rate: rate}, col: &collector{}}
	s.mon = monitor.New()
	s.mon.Subscribe(s.col.listener())
	// A batch's work takes batchTime, while records keep arriving.
	s.snk.SetHook(func(_ context.Context, at sinktest.Point) error {
		if at.Op == sinktest.OpCommit {
			now := s.clk.Now()
			s.prod.arrive(now, now.Add(batchTime))
			s.clk.Advance(batchTime)
		}
		return nil
	})
	return s
}

// run runs the query until the clock passes until (or stop says so after
// a batch), on chk, with beforeCommit as the engine's hook.
func (s *simulation) run(t *testing.T, chk string, trig trigger.Trigger, until time.Duration, beforeCommit func(int64) error, stop func(*engine.BatchInfo) bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.clk.OnSleep(func(d time.Duration) {
		now := s.clk.Now()
		if now.Sub(simStart) >= until {
			cancel()
			return
		}
		s.prod.arrive(now, now.Add(d))
	})
	stopper := &stopAfter{stop: stop, cancel: cancel}
	q, err := engine.Start(ctx, engine.Config{Name: "spike", Source: s.src, Sink: s.snk, Trigger: trig, CheckpointDir: chk,
		Clock: s.clk, Logger: quiet, Workers: 2, LatestSampleEvery: -1, BeforeCommit: beforeCommit,
		Observers: []engine.Observer{s.mon, stopper}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-q.Done():
	case <-time.After(60 * time.Second):
		q.Stop()
		t.Fatal("simulation did not end within 60 s")
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ccancel()
	if err := s.mon.Close(cctx); err != nil {
		t.Fatal(err)
	}
	return q.Exception()
}

// stopAfter cancels the query after a batch for which stop is true.
type stopAfter struct {
	engine.NopObserver
	stop   func(*engine.BatchInfo) bool
	cancel context.CancelFunc
}

func (s *stopAfter) BatchCompleted(_ *engine.Query, info *engine.BatchInfo) {
	if s.stop != nil && s.stop(info) {
		s.cancel()
	}
}

func endTime(t *testing.T, p *progress.Progress) time.Time {
	t.Helper()
	ts, err := progress.ParseTime(p.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	return ts.Add(time.Duration(p.BatchDuration) * time.Millisecond)
}

// TestSpikeSignals is the spike, on the fake clock: 200 records/s,
// then 1,600/s for 20 s, then 200/s again, against maxOffsetsPerTrigger
// 1,200 per 2 s trigger (600/s) with batches that take 0.5 s. While the
// lag grows the health is WARN and the diagnosis blames the read limit
// with a larger limit to use; every capped batch is marked; after the
// spike the drain ETA is within 30 % of the time the lag really took to
// drain; the busy ratio counts the idle part of the trigger.
func TestSpikeSignals(t *testing.T) {
	const (
		limit     = 1200
		interval  = 2 * time.Second
		batchTime = 500 * time.Millisecond
	)
	spikeFrom, spikeTo := 10*time.Second, 30*time.Second
	rate := func(d time.Duration) float64 {
		if d >= spikeFrom && d < spikeTo {
			return 1600
		}
		return 200
	}
	sim := newSimulation(4, limit, rate, batchTime)
	if err := sim.run(t, t.TempDir(), trigger.Trigger{Kind: trigger.ProcessingTime, Interval: interval}, 110*time.Second, nil, nil); err != nil {
		t.Fatal(err)
	}
	ps := sim.col.reports()
	if len(ps) < 40 {
		t.Fatalf("%d batches, want about 50", len(ps))
	}
	drainedAt := time.Time{}
	var peak int64
	sawWarn, sawDiagnosis := false, false
	for i, p := range ps {
		s := p.Sluice
		at := endTime(t, p).Sub(simStart)
		if s.Lag.Records > peak {
			peak = s.Lag.Records
		}
		planned := s.Admission.LimitBound
		if planned != (p.NumInputRows == limit && s.Lag.Records > 0 && at > spikeFrom) && at > spikeFrom+interval && at < spikeTo {
			t.Errorf("batch %d at %s: limitBound %v with %d rows read and %d behind", p.BatchID, at, planned, p.NumInputRows, s.Lag.Records)
		}
		if i > 0 {
			if br := float64(s.Timing.BusyRatio); math.Abs(br-0.25) > 1e-9 {
				t.Errorf("batch %d: busy ratio %v, want 0.25 (0.5 s busy per 2 s trigger)", p.BatchID, br)
			}
		}
		// During the spike, once the lag has grown for two batches, the
		// health is WARN, whatever the batch before the spike said.
		if i >= 2 && at < spikeTo && ps[i-1].Sluice.Lag.Records > ps[i-2].Sluice.Lag.Records &&
			s.Lag.Records > ps[i-1].Sluice.Lag.Records && ps[i-2].Sluice.Admission.LimitBound {
			sawWarn = true
			if s.Health.Status != "WARN" {
				t.Errorf("batch %d at %s: lag grew %d → %d → %d but health %s (%s)", p.BatchID, at,
					ps[i-2].Sluice.Lag.Records, ps[i-1].Sluice.Lag.Records, s.Lag.Records, s.Health.Status, s.Health.Reason)
			}
		}
		if at > spikeFrom+interval && at < spikeTo {
			d := s.Diagnosis
			if d == nil || d.Limiting != "read limit" || len(d.Findings) == 0 ||
				!strings.HasPrefix(d.Findings[0], "read limit is binding: capacity ≈ 2,400/s, admitting 600/s; raising maxOffsetsPerTrigger to ≈ 3,800 would drain in ") {
				t.Errorf("batch %d at %s: diagnosis %+v, want the binding read limit with a suggested limit", p.BatchID, at, d)
			} else {
				sawDiagnosis = true
			}
		}
		if drainedAt.IsZero() && at > spikeTo && !planned {
			drainedAt = endTime(t, p)
		}
	}
	if !sawWarn || !sawDiagnosis {
		t.Fatalf("saw WARN while growing: %v; saw the read-limit diagnosis: %v", sawWarn, sawDiagnosis)
	}
	if drainedAt.IsZero() {
		t.Fatal("the lag never drained")
	}
	if peak < 15000 {
		t.Errorf("peak lag %d records, want about 20,000", peak)
	}
	// Drain ETA against the real drain, for batches after the spike whose
	// arrival window no longer holds spike samples and which had at least
	// 10 s left to drain.
	checked, worst := 0, 0.0
	for _, p := range ps {
		end := endTime(t, p)
		if end.Sub(simStart) < spikeTo+monitor.DefaultArrivalWindow+interval || drainedAt.Sub(end) < 10*time.Second {
			continue
		}
		real := drainedAt.Sub(end).Seconds()
		eta := p.Sluice.Lag.DrainETASeconds
		if eta.IsNever() || math.Abs(float64(eta)-real) > 0.3*real {
			t.Errorf("batch %d: drain ETA %v s, drained in %.1f s (more than 30 %% off)", p.BatchID, eta, real)
		}
		worst = max(worst, math.Abs(float64(eta)-real)/real)
		checked++
	}
	t.Logf("peak lag %d records; drained %.0f s after the spike; %d ETAs checked, worst %.1f %% off", peak,
		drainedAt.Sub(simStart.Add(spikeTo)).Seconds(), checked, 100*worst)
	for _, p := range ps {
		s := p.Sluice
		t.Logf("batch %2d end %5.1fs rows %4d lag %6d eta %6v bound %-5v %s %s", p.BatchID, endTime(t, p).Sub(simStart).Seconds(),
			p.NumInputRows, s.Lag.Records, s.Lag.DrainETASeconds, s.Admission.LimitBound, s.Health.Status, s.Health.Reason)
	}
	if checked < 5 {
		t.Errorf("only %d batches had an ETA to check", checked)
	}
	last := ps[len(ps)-1].Sluice
	if last.Health.Status != "OK" || last.Admission.LimitBound {
		t.Errorf("after draining: health %s (%s), limitBound %v", last.Health.Status, last.Health.Reason, last.Admission.LimitBound)
	}
	if d := sim.snk.Duplicates(); len(d) > 0 {
		t.Fatalf("duplicates %v", d)
	}
}

// TestLagWithoutALimit: a query without a read limit takes everything its
// plan sees, yet a producer keeps adding while each batch runs; that is
// lag, and every report says so (it was 0 when lag was measured against
// the plan).
func TestLagWithoutALimit(t *testing.T) {
	sim := newSimulation(2, 0, func(time.Duration) float64 { return 1000 }, 300*time.Millisecond)
	if err := sim.run(t, t.TempDir(), trigger.Trigger{Kind: trigger.ProcessingTime, Interval: time.Second}, 10*time.Second, nil, nil); err != nil {
		t.Fatal(err)
	}
	ps := sim.col.reports()
	if len(ps) < 5 {
		t.Fatalf("%d batches", len(ps))
	}
	for _, p := range ps {
		s := p.Sluice
		// 1,000/s for the 0.3 s the batch ran: 300 records behind.
		if s.Lag.Records != 300 || s.Admission.LimitBound || s.Health.Status != "OK" {
			t.Errorf("batch %d: lag %d records (want the 300 that arrived while it ran), limitBound %v, health %s (%s)",
				p.BatchID, s.Lag.Records, s.Admission.LimitBound, s.Health.Status, s.Health.Reason)
		}
		if p.BatchID > 0 && !(float64(s.Lag.Seconds) > 0) {
			t.Errorf("batch %d: lag seconds %v with 300 records behind", p.BatchID, s.Lag.Seconds)
		}
	}
}

// TestLagAfterRestart: the first batch after a restart re-runs the batch
// logged before the crash; it reports the backlog still waiting, not 0.
func TestLagAfterRestart(t *testing.T) {
	sim := newSimulation(2, 1000, func(time.Duration) float64 { return 0 }, 100*time.Millisecond)
	sim.src.AppendN(0, 20000)
	sim.src.AppendN(1, 20000)
	chk := t.TempDir()
	crash := errors.New("crash before commits/2")
	err := sim.run(t, chk, trigger.Trigger{Kind: trigger.ProcessingTime, Interval: time.Second}, time.Hour, func(id int64) error {
		if id == 2 {
			return crash
		}
		return nil
	}, nil)
	if !errors.Is(err, crash) {
		t.Fatalf("first run: %v, want the crash", err)
	}
	again := newSimulation(2, 1000, func(time.Duration) float64 { return 0 }, 100*time.Millisecond)
	again.src = sim.src
	again.clk = triggertest.New(simStart.Add(time.Hour))
	if err := again.run(t, chk, trigger.Trigger{Kind: trigger.ProcessingTime, Interval: time.Second}, 2*time.Hour, nil,
		func(info *engine.BatchInfo) bool { return info.BatchID >= 3 }); err != nil {
		t.Fatal(err)
	}
	ps := again.col.reports()
	if len(ps) < 1 || ps[0].BatchID != 2 {
		t.Fatalf("first report after restart: %+v", ps)
	}
	if got := ps[0].Sluice.Lag.Records; got != 40000-3000 {
		t.Errorf("first batch after restart (the replay of batch 2): lag %d records, want %d", got, 40000-3000)
	}
	if !ps[0].Sluice.Admission.LimitBound {
		t.Error("the replayed batch admitted its logged limit with records left: limitBound should be true")
	}
}

// TestIdleProgress: an idle query records a progress report with no rows
// after its first idle trigger and then every 10 s (Spark's
// noDataProgressEventInterval); listeners get onQueryIdle for all but the
// first, never onQueryProgress.
func TestIdleProgress(t *testing.T) {
	sim := newSimulation(1, 0, func(d time.Duration) float64 {
		if d >= 22*time.Second && d < 23*time.Second {
			return 100 // one burst: one batch
		}
		return 0
	}, 100*time.Millisecond)
	var mu sync.Mutex
	var idleEvents []string
	sim.mon.Subscribe(progress.ListenerFuncs{OnIdle: func(e progress.IdleEvent) {
		mu.Lock()
		idleEvents = append(idleEvents, e.Timestamp)
		mu.Unlock()
	}})
	if err := sim.run(t, t.TempDir(), trigger.Trigger{Kind: trigger.ProcessingTime, Interval: time.Second}, 46*time.Second, nil, nil); err != nil {
		t.Fatal(err)
	}
	var idle []*progress.Progress
	for _, p := range sim.mon.Recent() {
		if p.NumInputRows == 0 {
			idle = append(idle, p)
		}
	}
	// Idle at 0, 10, 20 s; a batch at 23 s ending at 23.1 s; idle again
	// at the first triggers 10 s after it: 34 and 44 s.
	var when []string
	for _, p := range idle {
		ts, _ := progress.ParseTime(p.Timestamp)
		when = append(when, ts.Sub(simStart).String())
		if _, ok := p.DurationMs["triggerExecution"]; !ok || p.Sources[0].EndOffset == nil || p.Sluice == nil || p.Sluice.Health == nil {
			t.Errorf("idle report %s: %s", p.Timestamp, p.JSON())
		}
	}
	if got := strings.Join(when, " "); got != "0s 10s 20s 34s 44s" {
		t.Fatalf("idle progress at %s, want 0s 10s 20s 34s 44s", got)
	}
	if idle[0].BatchID != -1 || idle[3].BatchID != 0 {
		t.Errorf("idle batch ids %d and %d, want -1 before any batch and 0 after batch 0", idle[0].BatchID, idle[3].BatchID)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(idleEvents) != 4 || idleEvents[0] != idle[1].Timestamp {
		t.Errorf("onQueryIdle at %v, want the 4 idle reports after the first", idleEvents)
	}
	if n := len(sim.col.reports()); n != 1 {
		t.Errorf("%d onQueryProgress events, want 1 (the batch)", n)
	}
}
