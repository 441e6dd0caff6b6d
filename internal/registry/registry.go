// Package registry is the one list of the source and sink formats sluice
// knows, and of the options a query takes besides its source's and sink's.
//
// Each source and sink package describes itself as a source.Format or
// sink.Format: its name, a typed spec of its options (options.Spec), how
// its schema is derived, its output modes and guarantees (replayable,
// idempotent, needs a checkpoint) and its constructor. This package lists
// them, looks them up by name (with a "did you mean" for typos), checks a
// format's options once against its spec, and opens it. The query-level
// specs — the writer options (checkpointLocation, queryName, sluice.workers,
// sluice.memory.budget, sluice.sink.delay*), the admission options given
// among a source's options (sluice.admission, sluice.targetBatchDuration,
// sluice.maxLagSeconds) and the session configuration (spark.sql.*,
// sluice.metrics.partitionLabels…) — live here too.
//
// Everything that describes formats is generated from this list: the
// checks done by DataStreamWriter.Start and `sluice lint`, `sluice options`,
// and docs/reference.md.
package registry

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
	"github.com/sluice-stream/sluice/internal/sink/console"
	"github.com/sluice-stream/sluice/internal/sink/delta"
	filesink "github.com/sluice-stream/sluice/internal/sink/file"
	"github.com/sluice-stream/sluice/internal/sink/foreachbatch"
	kafkasink "github.com/sluice-stream/sluice/internal/sink/kafka"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/sink/noop"
	"github.com/sluice-stream/sluice/internal/sink/slow"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/source/file"
	"github.com/sluice-stream/sluice/internal/source/kafka"
	"github.com/sluice-stream/sluice/internal/source/rate"
	"github.com/sluice-stream/sluice/internal/source/socket"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/storage"
)

// sources and sinks are every format, in the order listings show them.
var (
	sources = slices.Concat([]source.Format{kafka.Format, kafka.EventHubsFormat, rate.Format, rate.MicroBatchFormat, socket.Format}, file.Formats())
	sinks   = slices.Concat([]sink.Format{console.Format, noop.Format, memory.Format}, filesink.Formats(),
		[]sink.Format{delta.Format, kafkasink.Format, foreachbatch.Format})
)

// Sources returns every source format.
func Sources() []source.Format { return slices.Clone(sources) }

// Sinks returns every sink format.
func Sinks() []sink.Format { return slices.Clone(sinks) }

// SourceNames returns the source format names.
func SourceNames() []string {
	out := make([]string, len(sources))
	for i, f := range sources {
		out[i] = f.Name
	}
	return out
}

// SinkNames returns the sink format names.
func SinkNames() []string {
	out := make([]string, len(sinks))
	for i, f := range sinks {
		out[i] = f.Name
	}
	return out
}

// OutputModes returns the output modes Spark defines.
func OutputModes() []string { return sink.OutputModes() }

// Source returns the source format called name (ignoring case).
func Source(name string) (source.Format, error) {
	for _, f := range sources {
		if strings.EqualFold(f.Name, name) {
			return f, nil
		}
	}
	if strings.TrimSpace(name) == "" {
		return source.Format{}, fmt.Errorf("the source has no format; call Format (allowed: %s)", strings.Join(SourceNames(), ", "))
	}
	return source.Format{}, unknownFormat("source", name, SourceNames())
}

// Sink returns the sink format called name (ignoring case).
func Sink(name string) (sink.Format, error) {
	for _, f := range sinks {
		if strings.EqualFold(f.Name, name) {
			return f, nil
		}
	}
	return sink.Format{}, unknownFormat("sink", name, SinkNames())
}

// Format returns the source or sink format called name, for listings that
// cover both ("sluice options NAME").
func Format(name string) (src *source.Format, snk *sink.Format, err error) {
	if f, err := Source(name); err == nil {
		src = &f
	}
	if f, err := Sink(name); err == nil {
		snk = &f
	}
	if src == nil && snk == nil {
		return nil, nil, unknownFormat("", name, slices.Compact(slices.Sorted(slices.Values(slices.Concat(SourceNames(), SinkNames())))))
	}
	return src, snk, nil
}

