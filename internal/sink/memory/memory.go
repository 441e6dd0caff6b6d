// Package memory is Spark's memory sink: every committed batch is kept in
// memory as a table that tests and notebooks can query. Commit is
// idempotent per batch id, so a replayed batch is not added twice.
//
// It holds everything it is given: use it for tests and small interactive
// queries, never for production volumes.
package memory

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sink"
)

// Sink is the memory sink.
type Sink struct {
	mu      sync.Mutex
	schema  batch.Schema
	batches map[int64][]*batch.Batch
	commits []int64 // batch ids in commit order, including skipped replays
}

// New returns an empty memory sink.
func New() *Sink { return &Sink{batches: map[int64][]*batch.Batch{}} }

// Format registers "memory": the sink publishes itself as a table under
// the query's name through sink.Env.RegisterTable.
var Format = sink.Format{
	Name:        "memory",
	Summary:     "keeps every batch in memory as a table named after the query (Session.Table; tests and notebooks)",
	Options:     &options.Spec{What: "memory sink"},
	OutputModes: []string{sink.Append, sink.Complete},
	Idempotent:  true, PublishesTable: true,
	Validate: func(options.Values) error { return nil },
	Open: func(_ options.Values, env sink.Env) (sink.Sink, error) {
		m := New()
		if env.RegisterTable != nil {
			if env.TableName == "" {
				return nil, errors.New("the memory sink needs a query name (QueryName) to register its table under")
			}
			env.RegisterTable(env.TableName, m)
		}
		return m, nil
	},
}

// Description implements sink.Sink.
func (s *Sink) Description() string { return "MemorySink" }

// StagedUntilCommit implements sink.Staged: rows reach the table at Commit.
func (s *Sink) StagedUntilCommit() bool { return true }

type writer struct {
	parts []*batch.Batch
}

func (w *writer) Write(_ context.Context, b *batch.Batch) error {
	w.parts = append(w.parts, b)
	return nil
}
func (w *writer) Close(context.Context) (sink.Message, error) { return w.parts, nil }
func (w *writer) Abort(context.Context)                       { w.parts = nil }

// NewWriter implements sink.Sink.
func (s *Sink) NewWriter(_ context.Context, _ int64, _ int, schema batch.Schema) (sink.Writer, error) {
	s.mu.Lock()
	s.schema = schema
	s.mu.Unlock()
	return &writer{}, nil
}

// Commit implements sink.Sink; a batch id committed before is ignored.
func (s *Sink) Commit(_ context.Context, batchID int64, msgs []sink.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits = append(s.commits, batchID)
	if _, done := s.batches[batchID]; done {
		return nil
	}
	var parts []*batch.Batch
	for _, m := range msgs {
		if bs, ok := m.([]*batch.Batch); ok {
			parts = append(parts, bs...)
		}
	}
	s.batches[batchID] = parts
	return nil
}

// Close implements sink.Sink.
func (s *Sink) Close() error { return nil }

// Schema returns the schema of the rows written.
func (s *Sink) Schema() batch.Schema {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schema
}

// BatchIDs returns the committed batch ids in ascending order.
func (s *Sink) BatchIDs() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.batches))
	for id := range s.batches {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// CommitCalls returns every Commit call's batch id in call order, replays
// included.
func (s *Sink) CommitCalls() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commits)
}

// Batch returns the chunks of one committed batch.
func (s *Sink) Batch(id int64) []*batch.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches[id]
}

// Rows returns all committed rows, by batch id then task order.
func (s *Sink) Rows() [][]any {
	var out [][]any
	for _, id := range s.BatchIDs() {
		for _, b := range s.Batch(id) {
			for i := 0; i < b.N; i++ {
				out = append(out, b.Row(i))
			}
		}
	}
	return out
}

// NumRows counts all committed rows.
func (s *Sink) NumRows() int {
	n := 0
	for _, id := range s.BatchIDs() {
		for _, b := range s.Batch(id) {
			n += b.N
		}
	}
	return n
}
