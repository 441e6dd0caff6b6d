package rehearse

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/pipeline"
	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/state"
	"github.com/sluice-stream/sluice/progress"
)

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		v    []int64
		q    float64
		want int64
	}{
		{nil, 0.95, 0},
		{[]int64{7}, 0.95, 7},
		{[]int64{5, 1, 4, 2, 3}, 0.5, 3},
		{[]int64{5, 1, 4, 2, 3}, 0.95, 5},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 0.95, 19},
		{[]int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21}, 0.95, 20},
		{[]int64{10, 20, 30, 40}, 0.5, 20},
	} {
		if got := Percentile(tc.v, tc.q); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %d, want %d", tc.v, tc.q, got, tc.want)
		}
	}
}

// world builds synthetic phase data: arrivals per partition at a rate
// function, sampled every 100 ms, and batches that commit given offsets.
type world struct {
	start   time.Time
	parts   int
	rate    func(sec float64) float64 // per partition, records/s
	batches []*progress.Progress
}

func (w *world) arrived(sec float64) int64 {
	// integrate in 1 ms steps
	var n float64
	for t := 0.0; t < sec; t += 0.001 {
		n += w.rate(t) * 0.001
	}
	return int64(n)
}

// batch adds a batch that started at startSec, lasted durMs and committed
// every partition up to what had arrived at plannedSec.
func (w *world) batch(startSec float64, durMs int64, plannedSec float64, rows int64) {
	end := w.arrived(plannedSec)
	offs := map[string]int64{}
	for p := 0; p < w.parts; p++ {
		offs[fmt.Sprint(p)] = end
	}
	raw, _ := json.Marshal(map[string]map[string]int64{"t": offs})
	ts := w.start.Add(time.Duration(startSec * float64(time.Second)))
	w.batches = append(w.batches, &progress.Progress{
		Timestamp: progress.FormatTime(ts), BatchDuration: durMs, NumInputRows: rows,
		Sources: []progress.SourceProgress{{EndOffset: raw}},
	})
}

