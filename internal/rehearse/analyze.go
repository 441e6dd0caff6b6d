package rehearse

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/report"
	"github.com/sluice-stream/sluice/internal/sparktext"
	"github.com/sluice-stream/sluice/progress"
)

// Verdict rules. A phase is stable when all of these hold:
//
//  1. batch duration: the 95th percentile (nearest rank) of the durations
//     of the batches that read rows is at most StableP95Factor × the
//     phase's trigger interval;
//  2. lag drained: from some moment after the spike ended until the end of
//     the phase, the lag (broker end offsets minus committed offsets,
//     summed over partitions, sampled every SampleEvery) stays at or below
//     the drain threshold — what arrives at the base rate in
//     DrainThresholdTriggers trigger intervals;
//  3. memory: when a memory budget is set, the query process's peak
//     resident set is at most the budget plus sluice.BudgetOverhead (not
//     judged when memory could not be measured);
//  4. state memory (stateful phases only): the query was not stopped by
//     its state memory, its progress reports state operators, and the
//     largest memoryUsedBytes they reported (summed over the operators of a
//     batch) is within the state share of the budget (half of it; with no
//     budget there is no share to judge against).
const (
	StableP95Factor        = 1.2
	DrainThresholdTriggers = 2
	SampleEvery            = 100 * time.Millisecond
)

// Num is a float64 that marshals NaN and infinities as JSON null.
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("rehearse: number %s: %w", b, err)
	}
	*n = Num(f)
	return nil
}

// EndSample is the broker's end offset of every partition of the phase
// topic at one moment.
type EndSample struct {
	UnixMs int64           `json:"t"`
	Ends   map[int32]int64 `json:"ends"`
}

// Time returns the sample's time.
func (s EndSample) Time() time.Time { return time.UnixMilli(s.UnixMs) }

// MemSample is the query process's resident set at one moment.
type MemSample struct {
	UnixMs int64 `json:"t"`
	RSS    int64 `json:"rss"`
}

// PhaseData is what a phase measured.
type PhaseData struct {
	// Start and End bound the load; SpikeStart and SpikeEnd bound the
	// spike (both equal Start without one).
	Start, SpikeStart, SpikeEnd, End time.Time
	// Trigger is the phase's trigger interval: the target of rule 1.
	Trigger time.Duration
	// BaseRate is the arrival rate outside the spike.
	BaseRate float64
	// Progress holds every batch's progress report, in order.
	Progress []*progress.Progress
	// Ends samples the broker's end offsets; Memory the query's RSS.
	Ends   []EndSample
	Memory []MemSample
	// PeakRSS is the query process's peak RSS (-1: not measured).
	PeakRSS int64
	// MemoryBudget is the phase's sluice.memory.budget (0: none).
	MemoryBudget int64
	// Stateful marks a phase judged on its state too; StateShare is the
	// part of the budget state may hold (0: no budget); StateFailure the
	// engine's message when state memory stopped the query ("" if not).
	Stateful     bool
	StateShare   int64
	StateFailure string
}

// StateFigures are a stateful phase's state figures, from the progress
// reports' stateOperators.
type StateFigures struct {
	// Operators names the state operators reported (operatorName).
	Operators []string `json:"operators"`
	// PeakRows and PeakMemoryBytes are the largest numRowsTotal and
	// memoryUsedBytes of a batch (summed over its operators); FinalRows
	// and FinalMemoryBytes the last batch's.
	PeakRows         int64 `json:"peakRows"`
	PeakMemoryBytes  int64 `json:"peakMemoryBytes"`
	FinalRows        int64 `json:"finalRows"`
	FinalMemoryBytes int64 `json:"finalMemoryBytes"`
	// RowsUpdated and RowsRemoved sum numRowsUpdated and numRowsRemoved
	// over the batches; LateRowsDropped sums numRowsDroppedByWatermark.
	RowsUpdated     int64 `json:"rowsUpdated"`
	RowsRemoved     int64 `json:"rowsRemoved"`
	LateRowsDropped int64 `json:"lateRowsDropped"`
	// ShareBytes is the state share of the budget (0: no budget);
	// PeakOverShare is PeakMemoryBytes / ShareBytes.
	ShareBytes    int64 `json:"shareBytes"`
	PeakOverShare Num   `json:"peakOverShare"`
	// Failure is the engine's state-memory error, when it stopped the
	// query.
	Failure string `json:"failure,omitempty"`
}

