package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/sourcetest"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/internal/trigger/triggertest"
)

// TestLatestAfterShowsWhatArrivedDuringTheBatch: a query without a read
// limit takes everything there is at planning; the sample taken at the
// end of the batch shows the records that arrived while it ran, which is
// the lag the batch leaves behind.
func TestLatestAfterShowsWhatArrivedDuringTheBatch(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2})
	src.AppendN(0, 30)
	src.AppendN(1, 30)
	var once sync.Once
	src.SetHook(func(_ context.Context, at sourcetest.Point) error {
		if at.Op == sourcetest.OpChunk {
			once.Do(func() { src.AppendN(0, 7) }) // a producer outpacing the batch
		}
		return nil
	})
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.after = func(*engine.Query, *engine.BatchInfo) { cancel() }
	clk := triggertest.New(t0)
	if err := run(t, ctx, engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: t.TempDir(), Clock: clk,
		LatestSampleEvery: -1, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	bs := rec.batches()
	if len(bs) != 1 {
		t.Fatalf("%d batches, want 1", len(bs))
	}
	b := bs[0]
	if b.NumInputRows != 60 || b.LatestAfter == nil {
		t.Fatalf("batch read %d rows, LatestAfter %v; want 60 and a sample", b.NumInputRows, b.LatestAfter)
	}
	after, end := offsetsOf(b.LatestAfter), offsetsOf(b.End)
	if got := partition.Total(end, after); got != 7 {
		t.Fatalf("lag at the end of the batch %d records (end %v, latest after %v), want 7", got, end, after)
	}
	if partition.Total(end, offsetsOf(b.Latest)) != 0 {
		t.Fatalf("planned latest %v should equal the end %v (no limit)", b.Latest, b.End)
	}
	rec.mu.Lock()
	seen := rec.latest[len(rec.latest)-1].JSON()
	rec.mu.Unlock()
	if seen != b.LatestAfter.JSON() {
		t.Fatalf("observers last saw %s, want the batch-end sample %s", seen, b.LatestAfter.JSON())
	}
}

// TestReplayedBatchReportsTheBacklog: the first batch after a restart — a
// replay of a logged batch — reports the backlog still waiting, not lag 0.
func TestReplayedBatchReportsTheBacklog(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1, Defaults: source.ReadLimit{MaxRows: 10}})
	src.AppendN(0, 100)
	dir := t.TempDir()
	crash := errors.New("crash")
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: dir, Clock: triggertest.New(t0),
		LatestSampleEvery: -1, BeforeCommit: func(int64) error { return crash }}); !errors.Is(err, crash) {
		t.Fatalf("first run: %v, want the crash", err)
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.after = func(*engine.Query, *engine.BatchInfo) { cancel() }
	if err := run(t, ctx, engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: dir, Clock: triggertest.New(t0),
		LatestSampleEvery: -1, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	b := rec.batches()[0]
	if !b.Replayed || b.LatestAfter == nil {
		t.Fatalf("first batch after restart: replayed %v, LatestAfter %v", b.Replayed, b.LatestAfter)
	}
	if got := partition.Total(offsetsOf(b.End), offsetsOf(b.LatestAfter)); got != 90 {
		t.Fatalf("replayed batch leaves %d records, want the real backlog of 90", got)
	}
}

// TestSamplerSamplesOnItsOwnClock: between batches the sampler asks the
// source about every LatestSampleEvery, never with two requests in flight,
// and a source that does not answer does not hold up Stop.
func TestSamplerSamplesOnItsOwnClock(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1})
	var inFlight, maxInFlight atomic.Int32
	var block atomic.Bool
	src.SetHook(func(ctx context.Context, at sourcetest.Point) error {
		if at.Op != sourcetest.OpLatest {
			return nil
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		if block.Load() {
			<-ctx.Done()
			return ctx.Err()
		}
		time.Sleep(15 * time.Millisecond) // slower than the tick: ticks are dropped, not queued
		return nil
	})
	rec := &recorder{}
	q := startQuery(t, engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: t.TempDir(),
		Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: time.Hour}, LatestSampleEvery: 10 * time.Millisecond,
		Observers: []engine.Observer{rec}})
	time.Sleep(500 * time.Millisecond)
	ok, failed := q.LatestSamples()
	if ok < 5 || ok > 40 || failed != 0 {
		t.Fatalf("%d samples (%d failed) in 0.5 s at one per 10 ms taking 15 ms each; want 5..40 and no failure", ok, failed)
	}
	if m := maxInFlight.Load(); m != 1 {
		t.Fatalf("%d requests in flight at once, want 1", m)
	}
	rec.mu.Lock()
	observed := len(rec.latest)
	rec.mu.Unlock()
	if int64(observed) < ok {
		t.Fatalf("observers saw %d latest offsets, fewer than the %d samples", observed, ok)
	}
	block.Store(true)
	time.Sleep(50 * time.Millisecond) // a request is now stuck
	began := time.Now()
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("Stop took %s with a sample stuck in the source", d)
	}
	if n := inFlight.Load(); n != 0 {
		t.Fatalf("%d sample requests still running after Stop", n)
	}
}

