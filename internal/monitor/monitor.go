// Package monitor turns the engine's per-batch measurements into what
// people look at: Spark-shaped progress reports (kept in a ring of recent
// ones and posted to listeners) with sluice's additions under the progress
// "sluice" key, a live Snapshot for the UI and API, and Prometheus metrics.
//
// A Monitor is an engine.Observer; create one per query run with New. It
// derives:
//
//   - lag per partition: offsets behind the latest offsets the batch was
//     planned against, and seconds of lag from a lag.Table of (latest
//     offset, time) samples taken from every trigger's look at the source
//     (kafka-lag-exporter's interpolation);
//   - the drain ETA from the measured capacity (rows per second of batch
//     time over recent batches, capped by the read limit's rate) and the
//     arrival rate of the latest offsets;
//   - a Burrow-style health per partition and for the query (lag.Tracker),
//     re-evaluated between batches too (every second, Snapshot, every
//     scrape), so a query that stops committing turns STOP, one whose source
//     stops answering turns STALL (lag.Stalled on the engine's Activity), an
//     idle query with nothing to read is OK, and entering or leaving a
//     problem state is logged;
//   - timing (trigger interval, duration/trigger ratio, scheduling delay,
//     worker busy ratio, task skew), bytes per second, checkpoint size
//     (walked at most once per second) and the source's buffered bytes.
//
// When the consumed offset is older than every sample and no arrival rate
// places it in time (a backlog that existed before the query started and is
// not growing), the lag in seconds is reported as a lower bound — the time
// since the partition was first observed — with method "at-least", instead
// of no value at all.
package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/checkpoint"
	"github.com/sluice-stream/sluice/internal/diagnose"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/lag"
	"github.com/sluice-stream/sluice/internal/metrics"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
	"github.com/sluice-stream/sluice/internal/trigger"
	"github.com/sluice-stream/sluice/progress"
)

// MethodAtLeast is the PartitionLag.LagMethod of a lower-bound lag: the
// consumed offset was already behind when the partition was first
// observed, and nothing tells how long before.
const MethodAtLeast = "at-least"

// Defaults of the options.
const (
	DefaultSampleEvery    = time.Second
	DefaultTableSize      = 120
	DefaultArrivalWindow  = 5 * time.Second
	DefaultCapacityWindow = 10
	DefaultMinStopAfter   = 30 * time.Second
	// DefaultMinStallAfter is the least time a busy query may go without
	// progress before it is STALL; the default threshold is the larger of
	// this and three trigger intervals.
	DefaultMinStallAfter = 10 * time.Second
	// WatchEvery is how often health is re-evaluated while the query runs,
	// so that a stall is logged (and the metrics updated) even when nobody
	// asks.
	WatchEvery = time.Second
	// IdleWatchEvery is how often health is re-evaluated while the query
	// waits for data to arrive: a caught-up query cannot stall, and its
	// lag and health change only as old samples leave their window.
	IdleWatchEvery = 5 * time.Second
	// SizeEvery bounds how often the checkpoint directory is walked while
	// batches commit; a walk that takes long waits SizeWalkFactor times its
	// own duration before the next (a stateful checkpoint with 200 shuffle
	// partitions holds tens of thousands of files).
	SizeEvery      = time.Second
	SizeWalkFactor = 50
	// RemoteSizeEvery bounds it for a checkpoint on an object store, where
	// a walk costs one List request per directory.
	RemoteSizeEvery = time.Minute
	// UnchangedSizeEvery is how often the checkpoint is walked when no
	// batch has committed since the last walk (an idle query writes
	// nothing, so the walk would only repeat itself; the occasional walk
	// still notices files written from outside, such as a purge).
	UnchangedSizeEvery = time.Minute
)

// Option configures New.
type Option func(*config)

type config struct {
	recent         int
	metrics        *metrics.Metrics
	health         lag.Config
	sampleEvery    time.Duration
	tableSize      int
	arrivalWindow  time.Duration
	capacityWindow int
}

// WithMetrics exports the query's measurements on m (one series set per
// query, removed when the query terminates).
func WithMetrics(m *metrics.Metrics) Option { return func(c *config) { c.metrics = m } }

// WithHealth sets the health evaluation window and the STOP and STALL
// thresholds. A zero StopAfter means max(3 × trigger interval, 30 s), a
// zero StallAfter max(3 × trigger interval, 10 s).
func WithHealth(cfg lag.Config) Option { return func(c *config) { c.health = cfg } }

// WithRecent sets how many progress reports Recent keeps (default 100).
func WithRecent(n int) Option { return func(c *config) { c.recent = n } }

// WithLagSampling sets how often the latest offsets enter the lag table
// (default every second; the newest observation is always used on top) and
// how many samples it keeps per partition (default 120).
func WithLagSampling(every time.Duration, size int) Option {
	return func(c *config) { c.sampleEvery, c.tableSize = every, size }
}

// WithArrivalWindow sets the window over which the arrival rate is
// measured (default 5 s: short enough that the end of a spike shows in the
// drain ETA within seconds, long enough to span five samples).
func WithArrivalWindow(d time.Duration) Option { return func(c *config) { c.arrivalWindow = d } }

