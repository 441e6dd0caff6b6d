// Command sluice runs streaming pipelines, an embedded Kafka broker, the
// demo and the benchmarks.
//
//	sluice demo [--duration 60s]                 embedded broker + sample producer + the seed query
//	sluice broker --listen 127.0.0.1:9092 --topic orders:4 [--topic …]
//	sluice run PIPELINE.yaml [--progress-file F] [--ui-addr 127.0.0.1:4040]  run a pipeline file
//	sluice status --checkpoint DIR --bootstrap ADDR   per-partition lag of a query
//	sluice loadgen [--profile spike] [--rate R]     produce at a rate profile
//	sluice rehearse [--quick]                     the seed's four-phase spike rehearsal with verdicts and charts
//	sluice torture [--kills 50]                   kill -9 a pipeline repeatedly and check exactly-once output
//	sluice bench [--json]                         the benchmark suite (ratios against raw franz-go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"demo", "run the seed's example on an embedded broker with a sample producer", runDemo},
	{"broker", "run an embedded Kafka broker (franz-go kfake) until interrupted", runBroker},
	{"run", "run a pipeline file", runPipeline},
	{"torture", "kill a pipeline with SIGKILL at random moments and check its sink holds every record exactly once", runTorture},
	{"bench", "measure throughput against a raw franz-go consumer on the same broker", runBench},
	{"loadgen", "produce records to Kafka at a rate profile (steady, step, spike, sine, csv)", runLoadgen},
	{"rehearse", "rehearse a load spike in four phases and report a verdict with charts", runRehearse},
	{"status", "print a query's per-partition lag from its checkpoint and the broker", runStatus},
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sluice COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sluice COMMAND -h' for a command's flags.")
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			switch {
			case err == nil:
				return 0
			case errors.Is(err, flag.ErrHelp):
				return 0
			}
			fmt.Fprintf(stderr, "sluice %s: %v\n", c.name, err)
			var ee *exitError
			if errors.As(err, &ee) {
				return ee.code
			}
			return 1
		}
	}
	fmt.Fprintf(stderr, "sluice: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// newLogger returns a text logger on w at the given level name.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("flag -log-level: %q is not a level (allowed: debug, info, warn, error)", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
