package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// A capped plan is answered from the listing sent when the previous plan
// was made — and falls back to listing now when that listing shows fewer
// records than the batch may take, or partitions other than the start's.
func TestAvailableCappedUsesTheListingSentAhead(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "ahead", Partitions: 2})
	produce(t, b.Addr(), "ahead", 2, 10)
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "ahead", "startingOffsets": "earliest"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var _ source.CappedPlanner = src
	plan := func(start kafka.Offsets, need int64) (from, latest partition.Offsets, at time.Time) {
		t.Helper()
		from, latest, at, err := src.AvailableCapped(ctx, start, need)
		if err != nil {
			t.Fatal(err)
		}
		return from, latest, at
	}
	same := func(what string, got partition.Offsets, want kafka.Offsets) {
		t.Helper()
		if !maps.Equal(got, partition.Offsets(want)) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}

	// No listing sent yet: asks the brokers, and sends the next one.
	before := time.Now()
	from, latest, at1 := plan(offsets("ahead", 0, 0), 5)
	same("first latest", latest, offsets("ahead", 10, 10))
	same("first from", from, offsets("ahead", 0, 0))
	if at1.Before(before) {
		t.Fatalf("first listing at %v, before the plan (%v)", at1, before)
	}
	if !src.AwaitAhead() {
		t.Fatal("no listing sent ahead after a capped plan")
	}
	// Records produced after that listing are not in the next plan's
	// latest offsets: it takes the listing sent ahead, with its time.
	produce(t, b.Addr(), "ahead", 2, 10)
	asked := time.Now()
	from, latest, at2 := plan(offsets("ahead", 5, 5), 5)
	same("second latest (the listing sent ahead)", latest, offsets("ahead", 10, 10))
	same("second from", from, offsets("ahead", 5, 5))
	if !at2.Before(asked) || at2.Before(at1) {
		t.Fatalf("second listing at %v, want between %v and %v", at2, at1, asked)
	}
	// The listing sent by the second plan saw the new records; it is the
	// look taken after a batch planned before it committed.
	src.AwaitAhead()
	if l, at, ok := src.ListedSince(asked); !ok || at.Before(asked) || !maps.Equal(l, partition.Offsets(offsets("ahead", 20, 20))) {
		t.Fatalf("ListedSince(second plan) = %v, %v, %v; want the listing the second plan sent, with 20, 20", l, at, ok)
	}
	if _, _, ok := src.ListedSince(time.Now()); ok {
		t.Fatal("ListedSince(now) answered with a listing sent before now")
	}
	_, latest, _ = plan(offsets("ahead", 10, 10), 5)
	same("third latest", latest, offsets("ahead", 20, 20))

	// Fewer records listed ahead than the batch may take: list now.
	src.AwaitAhead()
	produce(t, b.Addr(), "ahead", 2, 10)
	_, latest, _ = plan(offsets("ahead", 18, 18), 10)
	same("latest when the listing ahead shows too few", latest, offsets("ahead", 30, 30))

	// A partition the listing ahead does not have (its topic deleted):
	// the plan lists again, and Available's checks see it gone.
	src.AwaitAhead()
	gone := offsets("ahead", 20, 20)
	gone[partition.ID{Topic: "ahead", Partition: 7}] = 3
	if _, _, _, err := src.AvailableCapped(ctx, gone, 5); err == nil || !strings.Contains(err.Error(), "ahead-7 is gone") {
		t.Fatalf("plan with a vanished partition: err %v, want Available's data-loss error", err)
	}

	// Uncapped: Available, and nothing is sent ahead.
	src.AwaitAhead()
	_, latest, _ = plan(offsets("ahead", 25, 25), 0)
	same("uncapped latest", latest, offsets("ahead", 30, 30))
	if src.AwaitAhead() {
		t.Fatal("an uncapped plan sent a listing ahead")
	}
}

// cappedSpy records what the engine asks a capped planner.
type cappedSpy struct {
	*kafka.Source
	needs []int64
}

func (s *cappedSpy) AvailableCapped(ctx context.Context, start source.Offset, need int64) (from, latest partition.Offsets, at time.Time, err error) {
	s.needs = append(s.needs, need)
	return s.Source.AvailableCapped(ctx, start, need)
}

