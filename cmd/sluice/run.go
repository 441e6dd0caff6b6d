package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/internal/web"
	"github.com/sluice-stream/sluice/progress"
)

// uiAddrFlagSet reports whether --ui-addr was given explicitly.
func uiAddrFlagSet(fs interface{ Visit(func(*flag.Flag)) }) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "ui-addr" })
	return set
}

func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	progressFile := fs.String("progress-file", "", "append every batch's progress JSON as one line to this file")
	logf := addLogFlags(fs, "info")
	quiet := fs.Bool("quiet", false, "do not print the per-batch summary line on stderr")
	stats := fs.Bool("stats", false, "print the process's peak resident memory (VmHWM) on stderr at exit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file")
	uiAddr := fs.String("ui-addr", web.DefaultAddr, `serve the live UI, the HTTP API and /metrics here ("" or "off" to disable)`)
	uiToken := fs.String("ui-token", "", "token for the HTTP API: required to change limits, and for every request off loopback; "+
		"prefer the SLUICE_UI_TOKEN environment variable, which other users cannot see in ps (default $SLUICE_UI_TOKEN)")
	shutdownTimeout := fs.Duration("shutdown-timeout", DefaultShutdownTimeout, "on SIGTERM or SIGINT, how long the running batch may take to finish and commit; "+
		"after that it is abandoned and re-runs from the checkpoint on the next start (a second signal, more than 0.5 s after the first, abandons it at once)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: sluice run PIPELINE.yaml [flags]")
		printFlags(stderr, fs)
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
	log, err := logf.logger(stderr)
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer stop()
	}
	// The process is the query's: /metrics carries the Go runtime's and
	// the process's own metrics too (go_goroutines, process_open_fds,
	// process_resident_memory_bytes…), as any Prometheus exporter does.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	session := sluice.NewSession(sluice.WithLogger(log), sluice.WithGoMemoryLimit(), sluice.WithRegistry(reg))
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
	var bl *batchLine
	if !*quiet {
		bl = newBatchLine(stderr)
		w.AddListener(bl)
	}
	// The HTTP server starts before the query, so that the probes answer
	// during start-up (/healthz 200, /readyz 503 "starting"), and outlives
	// a signal: it is closed when the run returns, so /readyz says
	// "stopping" and /metrics can be scraped while the last batch commits.
	st := &runState{}
	if *uiAddr != "" && *uiAddr != "off" {
		st.group = newGroupView(file)
		token := *uiToken
		if token == "" {
			token = os.Getenv("SLUICE_UI_TOKEN")
		}
		srv, err := serveUI(context.WithoutCancel(ctx), *uiAddr, token, st, session.MetricsHandler(), log)
		switch {
		case err != nil && uiAddrFlagSet(fs):
			return fmt.Errorf("--ui-addr: %w", err)
		case err != nil:
			log.Warn("live UI not started (the default address is taken; pass --ui-addr to choose another)", "err", err)
		default:
			defer srv.Close()
			log.Info("live UI and API", "url", "http://"+srv.Addr()+"/")
		}
	}
	// Package initialisation and start-up mapped most of the executable;
	// keep resident only what the query uses from here on (the Go memory
	// limit, set as the query starts, subtracts what is resident then).
	if n, err := procstat.ReleaseStartupPages(); err != nil {
		log.Debug("start-up pages of the executable not released", "err", err)
	} else if n > 0 {
		log.Debug("released the executable's start-up pages", "bytes", n)
	}
	q, interrupted, err := startQuery(ctx, w, log)
	if interrupted || err != nil {
		return err
	}
	st.started(q)
	if bl != nil {
		bl.setAvailableNow(q.Trigger() == sluice.AvailableNow())
	}
	if *stats {
		defer func() {
			if _, hwm, err := procstat.Memory(os.Getpid()); err == nil {
				fmt.Fprintf(stderr, "peak RSS: %d bytes\n", hwm)
			}
		}()
	}
	err = q.AwaitTermination(ctx)
	if ctx.Err() != nil {
		st.stopping.Store(true)
		return shutdown(q, *shutdownTimeout, log)
	}
	return err
}

// DefaultShutdownTimeout is how long `sluice run` lets the running batch
// finish after SIGTERM or SIGINT (--shutdown-timeout).
const DefaultShutdownTimeout = 30 * time.Second

