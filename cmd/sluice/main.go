// Command sluice runs streaming pipelines, an embedded Kafka broker, the
// demo and the benchmarks, and checks and documents pipeline files.
//
//	sluice demo [--duration 60s]                 embedded broker + sample producer + the seed query
//	sluice broker --listen 127.0.0.1:9092 --topic orders:4 [--topic …]
//	sluice run PIPELINE.yaml [--progress-file F] [--ui-addr 127.0.0.1:4040]  run a pipeline file
//	sluice lint [--format json] PIPELINE.yaml…   check pipeline files without connecting
//	sluice options [FORMAT]                       the options of a source or sink format
//	sluice functions                              the SQL functions expressions may use
//	sluice completion bash|zsh                    a shell completion script
//	sluice status --checkpoint DIR --bootstrap ADDR   per-partition lag of a query
//	sluice status --group NAME --bootstrap ADDR   a consumer group's members, offsets, lag and status
//	sluice probe [http://127.0.0.1:4040/readyz]  exit 0 when a health endpoint answers 2xx (container health checks)
//	sluice vacuum PATH [--retention 168h] [--dry-run] delete a sink output's unlisted files
//	sluice loadgen [--profile spike] [--rate R]     produce at a rate profile
//	sluice rehearse [--quick]                     the seed's four-phase spike rehearsal with verdicts and charts
//	sluice torture [--kills 50]                   kill -9 a pipeline repeatedly and check exactly-once output
//	sluice soak [--duration 1h]                  long run under load and faults: flat memory, bounded lag, exactly once
//	sluice bench [--json]                         the benchmark suite (ratios against raw franz-go)
//	sluice reference                              docs/reference.md, generated from the format registry
//	sluice --version                              the version, VCS revision and Go version of this build
//
// Commands that log take --log-level and --log-format (text or json).
package main

//go:generate go run . reference --out ../../docs/reference.md

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
)

// command is one sluice subcommand. Its flags are defined by run on the
// flag set newFlagSet returns, so the table plus flagsOf describe the whole
// command line (completion and the reference are generated from them).
type command struct {
	name    string
	args    string // positional arguments, as usage shows them
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the command table; set in init because completion and
// reference read it.
var commands []command

func init() {
	commands = []command{
		{"demo", "", "run the seed's example on an embedded broker with a sample producer", runDemo},
		{"broker", "", "run an embedded Kafka broker (franz-go kfake) until interrupted", runBroker},
		{"run", "PIPELINE.yaml", "run a pipeline file", runPipeline},
		{"lint", "PIPELINE.yaml…", "check pipeline files without connecting: formats, options, expressions, output modes, trigger", runLint},
		{"explain", "PIPELINE.yaml", "print a pipeline's logical plan and the physical plan it runs (stages, exchange, state)", runExplain},
		{"options", "[FORMAT]", "list the source and sink formats, or the options of one", runOptions},
		{"functions", "", "list the SQL functions expressions may use", runFunctions},
		{"completion", "bash|zsh", "print a shell completion script", runCompletion},
		{"torture", "", "kill a pipeline with SIGKILL at random moments and check its sink holds every record exactly once", runTorture},
		{"soak", "", "run a pipeline for a long time under load, spikes, SIGKILLs and broker hangs and restarts; fail on upward trends, unbounded lag, loss or duplicates", runSoak},
		{"bench", "", "measure throughput against a raw franz-go consumer on the same broker", runBench},
		{"loadgen", "", "produce records to Kafka at a rate profile (steady, step, spike, sine, csv)", runLoadgen},
		{"rehearse", "", "rehearse a load spike in four phases (a fifth, stateful, on request) and report a verdict with charts", runRehearse},
		{"status", "", "print a query's per-partition lag from its checkpoint and the broker, or a consumer group's members, partitions, offsets, lag and status (--group)", runStatus},
		{"probe", "[URL]", "check a health endpoint (default: readiness of sluice run on 127.0.0.1:4040); exit 0 when it answers 2xx, for container health checks", runProbe},
		{"vacuum", "PATH", "delete the files of a file or Delta sink's output that no log lists and that are older than the retention", runVacuum},
		{"reference", "", "print the reference documentation (docs/reference.md) generated from the format registry", runReference},
	}
}

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sluice COMMAND [flags]\n       sluice --version\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'sluice COMMAND -h' for a command's flags.")
}

// releaseVersion and releaseRevision, when set at link time, name the
// release and its commit where the build information cannot: a container
// image is built from a copy of the source without .git, so Go records no
// VCS revision. The Dockerfile sets them from its VERSION and REVISION
// build arguments:
//
//	go build -ldflags "-X main.releaseVersion=v1.2.0 -X main.releaseRevision=$(git rev-parse HEAD)" ./cmd/sluice
var releaseVersion, releaseRevision string

