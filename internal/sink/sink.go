// Package sink defines what the engine needs from an output: per-task
// writers that stream a batch's rows, and a per-batch commit that makes them
// visible exactly once.
//
// The protocol mirrors Spark's DataSourceV2 write path. For batch N the
// engine calls NewWriter once per task, Write any number of times, Close on
// success (returning a commit message) or Abort on failure, and finally
// Commit(N, messages) once. Commit must be idempotent per batch id: after a
// crash the engine replays batch N (same id, same rows) and a sink that
// already committed N must not add its output again. Sinks that cannot be
// idempotent (console) document it.
//
// Each sink package describes itself to the registry (internal/registry)
// as a Format: name, option spec, output modes, capabilities and
// constructor. QueryOptions is the one description of the writer options
// that belong to the query (checkpointLocation and the like).
package sink

import (
	"context"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// Message is what a task writer hands to Commit (file names written,
// row counts...). Its type is private to each sink.
type Message any

// Writer writes the rows of one task of one batch.
type Writer interface {
	Write(ctx context.Context, b *batch.Batch) error
	// Close finishes the task's output and returns the message for Commit.
	Close(ctx context.Context) (Message, error)
	// Abort discards the task's output; called instead of Close on failure.
	Abort(ctx context.Context)
}

// Sink is a streaming output.
type Sink interface {
	// Description is progress's sink.description, e.g. "ConsoleSink".
	Description() string
	// NewWriter is called once per task of batch batchID, concurrently.
	NewWriter(ctx context.Context, batchID int64, task int, schema batch.Schema) (Writer, error)
	// Commit makes batch batchID visible. messages are the writers' Close
	// results in task order. Idempotent per batchID.
	Commit(ctx context.Context, batchID int64, messages []Message) error
	Close() error
}

// Staged is implemented by sinks whose task writers leave nothing any
// reader can see before Commit: rows held for Commit, or data files under
// fresh names that no log lists until Commit. The engine then runs a
// batch's tasks while the batch's offsets/N is still being written, and
// calls Commit only once it is durable — Spark writes offsets/N before
// any processing because a sink may act on rows as its tasks see them
// (foreach writers, a Kafka sink without transactions); a staged sink
// does not, so nothing of a batch whose offsets/N did not survive a crash
// was ever visible.
type Staged interface {
	StagedUntilCommit() bool
}

// IsStaged reports whether s is Staged and says so (nil is staged: no
// sink).
func IsStaged(s Sink) bool {
	if s == nil {
		return true
	}
	st, ok := s.(Staged)
	return ok && st.StagedUntilCommit()
}

// Budgeted is implemented by sinks that hold memory of their own: the
// upload buffers of a sink writing to an object store. The engine gives
// them the query's memory budget (sluice.memory.budget) and holds back the
// bytes they reserve from what admission may fill with batches.
type Budgeted interface {
	SetMemoryBudget(budget int64) (reserved int64)
}

// StoreTimer is implemented by writers that measure how long they waited
// for their storage (uploads to an object store, disk writes); the engine
// reports it as the batch's "store write" share, apart from the rest of
// the sink's time.
type StoreTimer interface {
	StoreTime() time.Duration
}
