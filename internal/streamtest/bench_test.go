package streamtest

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/noop"
	"github.com/sluice-stream/sluice/internal/source/memstream"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// benchQuery runs steps over batches×rows rows (keys distinct keys,
// event times advancing one second per batch) with Trigger.AvailableNow
// into the noop sink, and reports rows/s.
func benchQuery(b *testing.B, mode string, partitions, batches, rows, keys int, steps ...string) {
	schema := batch.Schema{Fields: []batch.Field{{Name: "k", Type: batch.Long}, {Name: "ts", Type: batch.Timestamp}}}
	s := &Script{Name: "bench", Input: schema, Mode: mode, Steps: steps}
	q, err := s.Query()
	if err != nil {
		b.Fatal(err)
	}
	src := memstream.New(schema)
	for i := 0; i < batches; i++ {
		k, ts := batch.NewColumn(batch.Long, rows), batch.NewColumn(batch.Timestamp, rows)
		for r := 0; r < rows; r++ {
			k.AppendInt(int64((i*rows + r) % keys))
			ts.AppendInt(int64(i+1) * 1_000_000)
		}
		if err := src.AddBatch(batch.New(schema, []*batch.Column{k, ts}, rows)); err != nil {
			b.Fatal(err)
		}
	}
	snk, err := noop.Format.Open(noop.Format.Options.Values(nil), sink.Env{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		cfg := engine.Config{Name: "bench", Source: src, Sink: snk, CheckpointDir: b.TempDir(), Workers: 2,
			Conf: map[string]string{"spark.sql.shuffle.partitions": fmt.Sprint(partitions)}, Trigger: trigger.Trigger{Kind: trigger.AvailableNow},
			Logger: slog.New(slog.DiscardHandler)}
		if q.Stage1 != nil {
			cfg.Transform = q.Stage1
		}
		if q.Stateful != nil {
			cfg.Stateful = q.Stateful
		}
		if q.Watermarks != nil {
			cfg.Watermarks = q.Watermarks
		}
		eq, err := engine.Start(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		if err := eq.AwaitTermination(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batches*rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	// CPU time per row is what a loaded machine distorts least.
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(batches*rows*b.N), "cpu-ns/row")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Stateless baseline: the same rows through a projection.
func BenchmarkStateless(b *testing.B) {
	benchQuery(b, "append", 8, 10, 100_000, 10_000, `{selectExpr: ["k", "ts"]}`)
}

// A per-second count per key (10,000 keys) with a watermark, append mode.
func BenchmarkWindowCount8Partitions(b *testing.B) {
	benchQuery(b, "append", 8, 10, 100_000, 10_000,
		`{withWatermark: {eventTime: ts, delay: 1 second}}`, `{groupBy: [ts, k], agg: ["count(*) AS n"]}`)
}

func BenchmarkWindowCount200Partitions(b *testing.B) {
	benchQuery(b, "append", 200, 10, 100_000, 10_000,
		`{withWatermark: {eventTime: ts, delay: 1 second}}`, `{groupBy: [ts, k], agg: ["count(*) AS n"]}`)
}

func BenchmarkDropDuplicates(b *testing.B) {
	benchQuery(b, "append", 8, 10, 100_000, 10_000,
		`{withWatermark: {eventTime: ts, delay: 1 second}}`, `{dropDuplicates: [k, ts]}`)
}

// The shape of `sluice bench --only stateful`: every key once per window
// (no two rows of a batch share a group), 200 shuffle partitions.
func BenchmarkWindowCountDistinct200Partitions(b *testing.B) {
	benchQuery(b, "append", 200, 10, 100_000, 100_000,
		`{withWatermark: {eventTime: ts, delay: 1 second}}`, `{groupBy: [ts, k], agg: ["count(*) AS n"]}`)
}
