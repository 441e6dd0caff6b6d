// Package slow wraps a sink so that it costs a set time per row and per
// batch: a stand-in for an expensive downstream system when rehearsing
// backpressure (sink option sluice.sink.delayPerRow / delayPerBatch).
// The delay changes only timing, never the rows written.
package slow

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sink"
)

// Sink delays an inner sink.
type Sink struct {
	inner    sink.Sink
	perRow   atomic.Int64 // ns
	perBatch atomic.Int64 // ns
}

// Wrap returns inner slowed by perRow for every row written and perBatch
// for every batch committed.
func Wrap(inner sink.Sink, perRow, perBatch time.Duration) *Sink {
	s := &Sink{inner: inner}
	s.SetDelay(perRow, perBatch)
	return s
}

// SetDelay changes the delays (e.g. to rehearse a step change in cost).
func (s *Sink) SetDelay(perRow, perBatch time.Duration) {
	s.perRow.Store(int64(perRow))
	s.perBatch.Store(int64(perBatch))
}

// Description implements sink.Sink.
func (s *Sink) Description() string { return s.inner.Description() }

// StagedUntilCommit implements sink.Staged as the wrapped sink does.
func (s *Sink) StagedUntilCommit() bool { return sink.IsStaged(s.inner) }

type writer struct {
	s     *Sink
	inner sink.Writer
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *writer) Write(ctx context.Context, b *batch.Batch) error {
	if err := sleep(ctx, time.Duration(w.s.perRow.Load()*int64(b.N))); err != nil {
		return err
	}
	return w.inner.Write(ctx, b)
}

func (w *writer) Close(ctx context.Context) (sink.Message, error) { return w.inner.Close(ctx) }
func (w *writer) Abort(ctx context.Context)                       { w.inner.Abort(ctx) }

// NewWriter implements sink.Sink.
func (s *Sink) NewWriter(ctx context.Context, batchID int64, task int, schema batch.Schema) (sink.Writer, error) {
	w, err := s.inner.NewWriter(ctx, batchID, task, schema)
	if err != nil {
		return nil, err
	}
	return &writer{s: s, inner: w}, nil
}

// Commit implements sink.Sink.
func (s *Sink) Commit(ctx context.Context, batchID int64, msgs []sink.Message) error {
	if err := sleep(ctx, time.Duration(s.perBatch.Load())); err != nil {
		return err
	}
	return s.inner.Commit(ctx, batchID, msgs)
}

// Close implements sink.Sink.
func (s *Sink) Close() error { return s.inner.Close() }
