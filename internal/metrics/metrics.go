// Package metrics exports the measurements of sluice's queries as
// Prometheus metrics, on a registry the caller supplies (never the global
// one).
//
// Every metric is named sluice_<what>_<unit> and carries a "query" label
// (the query name, or its id when it has none). Lag also comes per topic,
// and per partition unless partition labels are turned off
// (WithoutPartitionLabels) for topics with many partitions.
//
// One Metrics serves every query of a process: register it once, then call
// AddQuery for each query. The values come from progress reports
// (Query.ObserveProgress) and from live re-evaluations between batches
// (Query.SetState); the refresh function given to AddQuery runs before
// every scrape, so health and lag are current even while no batch
// completes.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-stream/sluice/internal/lag"
	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/progress"
)

// Label names.
const (
	LabelQuery     = "query"
	LabelTopic     = "topic"
	LabelPartition = "partition"
	LabelStatus    = "status"
	LabelID        = "id"
	LabelRunID     = "run_id"
	// LabelOperator names a stateful operator: its id in plan order (the
	// state/<id> directory of the checkpoint) and its progress name, as
	// "0 stateStoreSave".
	LabelOperator = "operator"
	// LabelMember is the consumer-group member a process is in group mode
	// (the kafka source's sluice.group.member): a constant label on every
	// series with WithMember.
	LabelMember = "member"
)

// DefaultDurationBuckets are the buckets of sluice_batch_duration_seconds,
// from 5 ms to 5 min.
var DefaultDurationBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}

// Option configures New.
type Option func(*config)

type config struct {
	partitionLabels bool
	member          string
	buckets         []float64
}

// WithMember adds the constant label member=name to every series: in
// group mode a process is one member of its query's consumer group, and
// the members' series must not collide where they are scraped together.
func WithMember(name string) Option { return func(c *config) { c.member = name } }

// WithoutPartitionLabels drops the per-partition series
// (sluice_partition_*); the per-topic and per-query ones remain.
func WithoutPartitionLabels() Option { return func(c *config) { c.partitionLabels = false } }

// WithDurationBuckets sets the buckets of sluice_batch_duration_seconds.
func WithDurationBuckets(b []float64) Option {
	return func(c *config) { c.buckets = slices.Clone(b) }
}

