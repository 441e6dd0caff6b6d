package metrics

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/sluice-stream/sluice/progress"
)

// sample builds a progress report with every group set.
func sample(batch int64, eta progress.ETA, parts ...progress.PartitionLag) *progress.Progress {
	var records int64
	seconds := math.NaN()
	for _, p := range parts {
		records += p.OffsetsBehind
		if s := float64(p.LagSeconds); !math.IsNaN(s) && (math.IsNaN(seconds) || s > seconds) {
			seconds = s
		}
	}
	return &progress.Progress{
		ID: "id-1", RunID: "run-1", Timestamp: "2024-05-14T10:00:00.000Z", BatchID: batch,
		BatchDuration: 1500, NumInputRows: 1000, InputRowsPerSecond: 400, ProcessedRowsPerSecond: 666.7,
		Sink: progress.SinkProgress{NumOutputRows: 900},
		Sluice: &progress.Sluice{
			Health: &progress.HealthInfo{Status: "WARN", Reason: "lag grew"},
			Lag: &progress.LagInfo{Records: records, Seconds: progress.Double(seconds), DrainETASeconds: eta,
				ArrivalRowsPerSecond: 450, CapacityRowsPerSecond: 700, Partitions: parts},
			Timing: &progress.TimingInfo{TriggerIntervalMs: 1000, BatchDurationVsTrigger: 1.5, SchedulingDelayMs: 250,
				BusyRatio: 0.6, WorkerUtilization: 0.75, TaskSkew: progress.Ratio(math.NaN())},
			Throughput: &progress.ThroughputInfo{NumInputBytes: 4096, InputBytesPerSecond: 2048, ProcessedBytesPerSecond: 8192},
			Checkpoint: &progress.CheckpointInfo{Bytes: 12345, Files: 7},
			Memory:     &progress.MemoryInfo{BufferedBytes: 999},
			Admission:  &progress.AdmissionInfo{Limit: 5000, LimitBound: true, Reason: "maxOffsetsPerTrigger"},
		},
	}
}

