package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/sinktest"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/sourcetest"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// lastSink is a fake sink that skips a batch id it has committed (as the
// Kafka sink's commit markers make it) and reports its last committed
// batch, as the Kafka sink does.
type lastSink struct{ *sinktest.Sink }

func (s lastSink) LastCommittedBatch(context.Context) (int64, error) {
	ids := s.Batches()
	if len(ids) == 0 {
		return -1, nil
	}
	return ids[len(ids)-1], nil
}

// hundredRowsIntoLastSink is the crash tests' fixture: 50 rows on each of
// two partitions, read 10 a partition per batch, into a sink that skips
// batch ids it has committed (inner holds the rows).
func hundredRowsIntoLastSink() (*sourcetest.Source, *sinktest.Sink, lastSink) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 10}})
	src.AppendN(0, 50)
	src.AppendN(1, 50)
	inner := newSink("main", nil)
	return src, inner, lastSink{inner}
}

// failAt is a batch hook that returns err for batch id and nil otherwise.
func failAt(id int64, err error) func(int64) error {
	return func(b int64) error {
		if b == id {
			return err
		}
		return nil
	}
}

// runUntilRows runs a default-trigger query until the sink holds want
// distinct rows, then stops it; or until it ends on its own (an error).
func runUntilRows(t *testing.T, cfg engine.Config, snk *sinktest.Sink, want int) error {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	cfg.Workers = 2
	q, err := engine.Start(context.Background(), cfg)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-q.Done():
			return q.Exception()
		default:
		}
		if distinctRows(snk) >= want {
			return q.Stop()
		}
		if time.Now().After(deadline) {
			q.Stop()
			t.Fatalf("the sink holds %d distinct rows after 30 s, want %d", distinctRows(snk), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func distinctRows(s *sinktest.Sink) int {
	seen := map[string]bool{}
	for _, id := range s.Batches() {
		for _, r := range s.Rows(id) {
			seen[byOffset(r)] = true
		}
	}
	return len(seen)
}

// TestAsyncProgressDoesNotWaitForTheLogs: with asynchronous progress
// tracking a batch waits for no log write: while offsets/0 (the first
// batch of a run is always logged) hangs, the following batches — not
// logged, the interval not having passed — run and are reported; commits/0
// is written only after offsets/0.
func TestAsyncProgressDoesNotWaitForTheLogs(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1, Defaults: source.ReadLimit{MaxRows: 10}})
	src.AppendN(0, 50)
	dir := t.TempDir()
	snk := newSink("main", nil)
	reported := make(chan struct{})
	rec := &recorder{after: func(_ *engine.Query, info *engine.BatchInfo) {
		if info.BatchID == 4 {
			close(reported)
		}
	}}
	var held atomic.Bool
	var order []string
	err := runUntilRows(t, engine.Config{Source: src, Sink: snk, CheckpointDir: dir, Observers: []engine.Observer{rec},
		AsyncProgress: &engine.AsyncProgress{Interval: time.Hour},
		BeforeOffsetsLog: func(id int64) error {
			if id == 0 {
				select { // batches 1..4 run while offsets/0 is being written
				case <-reported:
				case <-time.After(10 * time.Second):
					held.Store(true)
				}
			}
			order = append(order, fmt.Sprintf("offsets/%d", id))
			return nil
		},
		BeforeCommitLog: func(id int64) error {
			order = append(order, fmt.Sprintf("commits/%d", id))
			return nil
		}}, snk, 50)
	if err != nil {
		t.Fatal(err)
	}
	if held.Load() {
		t.Fatal("the batches waited for offsets/0")
	}
	if want := []string{"offsets/0", "commits/0"}; !slices.Equal(order, want) {
		t.Fatalf("log writes %v, want %v", order, want)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 50 {
		t.Fatalf("sink: %d rows, duplicates %v", snk.NumRows(), d)
	}
}

// TestAsyncProgressLogsOnlyEveryInterval: only the first batch of a run
// and batches planned at least the interval after the last logged one
// are logged; a clean stop logs the last batch, so a restart reads
// nothing again; the next run's first batch is logged and starts where
// the last logged batch ended.
func TestAsyncProgressLogsOnlyEveryInterval(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1, Defaults: source.ReadLimit{MaxRows: 10}})
	src.AppendN(0, 50)
	dir := t.TempDir()
	snk := newSink("main", nil)
	cfg := engine.Config{Source: src, Sink: snk, CheckpointDir: dir, AsyncProgress: &engine.AsyncProgress{Interval: time.Hour}}
	if err := runUntilRows(t, cfg, snk, 50); err != nil {
		t.Fatal(err)
	}
	last := slices.Max(snk.Batches())
	for id := int64(0); id <= last; id++ {
		if want := id == 0 || id == last; exists(dir, "offsets", id) != want || exists(dir, "commits", id) != want {
			t.Fatalf("batch %d of %d: offsets %v commits %v, want %v (the first batch and, at the stop, the last)",
				id, last, exists(dir, "offsets", id), exists(dir, "commits", id), want)
		}
	}
	src.AppendN(0, 5)
	if err := runUntilRows(t, cfg, snk, 55); err != nil {
		t.Fatal(err)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 55 || !exists(dir, "offsets", last+1) {
		t.Fatalf("restart after a clean stop: %d rows, duplicates %v, offsets/%d logged %v", snk.NumRows(), d, last+1, exists(dir, "offsets", last+1))
	}
}