// Monitor is an engine.Observer. Create one per query with New. Its
// methods are safe for concurrent use.
type Monitor struct {
	cfg    config
	recent *progress.Recent
	bus    *progress.Bus
	size   sizeCache

	prevStart time.Time // trigger start of the previous executed batch; query goroutine only
	prevEnd   time.Time // end of the previous executed batch; query goroutine only

	mu         sync.Mutex
	q          *engine.Query
	mq         *metrics.Query
	table      *lag.Table
	tracker    *lag.Tracker
	heads      map[partition.ID]lag.Point // newest latest offset observed
	firstSeen  map[partition.ID]time.Time
	lastSample time.Time
	consumed   map[partition.ID]int64 // end offsets of the last batch
	planned    map[partition.ID]int64 // latest offsets that batch was planned against
	batches    []batchStat            // recent batches, for capacity
	limit      int64                  // the last batch's record cap (0 = none)
	bound      bool                   // the last batch's limit held it back
	started    time.Time              // when the query started (this run)
	arrivals   []ArrivalPoint         // newest samples' total latest offset, for the UI
	trig       trigger.Trigger
	interval   time.Duration    // trigger interval of the last batch
	diagnosis  *diagnose.Result // of the last batch
	partitions bool             // the source's offsets are per partition
	final      *liveState
	exception  string

	// alarm is the health status last logged as a problem (STALL or
	// worse) and since when; "" while healthy.
	alarm      string
	alarmSince time.Time

	stopWatch chan struct{} // closed to stop the watch goroutine
	watchDone chan struct{} // closed when it has returned
}

type batchStat struct {
	rows       int64
	dur        time.Duration // the whole trigger
	processing time.Duration // addBatch: the part that grows with the rows
	limit      int64
	bound      bool // the limit held the batch back
}

// ArrivalPoint is one latest-offset sample summed over partitions: the
// arrival series of the live UI.
type ArrivalPoint struct {
	// Timestamp is when the sample was taken (progress time format).
	Timestamp string `json:"timestamp"`
	// Offsets is the sum of the partitions' latest offsets.
	Offsets int64 `json:"offsets"`
	// RowsPerSecond is the growth since the previous point (absent for
	// the first, or after the offsets went backwards).
	RowsPerSecond progress.Double `json:"rowsPerSecond,omitzero"`
	at            time.Time
}

// MaxArrivalPoints bounds the arrival series kept for the UI (two minutes
// at one sample a second, plus batch-end samples).
const MaxArrivalPoints = 240

// New returns a monitor; without options it keeps the last 100 progress
// reports and exports no metrics.
func New(opts ...Option) *Monitor {
	cfg := config{
		recent:         progress.DefaultRecent,
		sampleEvery:    DefaultSampleEvery,
		tableSize:      DefaultTableSize,
		arrivalWindow:  DefaultArrivalWindow,
		capacityWindow: DefaultCapacityWindow,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return &Monitor{
		cfg:       cfg,
		recent:    progress.NewRecent(cfg.recent),
		bus:       progress.NewBus(progress.BusOptions{}),
		table:     lag.NewTable(cfg.tableSize),
		tracker:   lag.NewTracker(cfg.health),
		heads:     map[partition.ID]lag.Point{},
		firstSeen: map[partition.ID]time.Time{},
	}
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
	cfg := q.Config()
	health := m.cfg.health
	if health.StopAfter <= 0 {
		health.StopAfter = DefaultMinStopAfter
		if cfg.Trigger.Kind == trigger.ProcessingTime {
			health.StopAfter = max(3*cfg.Trigger.Interval, DefaultMinStopAfter)
		}
	}
	m.mu.Lock()
	m.q = q
	m.trig = cfg.Trigger
	m.started = time.Now()
	m.tracker = lag.NewTracker(health)
	stop, done := make(chan struct{}), make(chan struct{})
	m.stopWatch, m.watchDone = stop, done
	m.mu.Unlock()
	go m.watch(stop, done)
	if m.cfg.metrics != nil {
		label := q.Name()
		if label == "" {
			label = q.ID()
		}
		mq := m.cfg.metrics.AddQuery(label, q.ID(), q.RunID(), func() { m.live() })
		m.mu.Lock()
		m.mq = mq
		m.mu.Unlock()
	}
	m.bus.PostStarted(progress.StartedEvent{ID: q.ID(), RunID: q.RunID(), Name: namePtr(q), Timestamp: progress.FormatTime(time.Now())})
}

func partitionsOf(o source.Offset) (partition.Offsets, bool) {
	po, ok := o.(source.PartitionedOffset)
	if !ok {
		return nil, false
	}
	// A copy: the monitor adjusts its maps, the offset stays as logged.
	return maps.Clone(po.Partitions()), true
}

// OffsetsObserved implements engine.Observer: it samples the latest
// offsets for lag in seconds and the arrival rate.
func (m *Monitor) OffsetsObserved(_ *engine.Query, latest source.Offset, at time.Time) {
	parts, ok := partitionsOf(latest)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.partitions = true
	for p, off := range parts {
		if h, ok := m.heads[p]; ok && at.Before(h.Time) {
			continue
		}
		m.heads[p] = lag.Point{Offset: off, Time: at}
		if _, ok := m.firstSeen[p]; !ok {
			m.firstSeen[p] = at
		}
	}
	if m.lastSample.IsZero() || at.Sub(m.lastSample) >= m.cfg.sampleEvery {
		m.table.ObserveAll(parts, at)
		m.lastSample = at
	}
	m.addArrival(at)
}

// addArrival appends the newest heads' total to the arrival series.
// Callers hold m.mu.
func (m *Monitor) addArrival(at time.Time) {
	var total int64
	for _, h := range m.heads {
		total += h.Offset
	}
	n := len(m.arrivals)
	if n > 0 && !at.After(m.arrivals[n-1].at) {
		return
	}
	// Timestamp is formatted when a snapshot is taken: points are added
	// at every plan and batch end, and most are never shown.
	pt := ArrivalPoint{Offsets: total, RowsPerSecond: progress.NaN(), at: at}
	if n > 0 {
		prev := m.arrivals[n-1]
		if dt := at.Sub(prev.at).Seconds(); dt > 0 && total >= prev.Offsets {
			pt.RowsPerSecond = progress.Double(float64(total-prev.Offsets) / dt)
		}
	}
	if n == cap(m.arrivals) && n >= 2*MaxArrivalPoints {
		// The series keeps up to twice MaxArrivalPoints and drops the
		// older half at once, instead of shifting every point out at
		// every new one; readers take the newest MaxArrivalPoints.
		n = copy(m.arrivals, m.arrivals[n-MaxArrivalPoints+1:])
		m.arrivals = m.arrivals[:n]
	} else if m.arrivals == nil {
		m.arrivals = make([]ArrivalPoint, 0, 2*MaxArrivalPoints)
	}
	m.arrivals = append(m.arrivals, pt)
}

// recentArrivals returns a copy of the newest MaxArrivalPoints points of
// the arrival series, their timestamps formatted. Callers hold m.mu.
func (m *Monitor) recentArrivals() []ArrivalPoint {
	out := slices.Clone(m.arrivals[max(0, len(m.arrivals)-MaxArrivalPoints):])
	for i := range out {
		out[i].Timestamp = progress.FormatTime(out[i].at)
	}
	return out
}

// Idle implements engine.Observer: as Spark, an idle trigger's progress
// (no rows, the batch id of the last executed batch, latestOffset and
// triggerExecution durations) joins the recent reports, and listeners
// get onQueryIdle — except for the first idle report of a run that has
// executed nothing yet. The sluice key carries the live lag and health.
func (m *Monitor) Idle(q *engine.Query, info *engine.IdleInfo) {
	st := m.live()
	dur := info.Durations["triggerExecution"]
	p := &progress.Progress{ID: q.ID(), RunID: q.RunID(), Name: namePtr(q), Timestamp: progress.FormatTime(info.TriggerStart),
		BatchID: info.LastBatchID, BatchDuration: ms(dur), DurationMs: map[string]int64{}}
	for k, d := range info.Durations {
		p.DurationMs[k] = ms(d)
	}
	var pos, latest string
	if info.Position != nil {
		pos = info.Position.JSON()
	}
	if info.Latest != nil {
		latest = info.Latest.JSON()
	}
	cfg := q.Config()
	p.Sources = []progress.SourceProgress{{Description: cfg.Source.Description(), StartOffset: progress.OffsetJSON(pos),
		EndOffset: progress.OffsetJSON(pos), LatestOffset: progress.OffsetJSON(latest)}}
	p.SumSources()
	p.Sink = progress.SinkProgress{Description: cfg.Sink.Description()}
	s := &progress.Sluice{Lag: st.lag, Health: st.health, Checkpoint: st.checkpoint, Memory: st.memory}
	if iv := q.Limits().TriggerInterval; iv > 0 {
		s.Timing = &progress.TimingInfo{TriggerIntervalMs: ms(iv), BatchDurationVsTrigger: progress.Ratio(float64(dur) / float64(iv)),
			BusyRatio: progress.Ratio(math.NaN()), WorkerUtilization: progress.Ratio(math.NaN()), TaskSkew: progress.Ratio(math.NaN())}
	}
	p.Sluice = s
	m.recent.Add(p)
	if !info.First {
		m.bus.PostIdle(progress.IdleEvent{ID: q.ID(), RunID: q.RunID(), Timestamp: p.Timestamp})
	}
}

// watch re-evaluates health every WatchEvery until stop is closed, so that
// a stall is noticed, logged and exported while nothing else asks.
func (m *Monitor) watch(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTimer(WatchEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m.live()
			// A query waiting for data is looked at less often (and its
			// timer wakes the process less often).
			if m.waitingForData() {
				t.Reset(IdleWatchEvery)
			} else {
				t.Reset(WatchEvery)
			}
		}
	}
}