func unknownFormat(kind, name string, known []string) error {
	what := "format"
	if kind != "" {
		what = kind + " format"
	}
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if s := options.Suggest(name, known); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	// Spark's condition and text first, sluice's explanation after.
	return fmt.Errorf("[DATA_SOURCE_NOT_FOUND] Failed to find the data source: %s. Make sure the provider name is correct "+
		"and the package is properly registered and compatible with your Spark version. (%s; allowed: %s)", name, msg, strings.Join(known, ", "))
}

// SourceProblems checks a source's options against its format's spec and
// the admission options, returning every problem (see options.Spec.Problems).
func SourceProblems(f source.Format, opts map[string]string) []error {
	return f.Options.Problems(opts, AdmissionOptions)
}

// ReadSource checks a source's options once and returns their values, which
// include the admission options.
func ReadSource(f source.Format, opts map[string]string) (options.Values, error) {
	return f.Options.Read(opts, AdmissionOptions)
}

// SinkProblems checks a sink's options against its format's spec and the
// query's writer options, returning every problem.
func SinkProblems(f sink.Format, opts map[string]string) []error {
	return f.Options.Problems(opts, QueryOptions)
}

// ReadSink checks a sink's options once and returns their values, which
// include the query's writer options.
func ReadSink(f sink.Format, opts map[string]string) (options.Values, error) {
	return f.Options.Read(opts, QueryOptions)
}

// OpenSink creates a sink from checked values and applies the rehearsal
// delays (sluice.sink.delayPerRow / delayPerBatch) around it.
func OpenSink(f sink.Format, v options.Values, env sink.Env) (sink.Sink, error) {
	s, err := f.Open(v, env)
	if err != nil {
		return nil, err
	}
	perRow, perBatch := v.Duration("sluice.sink.delayPerRow"), v.Duration("sluice.sink.delayPerBatch")
	if perRow > 0 || perBatch > 0 {
		return slow.Wrap(s, perRow, perBatch), nil
	}
	return s, nil
}

// QueryOptions are the writer options that configure the query, given
// next to a sink's own (their one definition is sink.QueryOptions, so sinks
// can accept them).
var QueryOptions = sink.QueryOptions

// AdmissionOptions are sluice's admission settings, given among a source's
// options (next to maxOffsetsPerTrigger) and applied by the engine, not
// the source.
var AdmissionOptions = &options.Spec{
	What: "admission",
	Fields: []options.Field{
		{Name: "sluice.admission", Type: options.Enum, Default: admission.ModeStatic, Allowed: []string{admission.ModeStatic, admission.ModeAdaptive},
			Doc: "static admits the read limits as given (Spark); adaptive chooses each batch's record limit from the measured cost per record so batches finish near sluice.targetBatchDuration, within maxOffsetsPerTrigger/minOffsetsPerTrigger."},
		{Name: "sluice.targetBatchDuration", Type: options.Duration, DefaultDoc: "the trigger interval, or 1 s with the default trigger",
			Doc: "Batch duration adaptive admission aims for."},
		{Name: "sluice.maxLagSeconds", Type: options.Double, Min: 0, Hint: "allowed: a non-negative number of seconds",
			Doc: "Lets adaptive admission double its target while the query is further behind than this many seconds (0 = off)."},
	},
}

// Admission is the parsed admission options.
type Admission struct {
	Mode                string
	TargetBatchDuration time.Duration
	MaxLagSeconds       float64
}

// ReadAdmission returns the admission settings from a source's checked
// values (ReadSource).
func ReadAdmission(v options.Values) Admission {
	return Admission{Mode: v.Enum("sluice.admission"), TargetBatchDuration: v.Duration("sluice.targetBatchDuration"), MaxLagSeconds: v.Float64("sluice.maxLagSeconds")}
}

