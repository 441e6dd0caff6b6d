package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/bench"
	"github.com/sluice-stream/sluice/internal/options"
)

// runBench is `sluice bench`: the flags of internal/bench's suite, its
// table or JSON.
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
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the first sluice round to this file (the maxOffsetsPerTrigger round to FILE-limited, the many-partition round to FILE-partitions, before the extension)")
	quick := fs.Bool("quick", false, "small sizes and short runs, for CI (numbers are indicative only)")
	only := fs.String("only", "", "comma-separated measurements to run (default: "+strings.Join(bench.Parts, ", ")+"; only when named: "+strings.Join(bench.OptInParts, ", ")+", group mode with 1, 2 and 4 member processes of GOMAXPROCS=1 on a 16-partition topic)")
	idle := fs.Duration("idle", 30*time.Second, "how long to measure an idle query's CPU")
	latencyFor := fs.Duration("latency-for", 10*time.Second, "length of each latency run")
	lightRate := fs.Float64("light-rate", 10_000, "rate of the light-load latency run (records/s; 0 = skip)")
	latencyCapacity := fs.Float64("latency-capacity", 0, "end-to-end capacity (records/s) the 50 % latency runs load half of, instead of probing it (0 = probe; with a capacity given, --only latency runs no throughput rounds); for comparing builds at one rate on a busy machine")
	latencyCPUProfile := fs.String("latency-cpuprofile", "", "write a CPU profile of each latency run's query process to PREFIX-NAME.pprof (NAME: the run, e.g. light-load, light-load-async, at-50-of-capacity); not with --latency-in-process")
	latencyInProcess := fs.Bool("latency-in-process", false, "run the latency runs' query, broker and load generator inside the bench process (default: each in a process of its own, a fresh broker per run)")
	memRecords := fs.Int("memory-records", 300_000, "backlog of the memory measurement")
	memBytes := fs.Int("memory-record-bytes", 1000, "record size of the memory measurement")
	memBudget := fs.String("memory-budget", "64MiB", "sluice.memory.budget of the memory measurement")
	shufflePartitions := fs.Int("shuffle-partitions", 200, "spark.sql.shuffle.partitions of the stateful measurement")
	scaleoutRecords := fs.Int("scaleout-records", 6_000_000, "records of the scale-out measurement (--only scaleout): enough for a steady window of seconds after the group forms (about 1 s of start-up and rebalancing)")
	childRaw := fs.String("child-raw-consume", "", "internal: consume ADDR,TOPIC,N with a raw franz-go client and exit")
	logFlags := addLogFlags(fs, "error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *childRaw != "" {
		return bench.ChildRawConsume(ctx, *childRaw)
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
		quickDefault("scaleout-records", func() { *scaleoutRecords = 200_000 })
	}
	var want []string
	if *only != "" {
		for _, p := range strings.Split(*only, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(bench.AllParts(), p) {
				return &exitError{code: 2, err: fmt.Errorf("--only %q: %q is not a measurement (allowed: %s)", *only, p, strings.Join(bench.AllParts(), ", "))}
			}
			want = append(want, p)
		}
	}
	budget, err := parseBudget(*memBudget)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	logger, err := logFlags.logger(stderr)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	cfg := bench.Config{
		Records: *n, RecordBytes: *size, Partitions: *parts, ManyPartitions: *many, Rounds: *rounds,
		MaxOffsetsPerTrigger: *maxOffsets, SuiteMaxOffsets: *suiteMax, CPUProfile: *cpuProfile, Only: want,
		Idle: *idle, LatencyFor: *latencyFor, LightRate: *lightRate, LatencyInProcess: *latencyInProcess, LatencyCapacity: *latencyCapacity,
		LatencyCPUProfile: *latencyCPUProfile,
		MemoryRecords:     *memRecords, MemoryRecordBytes: *memBytes, MemoryBudget: budget, ShufflePartitions: *shufflePartitions,
		ScaleoutRecords: *scaleoutRecords,
		Command:         sluiceCommand,
		Logger:          logger,
		Logf:            func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) },
	}
	if err := cfg.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
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
		fmt.Fprint(stdout, bench.Table(res).Markdown())
	} else {
		fmt.Fprint(stdout, bench.Table(res).Text())
	}
	where := "embedded kfake broker in the bench process"
	if len(res.Latency) > 0 && res.Latency[0].OwnProcesses {
		where += "; each latency run with a fresh broker and the load generator in processes of their own"
	}
	fmt.Fprintf(stdout, "\nmachine: %s, %d CPUs, %s/%s, %s; load average %s; %s\n",
		res.Machine.Host, res.Machine.CPUs, res.Machine.OS, res.Machine.Arch, res.Machine.Go, res.Machine.Load1m, where)
	return nil
}

func parseBudget(s string) (int64, error) {
	v, err := options.ParseBytes(s)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("--memory-budget %q: want a size such as 32MiB", s)
	}
	return v, nil
}