// waitingForData reports whether the query waits for data to arrive.
func (m *Monitor) waitingForData() bool {
	m.mu.Lock()
	q := m.q
	m.mu.Unlock()
	return q != nil && q.Activity().WaitingForData
}

// QueryTerminated implements engine.Observer: it freezes the live state,
// removes the query's metrics and posts the terminated event.
func (m *Monitor) QueryTerminated(q *engine.Query, err error) {
	m.mu.Lock()
	stop, done := m.stopWatch, m.watchDone
	m.stopWatch = nil
	m.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	var exc *string
	if err != nil {
		s := err.Error()
		exc = &s
	}
	st := m.live()
	m.mu.Lock()
	m.final = &st
	if exc != nil {
		m.exception = *exc
	}
	mq := m.mq
	m.mu.Unlock()
	if mq != nil {
		mq.Remove()
	}
	m.bus.PostTerminated(progress.TerminatedEvent{ID: q.ID(), RunID: q.RunID(), Exception: exc})
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// BatchCompleted implements engine.Observer.
func (m *Monitor) BatchCompleted(q *engine.Query, info *engine.BatchInfo) {
	m.size.touch()
	p := Build(q, info, m.prevStart)
	p.Sluice = m.observeBatch(q, info, m.prevStart, m.prevEnd)
	m.prevStart = info.TriggerStart
	m.prevEnd = info.TriggerStart.Add(info.Durations["triggerExecution"])
	m.recent.Add(p)
	m.mu.Lock()
	mq := m.mq
	m.mu.Unlock()
	if mq != nil {
		mq.ObserveProgress(p)
	}
	m.bus.PostProgress(progress.ProgressEvent{Progress: p})
}

// SparkDurationKeys are the durationMs keys every batch's progress has, as
// Spark's micro-batch progress does (a step the batch skipped, such as the
// planning of a re-run batch, reads 0).
var SparkDurationKeys = []string{progress.DurLatestOffset, progress.DurGetBatch, progress.DurQueryPlanning, progress.DurWALCommit,
	progress.DurAddBatch, progress.DurCommitOffsets, progress.DurTriggerExecution}

// Build makes the Spark-shaped part of one batch's progress. prevStart is
// the trigger start of the previous executed batch (zero for the first).
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
	for _, k := range SparkDurationKeys {
		p.DurationMs[k] = 0
	}
	for k, d := range info.Durations {
		p.DurationMs[k] = ms(d)
	}
	var latest string
	if info.Latest != nil {
		latest = info.Latest.JSON()
	}
	// As Spark: a new query's first batch has no start offset (null); the
	// initial offsets it starts from are in the checkpoint's sources/0/0.
	var start string
	if info.BatchID > 0 && info.Start != nil {
		start = info.Start.JSON()
	}
	sp := progress.SourceProgress{
		Description:            cfg.Source.Description(),
		StartOffset:            progress.OffsetJSON(start),
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
	p.EventTime = EventTime(info.EventTime)
	for _, op := range info.StateOperators {
		p.StateOperators = append(p.StateOperators, progress.StateOperatorProgress{
			OperatorName: op.OperatorName, NumRowsTotal: op.NumRowsTotal, NumRowsUpdated: op.NumRowsUpdated,
			AllUpdatesTimeMs: op.AllUpdatesTimeMs, NumRowsRemoved: op.NumRowsRemoved, AllRemovalsTimeMs: op.AllRemovalsTimeMs,
			CommitTimeMs: op.CommitTimeMs, MemoryUsedBytes: op.MemoryUsedBytes, NumRowsDroppedByWatermark: op.NumRowsDroppedByWatermark,
			NumShufflePartitions: op.NumShufflePartitions, NumStateStoreInstances: op.NumStateStoreInstances, CustomMetrics: op.CustomMetrics,
		})
	}
	return p
}

// EventTime is progress eventTime as Spark reports it: min, max and avg of
// the event times the first withWatermark node saw (when it saw any) and
// the watermark the batch used; nil when the query has no watermark.
func EventTime(e *engine.EventTimeInfo) map[string]string {
	if e == nil {
		return nil
	}
	m := map[string]string{progress.EventTimeWatermark: progress.FormatTime(time.UnixMilli(e.WatermarkMs))}
	if s := e.Stats; s.Count > 0 {
		m[progress.EventTimeMin] = progress.FormatTime(time.UnixMilli(s.Min))
		m[progress.EventTimeMax] = progress.FormatTime(time.UnixMilli(s.Max))
		m[progress.EventTimeAvg] = progress.FormatTime(time.UnixMilli(int64(s.Avg)))
	}
	return m
}

// Timing computes the timing group of a batch: trigger interval,
// duration/trigger ratio, scheduling delay, busy ratio, worker utilization
// (Σ task time ÷ (batch wall time × workers)) and task skew (slowest ÷
// median task time).
//
// The busy ratio is Flink's: the share of wall time the query was busy
// running a batch, idle time waiting for the trigger counted — the batch's
// duration over the time since the previous batch ended (prevEnd; for the
// first batch, over its trigger interval when it is longer than the batch).
// A query that idles half of each trigger reads 0.5.
func Timing(info *engine.BatchInfo, prevEnd time.Time) *progress.TimingInfo {
	dur := info.Durations["triggerExecution"]
	nan := progress.Ratio(math.NaN())
	t := &progress.TimingInfo{TriggerIntervalMs: ms(info.TriggerInterval), BatchDurationVsTrigger: nan, BusyRatio: nan,
		WorkerUtilization: nan, TaskSkew: nan}
	if info.TriggerInterval > 0 {
		t.BatchDurationVsTrigger = progress.Ratio(float64(dur) / float64(info.TriggerInterval))
	}
	if !info.IntendedStart.IsZero() {
		t.SchedulingDelayMs = max(0, ms(info.TriggerStart.Sub(info.IntendedStart)))
	}
	end := info.TriggerStart.Add(dur)
	wall := max(dur, info.TriggerInterval)
	if !prevEnd.IsZero() && end.After(prevEnd) {
		wall = max(dur, end.Sub(prevEnd))
	}
	if dur > 0 && wall > 0 {
		t.BusyRatio = progress.Ratio(float64(dur) / float64(wall))
	}
	if len(info.Tasks) == 0 {
		return t
	}
	var sum time.Duration
	durs := make([]time.Duration, len(info.Tasks))
	for i, task := range info.Tasks {
		sum += task.Duration
		durs[i] = task.Duration
	}
	if dur > 0 && info.Workers > 0 {
		t.WorkerUtilization = progress.Ratio(float64(sum) / (float64(dur) * float64(info.Workers)))
	}
	slices.Sort(durs)
	n := len(durs)
	median := float64(durs[n/2])
	if n%2 == 0 {
		median = (float64(durs[n/2-1]) + float64(durs[n/2])) / 2
	}
	if median > 0 {
		t.TaskSkew = progress.Ratio(float64(durs[n-1]) / median)
	}
	return t
}

// Throughput computes the byte rates of a batch, measured like the row
// rates (input over the time since the previous batch started, processed
// over the batch duration). The input rate is unknown for the first batch.
func Throughput(info *engine.BatchInfo, prevStart time.Time) *progress.ThroughputInfo {
	dur := info.Durations["triggerExecution"]
	t := &progress.ThroughputInfo{
		NumInputBytes:           info.InputBytes,
		InputBytesPerSecond:     progress.NaN(),
		ProcessedBytesPerSecond: progress.Double(progress.ProcessedRowsPerSecond(info.InputBytes, dur)),
	}
	if !prevStart.IsZero() {
		t.InputBytesPerSecond = progress.Double(progress.InputRowsPerSecond(info.InputBytes, info.TriggerStart, prevStart))
	}
	return t
}

// observeBatch updates the lag state with a completed batch and returns
// the progress's sluice group.
func (m *Monitor) observeBatch(q *engine.Query, info *engine.BatchInfo, prevStart, prevEnd time.Time) *progress.Sluice {
	end := info.TriggerStart.Add(info.Durations["triggerExecution"])
	bound := limitBound(info)
	s := &progress.Sluice{Timing: Timing(info, prevEnd), Throughput: Throughput(info, prevStart), Admission: admissionInfo(info, bound)}
	if q.Config().DeadLetter != nil {
		n := info.NumDeadLetters
		s.DeadLetters = &n
	}
	if g := info.Group; g != nil {
		gi := &progress.GroupInfo{Group: g.Group, Member: g.Name, MemberID: g.MemberID, Partitions: []string{}}
		for _, tp := range g.Partitions {
			gi.Partitions = append(gi.Partitions, tp.String())
		}
		s.Group = gi
	}
	diag := info.Diagnosis
	m.mu.Lock()
	m.interval = info.TriggerInterval
	m.batches = append(m.batches, batchStat{rows: info.NumInputRows, dur: info.Durations["triggerExecution"],
		processing: info.Durations["addBatch"], limit: info.Admission.Limit, bound: bound})
	if len(m.batches) > m.cfg.capacityWindow {
		m.batches = slices.Delete(m.batches, 0, len(m.batches)-m.cfg.capacityWindow)
	}
	m.limit, m.bound = info.Admission.Limit, bound
	if consumed, ok := partitionsOf(info.End); ok {
		m.partitions = true
		planned, _ := partitionsOf(info.Latest)
		if planned == nil {
			planned = map[partition.ID]int64{}
		}
		if info.Replayed { // planned long ago: newer heads tell more
			for p, h := range m.heads {
				planned[p] = max(planned[p], h.Offset)
			}
		}
		after := m.headsAfter(info)
		if info.Group != nil {
			// Group mode: a partition the member no longer owns is
			// another member's to judge.
			for p := range m.consumed {
				if _, owned := consumed[p]; !owned {
					m.tracker.Forget(p)
				}
			}
		}
		for p, off := range consumed {
			if _, ok := planned[p]; !ok {
				planned[p] = off
			}
			m.tracker.Add(p, lag.Sample{Batch: info.BatchID, Time: end, Offset: off, Latest: planned[p], Head: after[p]})
		}
		m.consumed, m.planned = consumed, planned
		latest := make(map[partition.ID]int64, len(planned))
		for p, off := range planned {
			latest[p] = max(off, after[p])
		}
		parts, qh := m.tracker.Evaluate(end, nil)
		s.Lag = m.lagInfo(consumed, latest, parts, end)
		qh = m.etaHealth(qh, s.Lag)
		s.Health = &progress.HealthInfo{Status: qh.Status.String(), Reason: qh.Reason}
		if f, ok := m.readLimitFinding(info, bound, s.Lag); ok {
			diag = diag.WithReadLimit(f)
		}
	}
	m.diagnosis = &diag
	m.mu.Unlock()
	s.Diagnosis = DiagnosisInfo(diag)
	s.Checkpoint = m.size.get(q.Checkpoint())
	s.Memory = buffered(q)
	return s
}

// headsAfter is what each partition's log end was when the batch
// committed: the engine's batch-end sample, else the newest head sampled
// since the batch started. Callers hold m.mu.
func (m *Monitor) headsAfter(info *engine.BatchInfo) map[partition.ID]int64 {
	if after, ok := partitionsOf(info.LatestAfter); ok && after != nil {
		return after
	}
	out := map[partition.ID]int64{}
	for p, h := range m.heads {
		if !h.Time.Before(info.TriggerStart) {
			out[p] = h.Offset
		}
	}
	return out
}

// limitBound reports whether the read limit held the batch back: the
// planner's verdict, or for a replayed batch, whether it admitted its
// logged limit.
func limitBound(info *engine.BatchInfo) bool {
	ad := info.Admission
	if ad.Bound || !info.Replayed || ad.Limit <= 0 {
		return ad.Bound
	}
	st, ok1 := partitionsOf(info.Start)
	en, ok2 := partitionsOf(info.End)
	return ok1 && ok2 && partition.Total(st, en) >= ad.Limit
}

// etaHealth raises an OK health to WARN when the backlog will never drain
// at the measured rates: the arrivals are at least what the query can
// drain (its capacity, or its read limit's rate if lower), while the last
// plan left records behind. Burrow's rules see lag trends only; a query
// admitting 6,000/s against 16,000/s arriving is in trouble from its first
// capped batch. Callers hold m.mu.
func (m *Monitor) etaHealth(h lag.Health, li *progress.LagInfo) lag.Health {
	if h.Status >= lag.StatusWarn || li == nil || li.Records <= 0 || !li.DrainETASeconds.IsNever() {
		return h
	}
	capacity, arrival := float64(li.CapacityRowsPerSecond), float64(li.ArrivalRowsPerSecond)
	if math.IsNaN(capacity) || math.IsNaN(arrival) || partition.Total(m.consumed, m.planned) <= 0 {
		return h
	}
	drain := m.drainRate(capacity)
	what := "the measured capacity"
	if drain < capacity {
		what = fmt.Sprintf("the read limit of %d per batch", m.limit)
	}
	h.Status = lag.StatusWarn
	h.Reason = fmt.Sprintf("drain ETA never: %d records behind, %.0f/s arriving, at most %.0f/s drained (%s)",
		li.Records, arrival, drain, what)
	return h
}

// readLimitFinding asks package diagnose whether a static read limit binds
// the query. Callers hold m.mu.
func (m *Monitor) readLimitFinding(info *engine.BatchInfo, bound bool, li *progress.LagInfo) (diagnose.Finding, bool) {
	ad := info.Admission
	if li == nil || ad.Mode == admission.ModeAdaptive || !bound {
		return diagnose.Finding{}, false
	}
	option := "maxOffsetsPerTrigger"
	switch {
	case strings.HasPrefix(ad.Reason, "default limit"):
		option = "maxEventsPerTrigger"
	case !strings.HasPrefix(ad.Reason, "maxOffsetsPerTrigger"):
		return diagnose.Finding{}, false // the memory budget, a replay: not a setting to raise
	}
	// The recent batches the same limit held back: what a full batch
	// costs.
	var n int
	var rows int64
	var dur, proc time.Duration
	for i := len(m.batches) - 1; i >= 0 && n < 5; i-- {
		b := m.batches[i]
		if b.limit != ad.Limit || !b.bound || b.rows <= 0 {
			break
		}
		n, rows, dur, proc = n+1, rows+b.rows, dur+b.dur, proc+b.processing
	}
	if n == 0 {
		return diagnose.Finding{}, false
	}
	return diagnose.ReadLimit(diagnose.Limit{Option: option, Limit: ad.Limit, Bound: bound, TriggerInterval: info.TriggerInterval,
		Duration: dur / time.Duration(n), Processing: proc / time.Duration(n), Rows: float64(rows) / float64(n),
		Backlog: li.Records, Arrival: float64(li.ArrivalRowsPerSecond)})
}

// admissionInfo reports the batch's read limit and the planner's reason
// for it (package admission owns both).
func admissionInfo(info *engine.BatchInfo, bound bool) *progress.AdmissionInfo {
	ad := info.Admission
	a := &progress.AdmissionInfo{Limit: ad.Limit, LimitBound: bound, LimitBytes: ad.ReadLimit.MaxBytes, Reason: ad.Reason, Mode: ad.Mode,
		MaxOffsetsPerTrigger: ad.Limits.MaxOffsetsPerTrigger, MemoryBudgetBytes: ad.Limits.MemoryBudget}
	if ad.Mode == admission.ModeAdaptive {
		a.TargetBatchDurationMs = ad.Target.Milliseconds()
		a.CostPerRecordUs = float64(ad.CostPerRecord) / float64(time.Microsecond)
	}
	return a
}

// DiagnosisInfo is the progress form of a batch's diagnosis (nil when
// nothing was found).
func DiagnosisInfo(d diagnose.Result) *progress.DiagnosisInfo {
	if d.Limiting == "" && len(d.Findings) == 0 {
		return nil
	}
	out := &progress.DiagnosisInfo{Limiting: d.Limiting, Waves: d.Waves, Shares: map[string]progress.Ratio{}}
	for k, v := range d.Shares {
		out.Shares[k] = progress.Ratio(v)
	}
	for _, f := range d.Findings {
		out.Findings = append(out.Findings, f.Message)
	}
	return out
}

// buffered reports the source's buffered bytes and the memory budget in
// force with where it comes from (nil when there is neither).
func buffered(q *engine.Query) *progress.MemoryInfo {
	l := q.Limits()
	mi := &progress.MemoryInfo{BudgetBytes: l.MemoryBudget, BudgetOrigin: l.MemoryBudgetOrigin}
	b, ok := q.Config().Source.(source.Buffered)
	if ok {
		mi.BufferedBytes = b.BufferedBytes()
	}
	if !ok && mi.BudgetBytes == 0 && mi.BudgetOrigin == "" {
		return nil
	}
	return mi
}

// points returns p's lag table samples plus the newest observation.
// Callers hold m.mu.
func (m *Monitor) points(p partition.ID) []lag.Point {
	pts := m.table.Points(p)
	if h, ok := m.heads[p]; ok {
		if n := len(pts); n == 0 || (h.Time.After(pts[n-1].Time) && h.Offset >= pts[n-1].Offset) {
			pts = append(pts, h)
		}
	}
	return pts
}

// lagInfo computes the lag group for consumed offsets against latest at
// now. Callers hold m.mu.
func (m *Monitor) lagInfo(consumed, latest map[partition.ID]int64, health []lag.PartitionHealth, now time.Time) *progress.LagInfo {
	byPart := make(map[partition.ID]lag.Health, len(health))
	for _, h := range health {
		byPart[h.Partition] = h.Health
	}
	keys := make([]partition.ID, 0, len(consumed))
	for p := range consumed {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b partition.ID) int {
		if a.Topic != b.Topic {
			if a.Topic < b.Topic {
				return -1
			}
			return 1
		}
		return int(a.Partition) - int(b.Partition)
	})
	li := &progress.LagInfo{Seconds: progress.NaN(), ArrivalRowsPerSecond: progress.NaN()}
	arrival, arrivalKnown := 0.0, false
	for _, p := range keys {
		off := consumed[p]
		behind := max(0, latest[p]-off)
		pts := m.points(p)
		pl := progress.PartitionLag{Topic: p.Topic, Partition: p.Partition, OffsetsBehind: behind, LagSeconds: progress.NaN()}
		if behind == 0 {
			pl.LagSeconds, pl.LagMethod = 0, string(lag.MethodCaughtUp)
		} else {
			est := lag.TimeLag(pts, off, now)
			switch {
			case !math.IsNaN(est.Seconds):
				pl.LagSeconds, pl.LagMethod = progress.Double(est.Seconds), string(est.Method)
			case !m.firstSeen[p].IsZero():
				pl.LagSeconds, pl.LagMethod = progress.Double(max(0, now.Sub(m.firstSeen[p]).Seconds())), MethodAtLeast
			default:
				pl.LagMethod = string(lag.MethodUnknown)
			}
		}
		if h, ok := byPart[p]; ok {
			pl.Status, pl.Reason = h.Status.String(), h.Reason
		}
		li.Records += behind
		if s := float64(pl.LagSeconds); !math.IsNaN(s) && (math.IsNaN(float64(li.Seconds)) || s > float64(li.Seconds)) {
			li.Seconds = pl.LagSeconds
		}
		if r := lag.Rate(pts, m.cfg.arrivalWindow); !math.IsNaN(r) {
			arrival, arrivalKnown = arrival+r, true
		}
		li.Partitions = append(li.Partitions, pl)
	}
	if arrivalKnown {
		li.ArrivalRowsPerSecond = progress.Double(arrival)
	}
	capacity := m.capacity()
	li.CapacityRowsPerSecond = progress.Double(capacity)
	eta, never := lag.ETA(float64(li.Records), m.drainRate(capacity), arrival)
	li.DrainETASeconds = progress.ETA(eta)
	if never {
		li.DrainETASeconds = progress.Never()
	}
	return li
}