func part(topic string, p int32, behind int64, secs float64, status string) progress.PartitionLag {
	return progress.PartitionLag{Topic: topic, Partition: p, OffsetsBehind: behind, LagSeconds: progress.Double(secs), Status: status}
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// find returns the series of name whose labels include want, or nil.
func find(fams map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

func value(m *dto.Metric) float64 {
	switch {
	case m == nil:
		return math.NaN()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return math.NaN()
}

func newMetrics(t *testing.T, opts ...Option) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestObserveProgress(t *testing.T) {
	m, reg := newMetrics(t)
	q := m.AddQuery("orders", "id-1", "run-1", nil)
	q.ObserveProgress(sample(0, 12.5, part("orders", 0, 300, 4.5, "WARN"), part("orders", 1, 200, 2, "OK"), part("audit", 0, 5, math.NaN(), "OK")))
	q.ObserveProgress(sample(1, progress.Never(), part("orders", 0, 400, 6, "STOP"), part("audit", 0, 0, 0, "OK")))
	fams := gather(t, reg)
	ql := map[string]string{"query": "orders"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{"query": "orders"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_batches_total", ql, 2},
		{"sluice_input_rows_total", ql, 2000},
		{"sluice_output_rows_total", ql, 1800},
		{"sluice_input_bytes_total", ql, 8192},
		{"sluice_batch_duration_seconds", ql, 2}, // sample count
		{"sluice_last_batch_duration_seconds", ql, 1.5},
		{"sluice_last_batch_id", ql, 1},
		{"sluice_last_batch_timestamp_seconds", ql, 1715680801.5},
		{"sluice_trigger_interval_seconds", ql, 1},
		{"sluice_batch_duration_trigger_ratio", ql, 1.5},
		{"sluice_scheduling_delay_seconds", ql, 0.25},
		{"sluice_worker_busy_ratio", ql, 0.75},
		{"sluice_busy_ratio", ql, 0.6},
		{"sluice_limit_bound_batches_total", ql, 2},
		{"sluice_task_skew_ratio", ql, math.NaN()},
		{"sluice_input_rows_per_second", ql, 400},
		{"sluice_processed_rows_per_second", ql, 666.7},
		{"sluice_input_bytes_per_second", ql, 2048},
		{"sluice_processed_bytes_per_second", ql, 8192},
		{"sluice_arrival_rows_per_second", ql, 450},
		{"sluice_capacity_rows_per_second", ql, 700},
		{"sluice_lag_records", ql, 400},
		{"sluice_lag_seconds", ql, 6},
		{"sluice_drain_eta_seconds", ql, math.Inf(1)},
		{"sluice_drain_never", ql, 1},
		{"sluice_health_status", with("status", "WARN"), 1},
		{"sluice_health_status", with("status", "OK"), 0},
		{"sluice_health_status", with("status", "REWIND"), 0},
		{"sluice_topic_lag_records", with("topic", "orders"), 400},
		{"sluice_topic_lag_seconds", with("topic", "orders"), 6},
		{"sluice_topic_lag_records", with("topic", "audit"), 0},
		{"sluice_partition_lag_records", with("topic", "orders", "partition", "0"), 400},
		{"sluice_partition_lag_seconds", with("topic", "orders", "partition", "0"), 6},
		{"sluice_partition_health_status", with("topic", "orders", "partition", "0", "status", "STOP"), 1},
		{"sluice_partition_health_status", with("topic", "orders", "partition", "0", "status", "WARN"), 0},
		{"sluice_checkpoint_bytes", ql, 12345},
		{"sluice_checkpoint_files", ql, 7},
		{"sluice_source_buffered_bytes", ql, 999},
		{"sluice_admission_limit_records", ql, 5000},
		{"sluice_query_info", map[string]string{"query": "orders", "id": "id-1", "run_id": "run-1"}, 1},
	}
	for _, tt := range tests {
		m := find(fams, tt.name, tt.labels)
		if m == nil {
			t.Errorf("%s%v: no series", tt.name, tt.labels)
			continue
		}
		got := value(m)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) && math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// orders-1 was not in the second report: its series are gone.
	for _, name := range []string{"sluice_partition_lag_records", "sluice_partition_lag_seconds", "sluice_partition_health_status"} {
		if s := find(fams, name, with("topic", "orders", "partition", "1")); s != nil {
			t.Errorf("%s still has a series for orders-1", name)
		}
	}
	// The sample's histogram: 1.5 s lands in the 2.5 s bucket, not the 1 s one.
	h := find(fams, "sluice_batch_duration_seconds", ql).GetHistogram()
	for _, b := range h.GetBucket() {
		want := uint64(0)
		if b.GetUpperBound() >= 1.5 {
			want = 2
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
}

func TestWithoutPartitionLabels(t *testing.T) {
	m, reg := newMetrics(t, WithoutPartitionLabels())
	q := m.AddQuery("q", "id", "run", nil)
	q.ObserveProgress(sample(0, 3, part("t", 0, 10, 1, "OK"), part("t", 1, 20, 2, "OK")))
	fams := gather(t, reg)
	for name := range fams {
		if strings.HasPrefix(name, "sluice_partition_") {
			t.Errorf("family %s exported with partition labels off", name)
		}
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == LabelPartition {
					t.Errorf("%s has a partition label", f.GetName())
				}
			}
		}
	}
	if got := value(find(fams, "sluice_topic_lag_records", map[string]string{"query": "q", "topic": "t"})); got != 30 {
		t.Errorf("topic lag = %v, want 30", got)
	}
	if slices.ContainsFunc(m.Names(), func(n string) bool { return strings.HasPrefix(n, "sluice_partition_") }) {
		t.Errorf("Names() lists partition metrics: %v", m.Names())
	}
}

func TestRefreshBeforeScrapeAndRemove(t *testing.T) {
	m, reg := newMetrics(t)
	calls := 0
	var q *Query
	q = m.AddQuery("a", "id-a", "run-a", func() {
		calls++
		q.SetState(&progress.Sluice{Health: &progress.HealthInfo{Status: "STOP"},
			Lag: &progress.LagInfo{Records: 70, Seconds: 31, DrainETASeconds: 10, Partitions: []progress.PartitionLag{part("t", 0, 70, 31, "STOP")}}})
	})
	q.ObserveProgress(sample(0, 3, part("t", 0, 10, 1, "OK")))
	other := m.AddQuery("b", "id-b", "run-b", nil)
	other.ObserveProgress(sample(0, 3, part("t", 0, 10, 1, "OK")))

	fams := gather(t, reg)
	if calls != 1 {
		t.Errorf("refresh called %d times by one scrape, want 1", calls)
	}
	if got := value(find(fams, "sluice_health_status", map[string]string{"query": "a", "status": "STOP"})); got != 1 {
		t.Errorf("health STOP after refresh = %v, want 1", got)
	}
	if got := value(find(fams, "sluice_partition_lag_seconds", map[string]string{"query": "a", "partition": "0"})); got != 31 {
		t.Errorf("partition lag seconds after refresh = %v, want 31", got)
	}
	if got := value(find(fams, "sluice_drain_never", map[string]string{"query": "a"})); got != 0 {
		t.Errorf("drain never = %v, want 0", got)
	}

	q.Remove()
	q.ObserveProgress(sample(1, 3)) // ignored after Remove
	fams = gather(t, reg)
	if calls != 1 {
		t.Errorf("refresh of a removed query called")
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == LabelQuery && l.GetValue() == "a" {
					t.Errorf("%s still has a series for removed query a", f.GetName())
				}
			}
		}
	}
	if got := value(find(fams, "sluice_batches_total", map[string]string{"query": "b"})); got != 1 {
		t.Errorf("query b batches = %v after removing a, want 1", got)
	}

	// A restart under the same label replaces the old series.
	b2 := m.AddQuery("b", "id-b", "run-b2", nil)
	fams = gather(t, reg)
	if find(fams, "sluice_batches_total", map[string]string{"query": "b"}) != nil ||
		find(fams, "sluice_query_info", map[string]string{"run_id": "run-b"}) != nil ||
		find(fams, "sluice_query_info", map[string]string{"run_id": "run-b2"}) == nil {
		t.Error("re-adding query b did not replace its series")
	}
	other.ObserveProgress(sample(1, 3)) // the old handle is dead
	b2.ObserveProgress(sample(1, 3))
	if got := value(find(gather(t, reg), "sluice_batches_total", map[string]string{"query": "b"})); got != 1 {
		t.Errorf("batches of restarted b = %v, want 1", got)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil || !strings.Contains(err.Error(), "register") {
		t.Errorf("second New on one registry: %v, want a registration error", err)
	}
}

// exportedNames feeds a report with every group and returns the metric
// families the registry holds.
func exportedNames(t *testing.T) (*Metrics, map[string]*dto.MetricFamily) {
	t.Helper()
	m, reg := newMetrics(t)
	q := m.AddQuery("q", "id", "run", nil)
	q.ObserveProgress(sample(0, 3, part("t", 0, 10, 1, "OK")))
	q.ObserveProgress(statefulSample(1, "2024-05-14T09:58:30.000Z", progress.StateOperatorProgress{OperatorName: "stateStoreSave", NumRowsTotal: 1}))
	return m, gather(t, reg)
}

func TestNamesMatchRegistry(t *testing.T) {
	m, fams := exportedNames(t)
	var got []string
	for name, f := range fams {
		got = append(got, name)
		if !strings.HasPrefix(name, "sluice_") {
			t.Errorf("%s lacks the sluice_ prefix", name)
		}
		unitOK := false
		for _, suffix := range []string{"_total", "_seconds", "_bytes", "_ratio", "_records", "_files", "_per_second", "_id", "_status", "_info", "_never", "_rows"} {
			if strings.HasSuffix(name, suffix) {
				unitOK = true
			}
		}
		if !unitOK {
			t.Errorf("%s does not end in a unit", name)
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(name, "_total") {
			t.Errorf("counter %s does not end in _total", name)
		}
	}
	slices.Sort(got)
	if want := m.Names(); !slices.Equal(got, want) {
		t.Errorf("registry families\n%v\nNames()\n%v", got, want)
	}
}

// statefulSample is a batch of a query with a deduplication feeding an
// aggregation (Spark lists the downstream operator first) and a watermark.
func statefulSample(batch int64, watermark string, ops ...progress.StateOperatorProgress) *progress.Progress {
	p := sample(batch, 1, part("t", 0, 10, 1, "OK"))
	p.StateOperators = ops
	p.EventTime = map[string]string{progress.EventTimeMin: "2024-05-14T09:59:00.000Z", progress.EventTimeWatermark: watermark}
	return p
}

func TestStateOperatorsAndWatermark(t *testing.T) {
	m, reg := newMetrics(t)
	now := time.Date(2024, 5, 14, 10, 0, 0, 0, time.UTC)
	m.now = func() time.Time { return now }
	q := m.AddQuery("iot", "id-1", "run-1", nil)
	save := func(total, updated, removed, mem, dropped int64) progress.StateOperatorProgress {
		return progress.StateOperatorProgress{OperatorName: "stateStoreSave", NumRowsTotal: total, NumRowsUpdated: updated,
			NumRowsRemoved: removed, MemoryUsedBytes: mem, NumRowsDroppedByWatermark: dropped}
	}
	dedupe := progress.StateOperatorProgress{OperatorName: "dedupe", NumRowsTotal: 7, NumRowsUpdated: 7, MemoryUsedBytes: 700}
	// Before the first watermark (epoch 0) there is no watermark series.
	q.ObserveProgress(statefulSample(0, "1970-01-01T00:00:00.000Z", save(10, 10, 0, 4096, 0), dedupe))
	fams := gather(t, reg)
	if s := find(fams, "sluice_watermark_delay_seconds", map[string]string{"query": "iot"}); s != nil {
		t.Errorf("watermark delay exported before the watermark moved: %v", value(s))
	}
	q.ObserveProgress(statefulSample(1, "2024-05-14T09:58:30.000Z", save(6, 3, 7, 2048, 2), dedupe))
	now = now.Add(30 * time.Second) // a scrape later: the delay grows with the wall clock
	fams = gather(t, reg)
	agg := map[string]string{"query": "iot", "operator": "1 stateStoreSave"}
	dd := map[string]string{"query": "iot", "operator": "0 dedupe"}
	ql := map[string]string{"query": "iot"}
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_state_rows", agg, 6},
		{"sluice_state_memory_bytes", agg, 2048},
		{"sluice_state_rows_updated_total", agg, 13},
		{"sluice_state_rows_removed_total", agg, 7},
		{"sluice_state_rows_dropped_by_watermark_total", agg, 2},
		{"sluice_state_rows", dd, 7},
		{"sluice_state_rows_updated_total", dd, 14},
		{"sluice_state_memory_bytes", dd, 700},
		{"sluice_watermark_timestamp_seconds", ql, float64(time.Date(2024, 5, 14, 9, 58, 30, 0, time.UTC).Unix())},
		{"sluice_watermark_delay_seconds", ql, 120}, // 10:00:30 − 09:58:30
	} {
		s := find(fams, tt.name, tt.labels)
		if s == nil {
			t.Errorf("%s%v: no series", tt.name, tt.labels)
			continue
		}
		if got := value(s); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// A restarted plan without the deduplication: its series go.
	q.ObserveProgress(statefulSample(2, "2024-05-14T09:58:40.000Z", save(6, 0, 0, 2048, 0)))
	fams = gather(t, reg)
	if s := find(fams, "sluice_state_rows", map[string]string{"query": "iot", "operator": "0 stateStoreSave"}); value(s) != 6 {
		t.Errorf("state rows of the only operator = %v, want 6", value(s))
	}
	for _, name := range []string{"sluice_state_rows", "sluice_state_memory_bytes", "sluice_state_rows_updated_total"} {
		if s := find(fams, name, dd); s != nil {
			t.Errorf("%s still has the dropped operator's series", name)
		}
	}
	q.Remove()
	fams = gather(t, reg)
	for _, name := range []string{"sluice_state_rows", "sluice_watermark_delay_seconds", "sluice_watermark_timestamp_seconds"} {
		if s := find(fams, name, ql); s != nil {
			t.Errorf("%s survives Remove", name)
		}
	}
}

// Group mode: with WithMember every series carries member=NAME.
func TestWithMemberLabelsEverySeries(t *testing.T) {
	m, reg := newMetrics(t, WithMember("pod-a"))
	q := m.AddQuery("q", "id", "run", nil)
	q.ObserveProgress(sample(0, 3, part("t", 0, 10, 1, "OK")))
	fams := gather(t, reg)
	if len(fams) == 0 {
		t.Fatal("no families")
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			have := ""
			for _, l := range s.GetLabel() {
				if l.GetName() == LabelMember {
					have = l.GetValue()
				}
			}
			if have != "pod-a" {
				t.Errorf("%s: member label %q, want pod-a", f.GetName(), have)
			}
		}
	}
	if got := value(find(fams, "sluice_partition_lag_records", map[string]string{"query": "q", "topic": "t", "partition": "0", "member": "pod-a"})); got != 10 {
		t.Errorf("partition lag of member pod-a = %v, want 10", got)
	}
}

// TestSeriesComeBack: a partition or topic whose series were dropped (not
// in a report) gets them again when a later report lists it, and the health
// enums follow every status change, also back to a status set before (the
// query's series are looked up once and kept between batches).
func TestSeriesComeBack(t *testing.T) {
	m, reg := newMetrics(t)
	q := m.AddQuery("orders", "id-1", "run-1", nil)
	with := func(kv ...string) map[string]string {
		m := map[string]string{"query": "orders"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	steps := []struct {
		health string
		parts  []progress.PartitionLag
	}{
		{"OK", []progress.PartitionLag{part("orders", 0, 10, 1, "OK"), part("audit", 0, 1, 1, "OK")}},
		{"WARN", []progress.PartitionLag{part("orders", 0, 20, 2, "WARN")}},                                  // audit-0 and audit dropped
		{"WARN", []progress.PartitionLag{part("orders", 0, 30, 3, "WARN"), part("audit", 0, 7, 4, "STALL")}}, // back
		{"OK", []progress.PartitionLag{part("orders", 0, 0, 0, "OK"), part("audit", 0, 8, 5, "STALL")}},
	}
	for i, st := range steps {
		p := sample(int64(i), 1, st.parts...)
		p.Sluice.Health.Status = st.health
		q.ObserveProgress(p)
		fams := gather(t, reg)
		for _, s := range statuses {
			want := 0.0
			if s == st.health {
				want = 1
			}
			if got := value(find(fams, "sluice_health_status", with("status", s))); got != want {
				t.Errorf("step %d: sluice_health_status{status=%s} = %v, want %v", i, s, got, want)
			}
		}
		for _, pl := range st.parts {
			pn := fmt.Sprint(pl.Partition)
			if got := value(find(fams, "sluice_partition_lag_records", with("topic", pl.Topic, "partition", pn))); got != float64(pl.OffsetsBehind) {
				t.Errorf("step %d: %s-%s lag records = %v, want %d", i, pl.Topic, pn, got, pl.OffsetsBehind)
			}
			if got := value(find(fams, "sluice_topic_lag_records", with("topic", pl.Topic))); got != float64(pl.OffsetsBehind) {
				t.Errorf("step %d: topic %s lag records = %v, want %d", i, pl.Topic, got, pl.OffsetsBehind)
			}
			for _, s := range statuses {
				want := 0.0
				if s == pl.Status {
					want = 1
				}
				if got := value(find(fams, "sluice_partition_health_status", with("topic", pl.Topic, "partition", pn, "status", s))); got != want {
					t.Errorf("step %d: %s-%s health{status=%s} = %v, want %v", i, pl.Topic, pn, s, got, want)
				}
			}
		}
		if len(st.parts) == 1 {
			if s := find(fams, "sluice_partition_lag_records", with("topic", "audit")); s != nil {
				t.Errorf("step %d: audit-0 still has a series", i)
			}
		}
	}
	q.Remove()
	q.ObserveProgress(sample(9, 1, part("orders", 0, 99, 9, "STOP")))
	if s := find(gather(t, reg), "sluice_partition_lag_records", with()); s != nil {
		t.Error("a removed query's update made a series")
	}
}
