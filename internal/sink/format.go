package sink

import (
	"context"
	"io"
	"log/slog"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/storage"
)

// Format describes a sink format to the registry (internal/registry): its
// name, its options, the output modes and guarantees it offers and how to
// create it. Each sink package declares its own Format next to its option
// parser.
type Format struct {
	// Name is the format name users write, e.g. "parquet".
	Name string
	// Summary is one line for listings ("sluice options").
	Summary string
	// Options is the typed description of the format's own options (the
	// query's, such as checkpointLocation, are described by the registry).
	Options *options.Spec
	// OutputModes are the output modes the sink supports (Spark's
	// compatibility matrix: file sinks are append-only).
	OutputModes []string
	// Idempotent sinks leave their output unchanged when a batch is
	// replayed after a crash: with a replayable source, exactly-once.
	Idempotent bool
	// NeedsCheckpoint: the query must be given a checkpointLocation. Sinks
	// without it (console, memory, noop) may run on a temporary checkpoint,
	// as Spark allows.
	NeedsCheckpoint bool
	// APIOnly formats cannot be used from a pipeline file because they are
	// built from Go values (foreachBatch takes a function).
	APIOnly bool
	// PublishesTable: the sink publishes its rows as a table under the
	// query's name (Env.RegisterTable), so the query must have a name.
	PublishesTable bool
	// Validate checks the options without creating anything on disk or on
	// the network.
	Validate func(v options.Values) error
	// Open creates the sink.
	Open func(v options.Values, env Env) (Sink, error)
}

// Env is what creating a sink may need besides its options.
type Env struct {
	// Stdout is where the console sink prints; never nil.
	Stdout io.Writer
	// QueryID is the checkpoint's query id (the Delta txn appId, the Kafka
	// transactional id and commit markers, the file sink's writer record).
	QueryID string
	// Resumed is true when the checkpoint holds batches of an earlier run
	// of the query, false for a new checkpoint.
	Resumed bool
	// Logger is the query's logger; never nil.
	Logger *slog.Logger
	// DeadLetter is set when the sink receives the query's dead letters
	// (engine.DeadLetterSchema batches) rather than its results; a sink
	// may reshape them (the Kafka sink writes the original record with the
	// reason in headers).
	DeadLetter bool
	// TableName and RegisterTable publish an in-memory table (the memory
	// sink) under the query's name; RegisterTable is nil when the caller
	// has nowhere to publish it.
	TableName     string
	RegisterTable func(name string, t Table)
	// ForeachBatch is the function of the foreachBatch sink.
	ForeachBatch func(ctx context.Context, b *batch.Batch, batchID int64) error
	// Group is the consumer group of a query in group mode (the kafka
	// source's sluice.group), "" otherwise: the Delta sink then keys its
	// txn actions by the group's partitions instead of the query id.
	Group string
	// Member is this process's member name in group mode
	// (sluice.group.member), "" otherwise.
	Member string
	// Storage resolves paths and object-store URIs (abfss://…, s3a://…)
	// with the session's storage settings; nil resolves with the
	// environment's credentials only.
	Storage *storage.Resolver
}

// Table is an in-memory result table (the memory sink's), readable while
// the query runs.
type Table interface {
	// Schema is the schema of the rows written.
	Schema() batch.Schema
	// Rows returns every committed row, in commit order.
	Rows() [][]any
}

// Output modes, as Spark names them.
const (
	Append   = "append"
	Update   = "update"
	Complete = "complete"
)

// OutputModes returns every output mode Spark defines, in Spark's order.
func OutputModes() []string { return []string{Append, Update, Complete} }