// Metrics holds the collectors. It is itself the one prometheus.Collector
// registered, so that a scrape first refreshes every query and then reads
// a consistent set of values. Safe for concurrent use.
type Metrics struct {
	cfg config

	// mu is held for writing while values change and for reading while a
	// scrape collects, so a scrape never sees half an update.
	mu      sync.RWMutex
	queries map[string]*Query

	batches, inputRows, outputRows, inputBytes *prometheus.CounterVec
	batchDuration                              *prometheus.HistogramVec

	lastDuration, lastBatchID, lastBatchTime                   *prometheus.GaugeVec
	triggerInterval, durationRatio, schedDelay, busy, skew     *prometheus.GaugeVec
	queryBusy                                                  *prometheus.GaugeVec
	limitBound                                                 *prometheus.CounterVec
	inRate, procRate, inBytesRate, procBytesRate               *prometheus.GaugeVec
	arrivalRate, capacityRate                                  *prometheus.GaugeVec
	lagRecords, lagSeconds, drainETA, drainNever, health       *prometheus.GaugeVec
	topicLagRecords, topicLagSeconds                           *prometheus.GaugeVec
	partLagRecords, partLagSeconds, partHealth                 *prometheus.GaugeVec
	checkpointBytes, checkpointFiles, buffered, limit, queryID *prometheus.GaugeVec

	stateRows, stateMemory                   *prometheus.GaugeVec
	stateUpdated, stateRemoved, stateDropped *prometheus.CounterVec
	watermarkTime, watermarkDelay            *prometheus.GaugeVec
	now                                      func() time.Time

	collectors []prometheus.Collector
	names      []string
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	cfg := config{partitionLabels: true, buckets: DefaultDurationBuckets}
	for _, o := range opts {
		o(&cfg)
	}
	m := &Metrics{cfg: cfg, queries: map[string]*Query{}, now: time.Now}
	if cfg.member != "" {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{LabelMember: cfg.member}, reg)
	}
	q := []string{LabelQuery}
	qt := []string{LabelQuery, LabelTopic}
	qtp := []string{LabelQuery, LabelTopic, LabelPartition}

	counter := func(name, help string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, q)
		m.add(name, v)
		return v
	}
	gauge := func(name, help string, labels []string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		m.add(name, v)
		return v
	}
	m.batches = counter("sluice_batches_total", "Micro-batches completed.")
	m.inputRows = counter("sluice_input_rows_total", "Rows read from the source.")
	m.outputRows = counter("sluice_output_rows_total", "Rows written to the sink (sinks that cannot count are left out).")
	m.inputBytes = counter("sluice_input_bytes_total", "Bytes read from the source (columnar size of the rows).")
	m.batchDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "sluice_batch_duration_seconds", Help: "Duration of each micro-batch, trigger start to commit.", Buckets: cfg.buckets,
	}, q)
	m.add("sluice_batch_duration_seconds", m.batchDuration)

	m.lastDuration = gauge("sluice_last_batch_duration_seconds", "Duration of the last micro-batch.", q)
	m.lastBatchID = gauge("sluice_last_batch_id", "Id of the last completed micro-batch.", q)
	m.lastBatchTime = gauge("sluice_last_batch_timestamp_seconds", "Unix time the last micro-batch completed.", q)
	m.triggerInterval = gauge("sluice_trigger_interval_seconds", "processingTime trigger interval; 0 for the default trigger.", q)
	m.durationRatio = gauge("sluice_batch_duration_trigger_ratio", "Last batch duration divided by the trigger interval; above 1 the query falls behind its trigger.", q)
	m.schedDelay = gauge("sluice_scheduling_delay_seconds", "How late the last batch started after its trigger boundary.", q)
	m.busy = gauge("sluice_worker_busy_ratio", "Task time over (batch wall time x workers) in the last batch.", q)
	m.queryBusy = gauge("sluice_busy_ratio", "Share of wall time the query was busy in the last batch: its duration over the time since the previous batch ended (Flink's busy time; idle trigger time counted).", q)
	m.limitBound = counter("sluice_limit_bound_batches_total", "Batches the read limit held back: they ended short of what was available.")
	m.skew = gauge("sluice_task_skew_ratio", "Slowest task time over median task time in the last batch.", q)
	m.inRate = gauge("sluice_input_rows_per_second", "Rows per second read, over the time since the previous batch started.", q)
	m.procRate = gauge("sluice_processed_rows_per_second", "Rows per second processed, over the last batch duration.", q)
	m.inBytesRate = gauge("sluice_input_bytes_per_second", "Bytes per second read, over the time since the previous batch started.", q)
	m.procBytesRate = gauge("sluice_processed_bytes_per_second", "Bytes per second processed, over the last batch duration.", q)
	m.arrivalRate = gauge("sluice_arrival_rows_per_second", "Growth rate of the sources' latest offsets.", q)
	m.capacityRate = gauge("sluice_capacity_rows_per_second", "Rows processed per second of batch time over recent batches.", q)
	m.lagRecords = gauge("sluice_lag_records", "Records behind the latest offsets, summed over partitions.", q)
	m.lagSeconds = gauge("sluice_lag_seconds", "Time lag of the worst partition.", q)
	m.drainETA = gauge("sluice_drain_eta_seconds", "Predicted time until the backlog is drained; +Inf when it never will be.", q)
	m.drainNever = gauge("sluice_drain_never", "1 when the backlog is predicted never to drain (arrivals >= capacity).", q)
	m.health = gauge("sluice_health_status", "Query lag health: 1 for the current status, 0 for the others.", []string{LabelQuery, LabelStatus})
	m.topicLagRecords = gauge("sluice_topic_lag_records", "Records behind the latest offsets, summed over the topic's partitions.", qt)
	m.topicLagSeconds = gauge("sluice_topic_lag_seconds", "Time lag of the topic's worst partition.", qt)
	if cfg.partitionLabels {
		m.partLagRecords = gauge("sluice_partition_lag_records", "Records behind the latest offset.", qtp)
		m.partLagSeconds = gauge("sluice_partition_lag_seconds", "Time lag: how long ago the consumed offset was the latest.", qtp)
		m.partHealth = gauge("sluice_partition_health_status", "Partition lag health: 1 for the current status, 0 for the others.",
			[]string{LabelQuery, LabelTopic, LabelPartition, LabelStatus})
	}
	m.checkpointBytes = gauge("sluice_checkpoint_bytes", "Size of the checkpoint directory.", q)
	m.checkpointFiles = gauge("sluice_checkpoint_files", "Files in the checkpoint directory.", q)
	m.buffered = gauge("sluice_source_buffered_bytes", "Bytes fetched by the source and not yet read by a batch.", q)
	m.limit = gauge("sluice_admission_limit_records", "Records a batch may admit at most; 0 means no limit.", q)
	qo := []string{LabelQuery, LabelOperator}
	opCounter := func(name, help string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, qo)
		m.add(name, v)
		return v
	}
	m.stateRows = gauge("sluice_state_rows", "Rows (keys) a stateful operator holds in its state stores after the last batch (numRowsTotal).", qo)
	m.stateMemory = gauge("sluice_state_memory_bytes", "Memory a stateful operator's state stores use after the last batch (memoryUsedBytes).", qo)
	m.stateUpdated = opCounter("sluice_state_rows_updated_total", "State rows written by a stateful operator (numRowsUpdated, summed over batches).")
	m.stateRemoved = opCounter("sluice_state_rows_removed_total", "State rows a stateful operator evicted (numRowsRemoved, summed over batches).")
	m.stateDropped = opCounter("sluice_state_rows_dropped_by_watermark_total", "Late rows a stateful operator dropped because they were at or below the watermark (numRowsDroppedByWatermark, summed over batches).")
	m.watermarkTime = gauge("sluice_watermark_timestamp_seconds", "Event-time watermark the last batch used, as Unix time (queries with a watermark, once it has moved from 0).", q)
	m.watermarkDelay = gauge("sluice_watermark_delay_seconds", "How far the watermark is behind the wall clock at scrape time: now − watermark.", q)
	m.queryID = gauge("sluice_query_info", "Always 1; labels carry the query id and run id.", []string{LabelQuery, LabelID, LabelRunID})

	if err := reg.Register(m); err != nil {
		return nil, fmt.Errorf("metrics: register collectors: %w", err)
	}
	return m, nil
}