// State sums the state figures of a phase's progress reports.
func State(d PhaseData) StateFigures {
	f := StateFigures{ShareBytes: d.StateShare, Failure: d.StateFailure, PeakOverShare: Num(math.NaN())}
	for _, p := range d.Progress {
		if len(p.StateOperators) == 0 {
			continue
		}
		var rows, mem int64
		for _, so := range p.StateOperators {
			if !slices.Contains(f.Operators, so.OperatorName) {
				f.Operators = append(f.Operators, so.OperatorName)
			}
			rows += so.NumRowsTotal
			mem += so.MemoryUsedBytes
			f.RowsUpdated += so.NumRowsUpdated
			f.RowsRemoved += so.NumRowsRemoved
			f.LateRowsDropped += so.NumRowsDroppedByWatermark
		}
		f.PeakRows, f.PeakMemoryBytes = max(f.PeakRows, rows), max(f.PeakMemoryBytes, mem)
		f.FinalRows, f.FinalMemoryBytes = rows, mem
	}
	if f.ShareBytes > 0 {
		f.PeakOverShare = Num(float64(f.PeakMemoryBytes) / float64(f.ShareBytes))
	}
	return f
}

// Criterion is one rule of the verdict and how the phase fared.
type Criterion struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

// Verdict is a phase's judgement and the figures behind it.
type Verdict struct {
	Stable   bool        `json:"stable"`
	Criteria []Criterion `json:"criteria"`

	// Batches counts the batches that read rows; the durations are
	// theirs, in milliseconds.
	Batches  int   `json:"batches"`
	TargetMs int64 `json:"targetMs"`
	P50Ms    int64 `json:"p50Ms"`
	P95Ms    int64 `json:"p95Ms"`
	MaxMs    int64 `json:"maxMs"`
	// P95OverTarget is P95Ms / TargetMs.
	P95OverTarget Num `json:"p95OverTarget"`

	// PeakLagRecords and PeakLagSeconds are the largest total lag and the
	// largest per-partition time lag sampled; EnginePeakLagRecords the
	// largest lag the engine reported in progress (measured against the
	// offsets known when each batch was planned, so lower).
	PeakLagRecords       int64 `json:"peakLagRecords"`
	PeakLagSeconds       Num   `json:"peakLagSeconds"`
	EnginePeakLagRecords int64 `json:"enginePeakLagRecords"`
	FinalLagRecords      int64 `json:"finalLagRecords"`

	// BacklogAtSpikeEnd is the lag when the spike ended (end offsets
	// interpolated between samples); InFlightAtSpikeEnd
	// the part of it the batch then running had already processed
	// (estimated at the capacity), which the minimum does not count.
	BacklogAtSpikeEnd  int64 `json:"backlogAtSpikeEnd"`
	InFlightAtSpikeEnd int64 `json:"inFlightAtSpikeEnd"`
	DrainThreshold     int64 `json:"drainThreshold"`
	Drained            bool  `json:"drained"`
	// DrainSeconds is the time from the end of the spike until the lag
	// stayed at or below the threshold (NaN: never in the phase).
	DrainSeconds Num `json:"drainSeconds"`
	// MinDrainSeconds is the physical minimum: (backlog − in flight −
	// threshold) ÷ (capacity − arrival rate); DrainRatio is DrainSeconds
	// over it.
	MinDrainSeconds Num `json:"minDrainSeconds"`
	DrainRatio      Num `json:"drainRatio"`
	// CapacityRowsPerSec is the capacity used for the minimum (measured
	// in the unlimited spike phase when there is one);
	// PhaseCapacityRowsPerSec this phase's own: rows per second of batch
	// time over its batches lasting at least half the trigger.
	CapacityRowsPerSec      Num     `json:"capacityRowsPerSec"`
	PhaseCapacityRowsPerSec Num     `json:"phaseCapacityRowsPerSec"`
	ArrivalRowsPerSec       float64 `json:"arrivalRowsPerSec"`

	// PeakRSSBytes is the query process's peak RSS (-1: not measured);
	// MemoryLimitBytes the budget plus sluice.BudgetOverhead (0: no budget).
	PeakRSSBytes      int64 `json:"peakRssBytes"`
	MemoryBudgetBytes int64 `json:"memoryBudgetBytes"`
	MemoryLimitBytes  int64 `json:"memoryLimitBytes"`

	// State holds a stateful phase's state figures (nil otherwise).
	State *StateFigures `json:"state,omitempty"`
}

