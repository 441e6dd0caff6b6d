package bench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/report"
)

// seedPipeline writes the pipeline file of the seed's query (the
// rehearsal's: JSON string and processing time into a noop sink) on topic
// into dir, with its checkpoint in dir.
func seedPipeline(dir, addr, topic string, s queryrun.Setup) (string, error) {
	s.Name, s.Bootstrap, s.Topic, s.Checkpoint = "bench", addr, topic, filepath.Join(dir, "chk")
	p := filepath.Join(dir, "bench.yaml")
	if err := queryrun.SeedQuery().WritePipeline(p, s); err != nil {
		return "", err
	}
	return p, nil
}

// waitExit waits until the query process ends on its own (or ctx ends,
// which stops it) and returns its failure, if any.
func waitExit(ctx context.Context, p queryrun.Process) error {
	select {
	case <-p.Done():
	case <-ctx.Done():
	}
	if err := p.Stop(); err != nil {
		return err
	}
	return ctx.Err()
}

// childCPU runs cmd to completion and returns its CPU time.
func childCPU(cmd *exec.Cmd) (time.Duration, error) {
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

// cpuChildren drains the preloaded topic in child processes, sluice
// (availableNow) and raw franz-go, and reports CPU seconds per million.
func cpuChildren(ctx context.Context, addr string, cfg *Config) (*CPU, error) {
	n := cfg.Records
	runner := &queryrun.ChildRunner{Command: cfg.Command}
	var sl, raw, rates []float64
	for r := 0; r < cfg.Rounds; r++ {
		dir, done, err := cfg.scratchDir("cpu-")
		if err != nil {
			return nil, err
		}
		p, err := seedPipeline(dir, addr, "bench", queryrun.Setup{AvailableNow: true})
		if err != nil {
			done()
			return nil, err
		}
		start := time.Now()
		proc, err := runner.Start(ctx, p, "")
		if err == nil {
			err = waitExit(ctx, proc)
		}
		wall := time.Since(start)
		done()
		if err != nil {
			return nil, fmt.Errorf("cpu: sluice query: %w", err)
		}
		cpu := proc.CPUTime()
		rcpu, err := childCPU(cfg.Command(RawConsumeArgs(addr, "bench", n)...))
		if err != nil {
			return nil, err
		}
		perMil := func(d time.Duration) float64 { return d.Seconds() / (float64(n) / 1e6) }
		sl, raw, rates = append(sl, perMil(cpu)), append(raw, perMil(rcpu)), append(rates, float64(n)/wall.Seconds())
		cfg.Logf("cpu round %d: sluice %.2f CPU s per million records (child process, %.0f rec/s wall incl. start-up), raw franz-go %.2f", r+1, perMil(cpu), float64(n)/wall.Seconds(), perMil(rcpu))
	}
	c := &CPU{Records: n, SluiceCPUSecPerMil: median(sl), RawCPUSecPerMil: median(raw), SluiceWallRecsPerSec: median(rates)}
	c.Ratio = c.SluiceCPUSecPerMil / c.RawCPUSecPerMil
	return c, nil
}

// idleChild runs the seed query with the default trigger on an empty
// topic in a child process and samples its CPU from /proc over the idle
// period, after a 2 s start-up.
func idleChild(ctx context.Context, b *broker.Broker, cfg *Config) (*Idle, error) {
	d := cfg.Idle
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "bench-idle", Partitions: 8}); err != nil {
		return nil, err
	}
	dir, done, err := cfg.scratchDir("idle-")
	if err != nil {
		return nil, err
	}
	defer done()
	p, err := seedPipeline(dir, b.Addr(), "bench-idle", queryrun.Setup{StartingOffsets: "latest"})
	if err != nil {
		return nil, err
	}
	cfg.Logf("idle: running the query on an empty topic for %s (+2 s start-up)...", d)
	proc, err := (&queryrun.ChildRunner{Command: cfg.Command}).Start(ctx, p, "")
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = proc.Stop()
		}
	}()
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-proc.Done():
			return fmt.Errorf("idle query: %w", proc.Stop())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleep(2 * time.Second); err != nil {
		return nil, err
	}
	c0, err0 := procstat.CPU(proc.PID())
	s0, serr0 := procstat.ReadThreadCPU(proc.PID())
	t0 := time.Now()
	if err := sleep(d); err != nil {
		return nil, err
	}
	c1, err1 := procstat.CPU(proc.PID())
	s1, serr1 := procstat.ReadThreadCPU(proc.PID())
	wall := time.Since(t0)
	stopped = true
	if err := proc.Stop(); err != nil {
		return nil, fmt.Errorf("idle query: %w", err)
	}
	// The scheduler's nanoseconds when every thread was there for both
	// readings; else the clock ticks of /proc/PID/stat (10 ms apart, so
	// a 30 s idle reading of 0.10 % is 3 ticks, ± 1 by chance); else
	// (no /proc) the whole life from rusage.
	id := &Idle{Method: IdleMethodSchedstat, TickCPUSeconds: (c1 - c0).Seconds()}
	cpu := s1.Total - s0.Total
	switch {
	case serr0 == nil && serr1 == nil && s1.Covers(s0):
	case err0 == nil && err1 == nil:
		cpu, id.Method = c1-c0, IdleMethodTicks
	default:
		cpu, id.Method, id.TickCPUSeconds = proc.CPUTime(), IdleMethodRusage, 0
		wall += 2 * time.Second
	}
	id.Seconds, id.CPUSeconds, id.PercentOfCore = wall.Seconds(), cpu.Seconds(), 100*cpu.Seconds()/wall.Seconds()
	cfg.Logf("idle: %.4f CPU s over %.1f s = %.3f %% of a core (%s; clock ticks read %.2f s)", id.CPUSeconds, id.Seconds, id.PercentOfCore, id.Method, id.TickCPUSeconds)
	return id, nil
}

