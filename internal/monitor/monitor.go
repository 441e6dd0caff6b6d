// Package monitor turns the engine's per-batch measurements into what
// people look at: Spark-shaped progress reports (kept in a ring of recent
// ones and posted to listeners), and sluice's additions under the progress
// "sluice" key.
package monitor

import (
	"context"
	"time"

	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/progress"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/trigger"
)

// Monitor is an engine.Observer. Create one per query with New.
type Monitor struct {
	recent *progress.Recent
	bus    *progress.Bus

	prevStart time.Time // trigger start of the previous executed batch
}

// New returns a monitor keeping the last 100 progress reports.
func New() *Monitor {
	return &Monitor{recent: progress.NewRecent(100), bus: progress.NewBus(progress.BusOptions{})}
}

// Subscribe registers a listener (Spark's StreamingQueryListener).
func (m *Monitor) Subscribe(l progress.Listener) *progress.Subscription { return m.bus.Subscribe(l) }

// Recent returns the recent progress reports, oldest first.
func (m *Monitor) Recent() []*progress.Progress { return m.recent.All() }

// Last returns the latest progress report or nil.
func (m *Monitor) Last() *progress.Progress { return m.recent.Last() }

// Close delivers pending events to listeners.
func (m *Monitor) Close(ctx context.Context) error { return m.bus.Close(ctx) }

func namePtr(q *engine.Query) *string {
	if q.Name() == "" {
		return nil
	}
	n := q.Name()
	return &n
}

// QueryStarted implements engine.Observer.
func (m *Monitor) QueryStarted(q *engine.Query) {
	m.bus.PostStarted(progress.StartedEvent{ID: q.ID(), RunID: q.RunID(), Name: namePtr(q), Timestamp: progress.FormatTime(time.Now())})
}

// OffsetsObserved implements engine.Observer.
func (m *Monitor) OffsetsObserved(*engine.Query, source.Offset, time.Time) {}

// Idle implements engine.Observer.
func (m *Monitor) Idle(q *engine.Query, t time.Time) {
	m.bus.PostIdle(progress.IdleEvent{ID: q.ID(), RunID: q.RunID(), Timestamp: progress.FormatTime(t)})
}

// QueryTerminated implements engine.Observer.
func (m *Monitor) QueryTerminated(q *engine.Query, err error) {
	var exc *string
	if err != nil {
		s := err.Error()
		exc = &s
	}
	m.bus.PostTerminated(progress.TerminatedEvent{ID: q.ID(), RunID: q.RunID(), Exception: exc})
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// BatchCompleted implements engine.Observer.
func (m *Monitor) BatchCompleted(q *engine.Query, info *engine.BatchInfo) {
	p := Build(q, info, m.prevStart)
	m.prevStart = info.TriggerStart
	m.recent.Add(p)
	m.bus.PostProgress(progress.ProgressEvent{Progress: p})
}

// Build makes the Spark-shaped progress of one batch. prevStart is the
// trigger start of the previous executed batch (zero for the first).
func Build(q *engine.Query, info *engine.BatchInfo, prevStart time.Time) *progress.Progress {
	cfg := q.Config()
	dur := info.Durations["triggerExecution"]
	p := &progress.Progress{
		ID:            q.ID(),
		RunID:         q.RunID(),
		Name:          namePtr(q),
		Timestamp:     progress.FormatTime(info.TriggerStart),
		BatchID:       info.BatchID,
		BatchDuration: ms(dur),
		DurationMs:    map[string]int64{},
	}
	for k, d := range info.Durations {
		p.DurationMs[k] = ms(d)
	}
	var latest string
	if info.Latest != nil {
		latest = info.Latest.JSON()
	}
	sp := progress.SourceProgress{
		Description:            cfg.Source.Description(),
		StartOffset:            progress.OffsetJSON(info.Start.JSON()),
		EndOffset:              progress.OffsetJSON(info.End.JSON()),
		LatestOffset:           progress.OffsetJSON(latest),
		NumInputRows:           info.NumInputRows,
		InputRowsPerSecond:     progress.Double(progress.InputRowsPerSecond(info.NumInputRows, info.TriggerStart, prevStart)),
		ProcessedRowsPerSecond: progress.Double(progress.ProcessedRowsPerSecond(info.NumInputRows, dur)),
		Metrics:                info.SourceMetrics,
	}
	p.Sources = []progress.SourceProgress{sp}
	p.SumSources()
	p.Sink = progress.SinkProgress{Description: cfg.Sink.Description(), NumOutputRows: info.NumOutputRows}
	_ = trigger.Default
	return p
}
