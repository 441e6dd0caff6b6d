package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sink/sinktest"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/sourcetest"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/internal/trigger/triggertest"
)

var availableNow = trigger.Trigger{Kind: trigger.AvailableNow}

// TestReplayReRunsTheLoggedBatch: a batch logged in offsets/N whose
// commits/N is missing (a crash after the sink committed) is re-run after
// a restart with exactly its logged ranges and batch timestamp, whatever
// the limits and the clock say at restart; the sink sees the batch id
// again and keeps its rows once.
func TestReplayReRunsTheLoggedBatch(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 30}})
	src.AppendN(0, 100)
	src.AppendN(1, 100)
	snk := newSink("main", nil)
	dir := t.TempDir()
	tr := &deadLetterBad{schema: src.Schema()}
	crash := errors.New("crash before commits/1")
	err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Transform: tr, Trigger: availableNow, CheckpointDir: dir,
		Clock: triggertest.New(t0), BeforeCommit: func(id int64) error {
			if id == 1 {
				return crash
			}
			return nil
		}})
	if !errors.Is(err, crash) {
		t.Fatalf("first run ended with %v, want the crash", err)
	}
	if !exists(dir, "offsets", 1) || exists(dir, "commits", 1) {
		t.Fatal("want offsets/1 logged and commits/1 missing after the crash")
	}
	loggedMeta, loggedEnd := readOffsets(t, dir, 1)
	first := src.Opened()
	if len(first) != 2 || ranges(first[1]) != "t-0[15,30) t-1[15,30)" {
		t.Fatalf("first run opened %v", first)
	}

	// Restart an hour later with a much higher limit.
	rec := &recorder{}
	clk := triggertest.New(t0.Add(time.Hour))
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Transform: tr, Trigger: availableNow, CheckpointDir: dir,
		Clock: clk, Limits: admission.Limits{MaxOffsetsPerTrigger: 1000}, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	bs := rec.batches()
	if len(bs) != 2 {
		t.Fatalf("restart ran %d batches, want the replay of 1 and one more", len(bs))
	}
	replay := bs[0]
	if replay.BatchID != 1 || !replay.Replayed || replay.End.JSON() != loggedEnd || replay.Admission.Reason != "replay of the logged batch" || replay.Admission.Limit != 30 {
		t.Fatalf("replayed batch: id %d replayed %v end %s (logged %s) admission %+v", replay.BatchID, replay.Replayed, replay.End.JSON(), loggedEnd, replay.Admission)
	}
	if !replay.BatchTimestamp.Equal(time.UnixMilli(loggedMeta.TimestampMs)) || !replay.BatchTimestamp.Equal(t0) {
		t.Fatalf("replay batch timestamp %v, logged %d, want the first run's %v", replay.BatchTimestamp, loggedMeta.TimestampMs, t0)
	}
	opened := src.Opened()
	if ranges(opened[2]) != ranges(first[1]) {
		t.Fatalf("replay opened %s, the crashed run %s", ranges(opened[2]), ranges(first[1]))
	}
	times := tr.batchTimes()
	if !times[len(times)-1].Equal(clk.Now()) || !slices.ContainsFunc(times, func(tm time.Time) bool { return tm.Equal(t0) }) {
		t.Fatalf("transform batch times %v", times)
	}
	// After the replay the new limit applies: everything left in one batch.
	if bs[1].BatchID != 2 || bs[1].NumInputRows != 140 || bs[1].Admission.Limit != 1000 {
		t.Fatalf("batch after the replay: id %d rows %d admission %+v", bs[1].BatchID, bs[1].NumInputRows, bs[1].Admission)
	}
	if got := snk.Recommits(); fmt.Sprint(got) != "[1]" {
		t.Fatalf("sink recommits %v, want [1] (the replay)", got)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 200 || fmt.Sprint(snk.Batches()) != "[0 1 2]" {
		t.Fatalf("sink: %d rows, batches %v, duplicates %v", snk.NumRows(), snk.Batches(), d)
	}
}

// TestOnceReplaysOnlyTheUncommittedBatch: as Spark, a Trigger.Once restart
// re-runs the logged batch and stops, even with more data waiting.
func TestOnceReplaysOnlyTheUncommittedBatch(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{})
	src.AppendN(0, 10)
	snk := newSink("main", nil)
	dir := t.TempDir()
	snk.SetHook(func(_ context.Context, at sinktest.Point) error {
		if at.Op == sinktest.OpCommit {
			return errors.New("sink down")
		}
		return nil
	})
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: trigger.Trigger{Kind: trigger.Once}, CheckpointDir: dir}); err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("first run: %v", err)
	}
	snk.SetHook(nil)
	src.AppendN(0, 5)
	rec := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: trigger.Trigger{Kind: trigger.Once}, CheckpointDir: dir, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if bs := rec.batches(); len(bs) != 1 || bs[0].BatchID != 0 || !bs[0].Replayed || bs[0].NumInputRows != 10 {
		t.Fatalf("once after a crash ran %d batches (%v), want only the replay of batch 0 with its 10 rows", len(bs), rec.rows())
	}
}

