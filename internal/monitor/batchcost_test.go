//go:build linux

package monitor_test

import (
	"context"
	"io"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/metrics"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/progress"
)

// batchCatcher keeps the query and the BatchInfo of its batches.
type batchCatcher struct {
	engine.NopObserver
	mu    sync.Mutex
	q     *engine.Query
	infos []*engine.BatchInfo
}

func (c *batchCatcher) BatchCompleted(q *engine.Query, info *engine.BatchInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.q = q
	c.infos = append(c.infos, info)
}

// kafkaBatches runs a query on an 8-partition topic for a few batches and
// returns the query and its batches' infos (the light latency run's shape).
func kafkaBatches(tb testing.TB) (*engine.Query, []*engine.BatchInfo) {
	b := brokertest.Start(tb, broker.TopicSpec{Name: "orders", Partitions: 8})
	src, err := kafka.New(map[string]string{"kafka.bootstrap.servers": b.Addr(), "subscribe": "orders", "startingOffsets": "earliest"}, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	c := &batchCatcher{}
	q, err := engine.Start(context.Background(), engine.Config{Name: "cost", Source: src, Sink: memory.New(),
		CheckpointDir: filepath.Join(tb.TempDir(), "chk"), Logger: quiet, Observers: []engine.Observer{c}, Workers: 2})
	if err != nil {
		tb.Fatal(err)
	}
	defer q.Stop()
	for i := 0; i < 3; i++ {
		produce(tb, b.Addr(), "orders", 8, 100)
		deadline := time.Now().Add(20 * time.Second)
		for {
			c.mu.Lock()
			n := len(c.infos)
			c.mu.Unlock()
			if n > i || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.infos) == 0 {
		tb.Fatal("no batch")
	}
	return c.q, c.infos
}

// BenchmarkBatchCompleted is the monitor's per-batch work as `sluice run
// --progress-file` does it: two latest-offset observations (the plan's and
// the batch-end sample's), progress built, lag and health evaluated,
// Prometheus series updated, the report delivered to a JSON-lines file.
func BenchmarkBatchCompleted(b *testing.B) {
	q, infos := kafkaBatches(b)
	reg := prometheus.NewRegistry()
	mt, err := metrics.New(reg)
	if err != nil {
		b.Fatal(err)
	}
	mon := monitor.New(monitor.WithMetrics(mt))
	mon.QueryStarted(q)
	jl := progress.NewJSONLinesWriter(io.Discard)
	mon.Subscribe(jl)
	info := *infos[len(infos)-1]
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		in := info
		in.TriggerStart = info.TriggerStart.Add(time.Duration(i) * 10 * time.Millisecond)
		in.BatchID = info.BatchID + int64(i)
		// The plan's look at the latest offsets and the batch-end sample.
		mon.OffsetsObserved(q, in.Latest, in.TriggerStart)
		mon.OffsetsObserved(q, in.Latest, in.TriggerStart.Add(time.Millisecond))
		mon.BatchCompleted(q, &in)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = mon.Close(ctx) // the listeners' share, delivered on the bus's goroutine
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
}

// processCPU is the process's user+system CPU time: the benchmark's work
// includes the bus goroutine's, which wall time per op hides on 2 cores.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