func (w *world) data(durSec float64, trigger time.Duration, base float64, spikeAt, spikeEnd float64) PhaseData {
	d := PhaseData{Start: w.start, End: w.start.Add(time.Duration(durSec * float64(time.Second))), Trigger: trigger,
		BaseRate: base, Progress: w.batches, PeakRSS: -1,
		SpikeStart: w.start.Add(time.Duration(spikeAt * float64(time.Second))), SpikeEnd: w.start.Add(time.Duration(spikeEnd * float64(time.Second)))}
	for t := 0.1; t <= durSec+1e-9; t += 0.1 {
		e := w.arrived(t)
		s := EndSample{UnixMs: w.start.Add(time.Duration(t * float64(time.Second))).UnixMilli(), Ends: map[int32]int64{}}
		for p := 0; p < w.parts; p++ {
			s.Ends[int32(p)] = e
		}
		d.Ends = append(d.Ends, s)
	}
	return d
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func TestAnalyzeStableSteady(t *testing.T) {
	// 2 partitions × 500/s, trigger 500 ms, every batch takes 100 ms and
	// commits what had arrived when it started.
	w := &world{start: t0, parts: 2, rate: func(float64) float64 { return 500 }}
	for i := 1; i <= 10; i++ {
		s := float64(i) * 0.5
		w.batch(s, 100, s, 500)
	}
	v := Analyze(w.data(5.5, 500*time.Millisecond, 1000, 0, 0), math.NaN())
	if !v.Stable || v.Batches != 10 || v.P50Ms != 100 || v.P95Ms != 100 || v.TargetMs != 500 {
		t.Fatalf("verdict %+v", v)
	}
	if v.DrainThreshold != 1000 { // 2 triggers × 1000/s × 0.5 s
		t.Errorf("threshold %d, want 1000", v.DrainThreshold)
	}
	// Just before a batch commits, 600 ms of arrivals (1000/s) wait.
	if v.PeakLagRecords < 500 || v.PeakLagRecords > 650 {
		t.Errorf("peak lag %d, want about 600", v.PeakLagRecords)
	}
	if s := float64(v.PeakLagSeconds); s < 0.5 || s > 0.65 {
		t.Errorf("peak lag seconds %v, want about 0.6", s)
	}
	if !v.Drained || v.DrainSeconds != 0 || v.MinDrainSeconds != 0 {
		t.Errorf("drain %+v", v)
	}
	if v.Criteria[2].Detail != "no budget set; peak RSS n/a" {
		t.Errorf("memory detail %q", v.Criteria[2].Detail)
	}
}

func TestAnalyzeOverrunAndDrain(t *testing.T) {
	// Spike from 1 s to 3 s at 10× (2 partitions × 2,500/s); an unlimited
	// query whose batches grow, then catches up at 4.5 s.
	rate := func(s float64) float64 {
		if s >= 1 && s < 3 {
			return 2500
		}
		return 250
	}
	w := &world{start: t0, parts: 2, rate: rate}
	w.batch(0.5, 100, 0.5, 250)
	w.batch(1.0, 100, 1.0, 250)
	w.batch(1.5, 900, 1.5, 2500)
	w.batch(2.4, 1600, 2.4, 4500)
	w.batch(4.0, 500, 4.0, 5000)
	w.batch(4.5, 50, 4.5, 250)
	w.batch(5.0, 50, 5.0, 250)
	w.batch(5.5, 50, 5.5, 250)
	d := w.data(6, 500*time.Millisecond, 500, 1, 3)
	v := Analyze(d, 4000)
	if v.Stable || v.Criteria[0].Pass {
		t.Fatalf("p95 %d ms over a 500 ms trigger judged %+v", v.P95Ms, v.Criteria[0])
	}
	if v.P95Ms != 1600 || v.MaxMs != 1600 || v.Batches != 8 || math.Abs(float64(v.P95OverTarget)-3.2) > 1e-9 {
		t.Errorf("durations %+v", v)
	}
	if !v.Criteria[1].Pass || !v.Drained {
		t.Fatalf("lag should drain: %+v", v.Criteria[1])
	}
	// At 3 s the last finished batch (1.5 s + 900 ms) committed what had
	// arrived at 1.5 s: lag = 2 partitions × 2500/s × 1.5 s = 7500.
	if v.BacklogAtSpikeEnd < 7400 || v.BacklogAtSpikeEnd > 7600 {
		t.Errorf("backlog at spike end %d, want about 7500", v.BacklogAtSpikeEnd)
	}
	// The batch ending at 4.5 s commits up to arrived(4.0): lag then
	// 0.5 s × 500/s = 250 ≤ threshold 500, so drained 1.5 s after the spike.
	if ds := float64(v.DrainSeconds); ds < 1.45 || ds > 1.55 {
		t.Errorf("drain %v s, want 1.5", ds)
	}
	// The batch running at 3 s (from 2.4 s, 4,500 rows) had processed
	// 0.6 s × 4,000 rows/s of them.
	if v.InFlightAtSpikeEnd != 2400 {
		t.Errorf("in flight at spike end %d, want 2400", v.InFlightAtSpikeEnd)
	}
	wantMin := float64(v.BacklogAtSpikeEnd-2400-v.DrainThreshold) / (4000 - 500)
	if math.Abs(float64(v.MinDrainSeconds)-wantMin) > 1e-9 || math.Abs(float64(v.DrainRatio)-float64(v.DrainSeconds)/wantMin) > 1e-9 {
		t.Errorf("min drain %v ratio %v, want %v", v.MinDrainSeconds, v.DrainRatio, wantMin)
	}
	// Capacity of the phase: batches ≥ 250 ms: (2500+4500+5000) rows in 3 s.
	if c := float64(v.PhaseCapacityRowsPerSec); math.Abs(c-4000) > 1e-9 {
		t.Errorf("phase capacity %v, want 4000", c)
	}
	if float64(v.CapacityRowsPerSec) != 4000 {
		t.Errorf("capacity used %v, want the one given", v.CapacityRowsPerSec)
	}
}

func TestAnalyzeNeverDrains(t *testing.T) {
	w := &world{start: t0, parts: 1, rate: func(float64) float64 { return 1000 }}
	// Batches commit half of what arrived.
	for i := 1; i <= 8; i++ {
		s := float64(i) * 0.5
		w.batch(s, 400, s/2, 250)
	}
	v := Analyze(w.data(4.5, 500*time.Millisecond, 1000, 0, 0), math.NaN())
	if v.Stable || v.Criteria[1].Pass || v.Drained || !math.IsNaN(float64(v.DrainSeconds)) {
		t.Fatalf("a lag that keeps growing judged %+v", v)
	}
	if !v.Criteria[0].Pass {
		t.Fatalf("batches of 400 ms on a 500 ms trigger: %+v", v.Criteria[0])
	}
	if v.FinalLagRecords < 2000 || !strings.Contains(v.Criteria[1].Detail, "at the end of the phase") {
		t.Errorf("final lag %d, detail %q", v.FinalLagRecords, v.Criteria[1].Detail)
	}
}

func TestAnalyzeMemory(t *testing.T) {
	w := &world{start: t0, parts: 1, rate: func(float64) float64 { return 100 }}
	w.batch(0.5, 50, 0.5, 50)
	const budget = 16 << 20
	for _, tc := range []struct {
		name    string
		peak    int64
		samples []int64
		pass    bool
		detail  string
	}{
		{"under", 60 << 20, []int64{30 << 20, 50 << 20}, true, "peak RSS 60.0 MiB vs budget 16.0 MiB"},
		{"sample over", 60 << 20, []int64{90 << 20}, false, "peak RSS 90.0 MiB"},
		{"hwm over", 81 << 20, nil, false, "peak RSS 81.0 MiB"},
		{"not measured", -1, nil, true, "memory was not measured"},
	} {
		d := w.data(1, 500*time.Millisecond, 100, 0, 0)
		d.MemoryBudget, d.PeakRSS = budget, tc.peak
		for i, m := range tc.samples {
			d.Memory = append(d.Memory, MemSample{UnixMs: t0.UnixMilli() + int64(i), RSS: m})
		}
		v := Analyze(d, math.NaN())
		c := v.Criteria[2]
		if c.Pass != tc.pass || v.Stable != tc.pass || !strings.Contains(c.Detail, tc.detail) {
			t.Errorf("%s: %+v (stable %v)", tc.name, c, v.Stable)
		}
		if v.MemoryLimitBytes != budget+sluice.BudgetOverhead {
			t.Errorf("%s: limit %d", tc.name, v.MemoryLimitBytes)
		}
	}
}

func TestAnalyzeNoBatches(t *testing.T) {
	v := Analyze(PhaseData{Start: t0, Trigger: time.Second, BaseRate: 10, PeakRSS: -1}, math.NaN())
	if v.Stable || v.Criteria[0].Pass || v.Criteria[1].Pass {
		t.Fatalf("a phase with nothing measured judged %+v", v)
	}
}

func TestLagSecondsInterpolated(t *testing.T) {
	// One partition: 0 records until 1 s, then 100 at 1.0–2.0 s linearly
	// (samples every 100 ms); nothing committed: at 2 s the oldest record
	// arrived at ~1.0 s.
	d := PhaseData{Start: t0}
	for i := 1; i <= 20; i++ {
		e := int64(0)
		if i > 10 {
			e = int64(i-10) * 10
		}
		d.Ends = append(d.Ends, EndSample{UnixMs: t0.Add(time.Duration(i) * 100 * time.Millisecond).UnixMilli(), Ends: map[int32]int64{0: e}})
	}
	lag := Lag(d)
	last := lag[len(lag)-1]
	if last.Records != 100 || math.Abs(last.PartSeconds[0]-0.99) > 0.011 {
		t.Fatalf("lag at 2 s: %d records, %v s; want 100, ~0.99 s", last.Records, last.PartSeconds[0])
	}
	if lag[9].Records != 0 || lag[9].MaxSeconds != 0 {
		t.Fatalf("lag at 1 s: %+v, want none", lag[9])
	}
}

func TestNumJSON(t *testing.T) {
	b, err := json.Marshal([]Num{1.5, Num(math.NaN()), Num(math.Inf(1))})
	if err != nil || string(b) != "[1.5,null,null]" {
		t.Fatalf("%s %v", b, err)
	}
	var back []Num
	if err := json.Unmarshal(b, &back); err != nil || back[0] != 1.5 || !math.IsNaN(float64(back[1])) {
		t.Fatalf("%v %v", back, err)
	}
}

func TestMemoryAdvice(t *testing.T) {
	mk := func(n int, peak int64, pass bool, rows, inBytes int64) *Phase {
		ph := &Phase{Spec: PhaseSpec{N: n}}
		ph.Verdict.PeakRSSBytes = peak
		ph.Verdict.MemoryLimitBytes = 128 << 20
		ph.Verdict.Criteria = []Criterion{{Pass: true}, {Pass: true}, {Name: "memory", Pass: pass}}
		ph.Data.Progress = []*progress.Progress{
			{NumInputRows: rows / 2},
			{NumInputRows: rows, Sluice: &progress.Sluice{Throughput: &progress.ThroughputInfo{NumInputBytes: inBytes}}},
		}
		return ph
	}
	// Baseline 40 MiB; 50,000 rows of 280 B read took the process to
	// 140 MiB: 100 MiB / 50,000 ≈ 2 KiB per row, 7.5 × what was read;
	// (128 − 40) MiB / 2 KiB ≈ 44,000 rows fit.
	res := &Result{Phases: []*Phase{mk(1, 40<<20, true, 1000, 280_000), mk(4, 140<<20, false, 50_000, 14_000_000)}}
	got := memoryAdvice(res, res.Phases[1])
	for _, want := range []string{"Peak RSS 140.0 MiB", "50,000 rows", "2.0 KiB per row", "7.5 ×", "about 44,000 rows fit"} {
		if !strings.Contains(got, want) {
			t.Errorf("advice lacks %q:\n%s", want, got)
		}
	}
	if s := memoryAdvice(res, res.Phases[0]); s != "" {
		t.Errorf("advice for a phase within budget: %q", s)
	}
}

// TestAnalyzeStateMemory: a stateful phase is judged on its state too —
// the peak memoryUsedBytes (summed over the operators of a batch) against
// the state share, and a state-memory failure fails it whatever the
// figures say; a stateless phase has no fourth criterion and no state.
func TestAnalyzeStateMemory(t *testing.T) {
	const share = 8 << 20
	// state gives each batch's operators as (rows, bytes, dropped).
	type op struct{ rows, bytes, dropped int64 }
	build := func(state [][]op) PhaseData {
		w := &world{start: t0, parts: 1, rate: func(float64) float64 { return 100 }}
		for i := range state {
			s := 0.5 * float64(i+1)
			w.batch(s, 50, s, 50)
		}
		for i, ops := range state {
			for _, o := range ops {
				w.batches[i].StateOperators = append(w.batches[i].StateOperators, progress.StateOperatorProgress{
					OperatorName: "stateStoreSave", NumRowsTotal: o.rows, MemoryUsedBytes: o.bytes,
					NumRowsDroppedByWatermark: o.dropped, NumRowsUpdated: 1, NumRowsRemoved: 2,
				})
			}
		}
		return w.data(0.5*float64(len(state))+0.5, 500*time.Millisecond, 100, 0, 0)
	}
	for _, tc := range []struct {
		name      string
		state     [][]op
		share     int64
		failure   string
		pass      bool
		detail    string
		peakBytes int64
		peakRows  int64
		dropped   int64
	}{
		{"within the share", [][]op{{{1000, 2 << 20, 0}}, {{3000, 6 << 20, 4}}, {{1500, 3 << 20, 1}}}, share, "", true,
			"peak 3,000 state rows, 6.0 MiB = 75.0 % of the state share of the budget (8.0 MiB); 5 late rows dropped", 6 << 20, 3000, 5},
		{"past the share", [][]op{{{1000, 2 << 20, 0}}, {{5000, 9 << 20, 0}}}, share, "", false,
			"peak 5,000 state rows, 9.0 MiB = 112.5 % of the state share", 9 << 20, 5000, 0},
		// Two operators in one batch: their bytes add up.
		{"operators summed", [][]op{{{1000, 5 << 20, 0}, {1000, 5 << 20, 0}}}, share, "", false,
			"peak 2,000 state rows, 10.0 MiB", 10 << 20, 2000, 0},
		{"stopped by state memory", [][]op{{{1000, 1 << 20, 0}}}, share,
			"state of operator 0 (partition 1 at 4.1 MiB) would take state memory to 8.0 MiB, over its share of the memory budget (8.0 MiB)", false,
			"the query stopped on its state memory: state of operator 0", 1 << 20, 1000, 0},
		{"no state reported", [][]op{{}, {}}, share, "", false, "no batch reported a state operator", 0, 0, 0},
		{"no budget", [][]op{{{10, 1 << 30, 0}}}, 0, "", true, "no memory budget, so no state share to judge against", 1 << 30, 10, 0},
	} {
		d := build(tc.state)
		d.Stateful, d.StateShare, d.StateFailure = true, tc.share, tc.failure
		v := Analyze(d, math.NaN())
		if len(v.Criteria) != 4 || v.State == nil {
			t.Fatalf("%s: criteria %+v, state %v", tc.name, v.Criteria, v.State)
		}
		c := v.Criteria[3]
		if c.Name != "state memory" || c.Pass != tc.pass || !strings.Contains(c.Detail, tc.detail) {
			t.Errorf("%s: criterion %+v", tc.name, c)
		}
		// The other three criteria pass here: the verdict is the state's.
		if !v.Criteria[0].Pass || !v.Criteria[1].Pass || !v.Criteria[2].Pass || v.Stable != tc.pass {
			t.Errorf("%s: stable %v, criteria %+v", tc.name, v.Stable, v.Criteria)
		}
		st := v.State
		if st.PeakMemoryBytes != tc.peakBytes || st.PeakRows != tc.peakRows || st.LateRowsDropped != tc.dropped ||
			st.ShareBytes != tc.share || st.Failure != tc.failure {
			t.Errorf("%s: state figures %+v", tc.name, st)
		}
		if n := len(tc.state); n > 0 && len(tc.state[n-1]) > 0 {
			last := tc.state[n-1]
			if st.FinalRows != last[0].rows*int64(len(last)) || st.FinalMemoryBytes != last[0].bytes*int64(len(last)) {
				t.Errorf("%s: final %d rows %d bytes", tc.name, st.FinalRows, st.FinalMemoryBytes)
			}
		}
	}

	// A stateless phase: three criteria, no state in its JSON.
	d := build([][]op{{{1000, 1 << 20, 0}}})
	v := Analyze(d, math.NaN())
	if len(v.Criteria) != 3 || v.State != nil {
		t.Fatalf("stateless phase: %+v", v)
	}
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), `"state"`) {
		t.Errorf("stateless verdict JSON has a state key: %s", b)
	}
	// The JSON of a stateful verdict carries the figures.
	d.Stateful, d.StateShare = true, share
	b, _ = json.Marshal(Analyze(d, math.NaN()))
	for _, want := range []string{`"state":{"operators":["stateStoreSave"],"peakRows":1000,"peakMemoryBytes":1048576`, `"lateRowsDropped":0`, `"shareBytes":8388608`, `"peakOverShare":0.125`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("verdict JSON lacks %s: %s", want, b)
		}
	}
}