// startQuery starts the query. A signal (ctx ending) during start-up —
// connecting, resolving starting offsets — interrupts it: that is not a
// failure, and nothing was run (interrupted, nil error). Once the query
// runs, ctx no longer stops it: shutdown does, gracefully.
func startQuery(ctx context.Context, w *sluice.DataStreamWriter, log *slog.Logger) (q *sluice.StreamingQuery, interrupted bool, err error) {
	qctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopStartup := context.AfterFunc(ctx, cancel)
	q, err = w.Start(qctx)
	running := stopStartup()
	if err != nil {
		cancel()
		if ctx.Err() != nil {
			log.Info("signal received during start-up; stopped before running any batch")
			return nil, true, nil
		}
		return nil, false, err
	}
	if !running { // the signal came as Start returned: the query is being cancelled
		_ = q.AwaitTermination(context.Background())
		log.Info("signal received during start-up; stopped")
		return nil, true, q.Exception()
	}
	return q, false, nil
}

// duplicateSignalWindow is how soon after the first signal another one is
// taken for a duplicate delivery rather than a second request.
const duplicateSignalWindow = 500 * time.Millisecond

// shutdown stops q after a signal as documented: no new batch starts, the
// running batch finishes and commits within timeout (a second signal cuts
// the wait short), then the query stops. An abandoned batch is not a
// failure: it re-runs from the checkpoint on the next start.
func shutdown(q *sluice.StreamingQuery, timeout time.Duration, log *slog.Logger) error {
	log.Info("signal received: no new batches; the running batch finishes and commits", "shutdownTimeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	first := time.Now()
	go func() {
		for {
			select {
			case <-again:
				// The same signal delivered twice (timeout(1) and some
				// supervisors signal the process and then its group) is
				// not a second request.
				if time.Since(first) < duplicateSignalWindow {
					continue
				}
				log.Warn("second signal: abandoning the running batch now")
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	err := q.StopGracefully(ctx)
	if errors.Is(err, sluice.ErrBatchAbandoned()) {
		log.Warn("shutdown: " + err.Error())
		return nil
	}
	return err
}

// batchLine prints one concise line per batch on stderr. With an
// availableNow trigger on a terminal it also keeps a progress bar with the
// drain ETA under the lines, redrawn after each batch.
type batchLine struct {
	mu sync.Mutex
	w  io.Writer
	// bar enables the progress bar (stderr is a terminal).
	bar bool
	// availableNow is set once the query's trigger is known.
	availableNow bool
	done         int64 // input rows so far
	barShown     bool  // the bar is the current, unterminated line
}

// newBatchLine returns a batchLine writing to w; the progress bar is
// possible only when w is a terminal.
func newBatchLine(w io.Writer) *batchLine { return &batchLine{w: w, bar: isTerminal(w)} }

// setAvailableNow tells whether the query drains a snapshot
// (Trigger.AvailableNow), which is when the bar is drawn.
func (b *batchLine) setAvailableNow(v bool) {
	b.mu.Lock()
	b.availableNow = v
	b.mu.Unlock()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (b *batchLine) OnQueryStarted(e progress.StartedEvent) {}
func (b *batchLine) OnQueryIdle(progress.IdleEvent)         {}

// OnQueryTerminated ends the bar's line.
func (b *batchLine) OnQueryTerminated(progress.TerminatedEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.barShown {
		fmt.Fprintln(b.w)
		b.barShown = false
	}
}

func (b *batchLine) OnQueryProgress(e progress.ProgressEvent) {
	p := e.Progress
	if p == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += max(p.NumInputRows, 0)
	if !b.bar || !b.availableNow {
		fmt.Fprintln(b.w, formatBatchLine(p))
		return
	}
	remaining, eta := int64(0), progress.ETA(math.NaN())
	if s := p.Sluice; s != nil && s.Lag != nil {
		remaining, eta = s.Lag.Records, s.Lag.DrainETASeconds
	}
	// Erase the old bar, print the line, draw the bar below it.
	fmt.Fprintf(b.w, "\r\033[K%s\n%s", formatBatchLine(p), renderBar(b.done, b.done+remaining, eta, 30))
	b.barShown = true
}

// formatBatchLine renders a progress report as one line: batch, rows
// (marked when the read limit capped them), input/processed rate, duration against the trigger, lag in records and
// seconds with the drain ETA, and health (with the reason unless OK).
func formatBatchLine(p *progress.Progress) string {
	var sb strings.Builder
	s := p.Sluice
	fmt.Fprintf(&sb, "batch %d: %d rows", p.BatchID, p.NumInputRows)
	if s != nil && s.Admission != nil && s.Admission.LimitBound {
		fmt.Fprintf(&sb, " (capped by the limit %d)", s.Admission.Limit)
	}
	fmt.Fprintf(&sb, ", in %s/s, processed %s/s, %d ms",
		rate(float64(p.InputRowsPerSecond)), rate(float64(p.ProcessedRowsPerSecond)), p.BatchDuration)
	if s != nil && s.Timing != nil && s.Timing.TriggerIntervalMs > 0 {
		fmt.Fprintf(&sb, " of %d ms trigger", s.Timing.TriggerIntervalMs)
		if r := float64(s.Timing.BatchDurationVsTrigger); !math.IsNaN(r) && r > 1 {
			fmt.Fprintf(&sb, " (%.1fx, falling behind)", r)
		}
	}
	switch {
	case s != nil && s.Lag != nil:
		fmt.Fprintf(&sb, ", lag %d records", s.Lag.Records)
		if !s.Lag.Seconds.IsZero() {
			fmt.Fprintf(&sb, " / %s", formatSeconds(float64(s.Lag.Seconds)))
		}
		if s.Lag.Records > 0 {
			if s.Lag.DrainETASeconds.IsNever() {
				sb.WriteString(" (never drains at this rate)")
			} else {
				fmt.Fprintf(&sb, " (drains in %s)", formatSeconds(float64(s.Lag.DrainETASeconds)))
			}
		}
	case len(p.Sources) > 0 && p.Sources[0].Metrics != nil:
		if v, ok := p.Sources[0].Metrics["maxOffsetsBehindLatest"]; ok {
			fmt.Fprintf(&sb, ", max offsets behind %s", v)
		}
	}
	if s != nil && s.Health != nil {
		fmt.Fprintf(&sb, ", %s", s.Health.Status)
		if s.Health.Status != "OK" && s.Health.Reason != "" {
			fmt.Fprintf(&sb, ": %s", s.Health.Reason)
		}
	}
	if s != nil && s.Admission != nil && s.Admission.Mode == "adaptive" {
		fmt.Fprintf(&sb, "; admitted ≤ %d (%s)", s.Admission.Limit, s.Admission.Reason)
	}
	if s != nil && s.DeadLetters != nil && *s.DeadLetters > 0 {
		fmt.Fprintf(&sb, "; %d dead-lettered", *s.DeadLetters)
	}
	if s != nil && s.Diagnosis != nil && len(s.Diagnosis.Findings) > 0 {
		fmt.Fprintf(&sb, "; %s", s.Diagnosis.Findings[0])
	}
	return sb.String()
}

// rate formats a rows-per-second figure: whole numbers, "-" when unknown.
func rate(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// formatSeconds renders a duration in seconds for people: "0.4 s",
// "12 s", "3m20s", "2h5m".
func formatSeconds(sec float64) string {
	switch {
	case math.IsNaN(sec):
		return "?"
	case math.IsInf(sec, 1):
		return "never"
	case sec < 10:
		return strconv.FormatFloat(sec, 'f', 1, 64) + " s"
	case sec < 60:
		return strconv.FormatFloat(math.Round(sec), 'f', 0, 64) + " s"
	case sec < 3600:
		d := time.Duration(math.Round(sec)) * time.Second
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	d := time.Duration(math.Round(sec/60)) * time.Minute
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// renderBar draws done out of total as a bar of width cells with the
// percentage, the counts and the ETA, e.g.
// "[=========>          ]  45% 4500/10000 rows, ETA 12 s".
func renderBar(done, total int64, eta progress.ETA, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(1, max(0, float64(done)/float64(total)))
	}
	filled := int(frac * float64(width))
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range width {
		switch {
		case i < filled:
			sb.WriteByte('=')
		case i == filled && frac < 1:
			sb.WriteByte('>')
		default:
			sb.WriteByte(' ')
		}
	}
	fmt.Fprintf(&sb, "] %3d%% %d/%d rows", int(frac*100), done, total)
	switch e := float64(eta); {
	case done >= total:
		sb.WriteString(", done")
	case eta.IsNever() && !math.IsNaN(e):
		sb.WriteString(", ETA never")
	case !math.IsNaN(e):
		fmt.Fprintf(&sb, ", ETA %s", formatSeconds(e))
	}
	return sb.String()
}

// startCPUProfile profiles the process's CPU into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