// capacity is rows per second of batch time over the recent batches; NaN
// before the first. Callers hold m.mu.
func (m *Monitor) capacity() float64 {
	var rows int64
	var busy time.Duration
	for _, b := range m.batches {
		rows += b.rows
		busy += b.dur
	}
	return lag.Capacity(rows, busy)
}

// drainRate is the rate at which the backlog can shrink: the capacity,
// capped by the read limit per trigger period when there is one. Callers
// hold m.mu.
func (m *Monitor) drainRate(capacity float64) float64 {
	if m.limit <= 0 || len(m.batches) == 0 {
		return capacity
	}
	var total time.Duration
	for _, b := range m.batches {
		total += b.dur
	}
	period := max(total/time.Duration(len(m.batches)), m.interval)
	if period <= 0 {
		return capacity
	}
	limitRate := float64(m.limit) / period.Seconds()
	if math.IsNaN(capacity) {
		return limitRate
	}
	return min(capacity, limitRate)
}

// LagSeconds returns the query's current time lag: the largest over
// partitions, measured now from the last committed offsets against the
// newest latest-offset samples (0 when caught up or unknown). It suits
// engine.Config.LagSeconds, which adaptive admission reads before planning
// each batch; it is cheaper than Snapshot.
func (m *Monitor) LagSeconds() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.final != nil && m.final.lag != nil {
		return finite(float64(m.final.lag.Seconds))
	}
	now := m.now()
	worst := 0.0
	for p, off := range m.consumed {
		if h, ok := m.heads[p]; !ok || off >= h.Offset {
			continue
		}
		est := lag.TimeLag(m.points(p), off, now)
		sec := est.Seconds
		if math.IsNaN(sec) && !m.firstSeen[p].IsZero() {
			sec = now.Sub(m.firstSeen[p]).Seconds()
		}
		worst = max(worst, finite(sec))
	}
	return worst
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// liveState is the query's lag and health at one moment.
type liveState struct {
	at         time.Time
	lag        *progress.LagInfo
	health     *progress.HealthInfo
	checkpoint *progress.CheckpointInfo
	memory     *progress.MemoryInfo
}