func (m *Metrics) add(name string, c prometheus.Collector) {
	m.collectors = append(m.collectors, c)
	m.names = append(m.names, name)
}

// Names lists the metric family names this Metrics exports, sorted.
func (m *Metrics) Names() []string {
	out := slices.Clone(m.names)
	slices.Sort(out)
	return out
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector: it runs every query's refresh
// function, then collects.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.RLock()
	var refresh []func()
	for _, q := range m.queries {
		if q.refresh != nil {
			refresh = append(refresh, q.refresh)
		}
	}
	m.mu.RUnlock()
	for _, f := range refresh {
		f()
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	now := m.now()
	for _, q := range m.queries {
		if !q.watermark.IsZero() {
			m.watermarkDelay.WithLabelValues(q.label).Set(now.Sub(q.watermark).Seconds())
		}
	}
	for _, c := range m.collectors {
		c.Collect(ch)
	}
}

// Query updates one query's series. Get one from AddQuery.
type Query struct {
	m       *Metrics
	label   string
	refresh func()
	parts   map[partition.ID]bool // partitions with series
	topics  map[string]bool
	// operators are the operator label values with series; watermark is
	// the last batch's watermark (zero: none yet).
	operators map[string]bool
	watermark time.Time
	removed   bool
}

// AddQuery starts exporting a query under the label value name (use the
// query name, or its id when it has none). refresh, if not nil, is called
// before every scrape, outside any lock of Metrics; it typically
// re-evaluates lag and health and calls SetState. A query already exported
// under name is removed first (a restart).
func (m *Metrics) AddQuery(name, id, runID string, refresh func()) *Query {
	m.mu.RLock()
	old := m.queries[name]
	m.mu.RUnlock()
	if old != nil {
		old.Remove()
	}
	q := &Query{m: m, label: name, refresh: refresh, parts: map[partition.ID]bool{}, topics: map[string]bool{}}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.queries[name] = q
	m.queryID.WithLabelValues(name, id, runID).Set(1)
	return q
}

// Label is the query label value.
func (q *Query) Label() string { return q.label }

// Remove deletes every series of the query; later updates are ignored.
func (q *Query) Remove() {
	m := q.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if q.removed {
		return
	}
	q.removed = true
	if m.queries[q.label] == q {
		delete(m.queries, q.label)
	}
	match := prometheus.Labels{LabelQuery: q.label}
	for _, c := range m.collectors {
		switch v := c.(type) {
		case *prometheus.CounterVec:
			v.DeletePartialMatch(match)
		case *prometheus.GaugeVec:
			v.DeletePartialMatch(match)
		case *prometheus.HistogramVec:
			v.DeletePartialMatch(match)
		}
	}
}

func seconds[T ~int64](ms T) float64 { return float64(ms) / 1000 }

// ObserveProgress records a completed batch: counters, the duration
// histogram, the per-batch gauges, and the state groups of p.Sluice (as
// SetState).
func (q *Query) ObserveProgress(p *progress.Progress) {
	if p == nil {
		return
	}
	m := q.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if q.removed {
		return
	}
	l := q.label
	m.batches.WithLabelValues(l).Inc()
	m.inputRows.WithLabelValues(l).Add(float64(max(p.NumInputRows, 0)))
	if p.Sink.NumOutputRows >= 0 {
		m.outputRows.WithLabelValues(l).Add(float64(p.Sink.NumOutputRows))
	}
	m.batchDuration.WithLabelValues(l).Observe(seconds(p.BatchDuration))
	m.lastDuration.WithLabelValues(l).Set(seconds(p.BatchDuration))
	m.lastBatchID.WithLabelValues(l).Set(float64(p.BatchID))
	if ts, err := progress.ParseTime(p.Timestamp); err == nil {
		end := ts.Add(time.Duration(p.BatchDuration) * time.Millisecond)
		m.lastBatchTime.WithLabelValues(l).Set(float64(end.UnixMilli()) / 1000)
	}
	m.inRate.WithLabelValues(l).Set(float64(p.InputRowsPerSecond))
	m.procRate.WithLabelValues(l).Set(float64(p.ProcessedRowsPerSecond))
	q.observeState(p)
	s := p.Sluice
	if s == nil {
		return
	}
	if t := s.Timing; t != nil {
		m.triggerInterval.WithLabelValues(l).Set(seconds(t.TriggerIntervalMs))
		m.durationRatio.WithLabelValues(l).Set(float64(t.BatchDurationVsTrigger))
		m.schedDelay.WithLabelValues(l).Set(seconds(t.SchedulingDelayMs))
		m.busy.WithLabelValues(l).Set(float64(t.WorkerUtilization))
		m.queryBusy.WithLabelValues(l).Set(float64(t.BusyRatio))
		m.skew.WithLabelValues(l).Set(float64(t.TaskSkew))
	}
	if t := s.Throughput; t != nil {
		m.inputBytes.WithLabelValues(l).Add(float64(max(t.NumInputBytes, 0)))
		m.inBytesRate.WithLabelValues(l).Set(float64(t.InputBytesPerSecond))
		m.procBytesRate.WithLabelValues(l).Set(float64(t.ProcessedBytesPerSecond))
	}
	if a := s.Admission; a != nil {
		m.limit.WithLabelValues(l).Set(float64(a.Limit))
		if a.LimitBound {
			m.limitBound.WithLabelValues(l).Inc()
		} else {
			m.limitBound.WithLabelValues(l).Add(0) // present from the first batch
		}
	}
	q.setState(s)
}

// OperatorLabel is the operator label value of stateOperators[i] of a
// progress report with n of them: Spark lists the downstream operator
// first, so its id in plan order is n−1−i.
func OperatorLabel(i, n int, name string) string {
	return strconv.Itoa(n-1-i) + " " + name
}

// observeState records the state operators' figures and the watermark of a
// batch. Operators a report no longer lists lose their series.
func (q *Query) observeState(p *progress.Progress) {
	m, l := q.m, q.label
	seen := map[string]bool{}
	for i, so := range p.StateOperators {
		op := OperatorLabel(i, len(p.StateOperators), so.OperatorName)
		seen[op] = true
		m.stateRows.WithLabelValues(l, op).Set(float64(so.NumRowsTotal))
		m.stateMemory.WithLabelValues(l, op).Set(float64(so.MemoryUsedBytes))
		m.stateUpdated.WithLabelValues(l, op).Add(float64(max(so.NumRowsUpdated, 0)))
		m.stateRemoved.WithLabelValues(l, op).Add(float64(max(so.NumRowsRemoved, 0)))
		m.stateDropped.WithLabelValues(l, op).Add(float64(max(so.NumRowsDroppedByWatermark, 0)))
	}
	if len(p.StateOperators) > 0 {
		for op := range q.operators {
			if seen[op] {
				continue
			}
			match := prometheus.Labels{LabelQuery: l, LabelOperator: op}
			for _, v := range []*prometheus.GaugeVec{m.stateRows, m.stateMemory} {
				v.DeletePartialMatch(match)
			}
			for _, v := range []*prometheus.CounterVec{m.stateUpdated, m.stateRemoved, m.stateDropped} {
				v.DeletePartialMatch(match)
			}
		}
		q.operators = seen
	}
	if w, ok := p.EventTime[progress.EventTimeWatermark]; ok {
		if t, err := progress.ParseTime(w); err == nil && t.UnixMilli() > 0 {
			q.watermark = t
			m.watermarkTime.WithLabelValues(l).Set(float64(t.UnixMilli()) / 1000)
		}
	}
}

// SetState sets the gauges of the groups present in s: lag (per query,
// topic and partition), health, checkpoint size and buffered bytes. Nil
// groups leave their gauges as they are.
func (q *Query) SetState(s *progress.Sluice) {
	if s == nil {
		return
	}
	q.m.mu.Lock()
	defer q.m.mu.Unlock()
	if q.removed {
		return
	}
	q.setState(s)
}

func (q *Query) setState(s *progress.Sluice) {
	m, l := q.m, q.label
	if c := s.Checkpoint; c != nil {
		m.checkpointBytes.WithLabelValues(l).Set(float64(c.Bytes))
		m.checkpointFiles.WithLabelValues(l).Set(float64(c.Files))
	}
	if mem := s.Memory; mem != nil {
		m.buffered.WithLabelValues(l).Set(float64(mem.BufferedBytes))
	}
	if h := s.Health; h != nil {
		setEnum(m.health, h.Status, l)
	}
	if lg := s.Lag; lg != nil {
		q.setLag(lg)
	}
}

// statuses are the values of the status label, best first.
var statuses = func() []string {
	var out []string
	for s := lag.StatusOK; s <= lag.StatusRewind; s++ {
		out = append(out, s.String())
	}
	return out
}()

// setEnum sets the series of current to 1 and the other statuses to 0.
func setEnum(v *prometheus.GaugeVec, current string, labels ...string) {
	for _, st := range statuses {
		val := 0.0
		if st == current {
			val = 1
		}
		v.WithLabelValues(append(labels, st)...).Set(val)
	}
}

func (q *Query) setLag(lg *progress.LagInfo) {
	m, l := q.m, q.label
	m.lagRecords.WithLabelValues(l).Set(float64(lg.Records))
	m.lagSeconds.WithLabelValues(l).Set(float64(lg.Seconds))
	eta := float64(lg.DrainETASeconds)
	never := 0.0
	if lg.DrainETASeconds.IsNever() {
		eta, never = math.Inf(1), 1
	}
	m.drainETA.WithLabelValues(l).Set(eta)
	m.drainNever.WithLabelValues(l).Set(never)
	m.arrivalRate.WithLabelValues(l).Set(float64(lg.ArrivalRowsPerSecond))
	m.capacityRate.WithLabelValues(l).Set(float64(lg.CapacityRowsPerSecond))

	type topicAgg struct {
		records int64
		seconds float64
	}
	topics := map[string]*topicAgg{}
	seen := map[partition.ID]bool{}
	for _, p := range lg.Partitions {
		a := topics[p.Topic]
		if a == nil {
			a = &topicAgg{seconds: math.NaN()}
			topics[p.Topic] = a
		}
		a.records += p.OffsetsBehind
		if s := float64(p.LagSeconds); !math.IsNaN(s) && (math.IsNaN(a.seconds) || s > a.seconds) {
			a.seconds = s
		}
		if !m.cfg.partitionLabels {
			continue
		}
		key := partition.ID{Topic: p.Topic, Partition: p.Partition}
		seen[key] = true
		part := strconv.Itoa(int(p.Partition))
		m.partLagRecords.WithLabelValues(l, p.Topic, part).Set(float64(p.OffsetsBehind))
		m.partLagSeconds.WithLabelValues(l, p.Topic, part).Set(float64(p.LagSeconds))
		if p.Status != "" {
			setEnum(m.partHealth, p.Status, l, p.Topic, part)
		}
	}
	for t, a := range topics {
		m.topicLagRecords.WithLabelValues(l, t).Set(float64(a.records))
		m.topicLagSeconds.WithLabelValues(l, t).Set(a.seconds)
	}
	// Drop series of partitions and topics no longer reported.
	for p := range q.parts {
		if !seen[p] {
			match := prometheus.Labels{LabelQuery: l, LabelTopic: p.Topic, LabelPartition: strconv.Itoa(int(p.Partition))}
			m.partLagRecords.DeletePartialMatch(match)
			m.partLagSeconds.DeletePartialMatch(match)
			m.partHealth.DeletePartialMatch(match)
		}
	}
	q.parts = seen
	for t := range q.topics {
		if topics[t] == nil {
			match := prometheus.Labels{LabelQuery: l, LabelTopic: t}
			m.topicLagRecords.DeletePartialMatch(match)
			m.topicLagSeconds.DeletePartialMatch(match)
		}
	}
	q.topics = map[string]bool{}
	for t := range topics {
		q.topics[t] = true
	}
}
