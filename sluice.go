// Package sluice is a stream processor modelled on Apache Spark Structured
// Streaming: micro-batches, one task per source partition on a bounded
// worker pool, a checkpoint that makes restarts exactly-once, and
// backpressure (admission control) as a first-class, measured part of the
// engine.
//
// # A first query
//
// A Session reads a stream (DataStreamReader), transforms it with Spark SQL
// expressions (DataFrame), and writes it with a DataStreamWriter, whose
// Start returns a running StreamingQuery. This is Spark's minimal
// backpressure example — Kafka to the console, at most 10,000 records per
// batch, one batch every 20 seconds:
//
//	ctx := context.Background()
//	q, err := sluice.NewSession().ReadStream().
//		Format("kafka").
//		Option("kafka.bootstrap.servers", "localhost:9092").
//		Option("subscribe", "orders").
//		Option("startingOffsets", "latest").
//		Option("maxOffsetsPerTrigger", 10000). // admission control
//		Load().
//		SelectExpr("CAST(value AS STRING) AS json").
//		WithColumn("processed_ts", "current_timestamp()").
//		WriteStream().
//		Format("console").
//		Option("checkpointLocation", "/tmp/chk/orders").
//		Trigger(sluice.ProcessingTime("20 seconds")).
//		Start(ctx)
//	if err != nil {
//		log.Fatal(err) // a bad option, expression or output mode, named with what is allowed
//	}
//	if err := q.AwaitTermination(ctx); err != nil {
//		log.Fatal(err)
//	}
//
// Start checks everything before it reads a record: the formats, every
// option against its format's typed spec (a misspelt name gets a "did you
// mean"), the expressions against the source's schema, the output mode
// against the sink. The same checks run on pipeline files
// (Session.PipelineFile, `sluice run`) and, without connecting to anything,
// in LintPipeline (`sluice lint`).
//
// # Sources and sinks
//
// Source formats (SourceFormats): kafka, eventhubs, rate, rate-micro-batch,
// socket, and files as text, json or csv. Sink formats (SinkFormats):
// console, noop, memory (read back with Session.Table), parquet, json,
// csv, delta, kafka, and foreachBatch (DataStreamWriter.ForeachBatch).
// Every option of every format — type, default, allowed values — is listed
// in docs/reference.md and by `sluice options FORMAT`. With a replayable
// source and an idempotent sink (the file sinks, delta and kafka) a query is
// exactly-once across crashes: a batch logged but not committed is re-run
// with the same offsets, and the sink keeps its first copy.
//
// # Transformations
//
// SelectExpr, Select, WithColumn and Filter take Spark SQL expressions:
// CAST and TRY_CAST, CASE, arithmetic, comparisons, LIKE, IN, and the
// functions `sluice functions` lists. With spark.sql.ansi.enabled=true (see
// WithConf) a value that cannot be cast fails the query, unless
// DataStreamWriter.DeadLetter names a sink for such rows.
//
// # Triggers and backpressure
//
// The Trigger decides when batches run: the default (as soon as the last
// ends), ProcessingTime, AvailableNow or Once. The source's read limits
// (maxOffsetsPerTrigger, minOffsetsPerTrigger) bound each batch; with the
// source option sluice.admission=adaptive each batch's limit is chosen from
// the measured cost per record, and sluice.memory.budget caps the bytes a
// batch holds. Limits can be changed while the query runs
// (StreamingQuery.SetLimits). WithGoMemoryLimit also holds the Go heap to
// the budget.
//
// # Watching a query
//
// Every batch produces a Progress in Spark's StreamingQueryProgress shape
// (LastProgress, RecentProgress, or a Listener added with AddListener),
// with sluice's additions under "sluice": lag in records and seconds, drain
// ETA, health, the admission decision and a diagnosis of what limited the
// batch. Snapshot gives the live state; Session.MetricsHandler serves
// Prometheus metrics.
package sluice

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-stream/sluice/internal/metrics"
	"github.com/sluice-stream/sluice/internal/sink"

	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/storage"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// Session holds settings shared by the queries it starts (Spark's
// SparkSession): a logger and session configuration.
type Session struct {
	logger *slog.Logger
	conf   map[string]string

	mu     sync.Mutex
	tables map[string]sink.Table // memory sinks by query name

	registry *prometheus.Registry
	// metrics are created by the first query that starts (queryMetrics),
	// so that a group-mode member's series carry its member label.
	metOnce sync.Once
	metrics *metrics.Metrics
	metErr  error

	// storageOptions configure the storage resolver (tests send its
	// requests through a counter).
	storageOptions []storage.ResolverOption
}

// SessionOption configures a Session.
type SessionOption func(*Session)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) SessionOption { return func(s *Session) { s.logger = l } }

// WithRegistry makes the session export its queries' Prometheus metrics
// (sluice_…) on reg instead of a registry of its own.
func WithRegistry(reg *prometheus.Registry) SessionOption {
	return func(s *Session) { s.registry = reg }
}

// WithoutPartitionLabels drops the partition label from per-partition
// metrics (lag stays available per topic), for topics with many partitions.
func WithoutPartitionLabels() SessionOption {
	return func(s *Session) { s.conf["sluice.metrics.partitionLabels"] = "false" }
}

