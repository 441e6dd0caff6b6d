package sluice

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// TestAsyncProgressTrackingKafkaSinkCrash: Kafka to Kafka with Spark's
// asyncProgressTrackingEnabled (default 1 s interval: only the first
// batch of the run is logged). The query crashes after its sink committed
// batch 5 and restarts with a ten times larger batch limit: the output
// topic holds every input record at least once (the restarted query
// continues after the sink's last committed batch, so the Kafka sink's
// exactly-once replay rule skips none of the re-planned batches).
func TestAsyncProgressTrackingKafkaSinkCrash(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "in", Partitions: 2}, broker.TopicSpec{Name: "out", Partitions: 1})
	preload(t, b.Addr(), "in", 2, 50)
	chk := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var committed atomic.Int64
	start := func(maxOffsets int, crashAt int64) *StreamingQuery {
		w := NewSession(WithLogger(quietLog)).ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "in").Option("startingOffsets", "earliest").
			Option("maxOffsetsPerTrigger", maxOffsets).Load().
			SelectExpr("CAST(value AS STRING) AS value").
			WriteStream().Format("kafka").Option("kafka.bootstrap.servers", b.Addr()).Option("topic", "out").
			Option("checkpointLocation", chk).Option("asyncProgressTrackingEnabled", "true")
		w.hooks.beforeCommit = func(id int64) error {
			committed.Store(id)
			if id == crashAt {
				return fmt.Errorf("crash after the sink committed batch %d", id)
			}
			return nil
		}
		q, err := w.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	q := start(10, 5)
	if err := q.AwaitTermination(ctx); err == nil || !strings.Contains(err.Error(), "crash") {
		t.Fatalf("first run: %v, want the crash", err)
	}
	q = start(1000, -1)
	defer q.Stop()
	cl := brokertest.Client(t, b.Addr(), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	seen := map[string]int{}
	for len(seen) < 100 && ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		pcancel()
	}
	if len(seen) != 100 {
		t.Fatalf("the output topic holds %d of the 100 input records (last batch %d): records lost", len(seen), committed.Load())
	}
	if err := q.Stop(); err != nil {
		t.Fatal(err)
	}
}

// TestAsyncProgressTrackingRefusals: Spark's limits, with Spark's
// messages, reported by Start before anything runs.
func TestAsyncProgressTrackingRefusals(t *testing.T) {
	ctx := context.Background()
	base := func() *DataStreamWriter {
		return NewSession(WithLogger(quietLog)).ReadStream().Format("rate").Load().
			WriteStream().Option("asyncProgressTrackingEnabled", "true")
	}
	for _, tc := range []struct {
		name string
		w    *DataStreamWriter
		want string
	}{
		{"parquet sink", base().Format("parquet").Option("path", t.TempDir()).Option("checkpointLocation", t.TempDir()), "Sink parquet does not support async progress tracking"},
		{"availableNow", base().Format("noop").Trigger(AvailableNow()), "Async progress tracking cannot be used with AvailableNow trigger"},
		{"once", base().Format("noop").Trigger(Once()), "Async progress tracking cannot be used with Once trigger"},
		{"negative interval", base().Format("noop").Option("asyncProgressTrackingCheckpointIntervalMs", "-1"), "asyncProgressTrackingCheckpointIntervalMs"},
	} {
		q, err := tc.w.Start(ctx)
		if err == nil {
			q.Stop()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
