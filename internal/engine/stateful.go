package engine

import (
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/internal/watermark"
)

// Stateful is the stateful half of a query's physical plan (package plan
// builds it; package operator implements it). A query with one runs each
// batch in two stages joined by an in-process exchange:
//
//   - stage 1, one task per source range: the source chunks go through
//     Config.Transform, then through a ShuffleWriter that sends each row
//     (or partial aggregate) to the shuffle partition its key hashes to;
//   - stage 2, one task per shuffle partition on the worker pool: a Stage2
//     opened with the partition's state stores (version = batch id)
//     processes what the partition received, then emits its output, which
//     the engine writes to the sink.
//
// After the sink commits batch N the stores commit version N+1, then
// commits/N is written.
type Stateful interface {
	// Schema is the schema of the rows Stage2 emits (the sink's input).
	Schema() batch.Schema
	// Operators lists the stateful operators in plan order; operator i keeps
	// its state in state/<i>/.
	Operators() []StateOperator
	// NewShuffleWriter returns the end of stage 1 for one task.
	NewShuffleWriter(env ShuffleEnv) ShuffleWriter
	// NewStage2 opens stage 2 for one shuffle partition of one batch.
	NewStage2(env Stage2Env) (Stage2, error)
	// NoDataBatches reports whether a watermark above the one the last
	// batch used calls for a batch even without new input, to evict state
	// and emit what the watermark completed (Spark's shouldRunAnotherBatch:
	// aggregations in append and update mode, deduplication).
	NoDataBatches() bool
}

// StateOperator describes one stateful operator's state.
type StateOperator struct {
	// Name is Spark's operator name (state.OperatorNameAggregate, …),
	// reported as progress stateOperators[].operatorName.
	Name string
	// Schemas are the key and value schemas recorded in and checked
	// against state/<id>/0/_metadata/schema.
	Schemas state.Schemas
	// PrefixKeyColumns is the number of leading key columns the operator
	// scans by (Spark's numColsPrefixKey: the grouping keys of a session
	// window aggregation), recorded in state/<id>/_metadata/metadata.
	PrefixKeyColumns int
}

// ShuffleEnv is what a stage-1 task's ShuffleWriter works with.
type ShuffleEnv struct {
	// Partitions is spark.sql.shuffle.partitions as pinned by the
	// checkpoint.
	Partitions int
	// BatchTime is the batch's logged timestamp (current_timestamp()).
	BatchTime time.Time
	// Send hands rows to a shuffle partition. It may block while the
	// exchange is full (never dropping rows) and fails when the batch is
	// cancelled or stage 2 failed. The batch passed is owned by the
	// exchange afterwards.
	Send func(partition int, b *batch.Batch) error
}

// ShuffleWriter receives one task's transformed chunks in order.
type ShuffleWriter interface {
	Write(b *batch.Batch) error
	// Flush sends what the writer still holds (partial aggregates) at the
	// end of the task's input.
	Flush() error
}

// Stage2Env is what one shuffle partition's Stage2 works with.
type Stage2Env struct {
	BatchID   int64
	Partition int
	// Partitions is the number of shuffle partitions.
	Partitions int
	// WatermarkMs is the watermark this batch uses to drop late rows and
	// evict state (offsets/N batchWatermarkMs).
	WatermarkMs int64
	BatchTime   time.Time
	// Stores are the partition's state stores, one per Operators() entry,
	// opened at version BatchID.
	Stores []state.Store
}

// Stage2 is one shuffle partition's stateful work for one batch. Its
// methods are called by one goroutine at a time.
type Stage2 interface {
	// Process takes rows the partition received, in arrival order. It may
	// be called while stage 1 still runs (when the exchange is full).
	Process(b *batch.Batch) error
	// Finish runs once stage 1 is done: it updates and evicts state and
	// emits the partition's output for the batch through emit.
	Finish(emit func(b *batch.Batch) error) error
	// Metrics reports, per operator, what the state stores do not count.
	Metrics() []OperatorMetrics
}

// OperatorMetrics are one stateful operator's figures for one partition
// and batch besides the state store's.
type OperatorMetrics struct {
	// DroppedByWatermark counts late input rows dropped (aggregations: one
	// per late key after merging; deduplication: raw rows).
	DroppedByWatermark int64
	// Custom are operator-specific metrics (numDroppedDuplicateRows).
	Custom map[string]int64
}

// Watermarks is the event-time half of a physical plan: the query's
// withWatermark nodes in plan order.
type Watermarks interface {
	// Delays are the nodes' delay thresholds in milliseconds.
	Delays() []int64
	// Collect returns what each node saw since the last call and resets.
	Collect() []watermark.Stats
}

// StateOperatorInfo is one stateful operator's figures for a batch, summed
// over its shuffle partitions: Spark's StateOperatorProgress.
type StateOperatorInfo struct {
	OperatorName              string
	NumRowsTotal              int64
	NumRowsUpdated            int64
	NumRowsRemoved            int64
	AllUpdatesTimeMs          int64
	AllRemovalsTimeMs         int64
	CommitTimeMs              int64
	MemoryUsedBytes           int64
	NumRowsDroppedByWatermark int64
	NumShufflePartitions      int64
	NumStateStoreInstances    int64
	CustomMetrics             map[string]int64
	// Partitions are the per-partition figures (for skew diagnosis):
	// keys and memory of each shuffle partition's store.
	Partitions []PartitionState
}

// PartitionState is one shuffle partition's state after a batch.
type PartitionState struct {
	Keys, MemoryBytes int64
}

// EventTimeInfo is a batch's event-time figures (progress eventTime).
type EventTimeInfo struct {
	// Stats are the first withWatermark node's (Count 0: it saw no rows).
	Stats watermark.Stats
	// WatermarkMs is the watermark the batch used.
	WatermarkMs int64
}
