package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/orders"
	"github.com/sluice-stream/sluice/internal/progress"
)

// benchResult is what `sluice bench --json` prints.
type benchResult struct {
	Records              int     `json:"records"`
	RecordBytes          int     `json:"record_bytes"`
	Partitions           int     `json:"partitions"`
	Rounds               int     `json:"rounds"`
	RawRecordsPerSec     float64 `json:"raw_records_per_sec"`
	SluiceRecordsPerSec  float64 `json:"sluice_records_per_sec"`
	Ratio                float64 `json:"ratio"`
	MaxOffsetsPerTrigger int64   `json:"max_offsets_per_trigger,omitempty"`
	SluiceBatches        int64   `json:"sluice_batches"`
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	n := fs.Int("records", 2_000_000, "records to preload")
	size := fs.Int("record-bytes", 200, "approximate value size in bytes")
	parts := fs.Int("partitions", 8, "topic partitions")
	rounds := fs.Int("rounds", 3, "measurement rounds (raw and sluice alternate; medians are reported)")
	maxOffsets := fs.Int64("max-offsets-per-trigger", 0, "also apply maxOffsetsPerTrigger to the sluice query (0 = none)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the sluice rounds to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", Topics: []broker.TopicSpec{{Name: "bench", Partitions: int32(*parts)}}, Logger: quiet})
	if err != nil {
		return err
	}
	defer b.Close()
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "preloading %d records of ~%d B over %d partitions...\n", *n, *size, *parts)
	t0 := time.Now()
	if err := orders.Preload(ctx, prod, "bench", *n, *size, int32(*parts)); err != nil {
		prod.Close()
		return fmt.Errorf("preload: %w", err)
	}
	prod.Close()
	fmt.Fprintf(stderr, "preloaded in %s\n", time.Since(t0).Round(time.Millisecond))

	var raws, sluices []float64
	var batches int64
	for r := 0; r < *rounds; r++ {
		raw, err := rawConsume(ctx, b.Addr(), "bench", *n)
		if err != nil {
			return fmt.Errorf("raw consumer: %w", err)
		}
		if *cpuProfile != "" && r == 0 {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		sl, nb, err := sluiceConsume(ctx, b.Addr(), "bench", *n, *maxOffsets, quiet)
		if *cpuProfile != "" && r == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return fmt.Errorf("sluice query: %w", err)
		}
		batches = nb
		raws, sluices = append(raws, raw), append(sluices, sl)
		fmt.Fprintf(stderr, "round %d: raw franz-go %.0f rec/s, sluice %.0f rec/s (%d batches)\n", r+1, raw, sl, nb)
	}
	res := benchResult{
		Records: *n, RecordBytes: *size, Partitions: *parts, Rounds: *rounds,
		RawRecordsPerSec: median(raws), SluiceRecordsPerSec: median(sluices),
		MaxOffsetsPerTrigger: *maxOffsets, SluiceBatches: batches,
	}
	res.Ratio = res.SluiceRecordsPerSec / res.RawRecordsPerSec
	if *asJSON {
		enc := json.NewEncoder(stdout)
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "records:              %d × ~%d B over %d partitions (embedded kfake broker)\n", *n, *size, *parts)
	fmt.Fprintf(stdout, "raw franz-go consumer: %12.0f records/s (median of %d)\n", res.RawRecordsPerSec, *rounds)
	fmt.Fprintf(stdout, "sluice (noop sink):    %12.0f records/s (median of %d)\n", res.SluiceRecordsPerSec, *rounds)
	fmt.Fprintf(stdout, "ratio:                 %12.3f\n", res.Ratio)
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// rawConsume reads n records with a plain direct-assignment franz-go
// consumer: the baseline.
func rawConsume(ctx context.Context, addr, topic string, n int) (float64, error) {
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, err
	}
	starts, err := kadm.NewClient(adm).ListStartOffsets(ctx, topic)
	adm.Close()
	if err != nil {
		return 0, err
	}
	assign := map[string]map[int32]kgo.Offset{topic: {}}
	starts.Each(func(o kadm.ListedOffset) { assign[topic][o.Partition] = kgo.NewOffset().At(o.Offset) })
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(assign))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	got := 0
	for got < n {
		f := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		f.EachError(func(t string, p int32, err error) {})
		got += f.NumRecords()
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// sluiceConsume runs the seed's projection into the noop sink with the
// default trigger until n records went through.
func sluiceConsume(ctx context.Context, addr, topic string, n int, maxOffsets int64, log *slog.Logger) (float64, int64, error) {
	chk, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(chk)
	var rows, batches atomic.Int64
	var doneAt atomic.Int64
	done := make(chan struct{})
	listener := &progress.ListenerFuncs{OnProgress: func(e progress.ProgressEvent) {
		batches.Add(1)
		if rows.Add(e.Progress.NumInputRows) >= int64(n) && doneAt.CompareAndSwap(0, time.Now().UnixNano()) {
			close(done)
		}
	}}
	s := sluice.NewSession(sluice.WithLogger(log))
	r := s.ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", addr).
		Option("subscribe", topic).
		Option("startingOffsets", "earliest")
	if maxOffsets > 0 {
		r.Option("maxOffsetsPerTrigger", maxOffsets)
	}
	start := time.Now()
	q, err := r.Load().
		SelectExpr("CAST(value AS STRING)").
		WithColumn("processed_ts", "current_timestamp()").
		WriteStream().Format("noop").
		Option("checkpointLocation", chk).
		AddListener(listener).
		Start(ctx)
	if err != nil {
		return 0, 0, err
	}
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(10 * time.Minute):
	}
	elapsed := time.Duration(doneAt.Load() - start.UnixNano())
	if err := q.Stop(); err != nil {
		return 0, 0, err
	}
	if rows.Load() < int64(n) {
		return 0, 0, fmt.Errorf("query saw %d of %d records", rows.Load(), n)
	}
	return float64(n) / elapsed.Seconds(), batches.Load(), nil
}
