package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/sluice-stream/sluice/internal/soak"
)

func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("soak", stderr)
	duration := fs.Duration("duration", time.Hour, "how long the load and the faults last")
	dir := fs.String("dir", "", "work directory (default: a temporary one, removed afterwards)")
	report := fs.String("report", "", "write the samples, trends and counts here as JSON")
	seed := fs.Uint64("seed", 0, "random seed of the kill timing (0 = a new one, printed)")
	sampleEvery := fs.Duration("sample-every", 10*time.Second, "sampling period")
	load := fs.Float64("load", 0.8, "producer rate as a share of the measured capacity")
	limit := fs.Int("max-offsets-per-trigger", 0, "the pipeline's maxOffsetsPerTrigger, which bounds its capacity and so the output's size (0: 4000 records a second)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &exitError{code: 2, err: fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	var err error
	work := *dir
	if work == "" {
		if work, err = os.MkdirTemp("", "sluice-soak-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "soak: %s in %s, seed %d\n", *duration, work, *seed)
	res, err := soak.Run(ctx, soak.Config{
		Command:  func(_ context.Context, args ...string) *exec.Cmd { return sluiceCommand(args...) },
		Dir:      work,
		Duration: *duration, SampleEvery: *sampleEvery, Load: *load, MaxOffsetsPerTrigger: *limit,
		Seed: *seed, Out: stdout,
	})
	if err != nil {
		return err
	}
	printSoak(stdout, res)
	if *report != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*report, b, 0o644); err != nil {
			return err
		}
	}
	if !res.OK() {
		return &exitError{code: 1, err: fmt.Errorf("soak failed: %d problem(s)", len(res.Failures))}
	}
	return nil
}

func printSoak(w io.Writer, r *soak.Result) {
	fmt.Fprintf(w, "\n%d samples; %d kills, %d broker hangs, %d broker restarts, %d spikes\n", len(r.Samples), r.Kills, r.Hangs, r.Restarts, r.Spikes)
	fmt.Fprintf(w, "%-17s %5s %14s %14s %8s %16s  %s\n", "metric", "n", "median", "slope/hour", "t", "tolerance/hour", "verdict")
	for _, t := range r.Trends {
		verdict := "flat"
		switch {
		case t.Rising:
			verdict = "RISING"
		case t.TooFew:
			verdict = "too few samples"
		}
		fmt.Fprintf(w, "%-17s %5d %14.4g %+14.4g %8.2f %16.4g  %s\n", t.Metric, t.N, t.Median, t.SlopePerHour, t.T, t.Tolerance, verdict)
	}
	fmt.Fprintf(w, "lag: max %d records, drained in %.1fs after the producer stopped (bounded: %v)\n", r.MaxLag, r.DrainSeconds, r.Drained)
	fmt.Fprintf(w, "records: %d acknowledged, %d in the topic, %d output; %d lost, %d duplicated, %d mismatched, %d acknowledged but not in the topic\n",
		r.Acked, r.InTopic, r.Output, r.Lost, r.Duplicated, r.Mismatched, r.AckedMissing)
	if r.OK() {
		fmt.Fprintln(w, "verdict: PASS")
		return
	}
	for _, f := range r.Failures {
		fmt.Fprintln(w, "FAIL:", f)
	}
}