// TestRetentionBeforeReplay: records of a logged batch deleted by
// retention before the batch is re-run fail the query under
// failOnDataLoss, or are skipped and counted without it.
func TestRetentionBeforeReplay(t *testing.T) {
	for _, failOnDataLoss := range []bool{true, false} {
		t.Run(fmt.Sprintf("failOnDataLoss=%v", failOnDataLoss), func(t *testing.T) {
			src := sourcetest.New(sourcetest.Options{FailOnDataLoss: failOnDataLoss})
			src.AppendN(0, 50)
			snk := newSink("main", nil)
			dir := t.TempDir()
			snk.SetHook(func(_ context.Context, at sinktest.Point) error {
				if at.Op == sinktest.OpCommit {
					return errors.New("sink down")
				}
				return nil
			})
			if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir}); err == nil {
				t.Fatal("first run should fail at the sink commit")
			}
			snk.SetHook(nil)
			src.DeleteBefore(0, 20) // retention while the query is down
			rec := &recorder{}
			err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir, Observers: []engine.Observer{rec}})
			if failOnDataLoss {
				var dl *sourcetest.DataLossError
				if !errors.As(err, &dl) || dl.Expected != 0 || dl.Earliest != 20 || !strings.Contains(err.Error(), "batch 0") {
					t.Fatalf("replay over deleted records: %v, want a data-loss error naming batch 0, offsets 0 and 20", err)
				}
				if exists(dir, "commits", 0) || len(snk.Batches()) != 0 {
					t.Fatal("nothing may be committed after data loss under failOnDataLoss")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			bs := rec.batches()
			if len(bs) != 1 || !bs[0].Replayed || bs[0].NumInputRows != 30 || src.Skipped() != 20 {
				t.Fatalf("replay without failOnDataLoss: rows %v, skipped %d; want 30 read and 20 skipped", rec.rows(), src.Skipped())
			}
			if !exists(dir, "commits", 0) || snk.NumRows() != 30 {
				t.Fatalf("batch 0 committed: %v, sink rows %d", exists(dir, "commits", 0), snk.NumRows())
			}
		})
	}
}

// TestMaxMinOffsetsAndTriggerDelayOnTheEngineClock drives Spark's
// minOffsetsPerTrigger / maxTriggerDelay with a fake clock: a batch below
// the minimum waits until maxTriggerDelay has passed on the engine's
// clock, released batches are capped by maxOffsetsPerTrigger.
func TestMaxMinOffsetsAndTriggerDelayOnTheEngineClock(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2,
		Defaults: source.ReadLimit{MinRows: 100, MaxRows: 150, MaxTriggerDelay: 400 * time.Millisecond}})
	src.AppendN(0, 10)
	src.AppendN(1, 10)
	rec := &recorder{}
	clk := triggertest.New(t0)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The script runs between triggers, in the query goroutine.
	phase := 0
	var failed string
	clk.OnSleep(func(time.Duration) {
		n := len(rec.batches())
		switch {
		case phase == 0 && n == 1:
			src.AppendN(0, 25) // 50 available < 100
			src.AppendN(1, 25)
			phase = 1
		case phase == 1:
			if n != 1 { // a trigger ran with 50 available: it must have been delayed
				failed = fmt.Sprintf("a batch ran below minOffsetsPerTrigger: %v", rec.rows())
			}
			src.AppendN(0, 30) // 110 available
			src.AppendN(1, 30)
			phase = 2
		case phase == 2 && n == 2:
			src.AppendN(0, 100) // 200 available
			src.AppendN(1, 100)
			phase = 3
		case phase == 3 && n == 4:
			cancel()
		}
	})
	if err := run(t, ctx, engine.Config{Source: src, Sink: newSink("main", nil), Clock: clk, CheckpointDir: t.TempDir(), Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if failed != "" {
		t.Fatal(failed)
	}
	if got := fmt.Sprint(rec.rows()); got != "[20 110 150 50]" {
		t.Fatalf("batches %s, want [20 110 150 50]: the first check never delays, 50 waits, 110 runs, 200 is capped at 150, the last 50 wait for maxTriggerDelay", got)
	}
	bs := rec.batches()
	wait := bs[3].TriggerStart.Sub(bs[2].TriggerStart)
	if wait < 400*time.Millisecond || wait >= 400*time.Millisecond+trigger.IdleMaxPoll {
		t.Fatalf("the tail ran %s after the last release, want the first trigger ≥ maxTriggerDelay (400ms) later", wait)
	}
	if bs[3].Admission.Reason != "maxOffsetsPerTrigger" || bs[3].Admission.Limit != 150 {
		t.Fatalf("tail batch admission %+v", bs[3].Admission)
	}
}

// TestTriggerOnceIgnoresReadLimits: Trigger.Once takes everything in one
// batch and says so.
func TestTriggerOnceIgnoresReadLimits(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 30}})
	src.AppendN(0, 100)
	src.AppendN(1, 100)
	var logs bytes.Buffer
	rec := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), Trigger: trigger.Trigger{Kind: trigger.Once},
		CheckpointDir: t.TempDir(), Observers: []engine.Observer{rec}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	bs := rec.batches()
	if len(bs) != 1 || bs[0].NumInputRows != 200 || bs[0].Admission.Reason != "all available (Trigger.Once ignores read limits)" {
		t.Fatalf("once: rows %v, admission %+v", rec.rows(), bs[0].Admission)
	}
	if !strings.Contains(logs.String(), "The read limit is ignored when Trigger.Once is used.") {
		t.Fatalf("missing Spark's warning; log: %s", logs.String())
	}
}