// WithGoMemoryLimit makes queries started with a memory budget
// (sluice.memory.budget) set the Go runtime's soft memory limit so that
// the process's resident set aims at the budget plus 40 MiB, within the
// budget plus BudgetOverhead: the budget plus 40 MiB minus the process's
// file-backed resident pages (its executable's code, which the runtime does
// not count) minus a 12 MiB margin, at least the budget plus an eighth of
// it (12 MiB or more). The limit is process-wide, so a library user opts in; `sluice run`
// and `sluice demo` do. A GOMEMLIMIT in the environment wins. It is the
// session setting sluice.memory.goLimit=true.
func WithGoMemoryLimit() SessionOption {
	return func(s *Session) { s.conf["sluice.memory.goLimit"] = "true" }
}

// WithConf sets a session configuration value, e.g.
// "spark.sql.shuffle.partitions" or "sluice.workers".
func WithConf(key, value string) SessionOption {
	return func(s *Session) { s.conf[key] = value }
}

// NewSession returns a session.
func NewSession(opts ...SessionOption) *Session {
	s := &Session{logger: slog.Default(), conf: map[string]string{}, tables: map[string]sink.Table{}}
	for _, o := range opts {
		o(s)
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	return s
}

// queryMetrics returns the session's metrics, creating them on first use.
// member, set for a query in group mode, becomes the constant label
// member=NAME of every series (metrics.WithMember); a later query of
// another member does not change it (one member per process).
func (s *Session) queryMetrics(member string) (*metrics.Metrics, error) {
	s.metOnce.Do(func() {
		var mopts []metrics.Option
		if s.conf["sluice.metrics.partitionLabels"] == "false" {
			mopts = append(mopts, metrics.WithoutPartitionLabels())
		}
		if member != "" {
			mopts = append(mopts, metrics.WithMember(member))
		}
		s.metrics, s.metErr = metrics.New(s.registry, mopts...)
	})
	return s.metrics, s.metErr
}

// MetricsHandler serves the session's Prometheus metrics (mount it at
// /metrics). The web UI serves it too.
func (s *Session) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// storageResolver returns the resolver of paths and URIs with the
// session's storage settings (fs.azure.*, fs.s3a.*, sluice.storage.*, also
// with a spark.hadoop. prefix; see docs/storage.md).
func (s *Session) storageResolver() (*storage.Resolver, error) {
	return storage.NewResolver(s.conf, s.storageOptions...)
}

// Logger returns the session's logger.
func (s *Session) Logger() *slog.Logger { return s.logger }

// SetConf sets a session configuration value.
func (s *Session) SetConf(key, value string) { s.conf[key] = value }

// Table returns the rows a "memory" sink query named name has committed so
// far (Spark registers such a table under the query name), with their
// column names. Cells are Go values as batch.Column.Value returns them:
// nil for null, bool, int64 (also dates in days and timestamps in
// microseconds), float64, string, []byte, and for nested columns a
// batch.StructValue (field values in order, with the names), a []any (an
// array) or a batch.MapValue (keys and values in order).
func (s *Session) Table(name string) (columns []string, rows [][]any, err error) {
	s.mu.Lock()
	m, ok := s.tables[name]
	s.mu.Unlock()
	if !ok {
		return nil, nil, fmt.Errorf("no memory table %q: start a query with Format(\"memory\") and QueryName(%q)", name, name)
	}
	return m.Schema().Names(), m.Rows(), nil
}

func (s *Session) registerTable(name string, m sink.Table) {
	s.mu.Lock()
	s.tables[name] = m
	s.mu.Unlock()
}

// ReadStream starts describing a streaming source.
func (s *Session) ReadStream() *DataStreamReader {
	return &DataStreamReader{session: s, options: map[string]string{}}
}

// optionString renders an option value as Spark does (numbers and booleans
// as their text).
func optionString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	case time.Duration:
		return strconv.FormatInt(x.Milliseconds(), 10)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// Trigger says when micro-batches run. Build one with ProcessingTime,
// AvailableNow or Once; the zero value is Spark's default trigger (the next
// batch starts as soon as the previous one ends).
type Trigger struct {
	t   trigger.Trigger
	err error
}

// ProcessingTime runs a batch at every multiple of interval since the Unix
// epoch, e.g. ProcessingTime("20 seconds"). A batch that overruns is
// followed at once by the next, with a warning (logged at most every 10 s).
// The interval is 0 (batches back to back, like the default trigger) or a
// whole number of milliseconds; Start reports anything else.
func ProcessingTime(interval string) Trigger {
	d, err := options.ParseInterval(interval)
	if err != nil {
		return Trigger{err: fmt.Errorf("trigger processingTime %q: %w", interval, err)}
	}
	if err := trigger.IntervalError(interval, d); err != nil {
		return Trigger{err: fmt.Errorf("trigger processingTime: %w", err)}
	}
	return ProcessingTimeInterval(d)
}

// ProcessingTimeInterval is ProcessingTime with a time.Duration.
func ProcessingTimeInterval(d time.Duration) Trigger {
	if err := trigger.CheckInterval(d); err != nil {
		return Trigger{err: fmt.Errorf("trigger processingTime: %w", err)}
	}
	return Trigger{t: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: d}}
}

// AvailableNow processes everything available when the query starts, in as
// many batches as the read limits allow, then stops.
func AvailableNow() Trigger { return Trigger{t: trigger.Trigger{Kind: trigger.AvailableNow}} }

// Once processes everything available in one batch, ignoring read limits,
// then stops (deprecated in Spark in favour of AvailableNow).
func Once() Trigger { return Trigger{t: trigger.Trigger{Kind: trigger.Once}} }

// String renders the trigger as Spark names it.
func (t Trigger) String() string { return t.t.String() }
