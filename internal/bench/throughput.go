package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/progress"
)

// throughputRounds measures raw franz-go and sluice (default trigger, and
// with maxOffsetsPerTrigger) in alternating rounds.
func throughputRounds(ctx context.Context, addr string, res *Result, cfg *Config) error {
	var raws, sluices, limited []float64
	var batches, limitedBatches int64
	suiteMax := cfg.SuiteMaxOffsets
	if err := warmUp(ctx, addr, res.Records, "throughput", cfg); err != nil {
		return err
	}
	for r := 0; r < res.Rounds; r++ {
		raw, err := rawConsume(ctx, addr, "bench", res.Records)
		if err != nil {
			return fmt.Errorf("raw consumer: %w", err)
		}
		var sl float64
		var nb int64
		cpu, err := profiled(cfg.CPUProfile, "", r == 0, func() (err error) {
			sl, nb, err = sluiceConsume(ctx, addr, "bench", res.Records, cfg.MaxOffsetsPerTrigger, cfg)
			return err
		})
		if err != nil {
			return fmt.Errorf("sluice query: %w", err)
		}
		batches = nb
		raws, sluices = append(raws, raw), append(sluices, sl)
		line := fmt.Sprintf("round %d: raw franz-go %.0f rec/s, sluice %.0f rec/s (%d batches, %.2f CPU s per million in this process, broker included)",
			r+1, raw, sl, nb, perMillion(cpu, res.Records))
		if suiteMax > 0 {
			var lim float64
			var lb int64
			cpu, err := profiled(cfg.CPUProfile, "limited", r == 0, func() (err error) {
				lim, lb, err = sluiceConsume(ctx, addr, "bench", res.Records, suiteMax, cfg)
				return err
			})
			if err != nil {
				return fmt.Errorf("sluice query with maxOffsetsPerTrigger: %w", err)
			}
			limited, limitedBatches = append(limited, lim), lb
			line += fmt.Sprintf(", sluice maxOffsetsPerTrigger=%d %.0f rec/s (%d batches, %.2f CPU s per million)", suiteMax, lim, lb, perMillion(cpu, res.Records))
		}
		cfg.Logf("%s", line)
	}
	res.RawRecordsPerSec, res.SluiceRecordsPerSec, res.SluiceBatches = median(raws), median(sluices), batches
	res.Ratio = res.SluiceRecordsPerSec / res.RawRecordsPerSec
	if suiteMax > 0 {
		res.MaxOffsets = &Throughput{MaxOffsetsPerTrigger: suiteMax, SluiceRecordsPerSec: median(limited),
			RawRecordsPerSec: res.RawRecordsPerSec, Batches: limitedBatches}
		res.MaxOffsets.Ratio = res.MaxOffsets.SluiceRecordsPerSec / res.RawRecordsPerSec
	}
	return nil
}

// warmUp reads the preloaded topic once with a raw consumer, not timed,
// before a measurement's rounds: the first consumer after a preload ran
// at a quarter of the later rounds' rate (0.94–1.31 M/s against 3.4–4.9
// M/s in three quiet runs), raw or sluice alike, so a round 1 measured
// the preload more than either consumer.
func warmUp(ctx context.Context, addr string, n int, part string, cfg *Config) error {
	rate, err := rawConsume(ctx, addr, "bench", n)
	if err != nil {
		return fmt.Errorf("%s warm-up: raw consumer: %w", part, err)
	}
	cfg.Logf("%s warm-up (not counted): raw franz-go %.0f rec/s", part, rate)
	return nil
}

// manyPartitions measures sluice on the many-partition topic against the
// few-partition one, alternating, same records.
func manyPartitions(ctx context.Context, addr string, cfg *Config) (*Partitions, error) {
	n, few, many := cfg.Records, cfg.Partitions, cfg.ManyPartitions
	var f, m, rm []float64
	for r := 0; r < cfg.Rounds; r++ {
		var a, b float64
		var nb int64
		fewCPU, err := profiled("", "", false, func() (err error) {
			a, _, err = sluiceConsume(ctx, addr, "bench", n, 0, cfg)
			return err
		})
		if err != nil {
			return nil, err
		}
		manyCPU, err := profiled(cfg.CPUProfile, "partitions", r == 0, func() (err error) {
			b, nb, err = sluiceConsume(ctx, addr, "bench-many", n, 0, cfg)
			return err
		})
		if err != nil {
			return nil, err
		}
		var raw float64
		_, err = profiled(cfg.CPUProfile, "partitions-raw", r == 0, func() (err error) {
			raw, err = rawConsume(ctx, addr, "bench-many", n)
			return err
		})
		if err != nil {
			return nil, err
		}
		f, m, rm = append(f, a), append(m, b), append(rm, raw)
		cfg.Logf("partitions round %d: sluice %d partitions %.0f rec/s (%.2f CPU s per million in this process, broker included), %d partitions %.0f rec/s (%d batches, %.2f CPU s per million); raw %d partitions %.0f rec/s",
			r+1, few, a, perMillion(fewCPU, n), many, b, nb, perMillion(manyCPU, n), many, raw)
	}
	p := &Partitions{Many: many, Few: few, ManyRecordsPerSec: median(m), FewRecordsPerSec: median(f), RawManyRecordsPerSc: median(rm)}
	p.Ratio = p.ManyRecordsPerSec / p.FewRecordsPerSec
	p.RawRatio = p.ManyRecordsPerSec / p.RawManyRecordsPerSc
	return p, nil
}

// profiled runs fn and returns the CPU time this process used meanwhile
// (the embedded broker's included). When on and path is set, fn runs
// under a CPU profile written to path, or with a non-empty suffix to
// ProfilePath(path, suffix).
func profiled(path, suffix string, on bool, fn func() error) (time.Duration, error) {
	if path != "" && on {
		f, err := os.Create(ProfilePath(path, suffix))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := selfCPU()
	err := fn()
	return selfCPU() - cpu0, err
}

// ProfilePath is where the profile of one kind of sluice run goes:
// path itself for the default-trigger round (suffix ""), else path with
// "-"+suffix before its extension (cpu.out → cpu-limited.out).
func ProfilePath(path, suffix string) string {
	if suffix == "" {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + suffix + ext
}

func perMillion(d time.Duration, n int) float64 { return d.Seconds() * 1e6 / float64(n) }

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

// RawConsumeArgs are the sluice arguments that make a child process run
// the CPU measurement's baseline (ChildRawConsume).
func RawConsumeArgs(addr, topic string, n int) []string {
	return []string{"bench", "--child-raw-consume", fmt.Sprintf("%s,%s,%d", addr, topic, n)}
}

// ChildRawConsume is the child side of the CPU measurement's baseline:
// spec is ADDR,TOPIC,N.
func ChildRawConsume(ctx context.Context, spec string) error {
	f := strings.Split(spec, ",")
	if len(f) != 3 {
		return fmt.Errorf("--child-raw-consume %q: want ADDR,TOPIC,N", spec)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return fmt.Errorf("--child-raw-consume %q: %w", spec, err)
	}
	_, err = rawConsume(ctx, f[0], f[1], n)
	return err
}

// sluiceConsume runs the seed's projection into the noop sink with the
// default trigger, in this process, until n records went through: the
// listener marks the moment the n-th record is committed.
func sluiceConsume(ctx context.Context, addr, topic string, n int, maxOffsets int64, cfg *Config) (float64, int64, error) {
	log := cfg.Logger
	chk, cleanup, err := cfg.scratchDir("query-")
	if err != nil {
		return 0, 0, err
	}
	defer cleanup()
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
