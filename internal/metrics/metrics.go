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
	parts   map[partition.ID]*partSeries // partitions with series
	topics  map[string]*topicSeries
	// The query's children of the vectors labelled by query alone, and
	// of its health enum, looked up once: a batch sets some thirty series
	// (with per-partition lag, ten more per partition), and a label
	// lookup hashes and checks the label values each time. Used under
	// m.mu; Remove, the only deletion of these series, ends the query's
	// updates.
	gauges   map[*prometheus.GaugeVec]prometheus.Gauge
	counters map[*prometheus.CounterVec]prometheus.Counter
	observer prometheus.Observer // batchDuration's
	health   enumSeries
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
	q := &Query{m: m, label: name, refresh: refresh, parts: map[partition.ID]*partSeries{}, topics: map[string]*topicSeries{},
		gauges: map[*prometheus.GaugeVec]prometheus.Gauge{}, counters: map[*prometheus.CounterVec]prometheus.Counter{}}
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
	q.counter(m.batches).Inc()
	q.counter(m.inputRows).Add(float64(max(p.NumInputRows, 0)))
	if p.Sink.NumOutputRows >= 0 {
		q.counter(m.outputRows).Add(float64(p.Sink.NumOutputRows))
	}
	q.durationObserver().Observe(seconds(p.BatchDuration))
	q.gauge(m.lastDuration).Set(seconds(p.BatchDuration))
	q.gauge(m.lastBatchID).Set(float64(p.BatchID))
	if ts, err := progress.ParseTime(p.Timestamp); err == nil {
		end := ts.Add(time.Duration(p.BatchDuration) * time.Millisecond)
		q.gauge(m.lastBatchTime).Set(float64(end.UnixMilli()) / 1000)
	}
	q.gauge(m.inRate).Set(float64(p.InputRowsPerSecond))
	q.gauge(m.procRate).Set(float64(p.ProcessedRowsPerSecond))
	q.observeState(p)
	s := p.Sluice
	if s == nil {
		return
	}
	if t := s.Timing; t != nil {
		q.gauge(m.triggerInterval).Set(seconds(t.TriggerIntervalMs))
		q.gauge(m.durationRatio).Set(float64(t.BatchDurationVsTrigger))
		q.gauge(m.schedDelay).Set(seconds(t.SchedulingDelayMs))
		q.gauge(m.busy).Set(float64(t.WorkerUtilization))
		q.gauge(m.queryBusy).Set(float64(t.BusyRatio))
		q.gauge(m.skew).Set(float64(t.TaskSkew))
	}
	if t := s.Throughput; t != nil {
		q.counter(m.inputBytes).Add(float64(max(t.NumInputBytes, 0)))
		q.gauge(m.inBytesRate).Set(float64(t.InputBytesPerSecond))
		q.gauge(m.procBytesRate).Set(float64(t.ProcessedBytesPerSecond))
	}
	if a := s.Admission; a != nil {
		q.gauge(m.limit).Set(float64(a.Limit))
		if a.LimitBound {
			q.counter(m.limitBound).Inc()
		} else {
			q.counter(m.limitBound).Add(0) // present from the first batch
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
			q.gauge(m.watermarkTime).Set(float64(t.UnixMilli()) / 1000)
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
		q.gauge(m.checkpointBytes).Set(float64(c.Bytes))
		q.gauge(m.checkpointFiles).Set(float64(c.Files))
	}
	if mem := s.Memory; mem != nil {
		q.gauge(m.buffered).Set(float64(mem.BufferedBytes))
	}
	if h := s.Health; h != nil {
		q.health.set(m.health, h.Status, l)
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

// enumSeries is a status enum's children for one label set (the query,
// or a partition), and the status last set.
type enumSeries struct {
	children []prometheus.Gauge // one per statuses entry
	current  string
}

// set sets the series of current to 1 and the other statuses to 0; when
// the status is the one set last, the series already say so.
func (e *enumSeries) set(v *prometheus.GaugeVec, current string, labels ...string) {
	if e.children == nil {
		e.children = make([]prometheus.Gauge, len(statuses))
		for i, st := range statuses {
			e.children[i] = v.WithLabelValues(append(labels, st)...)
		}
	} else if current == e.current {
		return
	}
	for i, st := range statuses {
		val := 0.0
		if st == current {
			val = 1
		}
		e.children[i].Set(val)
	}
	e.current = current
}

// partSeries is a partition's lag and health series.
type partSeries struct {
	records, seconds prometheus.Gauge
	health           enumSeries
}

// topicSeries is a topic's lag series.
type topicSeries struct{ records, seconds prometheus.Gauge }

// gauge returns the query's child of v, a vector labelled by query alone.
func (q *Query) gauge(v *prometheus.GaugeVec) prometheus.Gauge {
	g, ok := q.gauges[v]
	if !ok {
		g = v.WithLabelValues(q.label)
		q.gauges[v] = g
	}
	return g
}

// counter returns the query's child of v, a vector labelled by query alone.
func (q *Query) counter(v *prometheus.CounterVec) prometheus.Counter {
	c, ok := q.counters[v]
	if !ok {
		c = v.WithLabelValues(q.label)
		q.counters[v] = c
	}
	return c
}

// durationObserver returns the query's batch duration histogram.
func (q *Query) durationObserver() prometheus.Observer {
	if q.observer == nil {
		q.observer = q.m.batchDuration.WithLabelValues(q.label)
	}
	return q.observer
}

func (q *Query) setLag(lg *progress.LagInfo) {
	m, l := q.m, q.label
	q.gauge(m.lagRecords).Set(float64(lg.Records))
	q.gauge(m.lagSeconds).Set(float64(lg.Seconds))
	eta := float64(lg.DrainETASeconds)
	never := 0.0
	if lg.DrainETASeconds.IsNever() {
		eta, never = math.Inf(1), 1
	}
	q.gauge(m.drainETA).Set(eta)
	q.gauge(m.drainNever).Set(never)
	q.gauge(m.arrivalRate).Set(float64(lg.ArrivalRowsPerSecond))
	q.gauge(m.capacityRate).Set(float64(lg.CapacityRowsPerSecond))

	type topicAgg struct {
		records int64
		seconds float64
	}
	topics := map[string]*topicAgg{}
	seen := map[partition.ID]*partSeries{}
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
		ps := q.parts[key]
		if ps == nil {
			part := strconv.Itoa(int(p.Partition))
			ps = &partSeries{records: m.partLagRecords.WithLabelValues(l, p.Topic, part), seconds: m.partLagSeconds.WithLabelValues(l, p.Topic, part)}
		}
		seen[key] = ps
		ps.records.Set(float64(p.OffsetsBehind))
		ps.seconds.Set(float64(p.LagSeconds))
		if p.Status != "" {
			ps.health.set(m.partHealth, p.Status, l, p.Topic, strconv.Itoa(int(p.Partition)))
		}
	}
	seenTopics := make(map[string]*topicSeries, len(topics))
	for t, a := range topics {
		ts := q.topics[t]
		if ts == nil {
			ts = &topicSeries{records: m.topicLagRecords.WithLabelValues(l, t), seconds: m.topicLagSeconds.WithLabelValues(l, t)}
		}
		seenTopics[t] = ts
		ts.records.Set(float64(a.records))
		ts.seconds.Set(a.seconds)
	}
	// Drop series of partitions and topics no longer reported.
	for p := range q.parts {
		if seen[p] == nil {
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
	q.topics = seenTopics
}