// TestAvailableNowDrainsTheSnapshotOnly: availableNow reads what existed
// at start, within the read limits, then stops; records arriving later are
// left for the next run.
func TestAvailableNowDrainsTheSnapshotOnly(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 30}})
	src.AppendN(0, 100)
	src.AppendN(1, 100)
	rec := &recorder{after: func(_ *engine.Query, info *engine.BatchInfo) {
		if info.BatchID == 0 {
			src.AppendN(0, 50) // arrives during the run
		}
	}}
	dir := t.TempDir()
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), Trigger: availableNow, CheckpointDir: dir, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rec.rows()); got != "[30 30 30 30 30 30 20]" {
		t.Fatalf("availableNow batches %s, want the 200-record snapshot in batches of 30", got)
	}
	rec2 := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), Trigger: availableNow, CheckpointDir: dir, Observers: []engine.Observer{rec2}}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rec2.rows()); got != "[30 20]" {
		t.Fatalf("next availableNow run: %s, want the 50 late records", got)
	}
}

// TestProcessingTimeBatchesOnIntervalBoundaries runs a processingTime
// trigger on a fake clock: batches start on multiples of the interval
// (the first at query start), triggers without new data run no batch.
func TestProcessingTimeBatchesOnIntervalBoundaries(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{})
	src.AppendN(0, 5)
	clk := triggertest.New(t0)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sleeps := 0
	clk.OnSleep(func(time.Duration) {
		sleeps++
		switch {
		case len(rec.batches()) >= 3:
			cancel()
		case sleeps%2 == 0: // data for every other trigger
			src.AppendN(0, 5)
		}
	})
	if err := run(t, ctx, engine.Config{Source: src, Sink: newSink("main", nil), Clock: clk, CheckpointDir: t.TempDir(), Observers: []engine.Observer{rec},
		Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: time.Second}}); err != nil {
		t.Fatal(err)
	}
	var starts []string
	for _, b := range rec.batches() {
		starts = append(starts, b.TriggerStart.Sub(t0).String())
		if b.TriggerInterval != time.Second {
			t.Errorf("batch %d trigger interval %s", b.BatchID, b.TriggerInterval)
		}
	}
	// t0 is x.300 s: boundaries are 0.7 s, 1.7 s, ... after it. Data comes
	// for every other trigger, so batches run on every other boundary.
	if got := strings.Join(starts, " "); got != "0s 1.7s 3.7s" {
		t.Fatalf("batch starts after t0: %s, want 0s 1.7s 3.7s", got)
	}
	for i, d := range clk.Sleeps() {
		if i > 0 && d != time.Second {
			t.Fatalf("sleep %d was %s, want the full interval after an instant batch", i, d)
		}
	}
}

// TestSetLimitsAppliesFromTheNextBatch: a change is used from the next
// batch planned after it, recorded in its offsets/N, and shown in its
// admission; an invalid change leaves the limits alone. Made when batch 1
// is reported, it applies from batch 3: batch 2 was planned and logged
// while batch 1's commit log was written (the pipelined commit).
func TestSetLimitsAppliesFromTheNextBatch(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 100}})
	src.AppendN(0, 500)
	src.AppendN(1, 500)
	var setErr, badErr error
	rec := &recorder{after: func(q *engine.Query, info *engine.BatchInfo) {
		if info.BatchID == 1 {
			max := int64(250)
			_, setErr = q.SetLimits(admission.LimitsUpdate{MaxOffsetsPerTrigger: &max})
			neg := int64(-1)
			_, badErr = q.SetLimits(admission.LimitsUpdate{MaxOffsetsPerTrigger: &neg})
		}
	}}
	dir := t.TempDir()
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), Trigger: availableNow, CheckpointDir: dir, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if setErr != nil || badErr == nil || !strings.Contains(badErr.Error(), "maxOffsetsPerTrigger: -1 is negative") {
		t.Fatalf("SetLimits: %v; invalid change: %v", setErr, badErr)
	}
	if got := fmt.Sprint(rec.rows()); got != "[100 100 100 250 250 200]" {
		t.Fatalf("batches %s, want 100 100 100 then 250 from batch 3", got)
	}
	for id, want := range map[int64]string{2: "100", 3: "250"} {
		meta, _ := readOffsets(t, dir, id)
		if meta.Conf["sluice.maxOffsetsPerTrigger"] != want || meta.Conf["sluice.admission.limit"] != want || meta.Conf["sluice.admission.mode"] != "static" {
			t.Fatalf("offsets/%d conf %v, want limit %s recorded", id, meta.Conf, want)
		}
	}
	if a := rec.batches()[3].Admission; a.Limits.MaxOffsetsPerTrigger != 250 || a.Reason != "maxOffsetsPerTrigger" {
		t.Fatalf("batch 3 admission %+v", a)
	}
}

