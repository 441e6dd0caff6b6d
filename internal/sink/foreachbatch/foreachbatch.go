// Package foreachbatch is Spark's foreachBatch for the Go API: the rows of
// each micro-batch are handed to a user function together with the batch id.
//
// Delivery is at-least-once, as in Spark: the function runs once per Commit,
// and after a crash the engine replays the last logged but uncommitted batch
// with the same id and the same rows, so the function may see a batch id a
// second time. A function that must not apply a batch twice records the
// batch ids it has applied (in the same transaction as its writes, where it
// can) and skips ids it already has.
//
// New collects a batch's rows from all tasks and calls the function once at
// commit with one concatenated batch; that batch is held in memory whole.
// NewStreaming instead hands every chunk to the function as the tasks
// produce it, which keeps memory bounded but gives up the single call per
// batch.
package foreachbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
)

// Func is called once per committed micro-batch with all of its rows.
type Func func(ctx context.Context, b *batch.Batch, batchID int64) error

// ChunkFunc is called for every chunk a task writes; task is the task index
// within the batch. Calls for different tasks run concurrently.
type ChunkFunc func(ctx context.Context, chunk *batch.Batch, batchID int64, task int) error

// Sink is the foreachBatch sink.
type Sink struct {
	fn       Func
	streamFn ChunkFunc

	mu     sync.Mutex
	schema batch.Schema
}

// Format registers "foreachBatch". It exists only in the Go API
// (DataStreamWriter.ForeachBatch), because it is built from a function.
var Format = sink.Format{
	Name:        "foreachBatch",
	Summary:     "calls a Go function with each batch's rows and id (DataStreamWriter.ForeachBatch; at-least-once)",
	Options:     &options.Spec{What: "foreachBatch sink"},
	OutputModes: sink.OutputModes(),
	APIOnly:     true,
	Validate:    func(options.Values) error { return nil },
	Open: func(_ options.Values, env sink.Env) (sink.Sink, error) {
		if env.ForeachBatch == nil {
			return nil, errors.New("the foreachBatch sink needs a function: use DataStreamWriter.ForeachBatch")
		}
		return New(env.ForeachBatch), nil
	},
}

// New returns a sink that gathers each batch's rows from all tasks, in task
// order, and calls fn once per Commit. An error from fn fails the batch.
func New(fn Func) *Sink { return &Sink{fn: fn} }

// NewStreaming returns a sink that calls fn for every chunk as the tasks
// write it, concurrently across tasks, and does nothing at commit. Chunks of
// a task that later fails have already been delivered, and the batch is
// retried or replayed in full, so fn sees rows at least once.
func NewStreaming(fn ChunkFunc) *Sink { return &Sink{streamFn: fn} }

// Description implements sink.Sink; the name is Spark's.
func (s *Sink) Description() string { return "ForeachBatchSink" }

// StagedUntilCommit implements sink.Staged: the function runs at Commit.
func (s *Sink) StagedUntilCommit() bool { return true }

// Schema returns the schema of the last batch a writer was opened for.
func (s *Sink) Schema() batch.Schema {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schema
}

// NewWriter implements sink.Sink.
func (s *Sink) NewWriter(_ context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error) {
	if s.fn == nil && s.streamFn == nil {
		return nil, errors.New("foreachBatch sink: no function given")
	}
	s.mu.Lock()
	s.schema = schema
	s.mu.Unlock()
	return &writer{s: s, batchID: batchID, task: task, schema: schema}, nil
}

// chunks is a writer's commit message: its schema and the chunks it kept.
type chunks struct {
	schema batch.Schema
	parts  []*batch.Batch
}

type writer struct {
	s       *Sink
	batchID int64
	task    int
	schema  batch.Schema
	parts   []*batch.Batch
}

func (w *writer) Write(ctx context.Context, b *batch.Batch) error {
	if w.s.streamFn != nil {
		if err := w.s.streamFn(ctx, b, w.batchID, w.task); err != nil {
			return fmt.Errorf("foreachBatch function (batch %d, task %d): %w", w.batchID, w.task, err)
		}
		return nil
	}
	if b.N > 0 {
		w.parts = append(w.parts, b)
	}
	return nil
}

func (w *writer) Close(context.Context) (sink.Message, error) {
	return chunks{schema: w.schema, parts: w.parts}, nil
}

func (w *writer) Abort(context.Context) { w.parts = nil }

// Commit implements sink.Sink: it concatenates the writers' chunks in task
// order and calls the function. It is not idempotent: a replayed batch id
// calls the function again (see the package documentation).
func (s *Sink) Commit(ctx context.Context, batchID int64, messages []sink.Message) error {
	if s.streamFn != nil {
		return nil
	}
	schema := s.Schema()
	var parts []*batch.Batch
	for i, m := range messages {
		c, ok := m.(chunks)
		if !ok {
			return fmt.Errorf("foreachBatch sink: batch %d: message %d is %T, not from this sink", batchID, i, m)
		}
		if i == 0 {
			schema = c.schema
		}
		parts = append(parts, c.parts...)
	}
	b, err := Concat(schema, parts)
	if err != nil {
		return fmt.Errorf("foreachBatch sink: batch %d: %w", batchID, err)
	}
	if err := s.fn(ctx, b, batchID); err != nil {
		return fmt.Errorf("foreachBatch function (batch %d): %w", batchID, err)
	}
	return nil
}

// Close implements sink.Sink.
func (s *Sink) Close() error { return nil }

// Concat returns one batch holding the rows of parts in order. Every part
// must have schema's column types. A single part is returned as is; more
// are copied into new columns (String, Binary and Headers cells still alias
// the parts' bytes). No parts give an empty batch of the schema.
func Concat(schema batch.Schema, parts []*batch.Batch) (*batch.Batch, error) {
	for i, p := range parts {
		if len(p.Columns) != len(schema.Fields) {
			return nil, fmt.Errorf("concat: part %d has %d columns, schema %s has %d", i, len(p.Columns), schema, len(schema.Fields))
		}
		for j, c := range p.Columns {
			if c.Type != schema.Fields[j].Type {
				return nil, fmt.Errorf("concat: part %d column %q is %s, schema says %s", i, schema.Fields[j].Name, c.Type, schema.Fields[j].Type)
			}
			if c.Len != p.N {
				return nil, fmt.Errorf("concat: part %d column %q has %d cells for %d rows", i, schema.Fields[j].Name, c.Len, p.N)
			}
		}
	}
	if len(parts) == 1 {
		p := parts[0]
		return batch.New(schema, p.Columns, p.N), nil
	}
	n := 0
	for _, p := range parts {
		n += p.N
	}
	cols := make([]*batch.Column, len(schema.Fields))
	for j, f := range schema.Fields {
		cols[j] = concatColumn(f.Type, parts, j, n)
	}
	return batch.New(schema, cols, n), nil
}

// concatColumn joins column j of every part into one column of n cells.
func concatColumn(k batch.Kind, parts []*batch.Batch, j, n int) *batch.Column {
	out := batch.NewColumn(k, n)
	for _, p := range parts {
		c := p.Columns[j]
		out.AppendRange(c, 0, c.Len)
	}
	return out
}
