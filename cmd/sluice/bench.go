package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/loadgen"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/orders"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/internal/progress"
	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/report"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// benchResult is what `sluice bench --json` prints. The first fields are
// the original throughput benchmark's; the suite's measurements follow,
// each omitted when not run.
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

	Machine        *benchMachine    `json:"machine,omitempty"`
	MaxOffsets     *benchThroughput `json:"throughput_max_offsets,omitempty"`
	ManyPartitions *benchPartitions `json:"many_partitions,omitempty"`
	Latency        []benchLatency   `json:"latency,omitempty"`
	// EndToEndCapacity is what producer, broker and query sustain together
	// on this machine (the latency probe's min of produced and processed
	// rates); the 50 % latency run loads half of it.
	EndToEndCapacity float64       `json:"end_to_end_capacity_per_sec,omitempty"`
	CPU              *benchCPU     `json:"cpu,omitempty"`
	Idle             *benchIdle    `json:"idle,omitempty"`
	Memory           *benchMemory  `json:"memory,omitempty"`
	Targets          []benchTarget `json:"targets,omitempty"`
}

type benchMachine struct {
	CPUs   int    `json:"cpus"`
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Go     string `json:"go"`
	Host   string `json:"host"`
	Date   string `json:"date"`
	Load1m string `json:"load_1m,omitempty"`
}

// benchThroughput is sluice with maxOffsetsPerTrigger against the same
// raw baseline.
type benchThroughput struct {
	MaxOffsetsPerTrigger int64   `json:"max_offsets_per_trigger"`
	SluiceRecordsPerSec  float64 `json:"sluice_records_per_sec"`
	RawRecordsPerSec     float64 `json:"raw_records_per_sec"`
	Ratio                float64 `json:"ratio"`
	Batches              int64   `json:"batches"`
}

// benchPartitions is sluice on many partitions against few, same records.
type benchPartitions struct {
	Many                int     `json:"many"`
	Few                 int     `json:"few"`
	ManyRecordsPerSec   float64 `json:"many_records_per_sec"`
	FewRecordsPerSec    float64 `json:"few_records_per_sec"`
	RawManyRecordsPerSc float64 `json:"raw_many_records_per_sec"`
	Ratio               float64 `json:"ratio"`
}