// SessionConf describes the session configuration (Session.SetConf,
// WithConf, a pipeline file's top-level options). Spark's spark.sql.*
// settings are recorded in the checkpoint's offsets log, as Spark does.
// The state store settings (package state) and the storage settings
// (package storage) are session settings too, described where they are
// read.
var SessionConf = &options.Spec{
	What: "session configuration",
	Fields: slices.Concat([]options.Field{
		{Name: "spark.sql.ansi.enabled", Type: options.Bool, Default: "false",
			Doc: "ANSI mode: a value that cannot be cast fails the query (as in Spark) unless a dead-letter sink is configured, which then receives the row."},
		{Name: "spark.sql.shuffle.partitions", Type: options.Int, Min: 1, Default: "200",
			Doc: "Shuffle partitions of a stateful query: rows are hashed by key into this many partitions, each with its own state store and stage-2 task. Pinned by the checkpoint: after the first run its value wins over the session's."},
		{Name: "spark.sql.streaming.multipleWatermarkPolicy", Type: options.Enum, Default: "min", Allowed: []string{"min", "max"},
			Hint: "valid values are 'min' and 'max'",
			Doc:  "How the global watermark is chosen from several withWatermark nodes: the slowest (min, safe) or the fastest (max, drops more late data). Pinned by the checkpoint."},
		{Name: "spark.sql.streaming.noDataMicroBatches.enabled", Type: options.Bool, Default: "true",
			Doc: "Run a batch without new input when the watermark moves, so that state the watermark passed is evicted and windows it completed are emitted without waiting for more data."},
		{Name: "sluice.shuffle.bufferSize", Type: options.Size, Default: "64MiB", Hint: `allowed: a size such as "64MiB"`,
			Doc: "Bound of a stateful query's exchange buffer (with sluice.memory.budget: at most an eighth of it). A full buffer makes stage-1 tasks merge buffered rows into state before they continue; nothing is dropped."},
		{Name: "spark.sql.streaming.checkpointLocation", Type: options.Path, Doc: "Default checkpointLocation of the session's queries."},
		{Name: "spark.sql.streaming.noDataProgressEventInterval", Type: options.Duration, Default: "10000",
			Doc: "How often an idle query records a progress report with no rows (and posts onQueryIdle), as Spark: after the first idle trigger, then every this long while idle (milliseconds, or an interval such as \"10 seconds\")."},
		{Name: "spark.sql.sources.partitionColumnTypeInference.enabled", Type: options.Bool, Default: "true",
			Doc: "Whether the file source infers the types of key=value partition columns (INT, BIGINT, DOUBLE, TIMESTAMP, DATE, else STRING, as Spark); false makes every partition column a STRING."},
		{Name: "sluice.workers", Type: options.Int, Min: 0, Default: "0", Hint: "allowed: a non-negative integer (0 = number of CPUs)",
			Doc: "Default worker pool size of the session's queries; 0 = the number of CPUs."},
		{Name: "sluice.memory.budget", Type: options.Size, Allowed: []string{"unlimited"}, DefaultDoc: "derived: a quarter of the memory limit, at most 128 MiB",
			Hint: `allowed: a size such as "256MiB", "512m", "1GB", a number of bytes, or "unlimited"`,
			Doc:  "Default memory budget of the session's queries (see the writer option)."},
		{Name: "sluice.metrics.partitionLabels", Type: options.Bool, Default: "true",
			Doc: "false drops the partition label from per-partition Prometheus metrics (lag stays per topic), for topics with many partitions."},
		{Name: "sluice.memory.goLimit", Type: options.Bool, Default: "false",
			Doc: "true sets the Go runtime's soft memory limit (debug.SetMemoryLimit) when a query with a budget starts, aiming the resident set at the memory budget plus 40 MiB, within the budget plus 64 MiB: the budget + 40 MiB minus the process's file-backed resident pages (its executable) minus 12 MiB, at least the budget + an eighth of it (≥ 12 MiB) (`sluice run` does this; a GOMEMLIMIT in the environment wins)."},
		{Name: "sluice.memory.hugePages", Type: options.Bool, Default: "true",
			Doc: "With sluice.memory.goLimit: when the kernel gives transparent huge pages only to memory that asks (THP mode \"madvise\"), the heap's first Go-memory-limit bytes are advised MADV_HUGEPAGE before the query starts, so a fresh process faults its heap in 2 MiB at a time instead of 4 KiB (a `sluice run` drain took 50,000 page faults, a third of its CPU on a virtual machine); the resident set does not grow. false keeps 4 KiB pages."},
	}, state.ConfigSpec.Fields, storage.ConfSpec.Fields),
	Prefixes: slices.Concat([]options.Prefix{{Prefix: "spark.sql.", Doc: "Other Spark SQL settings are accepted and recorded in the offsets log."}},
		storage.ConfSpec.Prefixes),
}