func (m *Monitor) now() time.Time {
	if m.q != nil && m.q.Config().Clock != nil {
		return m.q.Config().Clock.Now()
	}
	return time.Now()
}

// live re-evaluates lag and health now, against the newest latest offsets
// observed, and pushes the result to the metrics. After termination it
// returns the state frozen at termination.
func (m *Monitor) live() liveState {
	m.mu.Lock()
	q := m.q
	m.mu.Unlock()
	var act engine.Activity
	var stallAfter time.Duration
	if q != nil {
		act = q.Activity()
		stallAfter = m.stallAfter(q)
	}
	m.mu.Lock()
	if m.final != nil {
		st := *m.final
		m.mu.Unlock()
		return st
	}
	mq := m.mq
	st := liveState{at: m.now()}
	if m.partitions && m.consumed != nil {
		latest := make(map[partition.ID]int64, len(m.planned))
		heads := make(map[partition.ID]int64, len(m.heads))
		for p, off := range m.planned {
			latest[p] = off
		}
		for p, h := range m.heads {
			heads[p] = h.Offset
			latest[p] = max(latest[p], h.Offset)
		}
		parts, qh := m.tracker.Evaluate(st.at, heads)
		st.lag = m.lagInfo(m.consumed, latest, parts, st.at)
		qh = m.etaHealth(qh, st.lag)
		if qh.Status == lag.StatusErr && act.CaughtUp { // no partitions at all: nothing to read
			qh.Status, qh.Reason = lag.StatusOK, "idle: nothing to read (the source has no partitions)"
		}
		st.health = &progress.HealthInfo{Status: qh.Status.String(), Reason: qh.Reason}
	} else if m.partitions {
		st.health = &progress.HealthInfo{Status: lag.StatusErr.String(), Reason: "no committed batch observed yet"}
		if act.CaughtUp {
			st.health = &progress.HealthInfo{Status: lag.StatusOK.String(), Reason: "idle: nothing to read, 0 records behind"}
		}
	}
	problemSince := st.at
	if stall, ok := lag.Stalled(lag.Busy{Active: act.Active, Since: act.Since, Step: act.Step, Waiting: act.Waiting}, st.at, stallAfter); ok {
		if st.health == nil || statusRank(st.health.Status) < lag.StatusStall {
			st.health = &progress.HealthInfo{Status: stall.Status.String(), Reason: stall.Reason}
			problemSince = act.Since
		}
	}
	var logTransition func(*slog.Logger)
	if !act.Ended { // a query that stops is not recovering: nothing to log
		logTransition = m.noteHealth(st.health, st.at, problemSince)
	}
	m.mu.Unlock()
	if logTransition != nil && q != nil {
		logTransition(q.Logger())
	}
	if q != nil {
		st.checkpoint = m.size.get(q.Checkpoint())
		select {
		case <-q.Done(): // the source is closed
		default:
			st.memory = buffered(q)
		}
	}
	if mq != nil {
		mq.SetState(&progress.Sluice{Lag: st.lag, Health: st.health, Checkpoint: st.checkpoint, Memory: st.memory})
	}
	return st
}