// With maxOffsetsPerTrigger, every plan asks for the cap's worth of
// records (so that the source may answer from its listing sent ahead),
// and every record is delivered once, each batch within its plan's latest
// offsets.
func TestCappedPlansDeliverExactlyOnce(t *testing.T) {
	const parts, n = 4, 50
	b := brokertest.Start(t, broker.TopicSpec{Name: "capped", Partitions: parts})
	produce(t, b.Addr(), "capped", parts, n)
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "capped", "startingOffsets": "earliest",
		"maxOffsetsPerTrigger": "20"}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	spy := &cappedSpy{Source: src}
	sink := memory.New()
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	q, err := engine.Start(ctx, engine.Config{Source: spy, Sink: sink, Trigger: trigger.Trigger{Kind: trigger.AvailableNow}, CheckpointDir: t.TempDir(),
		Logger: quiet, Observers: []engine.Observer{rec}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, sink, parts, n)
	if len(spy.needs) != 0 {
		t.Fatalf("availableNow asked for capped plans %v: its snapshot is the latest", spy.needs)
	}

	// The default trigger: capped plans.
	more := memory.New()
	spy2 := &cappedSpy{}
	if spy2.Source, err = kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "capped", "startingOffsets": "earliest",
		"maxOffsetsPerTrigger": "20"}, quiet); err != nil {
		t.Fatal(err)
	}
	rec2 := &recorder{}
	q, err = engine.Start(ctx, engine.Config{Source: spy2, Sink: more, CheckpointDir: t.TempDir(), Logger: quiet, Observers: []engine.Observer{rec2}, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return more.NumRows() >= parts*n })
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, more, parts, n)
	if len(spy2.needs) < parts*n/20 {
		t.Fatalf("%d plans, want at least %d", len(spy2.needs), parts*n/20)
	}
	for i, need := range spy2.needs {
		if need != 20 {
			t.Fatalf("plan %d asked for %d records, want maxOffsetsPerTrigger (20)", i, need)
		}
	}
	checkEndsWithinLatest(t, rec2.infos)
	for _, info := range rec2.infos {
		end := info.End.(source.PartitionedOffset).Partitions()
		if after, ok := info.LatestAfter.(source.PartitionedOffset); ok {
			for tp, off := range end {
				if after.Partitions()[tp] < off {
					t.Fatalf("batch %d: lag reference after it %v below its end %v", info.BatchID, after.Partitions(), end)
				}
			}
		}
		if info.NumInputRows > 20 {
			t.Fatalf("batch %d read %d records, more than maxOffsetsPerTrigger", info.BatchID, info.NumInputRows)
		}
	}
}

// A crash at each step of a capped batch planned from a listing sent
// ahead (default trigger) loses and repeats nothing: the restart replays
// the logged batch with the same ranges, and every record reaches the
// sink's committed batches once.
func TestCappedPlansCrashExactlyOnce(t *testing.T) {
	const parts, n, capped = 4, 60, 20
	steps := []struct {
		name string
		hook func(c *engine.Config, fail func(int64) error)
	}{
		{"before offsets log", func(c *engine.Config, fail func(int64) error) { c.BeforeOffsetsLog = fail }},
		{"after the sink commit", func(c *engine.Config, fail func(int64) error) { c.BeforeCommit = fail }},
		{"before commit log", func(c *engine.Config, fail func(int64) error) { c.BeforeCommitLog = fail }},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			b := brokertest.Start(t, broker.TopicSpec{Name: "cc", Partitions: parts})
			produce(t, b.Addr(), "cc", parts, n)
			chk := t.TempDir()
			opts := map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "cc", "startingOffsets": "earliest",
				"maxOffsetsPerTrigger": fmt.Sprint(capped)}
			crash := errors.New("simulated crash")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := func(sink *memory.Sink, hook func(*engine.Config)) *engine.Query {
				t.Helper()
				src, err := kafka.New(opts, quiet)
				if err != nil {
					t.Fatal(err)
				}
				cfg := engine.Config{Source: src, Sink: sink, CheckpointDir: chk, Logger: quiet, Workers: 2}
				if hook != nil {
					hook(&cfg)
				}
				q, err := engine.Start(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				return q
			}
			sink1 := memory.New()
			q := start(sink1, func(c *engine.Config) {
				step.hook(c, func(id int64) error {
					if id == 4 {
						return crash
					}
					return nil
				})
			})
			if err := q.AwaitTermination(ctx); !errors.Is(err, crash) {
				t.Fatalf("first run: err %v, want the simulated crash", err)
			}
			produce(t, b.Addr(), "cc", parts, 5) // more while down
			sink2 := memory.New()
			q = start(sink2, nil)
			total := parts * (n + 5)
			waitFor(t, func() bool { return committedTogether(sink1, sink2).NumRows() >= total })
			if err := q.Stop(); err != nil {
				t.Fatal(err)
			}
			for _, id := range sink1.BatchIDs() {
				if len(sink2.Batch(id)) > 0 && fmt.Sprint(rows(sink2.Batch(id))) != fmt.Sprint(rows(sink1.Batch(id))) {
					t.Fatalf("batch %d replayed with other rows:\n got %v\nwant %v", id, rows(sink2.Batch(id)), rows(sink1.Batch(id)))
				}
			}
			if got := recordsOnce(t, committedTogether(sink1, sink2)); got != total {
				t.Fatalf("delivered %d records, want %d", got, total)
			}
		})
	}
}