// TestPerPartitionDefaultFromTheSource: a source-reported default per
// partition (Event Hubs' maxEventsPerTrigger) is multiplied by the
// partitions the planner sees.
func TestPerPartitionDefaultFromTheSource(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 3, Defaults: source.ReadLimit{MaxRowsPerPartition: 10}})
	for p := int32(0); p < 3; p++ {
		src.AppendN(p, 25)
	}
	rec := &recorder{}
	dir := t.TempDir()
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), Trigger: availableNow, CheckpointDir: dir, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rec.rows()); got != "[30 30 15]" {
		t.Fatalf("batches %s, want 3 partitions × 10", got)
	}
	if a := rec.batches()[0].Admission; a.Limit != 30 || a.Reason != "default limit: 10 per partition × 3 partitions" {
		t.Fatalf("admission %+v", a)
	}
	if meta, _ := readOffsets(t, dir, 0); meta.Conf["sluice.admission.limit"] != "30" {
		t.Fatalf("offsets/0 conf %v", meta.Conf)
	}
}

// TestDeadLetterCommitPrecedesTheSinkCommit: rows the transform rejects
// are committed to the dead-letter sink, with their coordinates, before
// the main sink commits the batch; a failing dead-letter commit leaves
// the batch uncommitted everywhere.
func TestDeadLetterCommitPrecedesTheSinkCommit(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 4}})
	src.Append(0, "a", "bad", "c")
	src.Append(1, "bad", "e", "f")
	ev := &sinktest.Events{}
	main, dl := newSink("main", ev), sinktest.New("dl", ev)
	tr := &deadLetterBad{schema: src.Schema()}
	dir := t.TempDir()
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: main, DeadLetter: dl, Transform: tr, Trigger: availableNow, CheckpointDir: dir}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ev.List(), ", "); got != "dl commit 0, main commit 0, dl commit 1, main commit 1" {
		t.Fatalf("commit order: %s", got)
	}
	var dead []string
	for _, id := range dl.Batches() {
		for _, r := range dl.Rows(id) {
			// reason, batchId, topic, partition, offset, key, value, input
			dead = append(dead, fmt.Sprintf("%v b%v %v-%v@%v %s", r[0], r[1], r[2], r[3], r[4], r[6]))
		}
	}
	slices.Sort(dead)
	if got := strings.Join(dead, "; "); got != "value is bad b0 t-0@1 bad; value is bad b0 t-1@0 bad" {
		t.Fatalf("dead letters: %s", got)
	}
	if main.NumRows() != 4 {
		t.Fatalf("main sink rows %d, want 4", main.NumRows())
	}

	// A dead-letter sink that cannot commit: nothing is committed.
	src2 := sourcetest.New(sourcetest.Options{})
	src2.Append(0, "bad", "ok")
	main2, dl2 := newSink("main", nil), sinktest.New("dl", nil)
	dl2.SetHook(func(_ context.Context, at sinktest.Point) error {
		if at.Op == sinktest.OpCommit {
			return errors.New("dead-letter topic unavailable")
		}
		return nil
	})
	dir2 := t.TempDir()
	err := run(t, context.Background(), engine.Config{Source: src2, Sink: main2, DeadLetter: dl2, Transform: &deadLetterBad{schema: src2.Schema()}, Trigger: availableNow, CheckpointDir: dir2})
	if err == nil || !strings.Contains(err.Error(), "commit dead-letter sink") {
		t.Fatalf("run with a failing dead-letter sink: %v", err)
	}
	if len(main2.CommitOrder()) != 0 || exists(dir2, "commits", 0) {
		t.Fatalf("main sink commits %v, commits/0 %v: nothing may be committed", main2.CommitOrder(), exists(dir2, "commits", 0))
	}
}

// TestTaskFailureAbortsWriters: one failing task cancels the others; every
// writer of the batch is aborted or discarded, nothing is committed, and
// a restart re-runs the batch with the same ranges, exactly once.
func TestTaskFailureAbortsWriters(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 3})
	src.AppendN(0, 300) // the largest task: scheduled first
	src.AppendN(1, 100)
	src.AppendN(2, 50)
	boom := errors.New("broker connection reset")
	src.SetHook(func(ctx context.Context, at sourcetest.Point) error {
		switch {
		case at.Op == sourcetest.OpRead && at.Partition.Partition == 0:
			<-ctx.Done() // a slow task, still reading when another fails
			return ctx.Err()
		case at.Op == sourcetest.OpChunk && at.Partition.Partition == 1 && at.Offset == 50:
			return boom // after writing 50 rows
		}
		return nil
	})
	snk := newSink("main", nil)
	dir := t.TempDir()
	err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir, Workers: 3})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "batch 0 task t-1[0,100)") {
		t.Fatalf("run ended with %v, want the failing task's error", err)
	}
	ws := snk.Writers()
	if ws[sinktest.WriterKey{Batch: 0, Task: 0}] != sinktest.Aborted || ws[sinktest.WriterKey{Batch: 0, Task: 1}] != sinktest.Aborted {
		t.Fatalf("writers %v: the failing and the cancelled task must abort", ws)
	}
	for k, st := range ws {
		if st == sinktest.Open {
			t.Fatalf("writer %+v left open", k)
		}
	}
	if len(snk.CommitOrder()) != 0 || exists(dir, "commits", 0) || !exists(dir, "offsets", 0) {
		t.Fatalf("after a task failure: sink commits %v, offsets/0 %v, commits/0 %v", snk.CommitOrder(), exists(dir, "offsets", 0), exists(dir, "commits", 0))
	}
	src.SetHook(nil)
	rec := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir, Workers: 3, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	opened := src.Opened()
	if ranges(opened[1]) != ranges(opened[0]) || !rec.batches()[0].Replayed {
		t.Fatalf("restart opened %s, the failed batch %s", ranges(opened[1]), ranges(opened[0]))
	}
	if snk.NumRows() != 450 || len(snk.Duplicates()) != 0 || fmt.Sprint(snk.CommitOrder()) != "[0]" {
		t.Fatalf("sink after restart: %s, %d rows", snk, snk.NumRows())
	}
	if c := src.Commits(); len(c) != 1 || partition.Total(partition.Offsets{}, c[0]) != 450 {
		t.Fatalf("source commits %v", c)
	}
}