// Percentile returns the q-quantile (0 < q ≤ 1) of v by the nearest-rank
// method: the smallest value with at least q·n values at or below it.
func Percentile(v []int64, q float64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	rank := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// BatchDurations returns the durations (ms) of the batches that read rows.
func BatchDurations(ps []*progress.Progress) []int64 {
	var out []int64
	for _, p := range ps {
		if p.NumInputRows > 0 {
			out = append(out, p.BatchDuration)
		}
	}
	return out
}

// Capacity is rows per second of batch time over the batches that read
// rows and lasted at least minDur: a batch that short is dominated by its
// fixed cost. NaN when there is none.
func Capacity(ps []*progress.Progress, minDur time.Duration) float64 {
	var rows, ms int64
	for _, p := range ps {
		if p.NumInputRows > 0 && p.BatchDuration > 0 && time.Duration(p.BatchDuration)*time.Millisecond >= minDur {
			rows += p.NumInputRows
			ms += p.BatchDuration
		}
	}
	if ms == 0 {
		return math.NaN()
	}
	return float64(rows) / (float64(ms) / 1000)
}

// FixedCost is the median time of a batch outside its record work
// (triggerExecution − addBatch) over the batches that read rows; 0 when
// unknown.
func FixedCost(ps []*progress.Progress) time.Duration {
	var v []int64
	for _, p := range ps {
		te, ok1 := p.DurationMs[progress.DurTriggerExecution]
		ab, ok2 := p.DurationMs[progress.DurAddBatch]
		if p.NumInputRows > 0 && ok1 && ok2 {
			v = append(v, te-ab)
		}
	}
	return time.Duration(Percentile(v, 0.5)) * time.Millisecond
}

// batchEnd is a committed batch: when it started and ended, its rows and
// its end offsets.
type batchEnd struct {
	start, at time.Time
	rows      int64
	ends      map[int32]int64
}

// committedTimeline returns the batches' end times and end offsets, in
// end-time order.
func committedTimeline(ps []*progress.Progress) []batchEnd {
	var out []batchEnd
	for _, p := range ps {
		start, err := progress.ParseTime(p.Timestamp)
		if err != nil {
			continue
		}
		ends := map[int32]int64{}
		for _, s := range p.Sources {
			for k, v := range sparktext.PartitionOffsets(s.EndOffset) {
				ends[k] = v
			}
		}
		out = append(out, batchEnd{start: start, at: start.Add(time.Duration(p.BatchDuration) * time.Millisecond), rows: p.NumInputRows, ends: ends})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	return out
}

// LagPoint is the lag at one sample.
type LagPoint struct {
	// T is seconds since the phase start.
	T float64
	// Records is the total lag; Committed the committed offsets summed;
	// Ends the end offsets summed.
	Records, Committed, Ends int64
	// Partition lags in records and seconds (age of the oldest
	// unprocessed record), by partition.
	PartRecords map[int32]int64
	PartSeconds map[int32]float64
	// MaxSeconds is the largest partition time lag.
	MaxSeconds float64
}

// Lag computes the lag at every end-offset sample: end offsets minus the
// offsets committed by the batches finished by then, per partition; the
// time lag of a partition is how long ago its oldest unprocessed record
// arrived, interpolated between samples (the topic is empty at Start).
func Lag(d PhaseData) []LagPoint {
	batches := committedTimeline(d.Progress)
	// Per-partition arrival history, starting empty at Start.
	type pt struct {
		t   time.Time
		end int64
	}
	hist := map[int32][]pt{}
	for _, s := range d.Ends {
		for p, e := range s.Ends {
			if _, ok := hist[p]; !ok {
				hist[p] = []pt{{d.Start, 0}}
			}
			hist[p] = append(hist[p], pt{s.Time(), e})
		}
	}
	var out []LagPoint
	committed := map[int32]int64{}
	bi := 0
	for _, s := range d.Ends {
		t := s.Time()
		for bi < len(batches) && !batches[bi].at.After(t) {
			for p, o := range batches[bi].ends {
				committed[p] = o
			}
			bi++
		}
		lp := LagPoint{T: t.Sub(d.Start).Seconds(), PartRecords: map[int32]int64{}, PartSeconds: map[int32]float64{}}
		for p, e := range s.Ends {
			c := committed[p]
			behind := max(0, e-c)
			lp.PartRecords[p] = behind
			lp.Records += behind
			lp.Committed += min(c, e)
			lp.Ends += e
			sec := 0.0
			if behind > 0 {
				h := hist[p]
				// First history point (up to now) whose end passed c.
				j := sort.Search(len(h), func(i int) bool { return h[i].end > c })
				arrived := d.Start
				if j > 0 && j < len(h) {
					a, b := h[j-1], h[j]
					frac := float64(c+1-a.end) / float64(b.end-a.end)
					arrived = a.t.Add(time.Duration(frac * float64(b.t.Sub(a.t))))
				}
				sec = max(0, t.Sub(arrived).Seconds())
			}
			lp.PartSeconds[p] = sec
			lp.MaxSeconds = max(lp.MaxSeconds, sec)
		}
		out = append(out, lp)
	}
	return out
}

// lagAt is the total lag at t: the end offsets interpolated between the
// samples around t, minus the offsets committed by the batches finished by
// t (exact, from their end times).
func lagAt(d PhaseData, t time.Time) int64 {
	var ends map[int32]float64
	for i, s := range d.Ends {
		if s.Time().Before(t) {
			continue
		}
		ends = map[int32]float64{}
		for p, e := range s.Ends {
			ends[p] = float64(e)
			if i > 0 {
				a := d.Ends[i-1]
				if span := s.Time().Sub(a.Time()); span > 0 {
					f := float64(t.Sub(a.Time())) / float64(span)
					ends[p] = float64(a.Ends[p]) + f*float64(e-a.Ends[p])
				}
			}
		}
		break
	}
	if ends == nil { // t after the last sample
		if len(d.Ends) == 0 {
			return 0
		}
		ends = map[int32]float64{}
		for p, e := range d.Ends[len(d.Ends)-1].Ends {
			ends[p] = float64(e)
		}
	}
	committed := map[int32]int64{}
	for _, b := range committedTimeline(d.Progress) {
		if b.at.After(t) {
			break
		}
		for p, o := range b.ends {
			committed[p] = o
		}
	}
	var lag int64
	for p, e := range ends {
		lag += max(0, int64(math.Round(e))-committed[p])
	}
	return lag
}

// Analyze judges a phase. capacity is the query's measured capacity in
// rows per second used for the physical minimum drain time (NaN: use the
// phase's own).
func Analyze(d PhaseData, capacity float64) Verdict {
	v := Verdict{TargetMs: d.Trigger.Milliseconds(), PeakRSSBytes: d.PeakRSS, MemoryBudgetBytes: d.MemoryBudget,
		ArrivalRowsPerSec: d.BaseRate, P95OverTarget: Num(math.NaN()), PeakLagSeconds: 0,
		DrainSeconds: Num(math.NaN()), MinDrainSeconds: Num(math.NaN()), DrainRatio: Num(math.NaN())}
	durs := BatchDurations(d.Progress)
	v.Batches = len(durs)
	v.P50Ms, v.P95Ms = Percentile(durs, 0.5), Percentile(durs, 0.95)
	if len(durs) > 0 {
		v.MaxMs = slices.Max(durs)
	}
	if v.TargetMs > 0 {
		v.P95OverTarget = Num(float64(v.P95Ms) / float64(v.TargetMs))
	}
	for _, p := range d.Progress {
		if p.Sluice != nil && p.Sluice.Lag != nil {
			v.EnginePeakLagRecords = max(v.EnginePeakLagRecords, p.Sluice.Lag.Records)
		}
	}
	v.PhaseCapacityRowsPerSec = Num(Capacity(d.Progress, d.Trigger/2))
	if math.IsNaN(capacity) {
		capacity = float64(v.PhaseCapacityRowsPerSec)
	}
	v.CapacityRowsPerSec = Num(capacity)

	// Lag.
	lag := Lag(d)
	v.DrainThreshold = max(1, int64(math.Ceil(DrainThresholdTriggers*d.BaseRate*d.Trigger.Seconds())))
	spikeEnd := d.SpikeEnd.Sub(d.Start).Seconds()
	var peakSec float64
	drainedFrom := -1 // first index from which the lag stays ≤ threshold
	for i, lp := range lag {
		v.PeakLagRecords = max(v.PeakLagRecords, lp.Records)
		peakSec = max(peakSec, lp.MaxSeconds)
		if lp.Records > v.DrainThreshold {
			drainedFrom = -1
		} else if drainedFrom < 0 {
			drainedFrom = i
		}
	}
	v.PeakLagSeconds = Num(peakSec)
	v.BacklogAtSpikeEnd = lagAt(d, d.SpikeEnd)
	if n := len(lag); n > 0 {
		v.FinalLagRecords = lag[n-1].Records
	}
	if drainedFrom >= 0 {
		v.Drained = true
		v.DrainSeconds = Num(max(0, lag[drainedFrom].T-spikeEnd))
		if v.BacklogAtSpikeEnd <= v.DrainThreshold {
			v.DrainSeconds = 0
		}
	}
	// The batch in flight when the spike ended had already worked through
	// part of the backlog: count it as done at the measured capacity.
	backlog := v.BacklogAtSpikeEnd
	if !math.IsNaN(capacity) {
		for _, b := range committedTimeline(d.Progress) {
			if !b.start.After(d.SpikeEnd) && b.at.After(d.SpikeEnd) {
				done := min(float64(b.rows), capacity*d.SpikeEnd.Sub(b.start).Seconds())
				backlog = max(0, backlog-int64(done))
				v.InFlightAtSpikeEnd = int64(done)
			}
		}
	}
	if excess := backlog - v.DrainThreshold; excess > 0 {
		if room := capacity - d.BaseRate; room > 0 {
			v.MinDrainSeconds = Num(float64(excess) / room)
		} else {
			v.MinDrainSeconds = Num(math.Inf(1))
		}
	} else {
		v.MinDrainSeconds = 0
	}
	if m := float64(v.MinDrainSeconds); m > 0 && !math.IsInf(m, 0) && v.Drained {
		v.DrainRatio = Num(float64(v.DrainSeconds) / m)
	}

	// Memory.
	for _, m := range d.Memory {
		if v.PeakRSSBytes < m.RSS {
			v.PeakRSSBytes = m.RSS
		}
	}
	if d.MemoryBudget > 0 {
		v.MemoryLimitBytes = d.MemoryBudget + sluice.BudgetOverhead
	}

	// Criteria.
	c1 := Criterion{Name: "batch duration"}
	switch {
	case v.Batches == 0:
		c1.Detail = "no batch read any row"
	case v.TargetMs <= 0:
		c1.Detail = "no trigger interval to judge against"
	default:
		c1.Pass = float64(v.P95Ms) <= StableP95Factor*float64(v.TargetMs)
		c1.Detail = fmt.Sprintf("p95 %d ms = %.2f × the %d ms trigger (limit %.1f ×); p50 %d ms, max %d ms over %d batches",
			v.P95Ms, float64(v.P95OverTarget), v.TargetMs, StableP95Factor, v.P50Ms, v.MaxMs, v.Batches)
	}
	c2 := Criterion{Name: "lag drained", Pass: v.Drained}
	switch {
	case len(lag) == 0:
		c2.Pass, c2.Detail = false, "no lag samples"
	case v.Drained:
		when := report.Seconds(float64(v.DrainSeconds)) + " after the spike"
		if !d.SpikeEnd.After(d.Start) {
			when = report.Seconds(lag[drainedFrom].T) + " into the phase"
		}
		c2.Detail = fmt.Sprintf("lag ≤ %s records (%d triggers of arrivals) from %s to the end; peak %s records, %s",
			report.Number(v.DrainThreshold), DrainThresholdTriggers, when,
			report.Number(v.PeakLagRecords), report.Seconds(float64(v.PeakLagSeconds)))
	default:
		c2.Detail = fmt.Sprintf("lag %s records at the end of the phase, above the %s-record threshold; peak %s records, %s",
			report.Number(v.FinalLagRecords), report.Number(v.DrainThreshold), report.Number(v.PeakLagRecords), report.Seconds(float64(v.PeakLagSeconds)))
	}
	c3 := Criterion{Name: "memory", Pass: true}
	switch {
	case d.MemoryBudget <= 0:
		c3.Detail = "no budget set; peak RSS " + report.Bytes(v.PeakRSSBytes)
	case v.PeakRSSBytes < 0:
		c3.Detail = "budget " + report.Bytes(d.MemoryBudget) + ", but memory was not measured"
	default:
		c3.Pass = v.PeakRSSBytes <= v.MemoryLimitBytes
		c3.Detail = fmt.Sprintf("peak RSS %s vs budget %s + %s overhead = %s",
			report.Bytes(v.PeakRSSBytes), report.Bytes(d.MemoryBudget), report.Bytes(sluice.BudgetOverhead), report.Bytes(v.MemoryLimitBytes))
	}
	v.Criteria = []Criterion{c1, c2, c3}
	v.Stable = c1.Pass && c2.Pass && c3.Pass
	if d.Stateful {
		st := State(d)
		v.State = &st
		c4 := stateCriterion(st)
		v.Criteria = append(v.Criteria, c4)
		v.Stable = v.Stable && c4.Pass
	}
	return v
}

// stateCriterion is rule 4.
func stateCriterion(st StateFigures) Criterion {
	c := Criterion{Name: "state memory"}
	figures := fmt.Sprintf("peak %s state rows, %s", report.Number(st.PeakRows), report.Bytes(st.PeakMemoryBytes))
	switch {
	case st.Failure != "":
		c.Detail = "the query stopped on its state memory: " + st.Failure
	case len(st.Operators) == 0:
		c.Detail = "no batch reported a state operator"
	case st.ShareBytes <= 0:
		c.Pass = true
		c.Detail = figures + "; no memory budget, so no state share to judge against"
	default:
		c.Pass = st.PeakMemoryBytes <= st.ShareBytes
		c.Detail = fmt.Sprintf("%s = %s of the state share of the budget (%s)", figures,
			report.Float(100*float64(st.PeakOverShare), 1)+" %", report.Bytes(st.ShareBytes))
	}
	if st.Failure == "" && len(st.Operators) > 0 {
		c.Detail += fmt.Sprintf("; %s late rows dropped by the watermark", report.Number(st.LateRowsDropped))
	}
	return c
}
