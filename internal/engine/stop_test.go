package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/sinktest"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/sourcetest"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/internal/trigger/triggertest"
)

// slowFirstWrite makes the sink's first write of batch id wait until
// release is closed (or the writer's context ends), and closes entered when
// it starts waiting.
func slowFirstWrite(snk *sinktest.Sink, id int64) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	snk.SetHook(func(ctx context.Context, at sinktest.Point) error {
		if at.Op != sinktest.OpWrite || at.Batch != id {
			return nil
		}
		once.Do(func() { close(entered) })
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	return entered, release
}

func startQuery(t *testing.T, cfg engine.Config) *engine.Query {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	if cfg.Workers == 0 {
		cfg.Workers = 2
	}
	q, err := engine.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Stop() })
	return q
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestStopGracefullyCommitsTheRunningBatch: a graceful stop while a slow
// sink holds batch 1 lets the batch finish and commit, starts nothing
// more, and a restart re-runs nothing.
func TestStopGracefullyCommitsTheRunningBatch(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 20}})
	src.AppendN(0, 50)
	src.AppendN(1, 50)
	snk := newSink("main", nil)
	dir := t.TempDir()
	entered, release := slowFirstWrite(snk, 1)
	rec := &recorder{}
	q := startQuery(t, engine.Config{Source: src, Sink: snk, CheckpointDir: dir, Clock: triggertest.New(t0),
		LatestSampleEvery: -1, Observers: []engine.Observer{rec}})
	waitClosed(t, entered, "batch 1 to reach the sink")

	stopped := make(chan error, 1)
	go func() { stopped <- q.StopGracefully(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("StopGracefully returned %v while batch 1 was still running", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("StopGracefully: %v", err)
	}
	if !exists(dir, "commits", 1) || exists(dir, "offsets", 2) {
		t.Fatalf("want commits/1 and no offsets/2 after a graceful stop during batch 1")
	}
	if got := fmt.Sprint(snk.Batches()); got != "[0 1]" || snk.NumRows() != 40 {
		t.Fatalf("sink holds batches %s with %d rows, want [0 1] with 40", got, snk.NumRows())
	}

	// Restart: nothing re-runs; the next batch starts where batch 1 ended.
	rec2 := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, CheckpointDir: dir, Clock: triggertest.New(t0.Add(time.Hour)),
		Trigger: availableNow, Observers: []engine.Observer{rec2}}); err != nil {
		t.Fatal(err)
	}
	bs := rec2.batches()
	if len(bs) == 0 || bs[0].BatchID != 2 || bs[0].Replayed {
		t.Fatalf("restart's first batch: %+v, want batch 2, not a replay", bs)
	}
	if r := snk.Recommits(); len(r) != 0 {
		t.Fatalf("sink recommits %v after a graceful stop, want none", r)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 100 {
		t.Fatalf("sink: %d rows, duplicates %v", snk.NumRows(), d)
	}
}

// TestStopGracefullyTimeoutAbandons: when the deadline passes first the
// batch is abandoned (ErrBatchAbandoned) and re-runs with its logged
// offsets on the next start.
func TestStopGracefullyTimeoutAbandons(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1, Defaults: source.ReadLimit{MaxRows: 10}})
	src.AppendN(0, 25)
	snk := newSink("main", nil)
	dir := t.TempDir()
	entered, _ := slowFirstWrite(snk, 1)
	q := startQuery(t, engine.Config{Source: src, Sink: snk, CheckpointDir: dir, Clock: triggertest.New(t0), LatestSampleEvery: -1})
	waitClosed(t, entered, "batch 1 to reach the sink")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := q.StopGracefully(ctx)
	if !errors.Is(err, engine.ErrBatchAbandoned) {
		t.Fatalf("StopGracefully = %v, want ErrBatchAbandoned", err)
	}
	if !exists(dir, "offsets", 1) || exists(dir, "commits", 1) {
		t.Fatal("want offsets/1 logged and commits/1 missing after the abandoned batch")
	}
	snk.SetHook(nil)
	rec := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, CheckpointDir: dir, Clock: triggertest.New(t0),
		Trigger: availableNow, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if bs := rec.batches(); len(bs) == 0 || bs[0].BatchID != 1 || !bs[0].Replayed {
		t.Fatalf("restart's first batch %+v, want the replay of batch 1", bs)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 25 {
		t.Fatalf("sink: %d rows, duplicates %v", snk.NumRows(), d)
	}
}

// TestStopGracefullyWhilePlanningAdmitsNothing: a stop requested while the
// planner asks the source what is available drops that batch before it is
// logged.
func TestStopGracefullyWhilePlanningAdmitsNothing(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1})
	snk := newSink("main", nil)
	dir := t.TempDir()
	var q *engine.Query
	var mu sync.Mutex
	stopped := make(chan error, 1)
	src.SetHook(func(ctx context.Context, at sourcetest.Point) error {
		if at.Op != sourcetest.OpAvailable {
			return nil
		}
		mu.Lock()
		qq := q
		mu.Unlock()
		if qq == nil {
			return nil
		}
		src.SetHook(nil)
		src.AppendN(0, 10) // data is there, but the stop comes first
		go func() { stopped <- qq.StopGracefully(context.Background()) }()
		<-ctx.Done() // planning waits until admission stops
		return ctx.Err()
	})
	clk := triggertest.New(t0)
	mu.Lock()
	q = startQuery(t, engine.Config{Source: src, Sink: snk, CheckpointDir: dir, Clock: clk, LatestSampleEvery: -1,
		Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: time.Second}})
	mu.Unlock()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("StopGracefully: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("query did not stop")
	}
	if exists(dir, "offsets", 0) || len(snk.Batches()) != 0 {
		t.Fatal("a batch was logged or written after the stop request")
	}
	if q.Exception() != nil {
		t.Fatalf("query failed: %v", q.Exception())
	}
}

// TestStopGracefullyKeepsARealFailure: a batch that fails on its own
// during a graceful stop still fails the query.
func TestStopGracefullyKeepsARealFailure(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1})
	src.AppendN(0, 10)
	snk := newSink("main", nil)
	entered, release := make(chan struct{}), make(chan struct{})
	boom := errors.New("sink exploded")
	snk.SetHook(func(ctx context.Context, at sinktest.Point) error {
		if at.Op == sinktest.OpCommit {
			close(entered)
			<-release
			return boom
		}
		return nil
	})
	q := startQuery(t, engine.Config{Source: src, Sink: snk, CheckpointDir: t.TempDir(), Clock: triggertest.New(t0), LatestSampleEvery: -1})
	waitClosed(t, entered, "the sink commit")
	stopped := make(chan error, 1)
	go func() { stopped <- q.StopGracefully(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-stopped; !errors.Is(err, boom) {
		t.Fatalf("StopGracefully = %v, want the sink's failure", err)
	}
}