// TestStartRefusesASourceWithoutOffsetsReporting: a source that is
// neither Partitioned nor Limited cannot be planned.
func TestStartRefusesASourceWithoutOffsetsReporting(t *testing.T) {
	var s source.Source = struct{ source.Source }{sourcetest.New(sourcetest.Options{})}
	_, err := engine.Start(context.Background(), engine.Config{Source: s, Sink: newSink("main", nil), CheckpointDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "neither source.Partitioned nor source.Limited") {
		t.Fatalf("Start: %v", err)
	}
}

// TestPipelinedCommitCrash: with the default trigger or availableNow,
// commits/N is written while batch N+1 is planned and offsets/N+1
// logged. A crash at that point — offsets/N+1 durable, commits/N never
// written — must neither lose nor repeat rows: batch N reached the sink,
// so the restart re-runs batch N+1 with exactly its logged range (Spark's
// rule for a commit log trailing by more than one batch), and batch N is
// not committed to the sink again.
func TestPipelinedCommitCrash(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 30}})
	src.AppendN(0, 100)
	src.AppendN(1, 100)
	snk := newSink("main", nil)
	dir := t.TempDir()
	crash := errors.New("crash while commits/1 was in flight")
	err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir,
		BeforeCommitLog: func(id int64) error {
			if id != 1 {
				return nil
			}
			// The crash comes once the next batch is logged.
			deadline := time.Now().Add(10 * time.Second)
			for !exists(dir, "offsets", 2) {
				if time.Now().After(deadline) {
					return errors.New("offsets/2 was not written while commits/1 was in flight")
				}
				time.Sleep(time.Millisecond)
			}
			return crash
		}})
	if !errors.Is(err, crash) {
		t.Fatalf("first run ended with %v, want the crash", err)
	}
	if !exists(dir, "commits", 0) || exists(dir, "commits", 1) || !exists(dir, "offsets", 2) || exists(dir, "offsets", 3) {
		t.Fatal("want commits/0, offsets/2, and no commits/1 or offsets/3 after the crash")
	}
	if fmt.Sprint(snk.Batches()) != "[0 1]" || snk.NumRows() != 60 {
		t.Fatalf("sink after the crash: batches %v, %d rows; want [0 1], 60 rows", snk.Batches(), snk.NumRows())
	}
	_, logged := readOffsets(t, dir, 2)
	first := src.Opened()
	if len(first) != 2 {
		t.Fatalf("first run opened %d ranges, want batches 0 and 1 only (batch 2 never ran)", len(first))
	}

	var logs bytes.Buffer
	rec := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir,
		Limits: admission.Limits{MaxOffsetsPerTrigger: 1000}, Observers: []engine.Observer{rec},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
		t.Fatal(err)
	}
	bs := rec.batches()
	if len(bs) != 2 || bs[0].BatchID != 2 || !bs[0].Replayed || bs[0].End.JSON() != logged || bs[0].NumInputRows != 30 {
		t.Fatalf("restart: %d batches, first id %d replayed %v end %s (logged %s) rows %d; want the replay of batch 2 and one more",
			len(bs), bs[0].BatchID, bs[0].Replayed, bs[0].End.JSON(), logged, bs[0].NumInputRows)
	}
	if opened := src.Opened(); ranges(opened[2]) != "t-0[30,45) t-1[30,45)" {
		t.Fatalf("replay opened %s, want batch 2's logged range from batch 1's end", ranges(opened[2]))
	}
	if !strings.Contains(logs.String(), "latest commit is batch 0") {
		t.Fatalf("want the commit-log-lag warning in the log:\n%s", logs.String())
	}
	if got := snk.Recommits(); len(got) != 0 {
		t.Fatalf("sink recommits %v, want none (batch 1 is not run again)", got)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 200 || fmt.Sprint(snk.Batches()) != "[0 1 2 3]" {
		t.Fatalf("sink: %d rows, batches %v, duplicates %v", snk.NumRows(), snk.Batches(), d)
	}
}

