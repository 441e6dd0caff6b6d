package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/rehearse"
)

// sluiceCommand returns a command running this sluice binary with args;
// tests replace it to re-run the test binary as sluice.
var sluiceCommand = func(args ...string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	return exec.Command(exe, args...)
}

func runRehearse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rehearse", stderr)
	quick := fs.Bool("quick", false, "the CI profile: phases 1–4 in under a minute (phase 5 in about 12 s)")
	pipelineFile := fs.String("pipeline", "", "rehearse the query of this pipeline file (default: the seed's query into a noop sink)")
	bootstrap := fs.String("bootstrap", "", "Kafka bootstrap servers (default: an embedded broker)")
	kafkaOpts := kvFlags{}
	fs.Var(kafkaOpts, "kafka-option", "client security option KEY=VALUE for the load, the sampler and the query (repeatable)")
	out := fs.String("out", "", "report directory (default: sluice-rehearsal-YYYYmmdd-HHMMSS)")
	phases := fs.String("phases", "1,2,3,4", "phases to run, comma-separated; 5 (a stateful window count under the spike) runs only when listed")
	inProcess := fs.Bool("in-process", false, "run the queries inside this process (memory is then not measured)")
	verbose := fs.Bool("verbose", false, "show the query processes' stderr")
	prefix := fs.String("topic-prefix", "rehearse", "prefix of the phase topics")
	maxOffsets := fs.Int64("max-offsets-per-trigger", 0, "phase 3's limit (default: computed from the measured capacity)")
	// Profile overrides: the defaults shown are the default profile's,
	// with --quick's in the text.
	d, q := rehearse.Default(), rehearse.Quick()
	trigger := fs.Duration("trigger", d.Trigger, fmt.Sprintf("trigger interval (--quick: %s)", q.Trigger))
	rate := fs.Float64("rate", d.BaseRate, fmt.Sprintf("base rate, records per second (--quick: %g)", q.BaseRate))
	factor := fs.Float64("spike-factor", d.SpikeFactor, fmt.Sprintf("spike multiplier (--quick: %g)", q.SpikeFactor))
	warmup := fs.Duration("spike-at", d.Warmup, fmt.Sprintf("when the spike starts in phases 2–5 (--quick: %s)", q.Warmup))
	spikeFor := fs.Duration("spike-for", d.SpikeFor, fmt.Sprintf("how long the spike lasts (--quick: %s)", q.SpikeFor))
	after := fs.Duration("after", d.After, fmt.Sprintf("how long phases 2–5 go on after the spike (--quick: %s)", q.After))
	baseline := fs.Duration("baseline", d.Baseline, fmt.Sprintf("length of phase 1 (--quick: %s)", q.Baseline))
	partitions := fs.Int("partitions", d.Partitions, fmt.Sprintf("partitions of the phase topics (--quick: %d)", q.Partitions))
	workers := fs.Int("workers", d.Workers, fmt.Sprintf("sluice.workers of the query, 0 = the engine's default (--quick: %d)", q.Workers))
	delay := fs.Duration("sink-delay-per-row", d.SinkDelayPerRow, fmt.Sprintf("simulated sink cost per row (sluice.sink.delayPerRow; 0 = none) (--quick: %s)", q.SinkDelayPerRow))
	budget := fs.String("memory-budget", "", fmt.Sprintf("phase 4's sluice.memory.budget (default %dMiB; --quick: %dMiB)", d.MemoryBudget>>20, q.MemoryBudget>>20))
	recordBytes := fs.Int("record-bytes", d.RecordBytes, fmt.Sprintf("minimum record value size, order JSON padded (--quick: %d)", q.RecordBytes))
	headroom := fs.Float64("headroom", d.Headroom, fmt.Sprintf("phase 3: share of capacity × trigger admitted per batch (--quick: %g)", q.Headroom))
	adaptiveTarget := fs.Float64("adaptive-target", d.AdaptiveTarget, fmt.Sprintf("phase 4: sluice.targetBatchDuration as a share of the trigger (--quick: %g)", q.AdaptiveTarget))
	window := fs.Duration("window", d.Window, fmt.Sprintf("phase 5: tumbling window of the count per customer (--quick: %s)", q.Window))
	wmDelay := fs.Duration("watermark-delay", d.WatermarkDelay, fmt.Sprintf("phase 5: watermark delay behind the orders' event time (--quick: %s)", q.WatermarkDelay))
	statefulBudget := fs.String("stateful-memory-budget", "", fmt.Sprintf("phase 5's sluice.memory.budget, half of it the state share (default %dMiB; --quick: %dMiB)", d.StatefulBudget>>20, q.StatefulBudget>>20))
	logf := addLogFlags(fs, "warn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	prof := rehearse.Default()
	if *quick {
		prof = rehearse.Quick()
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["trigger"] {
		prof.Trigger = *trigger
	}
	if set["rate"] {
		prof.BaseRate = *rate
	}
	if set["spike-factor"] {
		prof.SpikeFactor = *factor
	}
	if set["spike-at"] {
		prof.Warmup = *warmup
	}
	if set["spike-for"] {
		prof.SpikeFor = *spikeFor
	}
	if set["after"] {
		prof.After = *after
	}
	if set["baseline"] {
		prof.Baseline = *baseline
	}
	if set["partitions"] {
		prof.Partitions = *partitions
	}
	if set["workers"] {
		prof.Workers = *workers
	}
	if set["sink-delay-per-row"] {
		prof.SinkDelayPerRow = *delay
	}
	if set["record-bytes"] {
		prof.RecordBytes = *recordBytes
	}
	if set["headroom"] {
		prof.Headroom = *headroom
	}
	if set["adaptive-target"] {
		prof.AdaptiveTarget = *adaptiveTarget
	}
	if set["window"] {
		prof.Window = *window
	}
	if set["watermark-delay"] {
		prof.WatermarkDelay = *wmDelay
	}
	if *budget != "" {
		b, err := options.ParseBytes(*budget)
		if err != nil || b <= 0 {
			return &exitError{code: 2, err: fmt.Errorf("--memory-budget %q: want a size such as 64MiB", *budget)}
		}
		prof.MemoryBudget = b
	}
	if *statefulBudget != "" {
		b, err := options.ParseBytes(*statefulBudget)
		if err != nil || b <= 0 {
			return &exitError{code: 2, err: fmt.Errorf("--stateful-memory-budget %q: want a size such as 256MiB", *statefulBudget)}
		}
		prof.StatefulBudget = b
	}
	if err := prof.Validate(); err != nil {
		return &exitError{code: 2, err: err}
	}
	var nums []int
	for _, s := range strings.Split(*phases, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > rehearse.LastPhase {
			return &exitError{code: 2, err: fmt.Errorf("--phases %q: want numbers from 1 to %d, e.g. 1,2,3,4 or 5", *phases, rehearse.LastPhase)}
		}
		nums = append(nums, n)
	}
	if err := prof.CheckPhases(nums); err != nil {
		return &exitError{code: 2, err: err}
	}
	query := queryrun.SeedQuery()
	if *pipelineFile != "" {
		q, err := rehearse.LoadQuery(*pipelineFile)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		query = q
	}
	dir := *out
	if dir == "" {
		dir = "sluice-rehearsal-" + time.Now().Format("20060102-150405")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	var runner queryrun.Runner
	if *inProcess {
		runner = &queryrun.InProcessRunner{Logger: log}
	} else {
		cr := &queryrun.ChildRunner{Command: sluiceCommand}
		if *verbose {
			cr.Stderr = stderr
		}
		runner = cr
	}
	res, err := rehearse.Run(ctx, rehearse.Config{
		Profile: prof, Query: query, Bootstrap: *bootstrap, KafkaOptions: kafkaOpts, TopicPrefix: *prefix,
		Dir: dir, Runner: runner, Phases: nums, MaxOffsetsPerTrigger: *maxOffsets, Out: stdout, Logger: log,
	})
	if err != nil {
		if res != nil && len(res.Phases) > 0 {
			fmt.Fprintf(stdout, "\nreport of the phases done: %s\n", filepath.Join(dir, rehearse.ReportFile))
		}
		return err
	}
	final := res.Final()
	fmt.Fprintf(stdout, "\nreport: %s (took %s)\n", filepath.Join(dir, rehearse.ReportFile), res.Took.Round(time.Second))
	if final == nil || !final.Verdict.Stable {
		return &exitError{code: 1, err: errors.New("the final phase is not stable; see the report")}
	}
	fmt.Fprintf(stdout, "final phase %d (%s) is stable\n", final.Spec.N, final.Spec.Title)
	return nil
}