// Snapshot is what a UI or API shows about a query right now: its status,
// the newest progress, and lag and health re-evaluated at the moment of
// the call against the newest latest offsets seen (so a stuck query turns
// STOP without a new batch). It marshals to JSON.
type Snapshot struct {
	ID    string `json:"id"`
	RunID string `json:"runId"`
	Name  string `json:"name,omitempty"`
	// Timestamp is when the snapshot was taken (the termination time once
	// the query has terminated).
	Timestamp string          `json:"timestamp"`
	Status    progress.Status `json:"status"`
	Active    bool            `json:"active"`
	Exception string          `json:"exception,omitempty"`
	// Trigger is e.g. "ProcessingTime(200 ms)" or "AvailableNow".
	Trigger          string                   `json:"trigger"`
	BatchesCompleted int64                    `json:"batchesCompleted"`
	Health           *progress.HealthInfo     `json:"health,omitempty"`
	Lag              *progress.LagInfo        `json:"lag,omitempty"`
	Checkpoint       *progress.CheckpointInfo `json:"checkpoint,omitempty"`
	Memory           *progress.MemoryInfo     `json:"memory,omitempty"`
	// Limits are the admission settings now in force.
	Limits *admission.Limits `json:"limits,omitempty"`
	// Diagnosis names what limited the last batch.
	Diagnosis *diagnose.Result `json:"diagnosis,omitempty"`
	// StartTimestamp is when this run of the query started.
	StartTimestamp string `json:"startTimestamp,omitempty"`
	// Arrival is the recent latest-offset samples summed over partitions,
	// oldest first (at most MaxArrivalPoints): the arrival series.
	Arrival      []ArrivalPoint     `json:"arrival,omitempty"`
	LastProgress *progress.Progress `json:"lastProgress"`
}