// benchLatency is produce-timestamp → sink-commit latency at a rate.
type benchLatency struct {
	Label          string  `json:"label"`
	AskedPerSec    float64 `json:"asked_per_sec"`
	AchievedPerSec float64 `json:"achieved_per_sec"`
	// ProcessedPerSec is what the query committed during the load, per
	// second of load.
	ProcessedPerSec float64 `json:"processed_per_sec"`
	Records         int64   `json:"records"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	MaxMs           float64 `json:"max_ms"`
	Batches         int     `json:"batches"`
	// MaxBatchMs is the longest batch: a latency spike with short batches
	// happened before the records reached the query.
	MaxBatchMs    int64 `json:"max_batch_ms"`
	ProducerBound bool  `json:"producer_bound"`
}

// benchCPU is CPU time per million records drained, in child processes.
type benchCPU struct {
	Records              int     `json:"records"`
	SluiceCPUSecPerMil   float64 `json:"sluice_cpu_sec_per_million"`
	RawCPUSecPerMil      float64 `json:"raw_cpu_sec_per_million"`
	Ratio                float64 `json:"ratio"`
	SluiceWallRecsPerSec float64 `json:"sluice_child_records_per_sec"`
}

// benchIdle is the CPU an idle query uses.
type benchIdle struct {
	Seconds       float64 `json:"seconds"`
	CPUSeconds    float64 `json:"cpu_seconds"`
	PercentOfCore float64 `json:"percent_of_core"`
}

// benchMemory is peak RSS draining a backlog with and without a budget.
type benchMemory struct {
	Records          int     `json:"records"`
	RecordBytes      int     `json:"record_bytes"`
	BudgetBytes      int64   `json:"budget_bytes"`
	LimitBytes       int64   `json:"limit_bytes"`
	PeakWithBudget   int64   `json:"peak_rss_with_budget"`
	PeakWithout      int64   `json:"peak_rss_without_budget"`
	Ratio            float64 `json:"ratio"`
	SinkDelayPerRow  string  `json:"sink_delay_per_row"`
	WithinBudgetPlus bool    `json:"within_budget_plus_overhead"`
}

// benchTarget is a target the project is judged by and whether it was met.
type benchTarget struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Target string  `json:"target"`
	Met    bool    `json:"met"`
}

// benchParts lists the suite's measurements, in order.
var benchParts = []string{"throughput", "partitions", "latency", "cpu", "idle", "memory"}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", stderr)
	n := fs.Int("records", 2_000_000, "records to preload for the throughput, partition and CPU measurements")
	size := fs.Int("record-bytes", 200, "approximate value size in bytes")
	parts := fs.Int("partitions", 8, "topic partitions")
	many := fs.Int("many-partitions", 200, "partitions of the many-partition comparison")
	rounds := fs.Int("rounds", 3, "measurement rounds (raw and sluice alternate; medians are reported)")
	maxOffsets := fs.Int64("max-offsets-per-trigger", 0, "also apply maxOffsetsPerTrigger to the main sluice rounds (0 = none)")
	suiteMax := fs.Int64("suite-max-offsets", 10_000, "maxOffsetsPerTrigger of the suite's limited throughput run")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	jsonFile := fs.String("json-file", "", "also write the JSON result to this file")
	markdown := fs.Bool("markdown", false, "print the table as Markdown (for docs/benchmarks.md)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the first sluice round to this file")
	quick := fs.Bool("quick", false, "small sizes and short runs, for CI (numbers are indicative only)")
	only := fs.String("only", "", "comma-separated measurements to run (default all): "+strings.Join(benchParts, ", "))
	idle := fs.Duration("idle", 30*time.Second, "how long to measure an idle query's CPU")
	latencyFor := fs.Duration("latency-for", 10*time.Second, "length of each latency run")
	lightRate := fs.Float64("light-rate", 10_000, "rate of the light-load latency run (records/s; 0 = skip)")
	latencyInProcess := fs.Bool("latency-in-process", false, "run the latency query inside the bench process (default: a child process, apart from the producer and the broker)")
	memRecords := fs.Int("memory-records", 300_000, "backlog of the memory measurement")
	memBytes := fs.Int("memory-record-bytes", 1000, "record size of the memory measurement")
	memBudget := fs.String("memory-budget", "32MiB", "sluice.memory.budget of the memory measurement")
	childRaw := fs.String("child-raw-consume", "", "internal: consume ADDR,TOPIC,N with a raw franz-go client and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *childRaw != "" {
		return childRawConsume(ctx, *childRaw)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		quickDefault := func(name string, apply func()) {
			if !set[name] {
				apply()
			}
		}
		quickDefault("records", func() { *n = 200_000 })
		quickDefault("rounds", func() { *rounds = 1 })
		quickDefault("idle", func() { *idle = 5 * time.Second })
		quickDefault("latency-for", func() { *latencyFor = 3 * time.Second })
		quickDefault("memory-records", func() { *memRecords = 60_000 })
		quickDefault("memory-budget", func() { *memBudget = "16MiB" })
	}
	want := map[string]bool{}
	if *only == "" {
		for _, p := range benchParts {
			want[p] = true
		}
	} else {
		for _, p := range strings.Split(*only, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(benchParts, p) {
				return &exitError{code: 2, err: fmt.Errorf("--only %q: %q is not a measurement (allowed: %s)", *only, p, strings.Join(benchParts, ", "))}
			}
			want[p] = true
		}
	}
	switch {
	case *n < 1 || *rounds < 1 || *parts < 1 || *many < 1 || *size < 0:
		return &exitError{code: 2, err: errors.New("--records, --rounds, --partitions and --many-partitions must be positive")}
	case *memRecords < 1 || *memBytes < 1:
		return &exitError{code: 2, err: errors.New("--memory-records and --memory-record-bytes must be positive")}
	}
	budget, err := parseBudget(*memBudget)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	quiet := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	b, err := broker.Start(ctx, broker.Config{Listen: "127.0.0.1:0", Logger: quiet,
		Topics: []broker.TopicSpec{{Name: "bench", Partitions: int32(*parts)}}})
	if err != nil {
		return err
	}
	defer b.Close()
	host, _ := os.Hostname()
	res := benchResult{Records: *n, RecordBytes: *size, Partitions: *parts, Rounds: *rounds, MaxOffsetsPerTrigger: *maxOffsets,
		Machine: &benchMachine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version(), Host: host,
			Date: time.Now().UTC().Format(time.RFC3339), Load1m: loadAverage()}}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }

	if want["throughput"] || want["partitions"] || want["cpu"] || want["latency"] {
		if err := benchPreload(ctx, b, "bench", *n, *size, int32(*parts), logf); err != nil {
			return err
		}
	}
	if want["throughput"] || want["latency"] {
		if err := benchThroughputRounds(ctx, b.Addr(), &res, *maxOffsets, *suiteMax, *cpuProfile, quiet, logf); err != nil {
			return err
		}
	}
	if want["partitions"] {
		if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "bench-many", Partitions: int32(*many)}); err != nil {
			return err
		}
		if err := benchPreload(ctx, b, "bench-many", *n, *size, int32(*many), logf); err != nil {
			return err
		}
		pr, err := benchManyPartitions(ctx, b.Addr(), *n, *rounds, *parts, *many, quiet, logf)
		if err != nil {
			return err
		}
		res.ManyPartitions = pr
		_ = b.DeleteRecords(ctx, "bench-many", 0, -1) // free the broker's memory (best effort)
	}
	if want["cpu"] {
		c, err := benchCPUChild(ctx, b.Addr(), *n, *rounds, logf)
		if err != nil {
			return err
		}
		res.CPU = c
	}
	if want["latency"] {
		// The drain rate measured above has the machine to itself; with a
		// producer and the broker's ingest on the same cores the system
		// takes less. Probe that end-to-end capacity first, then load at
		// half of it.
		if drain := res.SluiceRecordsPerSec; drain > 0 {
			probe, err := benchLatencyRun(ctx, b, "capacity probe", drain, min(*latencyFor, 5*time.Second), *parts, *latencyInProcess, quiet, logf)
			if err != nil {
				return err
			}
			res.Latency = append(res.Latency, probe)
			capacity := min(probe.AchievedPerSec, probe.ProcessedPerSec)
			res.EndToEndCapacity = capacity
			logf("end-to-end capacity on this machine (producer, broker and query together): %.0f rec/s", capacity)
			l, err := benchLatencyRun(ctx, b, "at 50 % of capacity", capacity/2, *latencyFor, *parts, *latencyInProcess, quiet, logf)
			if err != nil {
				return err
			}
			res.Latency = append(res.Latency, l)
		}
		if *lightRate > 0 {
			l, err := benchLatencyRun(ctx, b, "light load", *lightRate, *latencyFor, *parts, *latencyInProcess, quiet, logf)
			if err != nil {
				return err
			}
			res.Latency = append(res.Latency, l)
		}
	}
	if want["idle"] {
		id, err := benchIdleChild(ctx, b, *idle, logf)
		if err != nil {
			return err
		}
		res.Idle = id
	}
	if want["memory"] {
		m, err := benchMemoryChildren(ctx, b, *memRecords, *memBytes, budget, logf)
		if err != nil {
			return err
		}
		res.Memory = m
	}
	res.Targets = benchTargets(&res)
	if *jsonFile != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	if *markdown {
		fmt.Fprint(stdout, benchTable(&res).Markdown())
	} else {
		fmt.Fprint(stdout, benchTable(&res).Text())
	}
	fmt.Fprintf(stdout, "\nmachine: %s, %d CPUs, %s/%s, %s; load average %s; embedded kfake broker in the bench process\n",
		res.Machine.Host, res.Machine.CPUs, res.Machine.OS, res.Machine.Arch, res.Machine.Go, res.Machine.Load1m)
	return nil
}

func parseBudget(s string) (int64, error) {
	v, err := options.ParseBytes(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("--memory-budget %q: want a size such as 32MiB", s)
	}
	return v, nil
}

// loadAverage returns the 1-minute load average from /proc, or "".
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	if f := strings.Fields(string(data)); len(f) > 0 {
		return f[0]
	}
	return ""
}

func benchPreload(ctx context.Context, b *broker.Broker, topic string, n, size int, parts int32, logf func(string, ...any)) error {
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer prod.Close()
	logf("preloading %d records of ~%d B over %d partitions of %s...", n, size, parts, topic)
	t0 := time.Now()
	if err := orders.Preload(ctx, prod, topic, n, size, parts); err != nil {
		return fmt.Errorf("preload %s: %w", topic, err)
	}
	logf("preloaded in %s", time.Since(t0).Round(time.Millisecond))
	return nil
}

// benchThroughputRounds measures raw franz-go and sluice (default trigger,
// and with maxOffsetsPerTrigger) in alternating rounds.
func benchThroughputRounds(ctx context.Context, addr string, res *benchResult, maxOffsets, suiteMax int64, cpuProfile string, log *slog.Logger, logf func(string, ...any)) error {
	var raws, sluices, limited []float64
	var batches, limitedBatches int64
	for r := 0; r < res.Rounds; r++ {
		raw, err := rawConsume(ctx, addr, "bench", res.Records)
		if err != nil {
			return fmt.Errorf("raw consumer: %w", err)
		}
		if cpuProfile != "" && r == 0 {
			f, err := os.Create(cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
		}
		sl, nb, err := sluiceConsume(ctx, addr, "bench", res.Records, maxOffsets, log)
		if cpuProfile != "" && r == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return fmt.Errorf("sluice query: %w", err)
		}
		batches = nb
		raws, sluices = append(raws, raw), append(sluices, sl)
		line := fmt.Sprintf("round %d: raw franz-go %.0f rec/s, sluice %.0f rec/s (%d batches)", r+1, raw, sl, nb)
		if suiteMax > 0 {
			lim, lb, err := sluiceConsume(ctx, addr, "bench", res.Records, suiteMax, log)
			if err != nil {
				return fmt.Errorf("sluice query with maxOffsetsPerTrigger: %w", err)
			}
			limited, limitedBatches = append(limited, lim), lb
			line += fmt.Sprintf(", sluice maxOffsetsPerTrigger=%d %.0f rec/s (%d batches)", suiteMax, lim, lb)
		}
		logf("%s", line)
	}
	res.RawRecordsPerSec, res.SluiceRecordsPerSec, res.SluiceBatches = median(raws), median(sluices), batches
	res.Ratio = res.SluiceRecordsPerSec / res.RawRecordsPerSec
	if suiteMax > 0 {
		res.MaxOffsets = &benchThroughput{MaxOffsetsPerTrigger: suiteMax, SluiceRecordsPerSec: median(limited),
			RawRecordsPerSec: res.RawRecordsPerSec, Batches: limitedBatches}
		res.MaxOffsets.Ratio = res.MaxOffsets.SluiceRecordsPerSec / res.RawRecordsPerSec
	}
	return nil
}

// benchManyPartitions measures sluice on the many-partition topic against
// the few-partition one, alternating, same records.
func benchManyPartitions(ctx context.Context, addr string, n, rounds, few, many int, log *slog.Logger, logf func(string, ...any)) (*benchPartitions, error) {
	var f, m, rm []float64
	for r := 0; r < rounds; r++ {
		a, _, err := sluiceConsume(ctx, addr, "bench", n, 0, log)
		if err != nil {
			return nil, err
		}
		b, nb, err := sluiceConsume(ctx, addr, "bench-many", n, 0, log)
		if err != nil {
			return nil, err
		}
		raw, err := rawConsume(ctx, addr, "bench-many", n)
		if err != nil {
			return nil, err
		}
		f, m, rm = append(f, a), append(m, b), append(rm, raw)
		logf("partitions round %d: sluice %d partitions %.0f rec/s, %d partitions %.0f rec/s (%d batches); raw %d partitions %.0f rec/s", r+1, few, a, many, b, nb, many, raw)
	}
	p := &benchPartitions{Many: many, Few: few, ManyRecordsPerSec: median(m), FewRecordsPerSec: median(f), RawManyRecordsPerSc: median(rm)}
	p.Ratio = p.ManyRecordsPerSec / p.FewRecordsPerSec
	return p, nil
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

// childRawConsume is the child side of the CPU measurement's baseline.
func childRawConsume(ctx context.Context, spec string) error {
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

// benchPipeline writes a pipeline file of the seed's query on topic.
func benchPipeline(dir, addr, topic, trigger, options, sinkOptions, starting string) (string, error) {
	p := filepath.Join(dir, "bench.yaml")
	yaml := fmt.Sprintf(`name: bench
%ssource:
  format: kafka
  options:
    kafka.bootstrap.servers: %s
    subscribe: %s
    startingOffsets: %s
transform:
  - selectExpr: ["CAST(value AS STRING) AS json"]
  - withColumn: {name: processed_ts, expr: "current_timestamp()"}
sink:
  format: noop
  options:
    checkpointLocation: %s
%s%s`, options, addr, topic, starting, filepath.Join(dir, "chk"), sinkOptions, trigger)
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		return "", err
	}
	return p, nil
}

var peakLineRE = regexp.MustCompile(`peak RSS: (\d+) bytes`)

// childCPU runs cmd to completion and returns its CPU time and wall time.
func childCPU(cmd *exec.Cmd) (cpu, wall time.Duration, err error) {
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	wall = time.Since(start)
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), wall, nil
}

// benchCPUChild drains the preloaded topic in child processes, sluice
// (availableNow) and raw franz-go, and reports CPU seconds per million.
func benchCPUChild(ctx context.Context, addr string, n, rounds int, logf func(string, ...any)) (*benchCPU, error) {
	var sl, raw, rates []float64
	for r := 0; r < rounds; r++ {
		dir, err := os.MkdirTemp("", "sluice-bench-cpu-")
		if err != nil {
			return nil, err
		}
		p, err := benchPipeline(dir, addr, "bench", "trigger:\n  availableNow: true\n", "", "", "earliest")
		if err != nil {
			return nil, err
		}
		cpu, wall, err := childCPU(sluiceCommand("run", p, "--quiet", "--log-level", "error"))
		os.RemoveAll(dir)
		if err != nil {
			return nil, err
		}
		rcpu, _, err := childCPU(sluiceCommand("bench", "--child-raw-consume", fmt.Sprintf("%s,bench,%d", addr, n)))
		if err != nil {
			return nil, err
		}
		perMil := func(d time.Duration) float64 { return d.Seconds() / (float64(n) / 1e6) }
		sl, raw, rates = append(sl, perMil(cpu)), append(raw, perMil(rcpu)), append(rates, float64(n)/wall.Seconds())
		logf("cpu round %d: sluice %.2f CPU s per million records (child process, %.0f rec/s wall incl. start-up), raw franz-go %.2f", r+1, perMil(cpu), float64(n)/wall.Seconds(), perMil(rcpu))
	}
	c := &benchCPU{Records: n, SluiceCPUSecPerMil: median(sl), RawCPUSecPerMil: median(raw), SluiceWallRecsPerSec: median(rates)}
	c.Ratio = c.SluiceCPUSecPerMil / c.RawCPUSecPerMil
	return c, nil
}

// benchIdleChild runs the seed query with the default trigger on an empty
// topic in a child process and measures its CPU over d, after a 2 s
// start-up.
func benchIdleChild(ctx context.Context, b *broker.Broker, d time.Duration, logf func(string, ...any)) (*benchIdle, error) {
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "bench-idle", Partitions: 8}); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-bench-idle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	p, err := benchPipeline(dir, b.Addr(), "bench-idle", "", "", "", "latest")
	if err != nil {
		return nil, err
	}
	logf("idle: running the query on an empty topic for %s (+2 s start-up)...", d)
	cmd := sluiceCommand("run", p, "--quiet", "--log-level", "error")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sleep := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sleep(2 * time.Second); err != nil {
		return nil, err
	}
	c0, err0 := procstat.CPU(cmd.Process.Pid)
	t0 := time.Now()
	if err := sleep(d); err != nil {
		return nil, err
	}
	c1, err1 := procstat.CPU(cmd.Process.Pid)
	wall := time.Since(t0)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("idle query: %w\n%s", err, out.String())
	}
	cpu := c1 - c0
	if err0 != nil || err1 != nil { // no /proc: the whole life from rusage
		cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		wall += 2 * time.Second
	}
	id := &benchIdle{Seconds: wall.Seconds(), CPUSeconds: cpu.Seconds(), PercentOfCore: 100 * cpu.Seconds() / wall.Seconds()}
	logf("idle: %.3f CPU s over %.1f s = %.2f %% of a core", id.CPUSeconds, id.Seconds, id.PercentOfCore)
	return id, nil
}

// benchMemoryChildren drains a backlog of big records in child processes
// with and without a memory budget and compares their peak RSS.
func benchMemoryChildren(ctx context.Context, b *broker.Broker, n, size int, budget int64, logf func(string, ...any)) (*benchMemory, error) {
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: "bench-mem", Partitions: 4}); err != nil {
		return nil, err
	}
	if err := benchPreload(ctx, b, "bench-mem", n, size, 4, logf); err != nil {
		return nil, err
	}
	defer func() { _ = b.DeleteRecords(context.Background(), "bench-mem", 0, -1) }()
	const delay = "2us" // a sink slower than the fetch, so that data can pile up
	run := func(withBudget bool) (int64, error) {
		dir, err := os.MkdirTemp("", "sluice-bench-mem-")
		if err != nil {
			return 0, err
		}
		defer os.RemoveAll(dir)
		opts := ""
		if withBudget {
			opts = fmt.Sprintf("options:\n  sluice.memory.budget: %d\n", budget)
		}
		p, err := benchPipeline(dir, b.Addr(), "bench-mem", "trigger:\n  availableNow: true\n", opts, "    sluice.sink.delayPerRow: "+delay+"\n", "earliest")
		if err != nil {
			return 0, err
		}
		// The child's rusage maxrss would include this process's memory
		// at fork time; --stats reports the child's own VmHWM.
		cmd := sluiceCommand("run", p, "--quiet", "--log-level", "error", "--stats")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("memory run: %w\n%s", err, out.String())
		}
		m := peakLineRE.FindStringSubmatch(out.String())
		if m == nil {
			return 0, fmt.Errorf("memory run printed no peak RSS:\n%s", out.String())
		}
		return strconv.ParseInt(m[1], 10, 64)
	}
	with, err := run(true)
	if err != nil {
		return nil, err
	}
	without, err := run(false)
	if err != nil {
		return nil, err
	}
	m := &benchMemory{Records: n, RecordBytes: size, BudgetBytes: budget, LimitBytes: budget + sluice.BudgetOverhead,
		PeakWithBudget: with, PeakWithout: without, SinkDelayPerRow: delay}
	m.Ratio = float64(with) / float64(without)
	m.WithinBudgetPlus = with <= m.LimitBytes
	logf("memory: draining %d × %d B, peak RSS %s with a %s budget, %s without", n, size, report.Bytes(with), report.Bytes(budget), report.Bytes(without))
	return m, nil
}

// benchLatencyRun produces at rate for d on a fresh topic while the seed
// query (default trigger, in this process) reads it, then computes each
// record's latency: the end of the batch that committed it minus its
// produce timestamp. The first second (a fifth of a shorter run) is a
// warm-up and not counted.
func benchLatencyRun(ctx context.Context, b *broker.Broker, label string, rate float64, d time.Duration, parts int, inProcess bool, log *slog.Logger, logf func(string, ...any)) (benchLatency, error) {
	topic := fmt.Sprintf("bench-latency-%d", time.Now().UnixNano())
	if err := b.CreateTopic(ctx, broker.TopicSpec{Name: topic, Partitions: int32(parts)}); err != nil {
		return benchLatency{}, err
	}
	defer func() { _ = b.DeleteRecords(context.Background(), topic, 0, -1) }()
	chk, err := os.MkdirTemp("", "sluice-bench-lat-")
	if err != nil {
		return benchLatency{}, err
	}
	defer os.RemoveAll(chk)
	q, err := startLatencyQuery(ctx, b.Addr(), topic, chk, inProcess, log)
	if err != nil {
		return benchLatency{}, err
	}
	defer q.stop()
	shape, _ := loadgen.NewShape(loadgen.ShapeOrders, 0, 1)
	logf("latency (%s): producing %.0f rec/s for %s with the query running...", label, rate, d)
	loadStart := time.Now()
	load, err := loadgen.Run(ctx, loadgen.Config{Brokers: []string{b.Addr()}, Topic: topic, Profile: loadgen.Steady{Rate: rate},
		Duration: d, Shape: shape, Keys: loadgen.Keys{Count: 1000}, MaxBuffered: 100_000, Logger: log})
	if err != nil {
		return benchLatency{}, err
	}
	// Wait for the query to commit everything.
	deadline := time.Now().Add(time.Minute)
	for {
		var rows int64
		for _, p := range q.batches() {
			rows += p.NumInputRows
		}
		if rows >= load.Acked || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := q.stop(); err != nil {
		return benchLatency{}, err
	}
	ps := q.batches()
	lat, err := recordLatencies(ctx, b.Addr(), topic, ps, load.Acked, min(time.Second, d/5))
	if err != nil {
		return benchLatency{}, err
	}
	l := benchLatency{Label: label, AskedPerSec: rate, AchievedPerSec: load.AchievedRate(), Records: int64(len(lat)), Batches: len(ps),
		ProducerBound: load.Throttled() || load.AchievedRate() < 0.95*rate}
	loadEnd := loadStart.Add(load.Duration).UnixMilli()
	var inTime int64
	for _, p := range ps {
		if st, err := progress.ParseTime(p.Timestamp); err == nil && st.UnixMilli()+p.BatchDuration <= loadEnd {
			inTime += p.NumInputRows
		}
		l.MaxBatchMs = max(l.MaxBatchMs, p.BatchDuration)
	}
	l.ProcessedPerSec = float64(inTime) / load.Duration.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(f float64) float64 { return float64(lat[max(0, int(math.Ceil(f*float64(len(lat))))-1)]) }
		l.P50Ms, l.P99Ms, l.MaxMs = q(0.5), q(0.99), float64(lat[len(lat)-1])
	}
	logf("latency (%s): asked %.0f rec/s, produced %.0f, processed %.0f during the load; p50 %.0f ms, p99 %.0f ms, max %.0f ms over %d records in %d batches (longest %d ms)",
		label, rate, l.AchievedPerSec, l.ProcessedPerSec, l.P50Ms, l.P99Ms, l.MaxMs, l.Records, l.Batches, l.MaxBatchMs)
	return l, nil
}

// latencyQuery is the seed query reading the latency topic, in this
// process or in a child process.
type latencyQuery interface {
	batches() []*progress.Progress
	stop() error
}

type inProcessQuery struct {
	q     *sluice.StreamingQuery
	mu    sync.Mutex
	ps    []*progress.Progress
	once  sync.Once
	stopE error
}

func (q *inProcessQuery) batches() []*progress.Progress {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.ps)
}

func (q *inProcessQuery) stop() error {
	q.once.Do(func() { q.stopE = q.q.Stop() })
	return q.stopE
}

type childQuery struct {
	cmd      *exec.Cmd
	out      *strings.Builder
	progress string
	once     sync.Once
	stopE    error
}

func (q *childQuery) batches() []*progress.Progress {
	ps, _ := queryrun.ReadProgress(q.progress)
	return ps
}

func (q *childQuery) stop() error {
	q.once.Do(func() {
		_ = q.cmd.Process.Signal(syscall.SIGTERM)
		if err := q.cmd.Wait(); err != nil {
			q.stopE = fmt.Errorf("latency query: %w\n%s", err, q.out.String())
		}
	})
	return q.stopE
}

// startLatencyQuery starts the seed query (default trigger, noop sink) on
// topic.
func startLatencyQuery(ctx context.Context, addr, topic, dir string, inProcess bool, log *slog.Logger) (latencyQuery, error) {
	if inProcess {
		q := &inProcessQuery{}
		listener := &progress.ListenerFuncs{OnProgress: func(e progress.ProgressEvent) {
			q.mu.Lock()
			q.ps = append(q.ps, e.Progress)
			q.mu.Unlock()
		}}
		sq, err := sluice.NewSession(sluice.WithLogger(log)).ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", addr).Option("subscribe", topic).Option("startingOffsets", "earliest").
			Load().SelectExpr("CAST(value AS STRING) AS json").WithColumn("processed_ts", "current_timestamp()").
			WriteStream().Format("noop").Option("checkpointLocation", filepath.Join(dir, "chk")).AddListener(listener).Start(ctx)
		if err != nil {
			return nil, err
		}
		q.q = sq
		return q, nil
	}
	p, err := benchPipeline(dir, addr, topic, "", "", "", "earliest")
	if err != nil {
		return nil, err
	}
	q := &childQuery{progress: filepath.Join(dir, "progress.jsonl"), out: &strings.Builder{}}
	q.cmd = sluiceCommand("run", p, "--progress-file", q.progress, "--quiet", "--log-level", "error")
	q.cmd.Stdout, q.cmd.Stderr = q.out, q.out
	if err := q.cmd.Start(); err != nil {
		return nil, err
	}
	return q, nil
}

// recordLatencies reads the topic back for the records' produce
// timestamps and returns, for every record produced after the warm-up, the
// end of the batch that committed it minus its timestamp, in
// milliseconds.
func recordLatencies(ctx context.Context, addr, topic string, ps []*progress.Progress, want int64, warmup time.Duration) ([]int32, error) {
	type span struct {
		start, end int64
		doneMs     int64
	}
	spans := map[int32][]span{}
	for _, p := range ps {
		st, err := progress.ParseTime(p.Timestamp)
		if err != nil {
			return nil, err
		}
		done := st.UnixMilli() + p.BatchDuration
		for _, s := range p.Sources {
			a, b := sparktext.PartitionOffsets(s.StartOffset), sparktext.PartitionOffsets(s.EndOffset)
			for part, e := range b {
				spans[part] = append(spans[part], span{start: a[part], end: e, doneMs: done})
			}
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var lat []int32
	var first int64 = math.MaxInt64
	type rec struct {
		part     int32
		off, tms int64
	}
	var recs []rec
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for int64(len(recs)) < want {
		f := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return nil, fmt.Errorf("read back %s: got %d of %d records: %w", topic, len(recs), want, err)
		}
		f.EachRecord(func(r *kgo.Record) {
			recs = append(recs, rec{r.Partition, r.Offset, r.Timestamp.UnixMilli()})
			first = min(first, r.Timestamp.UnixMilli())
		})
	}
	for _, r := range recs {
		if r.tms < first+warmup.Milliseconds() {
			continue // warm-up
		}
		for _, s := range spans[r.part] {
			if r.off >= s.start && r.off < s.end {
				lat = append(lat, int32(max(0, s.doneMs-r.tms)))
				break
			}
		}
	}
	return lat, nil
}

// benchTargets compares the figures with the project's targets.
func benchTargets(r *benchResult) []benchTarget {
	var t []benchTarget
	if r.RawRecordsPerSec > 0 {
		t = append(t, benchTarget{"throughput ratio, default trigger", r.Ratio, "≥ 0.90", r.Ratio >= 0.9})
	}
	if m := r.MaxOffsets; m != nil {
		t = append(t, benchTarget{fmt.Sprintf("throughput ratio, maxOffsetsPerTrigger=%d", m.MaxOffsetsPerTrigger), m.Ratio, "≥ 0.90", m.Ratio >= 0.9})
	}
	if p := r.ManyPartitions; p != nil {
		t = append(t, benchTarget{fmt.Sprintf("%d vs %d partitions", p.Many, p.Few), p.Ratio, "≥ 0.80", p.Ratio >= 0.8})
	}
	for _, l := range r.Latency {
		if strings.HasPrefix(l.Label, "at 50") {
			t = append(t, benchTarget{"p99 latency at 50 % load (ms)", l.P99Ms, "≤ 50", l.P99Ms <= 50})
		}
	}
	if i := r.Idle; i != nil {
		t = append(t, benchTarget{"idle CPU (% of a core)", i.PercentOfCore, "< 1", i.PercentOfCore < 1})
	}
	if m := r.Memory; m != nil {
		t = append(t, benchTarget{"peak RSS with budget (MiB)", float64(m.PeakWithBudget) / (1 << 20),
			fmt.Sprintf("≤ %.0f (budget + overhead)", float64(m.LimitBytes)/(1<<20)), m.WithinBudgetPlus})
	}
	return t
}

// benchTable renders the result as a table.
func benchTable(r *benchResult) *report.Table {
	t := &report.Table{Header: []string{"measurement", "sluice", "baseline", "ratio", "target", "met"}, Right: []int{1, 2, 3}}
	rate := func(v float64) string { return report.Number(int64(v)) + "/s" }
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	}
	if r.RawRecordsPerSec > 0 {
		t.AddRow(fmt.Sprintf("throughput, default trigger (%s × %d B, %d partitions)", report.Number(int64(r.Records)), r.RecordBytes, r.Partitions),
			rate(r.SluiceRecordsPerSec), "raw franz-go "+rate(r.RawRecordsPerSec), report.Float(r.Ratio, 3), "≥ 0.90", met(r.Ratio >= 0.9))
	}
	if m := r.MaxOffsets; m != nil {
		t.AddRow(fmt.Sprintf("throughput, maxOffsetsPerTrigger=%s (%d batches)", report.Number(m.MaxOffsetsPerTrigger), m.Batches),
			rate(m.SluiceRecordsPerSec), "raw franz-go "+rate(m.RawRecordsPerSec), report.Float(m.Ratio, 3), "≥ 0.90", met(m.Ratio >= 0.9))
	}
	if p := r.ManyPartitions; p != nil {
		t.AddRow(fmt.Sprintf("%d vs %d partitions, same records (raw on %d: %s)", p.Many, p.Few, p.Many, rate(p.RawManyRecordsPerSc)),
			rate(p.ManyRecordsPerSec), fmt.Sprintf("%d partitions %s", p.Few, rate(p.FewRecordsPerSec)), report.Float(p.Ratio, 3), "≥ 0.80", met(p.Ratio >= 0.8))
	}
	for _, l := range r.Latency {
		note := ""
		if l.ProducerBound {
			note = ", producer-bound"
		}
		target, ok := "", ""
		if strings.HasPrefix(l.Label, "at 50") {
			target, ok = "p99 ≤ 50 ms", met(l.P99Ms <= 50)
		}
		if l.Label == "capacity probe" {
			t.AddRow(fmt.Sprintf("end-to-end capacity probe: asked %s, produced %s, processed %s", rate(l.AskedPerSec), rate(l.AchievedPerSec), rate(l.ProcessedPerSec)),
				rate(r.EndToEndCapacity), fmt.Sprintf("p99 %.0f ms (saturated)", l.P99Ms), "", "", "")
			continue
		}
		t.AddRow(fmt.Sprintf("latency %s: asked %s, produced %s%s", l.Label, rate(l.AskedPerSec), rate(l.AchievedPerSec), note),
			fmt.Sprintf("p50 %.0f ms, p99 %.0f ms", l.P50Ms, l.P99Ms), fmt.Sprintf("max %.0f ms", l.MaxMs), "", target, ok)
	}
	if c := r.CPU; c != nil {
		t.AddRow(fmt.Sprintf("CPU s per million records (child processes, %s records)", report.Number(int64(c.Records))),
			report.Float(c.SluiceCPUSecPerMil, 2)+" s", "raw franz-go "+report.Float(c.RawCPUSecPerMil, 2)+" s", report.Float(c.Ratio, 2), "", "")
	}
	if i := r.Idle; i != nil {
		t.AddRow(fmt.Sprintf("idle CPU over %.0f s, no data", i.Seconds), report.Float(i.PercentOfCore, 2)+" % of a core",
			report.Float(i.CPUSeconds, 3)+" CPU s", "", "< 1 %", met(i.PercentOfCore < 1))
	}
	if m := r.Memory; m != nil {
		t.AddRow(fmt.Sprintf("peak RSS draining %s × %d B (sink %s/row)", report.Number(int64(m.Records)), m.RecordBytes, m.SinkDelayPerRow),
			report.Bytes(m.PeakWithBudget)+" with a "+report.Bytes(m.BudgetBytes)+" budget", report.Bytes(m.PeakWithout)+" without",
			report.Float(m.Ratio, 2), "≤ "+report.Bytes(m.LimitBytes), met(m.WithinBudgetPlus))
	}
	return t
}
