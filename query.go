package sluice

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/monitor"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/redact"
	"github.com/sluice-stream/sluice/progress"
)

// Progress is one batch's progress report in Spark's
// StreamingQueryProgress shape (plus a "sluice" key); it marshals to the
// same JSON Spark writes. It is progress.Progress, named here for
// convenience; package progress documents its fields.
type Progress = progress.Progress

// Listener receives a query's lifecycle and progress events (Spark's
// StreamingQueryListener); see DataStreamWriter.AddListener. It is
// progress.Listener.
type Listener = progress.Listener

// ListenerFuncs adapts functions to a Listener; nil functions are skipped.
// It is progress.ListenerFuncs.
type ListenerFuncs = progress.ListenerFuncs

// Status is what a query is doing right now (Spark's StreamingQueryStatus):
// a message such as "Waiting for next trigger", whether data is available
// and whether a trigger is running. It is progress.Status.
type Status = progress.Status

// StreamingQuery is a running query (Spark's StreamingQuery).
type StreamingQuery struct {
	q              *engine.Query
	mon            *monitor.Monitor
	trigger        Trigger
	tempCheckpoint string
	done           chan struct{}
	// scrub removes the query's secrets from the errors it returns.
	scrub redact.Scrubber
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
		return s.scrub.Err(s.q.Exception())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop stops the query at once and waits for it; a batch cut short is
// re-run from the checkpoint on the next start (as Spark's stop does).
func (s *StreamingQuery) Stop() error {
	err := s.q.Stop()
	<-s.done
	return s.scrub.Err(err)
}

// ErrBatchAbandoned returns the error StopGracefully wraps when its
// deadline passed while a batch was running: the batch was abandoned and
// re-runs, with exactly its logged offsets, on the next start. Test for it
// with errors.Is(err, sluice.ErrBatchAbandoned()).
func ErrBatchAbandoned() error { return engine.ErrBatchAbandoned }

// StopGracefully stops the query the way `sluice run` does on SIGTERM: no
// new batch starts (one planned but not yet logged is dropped), the batch
// running now finishes and commits, and it returns once the query has
// ended. If ctx ends first, the running batch is abandoned as Stop does and
// the error wraps ErrBatchAbandoned. What happened is logged. Otherwise it
// returns the query's own failure, nil for a clean stop.
//
//	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
//	defer cancel()
//	if err := q.StopGracefully(ctx); errors.Is(err, sluice.ErrBatchAbandoned()) {
//		// the batch re-runs from the checkpoint on the next start
//	}
func (s *StreamingQuery) StopGracefully(ctx context.Context) error {
	err := s.q.StopGracefully(ctx)
	<-s.done
	return err
}

// Exception returns the error the query failed with, or nil.
func (s *StreamingQuery) Exception() error { return s.scrub.Err(s.q.Exception()) }

// Status returns what the query is doing now.
func (s *StreamingQuery) Status() Status { return statusOf(s.q.Status()) }

func statusOf(st engine.Status) Status {
	return Status{Message: st.Message, IsDataAvailable: st.IsDataAvailable, IsTriggerActive: st.IsTriggerActive}
}

// LastProgress returns the most recent progress report, or nil.
func (s *StreamingQuery) LastProgress() *Progress { return s.mon.Last() }

// RecentProgress returns up to the last 100 progress reports, oldest first.
func (s *StreamingQuery) RecentProgress() []*Progress { return s.mon.Recent() }

// Limits are a query's admission settings: how much each batch may read
// and how the limit is chosen. They start from the source's options
// (maxOffsetsPerTrigger, minOffsetsPerTrigger, maxTriggerDelay,
// sluice.admission, sluice.targetBatchDuration, sluice.maxLagSeconds), the
// trigger and the memory budget, and can be changed while the query runs
// with StreamingQuery.SetLimits.
type Limits struct {
	// MaxOffsetsPerTrigger caps the records of a batch; 0 = no cap.
	MaxOffsetsPerTrigger int64
	// MinOffsetsPerTrigger delays a batch until this many records are
	// available or MaxTriggerDelay has passed; 0 = none.
	MinOffsetsPerTrigger int64
	// MaxTriggerDelay bounds the delay MinOffsetsPerTrigger causes.
	MaxTriggerDelay time.Duration
	// TriggerInterval is the processingTime interval (0 = default trigger).
	TriggerInterval time.Duration
	// Mode is "static" (the limits as given, as in Spark) or "adaptive"
	// (each batch's limit chosen from the measured cost per record).
	Mode string
	// TargetBatchDuration is what adaptive admission aims for; 0 = the
	// trigger interval, or 1 s with the default trigger.
	TargetBatchDuration time.Duration
	// MaxLagSeconds lets adaptive admission double its target while the
	// query is further behind than this (0 = off).
	MaxLagSeconds float64
	// MemoryBudget caps the bytes of a batch in flight (0 = none).
	MemoryBudget int64
}

func limitsOf(l admission.Limits) Limits {
	return Limits{MaxOffsetsPerTrigger: l.MaxOffsetsPerTrigger, MinOffsetsPerTrigger: l.MinOffsetsPerTrigger,
		MaxTriggerDelay: l.MaxTriggerDelay, TriggerInterval: l.TriggerInterval, Mode: l.Mode,
		TargetBatchDuration: l.TargetBatchDuration, MaxLagSeconds: l.MaxLagSeconds, MemoryBudget: l.MemoryBudget}
}

func (l Limits) internal() admission.Limits {
	return admission.Limits{MaxOffsetsPerTrigger: l.MaxOffsetsPerTrigger, MinOffsetsPerTrigger: l.MinOffsetsPerTrigger,
		MaxTriggerDelay: l.MaxTriggerDelay, TriggerInterval: l.TriggerInterval, Mode: l.Mode,
		TargetBatchDuration: l.TargetBatchDuration, MaxLagSeconds: l.MaxLagSeconds, MemoryBudget: l.MemoryBudget}
}

// MarshalJSON writes the limits as the HTTP API shows them
// (GET /api/v1/queries/{id}/limits): maxOffsetsPerTrigger,
// minOffsetsPerTrigger, admission, maxLagSeconds, memoryBudgetBytes and the
// durations in milliseconds (triggerIntervalMs, targetBatchDurationMs,
// maxTriggerDelayMs).
func (l Limits) MarshalJSON() ([]byte, error) { return json.Marshal(l.internal()) }

// LimitsUpdate changes some of a query's limits; nil fields stay.
type LimitsUpdate struct {
	MaxOffsetsPerTrigger *int64
	MinOffsetsPerTrigger *int64
	// TriggerIntervalMs changes a processingTime trigger's interval.
	TriggerIntervalMs *int64
	// TargetBatchDurationMs changes adaptive admission's target.
	TargetBatchDurationMs *int64
	// Mode is "static" or "adaptive".
	Mode          *string
	MaxLagSeconds *float64
}

func (u LimitsUpdate) internal() admission.LimitsUpdate {
	return admission.LimitsUpdate{MaxOffsetsPerTrigger: u.MaxOffsetsPerTrigger, MinOffsetsPerTrigger: u.MinOffsetsPerTrigger,
		TriggerIntervalMs: u.TriggerIntervalMs, TargetBatchDurationMs: u.TargetBatchDurationMs, Mode: u.Mode, MaxLagSeconds: u.MaxLagSeconds}
}

// UnmarshalJSON reads the body of POST /api/v1/queries/{id}/limits (and
// the UI's form): maxOffsetsPerTrigger, minOffsetsPerTrigger,
// triggerIntervalMs / triggerInterval, targetBatchDurationMs /
// targetBatchDuration, admission and maxLagSeconds; counts as numbers,
// durations as Spark interval strings ("2 seconds") or milliseconds.
// Unknown keys are errors.
func (u *LimitsUpdate) UnmarshalJSON(b []byte) error {
	e, err := admission.ParseLimitsUpdate(b, options.ParseInterval)
	if err != nil {
		return err
	}
	*u = LimitsUpdate{MaxOffsetsPerTrigger: e.MaxOffsetsPerTrigger, MinOffsetsPerTrigger: e.MinOffsetsPerTrigger,
		TriggerIntervalMs: e.TriggerIntervalMs, TargetBatchDurationMs: e.TargetBatchDurationMs, Mode: e.Mode, MaxLagSeconds: e.MaxLagSeconds}
	return nil
}

// Limits returns the query's current admission settings.
func (s *StreamingQuery) Limits() Limits { return limitsOf(s.q.Limits()) }

// SetLimits changes admission settings while the query runs: the change is
// logged, applies from the next planned batch, shows in its progress and is
// recorded in its offsets file (so a replay re-reads the same ranges). It
// returns the limits now in force, or an error naming the field at fault.
func (s *StreamingQuery) SetLimits(u LimitsUpdate) (Limits, error) {
	l, err := s.q.SetLimits(u.internal())
	return limitsOf(l), err
}

// Snapshot is a query's live state for UIs and APIs: status, health, lag
// per partition, checkpoint and memory figures, limits, the last diagnosis
// and the last progress. Health is re-evaluated when it is taken, so a
// stuck batch shows as STOP without waiting for a report.
type Snapshot struct {
	ID    string `json:"id"`
	RunID string `json:"runId"`
	Name  string `json:"name,omitempty"`
	// Timestamp is when the snapshot was taken (the termination time once
	// the query has terminated), as progress timestamps are written.
	Timestamp string `json:"timestamp"`
	Status    Status `json:"status"`
	Active    bool   `json:"active"`
	// Exception is the failure of a query that failed.
	Exception string `json:"exception,omitempty"`
	// Trigger is e.g. "ProcessingTime(200 ms)" or "AvailableNow".
	Trigger          string `json:"trigger"`
	BatchesCompleted int64  `json:"batchesCompleted"`
	// Health, Lag, Checkpoint and Memory are as in the last progress
	// report's "sluice" key, re-evaluated now.
	Health     *progress.HealthInfo     `json:"health,omitempty"`
	Lag        *progress.LagInfo        `json:"lag,omitempty"`
	Checkpoint *progress.CheckpointInfo `json:"checkpoint,omitempty"`
	Memory     *progress.MemoryInfo     `json:"memory,omitempty"`
	// Limits are the admission settings now in force.
	Limits *Limits `json:"limits,omitempty"`
	// Diagnosis names what limited the last batch.
	Diagnosis *progress.DiagnosisInfo `json:"diagnosis,omitempty"`
	// StartTimestamp is when this run of the query started, as progress
	// timestamps are written (UTC).
	StartTimestamp string `json:"startTimestamp,omitempty"`
	// Arrival is the recent latest-offset samples (about one a second and
	// one at every batch end, two minutes' worth), summed over partitions,
	// oldest first: how fast records arrive, independently of how fast
	// the query admits them.
	Arrival      []ArrivalSample `json:"arrival,omitempty"`
	LastProgress *Progress       `json:"lastProgress"`
}

// ArrivalSample is one latest-offset sample of a query's source, summed
// over its partitions.
type ArrivalSample struct {
	// Timestamp is when the sample was taken (UTC, progress format).
	Timestamp string `json:"timestamp"`
	// Offsets is the sum of the partitions' latest offsets.
	Offsets int64 `json:"offsets"`
	// RowsPerSecond is the growth since the previous sample (NaN for the
	// first, omitted from JSON).
	RowsPerSecond progress.Double `json:"rowsPerSecond,omitzero"`
}

// Snapshot returns the query's live state.
func (s *StreamingQuery) Snapshot() Snapshot {
	m := s.mon.Snapshot()
	snap := Snapshot{ID: m.ID, RunID: m.RunID, Name: m.Name, Timestamp: m.Timestamp, Status: m.Status, Active: m.Active,
		Exception: m.Exception, Trigger: m.Trigger, BatchesCompleted: m.BatchesCompleted, Health: m.Health, Lag: m.Lag,
		Checkpoint: m.Checkpoint, Memory: m.Memory, LastProgress: m.LastProgress}
	if m.Limits != nil {
		l := limitsOf(*m.Limits)
		snap.Limits = &l
	}
	if m.Diagnosis != nil {
		snap.Diagnosis = monitor.DiagnosisInfo(*m.Diagnosis)
	}
	snap.StartTimestamp = m.StartTimestamp
	for _, a := range m.Arrival {
		snap.Arrival = append(snap.Arrival, ArrivalSample{Timestamp: a.Timestamp, Offsets: a.Offsets, RowsPerSecond: a.RowsPerSecond})
	}
	return snap
}
