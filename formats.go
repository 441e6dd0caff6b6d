package sluice

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/console"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	kafkasink "github.com/sluice-stream/sluice/internal/sink/kafka"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/sink/noop"
	"github.com/sluice-stream/sluice/internal/sink/slow"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/file"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/source/rate"
	"github.com/sluice-stream/sluice/internal/source/socket"
)

// SourceFormats lists the source formats sluice knows.
var SourceFormats = []string{"kafka", "eventhubs", "rate", "rate-micro-batch", "socket", "text", "json", "csv"}

// SinkFormats lists the sink formats sluice knows.
var SinkFormats = []string{"console", "noop", "memory", "parquet", "json", "csv", "delta", "kafka"}

func unknownFormat(kind, format string, known []string) error {
	msg := fmt.Sprintf("unknown %s format %q", kind, format)
	if s := options.Suggest(format, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return fmt.Errorf("%s (allowed: %s)", msg, strings.Join(known, ", "))
}

// admissionOptions are sluice's admission settings, given among the source
// options (next to maxOffsetsPerTrigger) and handled by the engine, not the
// source.
var admissionOptions = []string{"sluice.admission", "sluice.targetBatchDuration", "sluice.maxLagSeconds"}

// splitAdmission separates admission options from a source's own options.
func splitAdmission(opts map[string]string) (map[string]string, admission.Limits, error) {
	own := map[string]string{}
	var lim admission.Limits
	adm := map[string]string{}
	for k, v := range opts {
		if containsFold(admissionOptions, k) {
			adm[k] = v
		} else {
			own[k] = v
		}
	}
	o := options.New(adm)
	var err error
	if lim.Mode, err = o.Enum("sluice.admission", admission.ModeStatic, admission.ModeStatic, admission.ModeAdaptive); err != nil {
		return nil, lim, err
	}
	if lim.TargetBatchDuration, err = o.Duration("sluice.targetBatchDuration", 0); err != nil {
		return nil, lim, err
	}
	if v, ok := o.Get("sluice.maxLagSeconds"); ok {
		f, perr := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if perr != nil || f < 0 {
			return nil, lim, &options.Error{Option: "sluice.maxLagSeconds", Value: v, Allowed: "allowed: a non-negative number of seconds"}
		}
		lim.MaxLagSeconds = f
	}
	return own, lim, nil
}

// sourceSchema returns a source format's schema without connecting.
func sourceSchema(spec sourceSpec) (batch.Schema, error) {
	opts, _, err := splitAdmission(spec.options)
	if err != nil {
		return batch.Schema{}, err
	}
	switch f := strings.ToLower(spec.format); f {
	case "kafka":
		cfg, err := kafka.ParseConfig(opts)
		if err != nil {
			return batch.Schema{}, err
		}
		return kafka.Schema(cfg.IncludeHeaders), nil
	case "eventhubs":
		cfg, err := kafka.ParseEventHubsConfig(opts)
		if err != nil {
			return batch.Schema{}, err
		}
		return kafka.Schema(cfg.IncludeHeaders), nil
	case "rate":
		if _, err := rate.ParseConfig(opts); err != nil {
			return batch.Schema{}, err
		}
		return rate.Schema(), nil
	case "rate-micro-batch":
		if _, err := rate.ParseMicroBatchConfig(opts); err != nil {
			return batch.Schema{}, err
		}
		return rate.Schema(), nil
	case "socket":
		cfg, err := socket.ParseConfig(opts)
		if err != nil {
			return batch.Schema{}, err
		}
		return socket.Schema(cfg.IncludeTimestamp), nil
	case "text", "json", "csv":
		return file.SchemaOf(f, opts)
	case "":
		return batch.Schema{}, fmt.Errorf("the source has no format; call Format (allowed: %s)", strings.Join(SourceFormats, ", "))
	}
	return batch.Schema{}, unknownFormat("source", spec.format, SourceFormats)
}

// newSource creates (and connects) a source; checkpointDir is where
// sources that keep their own logs (files seen) put them, as Spark does
// under sources/0.
func newSource(spec sourceSpec, checkpointDir string, log *slog.Logger) (source.Source, error) {
	opts, _, err := splitAdmission(spec.options)
	if err != nil {
		return nil, err
	}
	switch f := strings.ToLower(spec.format); f {
	case "kafka":
		return kafka.New(opts, log)
	case "eventhubs":
		return kafka.NewEventHubs(opts, log)
	case "rate":
		return rate.New(opts, log)
	case "rate-micro-batch":
		return rate.NewMicroBatch(opts, log)
	case "socket":
		return socket.New(opts, log)
	case "text", "json", "csv":
		return file.New(f, opts, filepath.Join(checkpointDir, "sources", "0"), log)
	}
	_, err = sourceSchema(spec)
	return nil, err
}

// queryOptions are writer options the engine consumes; the rest go to the sink.
var queryOptions = []string{"checkpointLocation", "sluice.workers", "queryName", "sluice.memory.budget",
	"sluice.sink.delayPerRow", "sluice.sink.delayPerBatch"}

// sinkFormat describes one sink format: everything the API needs to
// check and open it, in one place.
type sinkFormat struct {
	// options are the sink's own options; optionPrefixes are passed
	// through unchecked (kafka.* producer settings).
	options        []string
	optionPrefixes []string
	// modes are the output modes it supports (Spark's compatibility
	// matrix: file sinks are append-only, memory has no update).
	modes []string
	// tempCheckpoint: it may run on a temporary checkpoint when none is
	// given, as Spark allows for console and memory.
	tempCheckpoint bool
	// validate checks the sink's own options without creating anything
	// (nil: open is side-effect free and serves as the check).
	validate func(f string, opts map[string]string) error
	// open creates the sink from its own options.
	open func(f string, opts map[string]string, env sinkEnv) (sink.Sink, error)
}

var allModes = []string{"append", "update", "complete"}

func openFileSink(f string, opts map[string]string, env sinkEnv) (sink.Sink, error) {
	s, err := filesink.New(f, opts)
	if err != nil {
		return nil, err
	}
	if env.log != nil {
		s.SetLogger(env.log)
	}
	return s, nil
}

func validateFileSink(f string, opts map[string]string) error {
	_, err := filesink.ParseOptions(f, opts)
	return err
}

var fileSinkFormat = func(f string) sinkFormat {
	return sinkFormat{options: filesink.KnownOptions(f), modes: []string{"append"}, validate: validateFileSink, open: openFileSink}
}

// sinkFormats is every sink format sluice knows.
var sinkFormats = map[string]sinkFormat{
	"console": {options: []string{"numRows", "truncate"}, modes: allModes, tempCheckpoint: true,
		open: func(_ string, opts map[string]string, env sinkEnv) (sink.Sink, error) {
			if env.stdout == nil {
				env.stdout = os.Stdout
			}
			return console.New(env.stdout, opts)
		}},
	"noop": {modes: allModes, tempCheckpoint: true,
		open: func(string, map[string]string, sinkEnv) (sink.Sink, error) { return noop.New(), nil }},
	"memory": {modes: []string{"append", "complete"}, tempCheckpoint: true,
		open: func(string, map[string]string, sinkEnv) (sink.Sink, error) { return memory.New(), nil }},
	"parquet": fileSinkFormat("parquet"),
	"json":    fileSinkFormat("json"),
	"csv":     fileSinkFormat("csv"),
	"delta": {options: delta.KnownOptions, modes: []string{"append", "complete"},
		validate: func(_ string, opts map[string]string) error { return validateFileSink("parquet", opts) },
		open: func(_ string, opts map[string]string, env sinkEnv) (sink.Sink, error) {
			return delta.New(opts, env.queryID)
		}},
	"kafka": {options: kafkasink.KnownOptions, optionPrefixes: []string{"kafka."}, modes: allModes,
		validate: func(_ string, opts map[string]string) error {
			_, err := kafkasink.ParseConfig(opts, "validate")
			return err
		},
		open: func(_ string, opts map[string]string, env sinkEnv) (sink.Sink, error) {
			log := env.log
			if log == nil {
				log = slog.Default()
			}
			return kafkasink.New(opts, env.queryID, log)
		}},
}

// sinkEnv is what creating a sink may need besides its options.
type sinkEnv struct {
	stdout  io.Writer // where the console sink prints (default os.Stdout)
	queryID string    // the checkpoint's query id (Delta txn appId, Kafka transactional id)
	log     *slog.Logger
	// validateOnly checks options without creating anything on disk or on
	// the network.
	validateOnly bool
}

// newSink creates a sink from its format and options. Query-level options
// (checkpointLocation, sluice.*) are taken out before the sink sees them.
func newSink(format string, opts map[string]string, env sinkEnv) (sink.Sink, error) {
	f := strings.ToLower(format)
	sf, ok := sinkFormats[f]
	if !ok {
		return nil, unknownFormat("sink", format, SinkFormats)
	}
	if err := options.New(opts).CheckKnown(f+" sink", slices.Concat(sf.options, queryOptions), sf.optionPrefixes...); err != nil {
		return nil, err
	}
	own := map[string]string{}
	for k, v := range opts {
		if !containsFold(queryOptions, k) {
			own[k] = v
		}
	}
	o := options.New(opts)
	perRow, err := o.Duration("sluice.sink.delayPerRow", 0)
	if err != nil {
		return nil, err
	}
	perBatch, err := o.Duration("sluice.sink.delayPerBatch", 0)
	if err != nil {
		return nil, err
	}
	if env.validateOnly {
		if sf.validate != nil {
			return nil, sf.validate(f, own)
		}
		env.stdout = io.Discard
	}
	inner, err := sf.open(f, own, env)
	if err != nil {
		return nil, err
	}
	if perRow > 0 || perBatch > 0 {
		return slow.Wrap(inner, perRow, perBatch), nil
	}
	return inner, nil
}

// sinkNeedsCheckpoint reports whether a sink requires a user-given
// checkpointLocation; Spark lets console and memory run on a temporary one.
func sinkNeedsCheckpoint(format string) bool {
	return !sinkFormats[strings.ToLower(format)].tempCheckpoint
}

// validateOutputMode checks a mode against the sink and the query's shape,
// as Spark's UnsupportedOperationChecker does for the cases sluice has:
// without a streaming aggregation, complete mode has nothing to output.
func validateOutputMode(mode, sinkFormat string, hasAggregation bool) error {
	mode = strings.ToLower(mode)
	if !containsFold(OutputModes, mode) {
		return &options.Error{Option: "outputMode", Value: mode, Allowed: "allowed: " + strings.Join(OutputModes, ", ")}
	}
	if mode == "complete" && !hasAggregation {
		return fmt.Errorf("output mode \"complete\" is not supported when there are no streaming aggregations on the DataFrame (allowed here: append, update)")
	}
	if sf, ok := sinkFormats[strings.ToLower(sinkFormat)]; ok && !containsFold(sf.modes, mode) {
		allowed := sf.modes
		return fmt.Errorf("the %s sink does not support output mode %q (allowed: %s)", sinkFormat, mode, strings.Join(allowed, ", "))
	}
	return nil
}