// Snapshot returns the query's current state (see Snapshot). Before the
// query started it holds only the last progress (nil) and an
// "Initializing" status.
func (m *Monitor) Snapshot() Snapshot {
	st := m.live()
	m.mu.Lock()
	q, trig, exc, terminated, diag := m.q, m.trig, m.exception, m.final != nil, m.diagnosis
	started, arrivals := m.started, m.recentArrivals()
	m.mu.Unlock()
	snap := Snapshot{
		Timestamp:    progress.FormatTime(st.at),
		Status:       progress.Status{Message: progress.MsgInitializingExecution},
		Health:       st.health,
		Lag:          st.lag,
		Checkpoint:   st.checkpoint,
		Memory:       st.memory,
		LastProgress: m.recent.Last(),
	}
	if q == nil {
		snap.Timestamp = progress.FormatTime(time.Now())
		return snap
	}
	es := q.Status()
	snap.ID, snap.RunID, snap.Name = q.ID(), q.RunID(), q.Name()
	snap.Status = progress.Status{Message: es.Message, IsDataAvailable: es.IsDataAvailable, IsTriggerActive: es.IsTriggerActive}
	snap.Active = !terminated
	snap.Exception = exc
	snap.Trigger = trig.String()
	snap.StartTimestamp = progress.FormatTime(started)
	snap.Arrival = arrivals
	snap.BatchesCompleted = q.BatchesCompleted()
	lim := q.Limits()
	snap.Limits = &lim
	if diag != nil {
		d := *diag
		snap.Diagnosis = &d
	}
	return snap
}

