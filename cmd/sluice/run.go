package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/progress"
)

func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	progressFile := fs.String("progress-file", "", "append every batch's progress JSON as one line to this file")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	quiet := fs.Bool("quiet", false, "do not print the per-batch summary line on stderr")
	stats := fs.Bool("stats", false, "print the process's peak resident memory (VmHWM) on stderr at exit")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice run PIPELINE.yaml [flags]")
		fs.PrintDefaults()
	}
	// Accept flags before or after the file name.
	var file string
	rest := args
	for len(rest) > 0 {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		rest = fs.Args()
		if len(rest) > 0 {
			if file != "" {
				return fmt.Errorf("one pipeline file expected, got %q and %q", file, rest[0])
			}
			file, rest = rest[0], rest[1:]
		}
	}
	if file == "" {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("missing PIPELINE.yaml")}
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	session := sluice.NewSession(sluice.WithLogger(log))
	w, err := session.PipelineFile(file)
	if err != nil {
		return err
	}
	w.Stdout(stdout)
	if *progressFile != "" {
		jl, err := progress.OpenJSONLinesFile(*progressFile)
		if err != nil {
			return err
		}
		defer jl.Close()
		w.AddListener(jl)
	}
	if !*quiet {
		w.AddListener(&batchLine{w: stderr})
	}
	q, err := w.Start(ctx)
	if err != nil {
		return err
	}
	if *stats {
		defer func() {
			if hwm, err := peakRSS(); err == nil {
				fmt.Fprintf(stderr, "peak RSS: %d bytes\n", hwm)
			}
		}()
	}
	err = q.AwaitTermination(ctx)
	if ctx.Err() != nil {
		log.Info("signal received; stopping after the current batch")
		return q.Stop()
	}
	return err
}

// batchLine prints one concise line per batch.
type batchLine struct {
	mu sync.Mutex
	w  io.Writer
}

func (b *batchLine) OnQueryStarted(e progress.StartedEvent) {}
func (b *batchLine) OnQueryIdle(progress.IdleEvent)         {}
func (b *batchLine) OnQueryTerminated(progress.TerminatedEvent) {
}

func (b *batchLine) OnQueryProgress(e progress.ProgressEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintln(b.w, formatBatchLine(e.Progress))
}

// formatBatchLine renders a progress report as one line: batch, rows,
// input/processed rate, duration against the trigger, lag and health.
func formatBatchLine(p *progress.Progress) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "batch %d: %d rows, in %.0f/s, processed %.0f/s, %d ms",
		p.BatchID, p.NumInputRows, float64(p.InputRowsPerSecond), float64(p.ProcessedRowsPerSecond), p.BatchDuration)
	if s := p.Sluice; s != nil {
		if s.Timing != nil && s.Timing.TriggerIntervalMs > 0 {
			fmt.Fprintf(&sb, " of %d ms trigger", s.Timing.TriggerIntervalMs)
		}
		if s.Lag != nil {
			fmt.Fprintf(&sb, ", lag %d records", s.Lag.Records)
			if !s.Lag.Seconds.IsZero() {
				fmt.Fprintf(&sb, " / %.1f s", float64(s.Lag.Seconds))
			}
		}
		if s.Health != nil {
			fmt.Fprintf(&sb, ", %s", s.Health.Status)
			if s.Health.Status != "OK" && s.Health.Reason != "" {
				fmt.Fprintf(&sb, " (%s)", s.Health.Reason)
			}
		}
	} else if len(p.Sources) > 0 {
		if m := p.Sources[0].Metrics; m != nil {
			if v, ok := m["maxOffsetsBehindLatest"]; ok {
				fmt.Fprintf(&sb, ", max offsets behind %s", v)
			}
		}
	}
	return sb.String()
}

// peakRSS reads the process's peak resident set size (VmHWM) from
// /proc/self/status.
func peakRSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