// TestNoSamplerForSnapshots: availableNow measures lag against its
// snapshot, so it never samples.
func TestNoSamplerForSnapshots(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1})
	src.AppendN(0, 10)
	rec := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: t.TempDir(),
		Clock: triggertest.New(t0), Trigger: availableNow, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if n := src.LatestCalls(); n != 0 {
		t.Fatalf("availableNow sampled latest offsets %d times", n)
	}
	if b := rec.batches(); len(b) != 1 || b[0].LatestAfter != nil {
		t.Fatalf("batches %+v", b)
	}
}

// TestIdleReports: as Spark, an idle query reports after its first idle
// trigger (marked First: progress but no idle event), then every
// NoDataProgressInterval; an executed batch restarts the interval.
func TestIdleReports(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1})
	clk := triggertest.New(t0)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	appended := false
	clk.OnSleep(func(time.Duration) {
		now := clk.Now().Sub(t0)
		switch {
		case now >= 25*time.Second && !appended:
			appended = true
			src.AppendN(0, 5) // a batch at 25 s
		case now >= 47*time.Second:
			cancel()
		}
	})
	if err := run(t, ctx, engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: t.TempDir(), Clock: clk,
		LatestSampleEvery: -1, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var at []time.Duration
	for _, in := range rec.idles {
		at = append(at, in.TriggerStart.Sub(t0).Truncate(time.Second))
	}
	// Idle at 0 s (first), 10 s, 20 s; the batch at ~25 s; idle again
	// 10 s after it, at 35 s and 45 s.
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 35 * time.Second, 45 * time.Second}
	if fmt.Sprint(at) != fmt.Sprint(want) {
		t.Fatalf("idle reports at %v, want %v", at, want)
	}
	for i, in := range rec.idles {
		wantFirst := i == 0
		wantBatch := int64(-1)
		if i >= 3 {
			wantBatch = 0
		}
		if in.First != wantFirst || in.LastBatchID != wantBatch || in.Position == nil || in.Latest == nil {
			t.Errorf("idle report %d: %+v, want First %v, last batch %d", i, in, wantFirst, wantBatch)
		}
		if _, ok := in.Durations["latestOffset"]; !ok || len(in.Durations) != 2 {
			t.Errorf("idle report %d durations %v, want latestOffset and triggerExecution", i, in.Durations)
		}
	}
	if len(rec.infos) != 1 {
		t.Fatalf("%d batches, want 1", len(rec.infos))
	}
}

// TestBatchEndSampleOverlapsTheCommitLog: the sample of a batch's end (its
// LatestAfter) is requested while commits/N is written, not after it, so
// the next trigger does not wait for a request the commit could hide: here
// commits/0 is written only once the sample has been requested.
func TestBatchEndSampleOverlapsTheCommitLog(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1})
	src.AppendN(0, 10)
	sampled := make(chan struct{})
	var once sync.Once
	src.SetHook(func(_ context.Context, at sourcetest.Point) error {
		if at.Op == sourcetest.OpLatest {
			once.Do(func() { close(sampled) })
		}
		return nil
	})
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.after = func(*engine.Query, *engine.BatchInfo) { cancel() }
	var waited atomic.Bool
	if err := run(t, ctx, engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: t.TempDir(),
		LatestSampleEvery: -1, Observers: []engine.Observer{rec},
		BeforeCommitLog: func(int64) error {
			select {
			case <-sampled:
			case <-time.After(5 * time.Second):
				waited.Store(true)
			}
			return nil
		}}); err != nil {
		t.Fatal(err)
	}
	if waited.Load() {
		t.Fatal("the batch-end sample was not requested while commits/0 was written")
	}
	if bs := rec.batches(); len(bs) != 1 || bs[0].LatestAfter == nil || partition.Total(offsetsOf(bs[0].End), offsetsOf(bs[0].LatestAfter)) != 0 {
		t.Fatalf("batches %d, want one whose LatestAfter is its end (nothing arrived)", len(bs))
	}
}
