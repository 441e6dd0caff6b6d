package sluice

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// An interval under a millisecond used to spin: Spark's nextBatchTime works
// in whole milliseconds, so 1 ns meant "the next batch is due now" forever.
func TestProcessingTimeNeedsWholeMilliseconds(t *testing.T) {
	const allowed = `(allowed: 0 = as fast as possible, or whole milliseconds ≥ 1, e.g. "1 millisecond" or "20 seconds")`
	for _, c := range []struct {
		trig Trigger
		want string
	}{
		{ProcessingTime("1 nanosecond"), `trigger processingTime: "1 nanosecond" is below 1 millisecond ` + allowed},
		{ProcessingTime("999 microseconds"), `trigger processingTime: "999 microseconds" is below 1 millisecond ` + allowed},
		{ProcessingTime("1.5 milliseconds"), `trigger processingTime: "1.5 milliseconds" is not a whole number of milliseconds ` + allowed},
		{ProcessingTimeInterval(time.Microsecond), `trigger processingTime: 1µs is below 1 millisecond ` + allowed},
		{ProcessingTimeInterval(-time.Second), `trigger processingTime: -1s is negative ` + allowed},
	} {
		q, err := NewSession().ReadStream().Format("rate").Load().WriteStream().Format("noop").
			Option("checkpointLocation", t.TempDir()).Trigger(c.trig).Start(context.Background())
		if q != nil {
			_ = q.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
	for _, ok := range []Trigger{ProcessingTime("1 millisecond"), ProcessingTime("0 seconds"), ProcessingTimeInterval(20 * time.Second)} {
		if ok.err != nil {
			t.Errorf("%v: %v", ok, ok.err)
		}
	}
}

// TestLatestAvailableNowPinsTheStart: with startingOffsets latest, the first
// availableNow run reads none of the records already in the topic — as
// Spark, "latest" means the end of each partition when the query first
// starts — and the start it resolved is kept in the checkpoint: the next
// run (same checkpoint) reads exactly the records produced between the two
// runs, not the earlier ones and not nothing.
func TestLatestAvailableNowPinsTheStart(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "late", Partitions: 3})
	preload(t, b.Addr(), "late", 3, 30) // offsets 0..29 in each partition
	chk := t.TempDir()
	run := func() map[string]int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var mu sync.Mutex
		seen := map[string]int{}
		q, err := NewSession(WithLogger(quietLog)).ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "late").Option("startingOffsets", "latest").
			Load().SelectExpr("partition", "offset").
			WriteStream().ForeachBatch(func(_ context.Context, bt *batch.Batch, _ int64) error {
			mu.Lock()
			defer mu.Unlock()
			for i := 0; i < bt.N; i++ {
				r := bt.Row(i)
				seen[fmt.Sprintf("%v/%v", r[0], r[1])]++
			}
			return nil
		}).Option("checkpointLocation", chk).Trigger(AvailableNow()).Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(ctx); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
	if first := run(); len(first) != 0 {
		t.Fatalf("the first run read %d records that were in the topic before it started (startingOffsets latest): %v", len(first), first)
	}
	preload(t, b.Addr(), "late", 3, 20) // offsets 30..49
	second := run()
	if len(second) != 60 {
		t.Errorf("the second run read %d distinct records, want the 60 produced after the first run", len(second))
	}
	for k, n := range second {
		var p, off int
		fmt.Sscanf(k, "%d/%d", &p, &off)
		if off < 30 || off > 49 || n != 1 {
			t.Errorf("record %s read %d times by the second run; want offsets 30..49 once each", k, n)
		}
	}
	if again := run(); len(again) != 0 {
		t.Errorf("a third run with nothing new read %d records", len(again))
	}
}