// sizeCache walks the checkpoint directory at most once per SizeEvery
// while batches commit, and once per UnchangedSizeEvery while none does;
// it spends at most 1/SizeWalkFactor of the time walking.
type sizeCache struct {
	mu      sync.Mutex
	at      time.Time
	took    time.Duration // the last walk
	info    progress.CheckpointInfo
	valid   bool
	changed bool // a batch committed since the last walk
}

// touch records that a batch committed, so the next get may walk again.
func (c *sizeCache) touch() {
	c.mu.Lock()
	c.changed = true
	c.mu.Unlock()
}

func (c *sizeCache) get(cp *checkpoint.Checkpoint) *progress.CheckpointInfo {
	if cp == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	every := SizeEvery
	if cp.IsRemote() {
		every = RemoteSizeEvery
	}
	if !c.changed {
		every = max(every, UnchangedSizeEvery)
	}
	every = max(every, SizeWalkFactor*c.took)
	if now := time.Now(); c.at.IsZero() || now.Sub(c.at) >= every {
		c.at, c.changed = now, false
		b, f, err := cp.Size()
		c.took = time.Since(now)
		if err == nil {
			c.info, c.valid = progress.CheckpointInfo{Bytes: b, Files: int64(f)}, true
		}
	}
	if !c.valid {
		return nil
	}
	info := c.info
	return &info
}

// stallAfter is the STALL threshold for q: the configured one, else
// max(3 × the current trigger interval, DefaultMinStallAfter).
func (m *Monitor) stallAfter(q *engine.Query) time.Duration {
	if d := m.cfg.health.StallAfter; d > 0 {
		return d
	}
	return max(3*q.Limits().TriggerInterval, DefaultMinStallAfter)
}

// statusRank parses a health status name; unknown names rank as OK.
func statusRank(name string) lag.Status {
	var s lag.Status
	if s.UnmarshalText([]byte(name)) != nil {
		return lag.StatusOK
	}
	return s
}

// noteHealth records the health just evaluated and returns a function that
// logs a transition when the query enters a problem state (STALL or worse)
// or leaves it, nil otherwise. since is when a new problem began (the last
// progress, for a stall). The caller holds m.mu and logs after releasing it.
func (m *Monitor) noteHealth(h *progress.HealthInfo, now, since time.Time) func(*slog.Logger) {
	if h == nil {
		return nil
	}
	bad := statusRank(h.Status) >= lag.StatusStall
	switch {
	case bad && m.alarm != h.Status:
		if m.alarm == "" {
			m.alarmSince = since
		}
		m.alarm = h.Status
		status, reason := h.Status, h.Reason
		return func(l *slog.Logger) {
			l.Warn("query health "+status, "reason", reason)
		}
	case !bad && m.alarm != "":
		was, since := m.alarm, m.alarmSince
		m.alarm = ""
		status, reason := h.Status, h.Reason
		return func(l *slog.Logger) {
			l.Info("query health "+status+" again", "was", was, "lasted", now.Sub(since).Round(time.Millisecond).String(), "reason", reason)
		}
	}
	return nil
}
