// Package sinktest is an in-memory sink for testing the engine: it keeps
// the rows of every committed batch by batch id, ignores (and counts) a
// second commit of a batch id as an exactly-once sink must, detects rows
// committed twice across batches, records what happened to every task
// writer (closed, aborted), and fails or pauses at chosen points through
// a hook. Several sinks can share one Events log to check the order of
// their commits.
package sinktest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
)

// Op names a point of the sink's work where the hook is called.
type Op string

// Points the hook sees.
const (
	OpNewWriter Op = "newWriter"
	OpWrite     Op = "write"
	OpClose     Op = "close"
	OpCommit    Op = "commit"
)

// Point is where the hook is called (Task is -1 for OpCommit).
type Point struct {
	Op    Op
	Batch int64
	Task  int
}

// Hook is called at every Point from the goroutine doing the work; an
// error fails that step. It may block to hold a writer mid-task.
type Hook func(ctx context.Context, at Point) error

// Events is an ordered log shared by sinks ("<name> commit <batch>").
type Events struct {
	mu   sync.Mutex
	list []string
}

func (e *Events) add(s string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.list = append(e.list, s)
	e.mu.Unlock()
}

// List returns the events so far.
func (e *Events) List() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// WriterState is what became of one task writer.
type WriterState string

// Writer states.
const (
	Open    WriterState = "open"
	Closed  WriterState = "closed"
	Aborted WriterState = "aborted"
)

// WriterKey names a writer: batch and task.
type WriterKey struct {
	Batch int64
	Task  int
}

// Sink is the fake sink. Create it with New.
type Sink struct {
	name   string
	events *Events
	// key identifies a row for duplicate detection (default: the whole
	// row).
	key func(row []any) string

	mu        sync.Mutex
	hook      Hook
	committed map[int64][][]any
	order     []int64 // batch ids in commit order, replays included
	recommits []int64
	writers   map[WriterKey]WriterState
	seen      map[string]int64 // row key → batch that committed it
	dups      []string
	staged    bool
}

// Staged makes the sink report sink.Staged (its rows are visible only
// after Commit, which holds for this fake); off by default, as for a sink
// that acts on rows in its tasks.
func (s *Sink) Staged(on bool) *Sink {
	s.mu.Lock()
	s.staged = on
	s.mu.Unlock()
	return s
}

// StagedUntilCommit implements sink.Staged.
func (s *Sink) StagedUntilCommit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.staged
}

// New returns an empty sink named name (used in Events). events may be
// nil.
func New(name string, events *Events) *Sink {
	return &Sink{name: name, events: events, committed: map[int64][][]any{}, writers: map[WriterKey]WriterState{},
		seen: map[string]int64{}, key: func(row []any) string { return fmt.Sprint(row...) }}
}

// KeyBy sets the row identity for duplicate detection, e.g. a source's
// partition and offset columns.
func (s *Sink) KeyBy(key func(row []any) string) *Sink {
	s.key = key
	return s
}

// SetHook installs the hook (nil removes it).
func (s *Sink) SetHook(h Hook) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

func (s *Sink) call(ctx context.Context, at Point) error {
	s.mu.Lock()
	h := s.hook
	s.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(ctx, at)
}

// Description implements sink.Sink.
func (s *Sink) Description() string { return "FakeSink[" + s.name + "]" }

type writer struct {
	s    *Sink
	key  WriterKey
	rows [][]any
}

// NewWriter implements sink.Sink.
func (s *Sink) NewWriter(ctx context.Context, batchID int64, task int, _ batch.Schema) (sink.Writer, error) {
	if err := s.call(ctx, Point{Op: OpNewWriter, Batch: batchID, Task: task}); err != nil {
		return nil, err
	}
	k := WriterKey{batchID, task}
	s.mu.Lock()
	s.writers[k] = Open
	s.mu.Unlock()
	return &writer{s: s, key: k}, nil
}

func (w *writer) Write(ctx context.Context, b *batch.Batch) error {
	if err := w.s.call(ctx, Point{Op: OpWrite, Batch: w.key.Batch, Task: w.key.Task}); err != nil {
		return err
	}
	for i := 0; i < b.N; i++ {
		w.rows = append(w.rows, b.Row(i))
	}
	return nil
}

func (w *writer) Close(ctx context.Context) (sink.Message, error) {
	if err := w.s.call(ctx, Point{Op: OpClose, Batch: w.key.Batch, Task: w.key.Task}); err != nil {
		return nil, err
	}
	w.s.mu.Lock()
	w.s.writers[w.key] = Closed
	w.s.mu.Unlock()
	return w.rows, nil
}

func (w *writer) Abort(context.Context) {
	w.s.mu.Lock()
	w.s.writers[w.key] = Aborted
	w.s.mu.Unlock()
	w.rows = nil
}

// Commit implements sink.Sink. A batch id committed before is not added
// again (counted in Recommits).
func (s *Sink) Commit(ctx context.Context, batchID int64, msgs []sink.Message) error {
	if err := s.call(ctx, Point{Op: OpCommit, Batch: batchID, Task: -1}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = append(s.order, batchID)
	s.events.add(fmt.Sprintf("%s commit %d", s.name, batchID))
	if _, done := s.committed[batchID]; done {
		s.recommits = append(s.recommits, batchID)
		return nil
	}
	var rows [][]any
	for _, m := range msgs {
		rs, ok := m.([][]any)
		if !ok && m != nil {
			return fmt.Errorf("sinktest: message %T is not from this sink", m)
		}
		rows = append(rows, rs...)
	}
	for _, r := range rows {
		k := s.key(r)
		if prev, ok := s.seen[k]; ok {
			s.dups = append(s.dups, fmt.Sprintf("%s (batches %d and %d)", k, prev, batchID))
		}
		s.seen[k] = batchID
	}
	s.committed[batchID] = rows
	return nil
}

// Close implements sink.Sink.
func (s *Sink) Close() error { return nil }

// Batches returns the committed batch ids in ascending order.
func (s *Sink) Batches() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.committed))
	for id := range s.committed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Rows returns the rows committed in batch id.
func (s *Sink) Rows(id int64) [][]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.committed[id])
}

// NumRows counts all committed rows.
func (s *Sink) NumRows() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rs := range s.committed {
		n += len(rs)
	}
	return n
}

// CommitOrder returns batch ids in the order Commit was called, repeated
// commits included.
func (s *Sink) CommitOrder() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

// Recommits returns the batch ids committed again after their first
// commit (replays), which were not added twice.
func (s *Sink) Recommits() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recommits)
}

// Duplicates lists rows committed by more than one commit, with the
// batches that committed them; empty when every row is in exactly once.
func (s *Sink) Duplicates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.dups)
}

// Writers returns the state of every writer opened so far.
func (s *Sink) Writers() map[WriterKey]WriterState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[WriterKey]WriterState, len(s.writers))
	for k, v := range s.writers {
		out[k] = v
	}
	return out
}

// String summarises the sink for test failure messages.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "%s: commits %v, recommits %v, %d duplicates", s.name, s.order, s.recommits, len(s.dups))
	return b.String()
}

var _ sink.Sink = (*Sink)(nil)