// TestStagedSinkRunsWhileOffsetsAreLogged: with a sink whose output shows
// only at its commit (sink.Staged), a batch's tasks run while offsets/N is
// being written, and the sink commits only after offsets/N and
// commits/N-1 are durable. A sink that is not staged (one acting on rows
// in its tasks) gets no writer before offsets/N is durable.
func TestStagedSinkRunsWhileOffsetsAreLogged(t *testing.T) {
	for _, staged := range []bool{true, false} {
		t.Run(fmt.Sprintf("staged=%v", staged), func(t *testing.T) {
			src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 20}})
			src.AppendN(0, 30)
			src.AppendN(1, 30)
			dir := t.TempDir()
			snk := newSink("main", nil).Staged(staged)
			opened := make(chan struct{})
			var once sync.Once
			var bad []string
			var mu sync.Mutex
			snk.SetHook(func(_ context.Context, at sinktest.Point) error {
				switch at.Op {
				case sinktest.OpNewWriter:
					if at.Batch == 1 {
						once.Do(func() { close(opened) })
					}
					if !staged && !exists(dir, "offsets", at.Batch) {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("writer of batch %d opened before offsets/%d", at.Batch, at.Batch))
						mu.Unlock()
					}
				case sinktest.OpCommit:
					if !exists(dir, "offsets", at.Batch) || (at.Batch > 0 && !exists(dir, "commits", at.Batch-1)) {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("batch %d committed before offsets/%d and commits/%d", at.Batch, at.Batch, at.Batch-1))
						mu.Unlock()
					}
				}
				return nil
			})
			err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir,
				BeforeOffsetsLog: func(id int64) error {
					if id != 1 || !staged {
						return nil
					}
					// The write of offsets/1 waits for batch 1's tasks.
					return waitWhileLogging(opened, 10*time.Second, "batch 1's tasks did not start while offsets/1 was being written")
				}})
			if err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bad) > 0 {
				t.Fatal(strings.Join(bad, "; "))
			}
			if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 60 || fmt.Sprint(snk.Batches()) != "[0 1 2]" {
				t.Fatalf("sink: %d rows, batches %v, duplicates %v", snk.NumRows(), snk.Batches(), d)
			}
		})
	}
}

// waitWhileLogging holds a log write (a BeforeOffsetsLog hook) until
// event happens, and fails it with msg when it does not within d.
func waitWhileLogging(event <-chan struct{}, d time.Duration, msg string) error {
	select {
	case <-event:
		return nil
	case <-time.After(d):
		return errors.New(msg)
	}
}

// TestPreviousBatchReportedWhileOffsetsAreLogged: batch N-1 is reported
// (observers, progress) as soon as its commits/N-1 is durable, while batch
// N's offsets/N is still being written, not after that write: the report's
// CPU overlaps the write instead of lengthening every batch. Reports keep
// their order, and batch N's sink still commits only after offsets/N.
func TestPreviousBatchReportedWhileOffsetsAreLogged(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 20}})
	src.AppendN(0, 30)
	src.AppendN(1, 30)
	dir := t.TempDir()
	snk := newSink("main", nil).Staged(true)
	var bad []string
	var mu sync.Mutex
	snk.SetHook(func(_ context.Context, at sinktest.Point) error {
		if at.Op == sinktest.OpCommit && !exists(dir, "offsets", at.Batch) {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("batch %d committed before offsets/%d", at.Batch, at.Batch))
			mu.Unlock()
		}
		return nil
	})
	reported := make(chan struct{})
	rec := &recorder{after: func(_ *engine.Query, info *engine.BatchInfo) {
		if info.BatchID == 1 {
			close(reported)
		}
	}}
	err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir,
		Observers: []engine.Observer{rec},
		BeforeOffsetsLog: func(id int64) error {
			if id != 2 {
				return nil
			}
			// The write of offsets/2 waits for batch 1's report.
			return waitWhileLogging(reported, 5*time.Second, "batch 1 was not reported while offsets/2 was being written")
		}})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatal(strings.Join(bad, "; "))
	}
	var ids []int64
	for _, info := range rec.batches() {
		ids = append(ids, info.BatchID)
	}
	if fmt.Sprint(ids) != "[0 1 2]" {
		t.Fatalf("reported batches %v, want [0 1 2]", ids)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 60 || fmt.Sprint(snk.Batches()) != "[0 1 2]" {
		t.Fatalf("sink: %d rows, batches %v, duplicates %v", snk.NumRows(), snk.Batches(), d)
	}
}

