// Package noop is Spark's "noop" sink: the query runs in full — sources are
// read, transforms evaluated, writers called — but nothing is written. It
// counts what it saw so benchmarks can check that rows went through.
package noop

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
)

// Description is the sink's progress description.
const Description = "NoopSink"

// Sink discards rows and counts them. The zero value is ready to use; its
// methods are safe for concurrent use.
type Sink struct {
	written atomic.Int64 // rows passed to any writer's Write

	mu        sync.Mutex
	rows      int64 // rows of committed batches
	batches   int64 // committed batches
	lastBatch int64 // highest committed batch id; valid when batches > 0
}

var _ sink.Sink = (*Sink)(nil)

// New returns a noop sink.
func New() *Sink { return &Sink{} }

// Format registers "noop".
var Format = sink.Format{
	Name:        "noop",
	Summary:     "runs the query in full and writes nothing (benchmarks)",
	Options:     &options.Spec{What: "noop sink"},
	OutputModes: sink.OutputModes(),
	Idempotent:  true,
	Validate:    func(options.Values) error { return nil },
	Open:        func(options.Values, sink.Env) (sink.Sink, error) { return New(), nil },
}

// Description returns "NoopSink".
func (s *Sink) Description() string { return Description }

// RowsWritten returns the number of rows handed to writers, including rows
// of aborted tasks and of replayed batches.
func (s *Sink) RowsWritten() int64 { return s.written.Load() }

// Rows returns the number of rows in committed batches, each batch id
// counted once.
func (s *Sink) Rows() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows
}

// StagedUntilCommit implements sink.Staged: nothing is written anywhere.
func (s *Sink) StagedUntilCommit() bool { return true }

// Batches returns the number of distinct batches committed.
func (s *Sink) Batches() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches
}

// NewWriter returns a writer that counts the rows of one task.
func (s *Sink) NewWriter(ctx context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error) {
	return &writer{s: s}, nil
}

type writer struct {
	s    *Sink
	rows int64
}

func (w *writer) Write(ctx context.Context, b *batch.Batch) error {
	w.rows += int64(b.N)
	w.s.written.Add(int64(b.N))
	return nil
}

// Close returns the task's row count (an int64) as its message.
func (w *writer) Close(ctx context.Context) (sink.Message, error) { return w.rows, nil }

func (w *writer) Abort(ctx context.Context) {}

// Commit adds the tasks' row counts to Rows. It is idempotent per batch id:
// a batch id not above the last committed one (a replay) is not counted
// again.
func (s *Sink) Commit(ctx context.Context, batchID int64, messages []sink.Message) error {
	var n int64
	for i, m := range messages {
		c, ok := m.(int64)
		if !ok {
			return fmt.Errorf("noop sink: batch %d: message %d is %T, not from a noop writer", batchID, i, m)
		}
		n += c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.batches > 0 && batchID <= s.lastBatch {
		return nil
	}
	s.rows += n
	s.batches++
	s.lastBatch = batchID
	return nil
}

// Close does nothing.
func (s *Sink) Close() error { return nil }