// memoryChildren drains a backlog of big records in child processes with
// and without a memory budget and compares their peak RSS (as each child
// reports its own VmHWM: the rusage maxrss of a child would include this
// process's memory at fork time).
func memoryChildren(ctx context.Context, b *broker.Broker, cfg *Config) (*Memory, error) {
	n, size, budget := cfg.MemoryRecords, cfg.MemoryRecordBytes, cfg.MemoryBudget
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "bench-mem", Partitions: 4}); err != nil {
		return nil, err
	}
	if err := preload(ctx, b, "bench-mem", n, size, 4, cfg.Logf); err != nil {
		return nil, err
	}
	defer func() { _ = b.DeleteRecords(context.Background(), "bench-mem", 0, -1) }()
	const delay = "2us" // a sink slower than the fetch, so that data can pile up
	runner := &queryrun.ChildRunner{Command: cfg.Command}
	run := func(withBudget bool) (int64, error) {
		dir, done, err := cfg.scratchDir("mem-")
		if err != nil {
			return 0, err
		}
		defer done()
		s := queryrun.Setup{AvailableNow: true, SinkOptions: map[string]string{"sluice.sink.delayPerRow": delay}}
		s.Options = map[string]string{"sluice.memory.budget": "unlimited"}
		if withBudget {
			s.Options["sluice.memory.budget"] = strconv.FormatInt(budget, 10)
		}
		p, err := seedPipeline(dir, b.Addr(), "bench-mem", s)
		if err != nil {
			return 0, err
		}
		proc, err := runner.Start(ctx, p, "")
		if err != nil {
			return 0, err
		}
		if err := waitExit(ctx, proc); err != nil {
			return 0, fmt.Errorf("memory run: %w", err)
		}
		if proc.PeakRSS() < 0 {
			return 0, fmt.Errorf("memory run: the query process reported no peak RSS")
		}
		return proc.PeakRSS(), nil
	}
	with, err := run(true)
	if err != nil {
		return nil, err
	}
	without, err := run(false)
	if err != nil {
		return nil, err
	}
	m := &Memory{Records: n, RecordBytes: size, BudgetBytes: budget, LimitBytes: budget + MemoryHeadroom,
		PeakWithBudget: with, PeakWithout: without, SinkDelayPerRow: delay}
	m.Ratio = float64(with) / float64(without)
	m.WithinBudgetPlus = with <= m.LimitBytes
	cfg.Logf("memory: draining %d × %d B, peak RSS %s with a %s budget, %s", n, size, report.Bytes(with), report.Bytes(budget), report.Bytes(without)+" unlimited")
	return m, nil
}
