package sluice

import (
	"context"
	"os"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/progress"
)

// Progress is one batch's progress report in Spark's
// StreamingQueryProgress shape (plus a "sluice" key); it marshals to the
// same JSON Spark writes.
type Progress = progress.Progress

// Status is Spark's StreamingQueryStatus.
type Status = engine.Status

// Listener receives a query's lifecycle and progress events.
type Listener = progress.Listener

// ListenerFuncs adapts functions to a Listener.
type ListenerFuncs = progress.ListenerFuncs

// StreamingQuery is a running query (Spark's StreamingQuery).
type StreamingQuery struct {
	q              *engine.Query
	mon            *monitor.Monitor
	trigger        Trigger
	tempCheckpoint string
	done           chan struct{}
}

// finish cleans up after termination: delivers pending listener events and
// removes a temporary checkpoint.
func (s *StreamingQuery) finish() {
	<-s.q.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = s.mon.Close(ctx)
	cancel()
	if s.tempCheckpoint != "" {
		os.RemoveAll(s.tempCheckpoint)
	}
	close(s.done)
}

// ID is the query id, stable across restarts from the same checkpoint.
func (s *StreamingQuery) ID() string { return s.q.ID() }

// RunID is unique to this run.
func (s *StreamingQuery) RunID() string { return s.q.RunID() }

// Trigger is the trigger the query runs with. Triggers compare with ==,
// e.g. q.Trigger() == sluice.AvailableNow().
func (s *StreamingQuery) Trigger() Trigger { return s.trigger }

// Name is the query name.
func (s *StreamingQuery) Name() string { return s.q.Name() }

// IsActive reports whether the query is still running.
func (s *StreamingQuery) IsActive() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// AwaitTermination blocks until the query stops (nil for a requested stop
// or a finished once/availableNow trigger; the failure otherwise) or ctx is
// done.
func (s *StreamingQuery) AwaitTermination(ctx context.Context) error {
	select {
	case <-s.done:
		return s.q.Exception()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop stops the query and waits for it; a batch cut short is re-run from
// the checkpoint on the next start.
func (s *StreamingQuery) Stop() error {
	err := s.q.Stop()
	<-s.done
	return err
}

// Exception returns the error the query failed with, or nil.
func (s *StreamingQuery) Exception() error { return s.q.Exception() }

// Status returns what the query is doing now.
func (s *StreamingQuery) Status() Status { return s.q.Status() }

// LastProgress returns the most recent progress report, or nil.
func (s *StreamingQuery) LastProgress() *Progress { return s.mon.Last() }

// RecentProgress returns up to the last 100 progress reports, oldest first.
func (s *StreamingQuery) RecentProgress() []*Progress { return s.mon.Recent() }

// Engine exposes the underlying engine query (for sluice's own tools).
func (s *StreamingQuery) Engine() *engine.Query { return s.q }

// Limits are a query's admission settings (see SetLimits).
type Limits = admission.Limits

// LimitsUpdate changes some of a query's limits; nil fields stay.
type LimitsUpdate = admission.LimitsUpdate

// Limits returns the query's current admission settings.
func (s *StreamingQuery) Limits() Limits { return s.q.Limits() }

// SetLimits changes admission settings while the query runs: the change is
// logged, applies from the next planned batch, shows in its progress and is
// recorded in its offsets file (so a replay re-reads the same ranges).
func (s *StreamingQuery) SetLimits(u LimitsUpdate) (Limits, error) { return s.q.SetLimits(u) }

// Snapshot is a query's live state for UIs and APIs: status, health, lag per
// partition, checkpoint and memory figures, limits, the last diagnosis and
// the last progress. Health is re-evaluated when it is taken, so a stuck
// batch shows as STOP without waiting for a report.
type Snapshot = monitor.Snapshot

// Snapshot returns the query's live state.
func (s *StreamingQuery) Snapshot() Snapshot { return s.mon.Snapshot() }