// TestAsyncProgressCrashIsAtLeastOnce crashes a query with asynchronous
// progress tracking at each of its log steps — while offsets/N is
// written, after batch N's sink commit before commits/N is queued, while
// commits/N is written — and restarts it with a larger batch limit: every
// row reaches the sink at least once. The sink skips batch ids it has
// committed (as the Kafka sink does); the restarted query numbers its new
// batches after the sink's last, else the larger re-planned batches would
// be skipped and rows lost.
func TestAsyncProgressCrashIsAtLeastOnce(t *testing.T) {
	crash := errors.New("crash")
	for _, step := range []string{"offsets", "before-commit", "commits"} {
		t.Run(step, func(t *testing.T) {
			src, inner, snk := hundredRowsIntoLastSink()
			dir := t.TempDir()
			cfg := engine.Config{Source: src, Sink: snk, CheckpointDir: dir, AsyncProgress: &engine.AsyncProgress{Interval: 0}}
			switch step {
			case "offsets":
				cfg.BeforeOffsetsLog = failAt(4, crash)
			case "before-commit":
				cfg.BeforeCommit = failAt(4, crash)
			case "commits":
				cfg.BeforeCommitLog = failAt(4, crash)
			}
			err := runUntilRows(t, cfg, inner, 100)
			if !errors.Is(err, crash) {
				t.Fatalf("first run ended with %v, want the crash", err)
			}
			if exists(dir, "commits", 4) {
				t.Fatal("commits/4 written despite the crash")
			}
			before := inner.NumRows()
			cfg = engine.Config{Source: src, Sink: snk, CheckpointDir: dir, AsyncProgress: &engine.AsyncProgress{Interval: 0},
				Limits: admission.Limits{MaxOffsetsPerTrigger: 1000}}
			if err := runUntilRows(t, cfg, inner, 100); err != nil {
				t.Fatal(err)
			}
			if got := distinctRows(inner); got != 100 {
				t.Fatalf("after the restart the sink holds %d distinct rows of 100 (%d before it): rows lost", got, before)
			}
		})
	}
}

// TestAsyncProgressRefusals: Spark's limits of asynchronous progress
// tracking, with Spark's messages: no Once or AvailableNow trigger, no
// stateful query.
func TestAsyncProgressRefusals(t *testing.T) {
	for _, tc := range []struct {
		trig trigger.Trigger
		want string
	}{
		{trigger.Trigger{Kind: trigger.Once}, "Async progress tracking cannot be used with Once trigger"},
		{availableNow, "Async progress tracking cannot be used with AvailableNow trigger"},
	} {
		src := sourcetest.New(sourcetest.Options{})
		_, err := engine.Start(context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), Trigger: tc.trig,
			CheckpointDir: t.TempDir(), AsyncProgress: &engine.AsyncProgress{Interval: time.Second}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("trigger %v: %v, want %q", tc.trig.Kind, err, tc.want)
		}
	}
}

// TestAsyncProgressTurnedOffAfterACrash: a crash under asynchronous
// progress tracking with a long interval leaves the logs at batch 0 with no
// gap (offsets/0 and commits/0) while the sink committed batches 0–5 (the
// crash comes after batch 5's sink commit). A restart with the option
// turned off still numbers its batches past the
// sink's last: without it, its batch 1 (every row after batch 0) would be
// skipped by the sink as already committed, and those rows lost.
func TestAsyncProgressTurnedOffAfterACrash(t *testing.T) {
	crash := errors.New("crash")
	src, inner, snk := hundredRowsIntoLastSink()
	dir := t.TempDir()
	cfg := engine.Config{Source: src, Sink: snk, CheckpointDir: dir, AsyncProgress: &engine.AsyncProgress{Interval: time.Hour},
		BeforeCommit: failAt(5, crash)}
	if err := runUntilRows(t, cfg, inner, 100); !errors.Is(err, crash) {
		t.Fatalf("first run ended with %v, want the crash", err)
	}
	if !exists(dir, "commits", 0) || exists(dir, "offsets", 1) {
		t.Fatal("want the logs to end at batch 0 (offsets/0 and commits/0 only)")
	}
	if got := inner.Batches(); len(got) == 0 || got[len(got)-1] != 5 {
		t.Fatalf("sink batches %v, want 0–5", got)
	}
	before := distinctRows(inner)
	cfg = engine.Config{Source: src, Sink: snk, CheckpointDir: dir, Limits: admission.Limits{MaxOffsetsPerTrigger: 1000}}
	if err := runUntilRows(t, cfg, inner, 100); err != nil {
		t.Fatal(err)
	}
	if got := distinctRows(inner); got != 100 {
		t.Fatalf("after the restart with the option off the sink holds %d distinct rows of 100 (%d before it): rows lost", got, before)
	}
}