// TestStateMemoryFailure recognises the engine's state-memory error, in an
// in-process error chain and in a child process's output, and nothing else.
func TestStateMemoryFailure(t *testing.T) {
	me := &state.MemoryExceededError{Operator: 0, Partition: 1, StoreBytes: 4 << 20, Used: 9 << 20, Limit: 8 << 20, Budget: true}
	if got := StateMemoryFailure(fmt.Errorf("stateful operator 0 stopped the query: %w", me)); !strings.Contains(got, "would take state memory to 9.0 MiB") {
		t.Errorf("in-process: %q", got)
	}
	child := errors.New("query process: exit status 1; last output:\nlevel=INFO msg=batch\nsluice run: stateful operator 0 (stateStoreSave) stopped the query: " + me.Error() + "\n")
	if got := StateMemoryFailure(child); !strings.HasPrefix(got, "sluice run: stateful operator 0") || strings.Contains(got, "\n") {
		t.Errorf("child: %q", got)
	}
	for _, err := range []error{nil, errors.New("query process: exit status 1; last output:\nboom")} {
		if got := StateMemoryFailure(err); got != "" {
			t.Errorf("%v: %q", err, got)
		}
	}
}

// TestStatefulQuery: phase 5's query renders to a pipeline that parses
// back with the watermark, the window and append mode.
func TestStatefulQuery(t *testing.T) {
	base := &queryrun.Query{SourceOptions: map[string]string{"kafka.security.protocol": "SASL_SSL"}, Options: map[string]string{"sluice.workers": "9"}}
	q := StatefulQuery(2*time.Second, 1500*time.Millisecond, base)
	data, err := q.Pipeline(queryrun.Setup{Name: "p5", Bootstrap: "b:9092", Topic: "t", Checkpoint: "/chk", Trigger: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f, err := pipeline.Parse("p5.yaml", data, nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	for _, want := range []string{"from_json(CAST(value AS STRING)", "delay: 1500 milliseconds", "window(ts, '2 seconds')", "count(*) AS orders", "outputMode: append", "format: noop"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("pipeline lacks %q:\n%s", want, data)
		}
	}
	if f.Source.Options["kafka.security.protocol"] != "SASL_SSL" || len(q.Options) != 0 {
		t.Errorf("source options %v, options %v: want the base's source options only", f.Source.Options, q.Options)
	}
}