// TestStagedOffsetsLogStartsBeforeTasks: with a staged sink, offsets/N's
// write starts before batch N's tasks take the processor — even with one
// P, where the write goroutine would otherwise wait until the tasks end
// (the batch then waits for tasks, a scheduling delay and the write one
// after the other; a per-batch timeline of the capped bench showed the
// write starting 0.6–1.2 ms late, after the tasks). The scheduler takes
// its global queue first on one schedule in 61, so a batch may still find
// its write not started: the test wants most batches, not all.
func TestStagedOffsetsLogStartsBeforeTasks(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 20}})
	src.AppendN(0, 200)
	src.AppendN(1, 200)
	snk := newSink("main", nil).Staged(true)
	var logging atomic.Int64 // the batch whose offsets write started last
	logging.Store(-1)
	var mu sync.Mutex
	early := map[int64]bool{} // batches whose write had started when a task opened its writer
	snk.SetHook(func(_ context.Context, at sinktest.Point) error {
		if at.Op == sinktest.OpNewWriter {
			mu.Lock()
			if _, seen := early[at.Batch]; !seen {
				early[at.Batch] = logging.Load() == at.Batch
			}
			mu.Unlock()
		}
		return nil
	})
	err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: t.TempDir(),
		BeforeOffsetsLog: func(id int64) error {
			logging.Store(id)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if snk.NumRows() != 400 || len(snk.Batches()) != 20 || len(snk.Duplicates()) > 0 {
		t.Fatalf("sink: batches %v, %d rows, duplicates %v; want 20 batches, 400 rows", snk.Batches(), snk.NumRows(), snk.Duplicates())
	}
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, ok := range early {
		if ok {
			n++
		}
	}
	if len(early) != 20 || n < 15 {
		t.Fatalf("offsets/N's write had started when batch N's first task began in %d of %d batches, want at least 15 of 20", n, len(early))
	}
}

// TestStagedSinkOffsetsLogCrash: a crash while offsets/N is written and
// batch N's tasks run (staged sink) leaves nothing of batch N in the sink;
// the restart plans batch N afresh from batch N-1's end and the sink ends
// with every row once.
func TestStagedSinkOffsetsLogCrash(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 2, Defaults: source.ReadLimit{MaxRows: 30}})
	src.AppendN(0, 100)
	src.AppendN(1, 100)
	dir := t.TempDir()
	snk := newSink("main", nil).Staged(true)
	wrote := make(chan struct{})
	var once sync.Once
	snk.SetHook(func(_ context.Context, at sinktest.Point) error {
		if at.Op == sinktest.OpWrite && at.Batch == 2 {
			once.Do(func() { close(wrote) })
		}
		return nil
	})
	crash := errors.New("crash while offsets/2 was being written")
	err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir,
		BeforeOffsetsLog: func(id int64) error {
			if id != 2 {
				return nil
			}
			select { // batch 2's tasks have written rows
			case <-wrote:
			case <-time.After(10 * time.Second):
			}
			return crash
		}})
	if !errors.Is(err, crash) {
		t.Fatalf("first run ended with %v, want the crash", err)
	}
	if exists(dir, "offsets", 2) || !exists(dir, "commits", 1) {
		t.Fatal("want commits/1 and no offsets/2 after the crash")
	}
	if fmt.Sprint(snk.Batches()) != "[0 1]" || snk.NumRows() != 60 {
		t.Fatalf("sink after the crash: batches %v, %d rows; want [0 1], 60 rows", snk.Batches(), snk.NumRows())
	}
	rec := &recorder{}
	if err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir,
		Limits: admission.Limits{MaxOffsetsPerTrigger: 1000}, Observers: []engine.Observer{rec}}); err != nil {
		t.Fatal(err)
	}
	if bs := rec.batches(); len(bs) != 1 || bs[0].BatchID != 2 || bs[0].Replayed || bs[0].NumInputRows != 140 {
		t.Fatalf("restart ran %d batches (first: %+v), want batch 2 planned afresh with the 140 rows left", len(bs), bs)
	}
	if d := snk.Duplicates(); len(d) > 0 || snk.NumRows() != 200 || fmt.Sprint(snk.Batches()) != "[0 1 2]" {
		t.Fatalf("sink: %d rows, batches %v, duplicates %v", snk.NumRows(), snk.Batches(), d)
	}
}