// version describes this build from the Go build information: the module
// version ("(devel)" for a build from a checkout), the VCS revision and
// time with "+dirty" for uncommitted changes, the Go version and platform.
// A version or revision set at link time (releaseVersion, releaseRevision)
// wins. Without build information it says so.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok && releaseVersion == "" {
		return fmt.Sprintf("sluice (unknown version: built without module information) %s %s/%s", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	if !ok {
		bi = &debug.BuildInfo{}
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	if releaseVersion != "" {
		v = releaseVersion
	}
	var rev, at string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if releaseRevision != "" && rev == "" {
		rev = releaseRevision
	}
	out := "sluice " + v
	if rev != "" {
		out += " " + rev[:min(12, len(rev))]
		if dirty {
			out += "+dirty"
		}
		if at != "" {
			out += " " + at
		}
	}
	return fmt.Sprintf("%s %s %s/%s", out, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	switch args0 := append(args, "")[0]; args0 {
	case "--version", "-version", "version":
		fmt.Fprintln(stdout, version())
		return 0
	}
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

// logFlags are --log-level and --log-format, shared by every command that
// logs.
type logFlags struct {
	level, format *string
}

// addLogFlags defines --log-level (default level) and --log-format on fs.
func addLogFlags(fs *flag.FlagSet, level string) logFlags {
	return logFlags{
		level:  fs.String("log-level", level, "log level: debug, info, warn, error"),
		format: fs.String("log-format", "text", "log format: text (key=value) or json (one JSON object per line, log/slog's JSON handler)"),
	}
}

// logger returns the logger the flags ask for, writing to w.
func (l logFlags) logger(w io.Writer) (*slog.Logger, error) {
	return newLogger(w, *l.level, *l.format)
}

// newLogger returns a logger on w at the given level name, as text or JSON.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("flag -log-level: %q is not a level (allowed: debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("flag -log-format: %q is not a format (allowed: text, json)", format)
}

// flagCollector is given as stderr to a command run with --help, to learn
// its flags: newFlagSet hands it the flag set, and the help text written
// to it is dropped.
type flagCollector struct{ fs *flag.FlagSet }

func (c *flagCollector) Write(p []byte) (int, error) { return len(p), nil }

// newFlagSet returns a flag set that reports errors instead of exiting and
// whose help is "usage: sluice NAME ARGS [flags]" with printFlags.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	args := ""
	for _, c := range commands {
		if c.name == name && c.args != "" {
			args = " " + c.args
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sluice %s [flags]%s\n", name, args)
		printFlags(stderr, fs)
	}
	if c, ok := stderr.(*flagCollector); ok {
		c.fs = fs
	}
	return fs
}

// internalUsage starts the usage text of a flag sluice passes to itself
// (a child process's role): such flags are left out of --help, the
// reference and completion.
const internalUsage = "internal: "

func isInternal(f *flag.Flag) bool { return strings.HasPrefix(f.Usage, internalUsage) }

// printFlags lists fs's flags as flag.PrintDefaults does, without the
// internal ones, and with the default shown only when the usage text does
// not already say it (a flag whose default is computed says so itself).
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if isInternal(f) {
			return
		}
		name, usage := flag.UnquoteUsage(f)
		var b strings.Builder
		fmt.Fprintf(&b, "  -%s", f.Name)
		if name != "" {
			b.WriteString(" " + name)
		}
		b.WriteString("\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t"))
		if def := shownDefault(f); def != "" {
			fmt.Fprintf(&b, " (default %s)", def)
		}
		fmt.Fprintln(w, b.String())
	})
}

// shownDefault is the default --help prints for f: "" for a zero value or
// when the usage text gives the default itself; strings quoted.
func shownDefault(f *flag.Flag) string {
	if strings.Contains(f.Usage, "(default") {
		return ""
	}
	switch f.DefValue {
	case "", "0", "false", "0s", "[]":
		return ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isString := g.Get().(string); isString {
			return strconv.Quote(f.DefValue)
		}
	}
	return f.DefValue
}

// flagsOf returns a command's flags, learnt by running it with --help
// (every command parses its flags before doing anything).
func flagsOf(c command) []*flag.Flag {
	col := &flagCollector{}
	if err := c.run(context.Background(), []string{"--help"}, io.Discard, col); !errors.Is(err, flag.ErrHelp) || col.fs == nil {
		panic(fmt.Sprintf("sluice %s --help did not stop at its flags (err %v)", c.name, err))
	}
	var out []*flag.Flag
	col.fs.VisitAll(func(f *flag.Flag) {
		if !isInternal(f) {
			out = append(out, f)
		}
	})
	return out
}