// TestPurgeIsOffTheBatchPath: old batches are purged from the logs in the
// background (Spark's asyncLogPurge): a purge that hangs holds no batch
// back, and once the query ends the logs hold exactly the retained batches
// (minBatchesToRetain + 1 of each), as after a synchronous purge.
func TestPurgeIsOffTheBatchPath(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1, Defaults: source.ReadLimit{MaxRows: 10}})
	src.AppendN(0, 100) // ten batches
	dir := t.TempDir()
	allDone := make(chan struct{})
	rec := &recorder{after: func(_ *engine.Query, info *engine.BatchInfo) {
		if info.BatchID == 9 {
			close(allDone)
		}
	}}
	var held atomic.Bool
	err := run(t, context.Background(), engine.Config{Source: src, Sink: newSink("main", nil), Trigger: availableNow, CheckpointDir: dir,
		MinBatchesToRetain: 1, Observers: []engine.Observer{rec},
		BeforePurge: func() {
			select { // every purge waits until all ten batches are reported
			case <-allDone:
			case <-time.After(10 * time.Second):
				held.Store(true)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if held.Load() {
		t.Fatal("a purge held the batches back: it runs on the batch path")
	}
	if got := rec.rows(); len(got) != 10 {
		t.Fatalf("batches %v, want 10", got)
	}
	for id := int64(0); id < 10; id++ {
		if want := id >= 8; exists(dir, "offsets", id) != want || exists(dir, "commits", id) != want {
			t.Fatalf("batch %d: offsets %v commits %v after the query ended, want both %v (batches 8 and 9 retained)",
				id, exists(dir, "offsets", id), exists(dir, "commits", id), want)
		}
	}
}

// TestBatchWaitsOnlyForClaimedTasks: the goroutine that runs a batch is
// one of its workers, and the batch waits only for the tasks claimed, not
// for a helper worker to be scheduled. Here no helper starts before the
// batch has committed; once started, the helpers find nothing to claim.
func TestBatchWaitsOnlyForClaimedTasks(t *testing.T) {
	var mu sync.Mutex
	var held []func()
	defer engine.SetStartWorker(func(work func()) {
		mu.Lock()
		held = append(held, work)
		mu.Unlock()
	})()
	src := sourcetest.New(sourcetest.Options{Partitions: 3})
	src.AppendN(0, 300)
	src.AppendN(1, 100)
	src.AppendN(2, 50)
	snk := newSink("main", nil)
	q, err := engine.Start(context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow,
		CheckpointDir: t.TempDir(), Workers: 3, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-q.Done():
	case <-time.After(20 * time.Second):
		q.Stop()
		t.Fatal("the batch waited for workers that never started")
	}
	if err := q.Exception(); err != nil {
		t.Fatal(err)
	}
	if snk.NumRows() != 450 || len(snk.Duplicates()) != 0 || fmt.Sprint(snk.CommitOrder()) != "[0]" {
		t.Fatalf("sink: %s, %d rows", snk, snk.NumRows())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(held) != 2 {
		t.Fatalf("%d helper workers started, want 2 (3 workers, the batch's goroutine one of them)", len(held))
	}
	for _, work := range held {
		done := make(chan struct{})
		go func() { work(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("a late helper worker did not return")
		}
	}
	if snk.NumRows() != 450 {
		t.Fatalf("a late helper worker ran a task: %d rows", snk.NumRows())
	}
}

// TestInitialOffsetsLogOverlapsFirstBatch: a new checkpoint's sources/0/0
// is written while the first batch is planned and its tasks run, not
// before; offsets/0 is written only once sources/0/0 is on disk, and the
// sink commits after both. A failed sources/0/0 write fails the query
// before offsets/0 or any sink commit.
func TestInitialOffsetsLogOverlapsFirstBatch(t *testing.T) {
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			src := sourcetest.New(sourcetest.Options{Partitions: 2})
			src.AppendN(0, 30)
			src.AppendN(1, 30)
			dir := t.TempDir()
			initial := filepath.Join(dir, "sources", "0", "0")
			has := func(p string) bool { _, err := os.Stat(p); return err == nil }
			snk := newSink("main", nil).Staged(true)
			opened := make(chan struct{})
			var once sync.Once
			var mu sync.Mutex
			var bad []string
			note := func(s string) { mu.Lock(); bad = append(bad, s); mu.Unlock() }
			snk.SetHook(func(_ context.Context, at sinktest.Point) error {
				switch {
				case at.Op == sinktest.OpNewWriter && at.Batch == 0:
					if has(initial) {
						note("sources/0/0 was on disk before batch 0's tasks ran (the write was held)")
					}
					once.Do(func() { close(opened) })
				case at.Op == sinktest.OpCommit:
					if !has(initial) || !exists(dir, "offsets", at.Batch) {
						note(fmt.Sprintf("batch %d committed before sources/0/0 and offsets/%d", at.Batch, at.Batch))
					}
				}
				return nil
			})
			errHeld := errors.New("sources/0/0 write failed")
			err := run(t, context.Background(), engine.Config{Source: src, Sink: snk, Trigger: availableNow, CheckpointDir: dir,
				BeforeSourceInitialLog: func() error {
					// Held until batch 0's tasks run: with the write
					// before the first plan they never would.
					select {
					case <-opened:
					case <-time.After(10 * time.Second):
						return errors.New("batch 0's tasks did not start while sources/0/0 was being written")
					}
					if fail {
						return errHeld
					}
					return nil
				},
				BeforeOffsetsLog: func(id int64) error {
					if id == 0 && !has(initial) {
						note("offsets/0 written before sources/0/0")
					}
					return nil
				}})
			mu.Lock()
			defer mu.Unlock()
			if len(bad) > 0 {
				t.Fatal(strings.Join(bad, "; "))
			}
			if fail {
				if !errors.Is(err, errHeld) {
					t.Fatalf("query error %v, want %v", err, errHeld)
				}
				if has(initial) || exists(dir, "offsets", 0) || len(snk.Batches()) > 0 {
					t.Fatalf("after a failed sources/0/0: sources/0/0 %v, offsets/0 %v, sink batches %v; want none", has(initial), exists(dir, "offsets", 0), snk.Batches())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !has(initial) || snk.NumRows() != 60 || fmt.Sprint(snk.Batches()) != "[0]" {
				t.Fatalf("sources/0/0 %v, sink: %d rows, batches %v", has(initial), snk.NumRows(), snk.Batches())
			}
		})
	}
}
