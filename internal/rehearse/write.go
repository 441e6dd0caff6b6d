package rehearse

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-stream/sluice"
	"github.com/sluice-stream/sluice/internal/report"
	"github.com/sluice-stream/sluice/progress"
)

// Files of a report directory.
const (
	ReportFile   = "report.md"
	VerdictsFile = "verdicts.json"
	ChartsDir    = "charts"
	// In each phaseN directory:
	ProgressFile = "progress.jsonl" // the query's progress, one batch a line
	OffsetsFile  = "offsets.jsonl"  // sampled broker end offsets
	MemoryFile   = "memory.jsonl"   // sampled query RSS
	LoadFile     = "load.json"      // the load generator's per-second report
	PipelineFile = "pipeline.yaml"  // the phase's query
)

// writeLines writes v's elements as JSON lines.
func writeLines[T any](path string, v []T) error {
	var sb strings.Builder
	for _, x := range v {
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Errorf("rehearse: encode %s: %w", path, err)
		}
		sb.Write(b)
		sb.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("rehearse: %w", err)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("rehearse: encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("rehearse: %w", err)
	}
	return nil
}

// loadJSON is the load generator's report as written to load.json.
type loadJSON struct {
	AskedRecords    int64        `json:"askedRecords"`
	AckedRecords    int64        `json:"ackedRecords"`
	SkippedRecords  int64        `json:"skippedRecords"`
	DurationMs      int64        `json:"durationMs"`
	PartitionCounts []int64      `json:"partitionCounts"`
	Seconds         []loadSecond `json:"seconds"`
}

type loadSecond struct {
	Second  int   `json:"second"`
	Asked   int64 `json:"asked"`
	Acked   int64 `json:"acked"`
	Behind  int64 `json:"behind"`
	Skipped int64 `json:"skipped"`
}

func writePhaseData(dir string, ph *Phase) error {
	d := ph.Data
	if err := writeLines(filepath.Join(dir, OffsetsFile), d.Ends); err != nil {
		return err
	}
	if err := writeLines(filepath.Join(dir, MemoryFile), d.Memory); err != nil {
		return err
	}
	lj := loadJSON{AskedRecords: ph.Load.Asked, AckedRecords: ph.Load.Acked, SkippedRecords: ph.Load.Skipped,
		DurationMs: ph.Load.Duration.Milliseconds(), PartitionCounts: ph.Load.PartitionCounts}
	for _, s := range ph.Load.Seconds {
		lj.Seconds = append(lj.Seconds, loadSecond{Second: s.Index, Asked: s.Asked, Acked: s.Acked, Behind: s.Behind, Skipped: s.Skipped})
	}
	return writeJSON(filepath.Join(dir, LoadFile), lj)
}

// verdictsJSON is verdicts.json.
type verdictsJSON struct {
	Profile        string   `json:"profile"`
	FinalStable    bool     `json:"finalStable"`
	CapacityPerSec Num      `json:"capacityRowsPerSec"`
	Phases         []*Phase `json:"phases"`
}

// WriteReport writes report.md, verdicts.json and the charts of res into
// dir (the phases' raw data is already there).
func WriteReport(dir string, res *Result) error {
	charts := filepath.Join(dir, ChartsDir)
	if err := os.MkdirAll(charts, 0o755); err != nil {
		return fmt.Errorf("rehearse: %w", err)
	}
	final := res.Final()
	if err := writeJSON(filepath.Join(dir, VerdictsFile), verdictsJSON{
		Profile: res.Profile.Name, FinalStable: final != nil && final.Verdict.Stable,
		CapacityPerSec: Num(res.Capacity), Phases: res.Phases,
	}); err != nil {
		return err
	}
	var doc report.Doc
	doc.Heading(1, "sluice rehearsal report")
	word := "not stable"
	if final != nil && final.Verdict.Stable {
		word = "stable"
	}
	if final != nil {
		doc.Para("**Final phase (%d, %s): %s.**", final.Spec.N, final.Spec.Title, word)
	}
	host, _ := os.Hostname()
	doc.Bullets(
		"Date: "+res.Started.UTC().Format(time.RFC3339)+", took "+res.Took.Round(time.Second).String(),
		fmt.Sprintf("Machine: %s, %s/%s, %d CPUs, %s", host, runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
		"Query: "+res.Query.Origin,
		"Broker: "+res.Broker,
		"Runner: "+res.Runner,
		profileLine(res.Profile),
	)
	for _, ph := range res.Phases {
		if ph.Spec.Stateful {
			doc.Para("Phase %d's query: %s (`phase%d/%s`).", ph.Spec.N, StatefulQuery(ph.Spec.Window, ph.Spec.WatermarkDelay, nil).Origin, ph.Spec.N, PipelineFile)
		}
	}
	if len(res.Query.Dropped) > 0 {
		doc.Para("Not used from the pipeline file: %s.", strings.Join(res.Query.Dropped, ", "))
	}

	doc.Heading(2, "Summary")
	t := &report.Table{Header: []string{"phase", "settings", "batches", "p50", "p95", "p95 ÷ trigger", "peak lag", "peak lag (s)",
		"drain", "min drain", "drain ÷ min", "peak RSS", "verdict"}, Right: []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}
	for _, ph := range res.Phases {
		v := ph.Verdict
		verdict := "**stable**"
		if !v.Stable {
			verdict = "**unstable**: " + failed(v)
		}
		t.AddRow(fmt.Sprintf("%d %s", ph.Spec.N, ph.Spec.Name), ph.Spec.Settings(), fmt.Sprint(v.Batches),
			ms(v.P50Ms), ms(v.P95Ms), report.Float(float64(v.P95OverTarget), 2), report.Number(v.PeakLagRecords),
			report.Float(float64(v.PeakLagSeconds), 1), drainText(v), report.Seconds(float64(v.MinDrainSeconds)),
			report.Float(float64(v.DrainRatio), 2), report.Bytes(v.PeakRSSBytes), verdict)
	}
	doc.Table(t)
	for _, ph := range res.Phases {
		if st := ph.Verdict.State; st != nil {
			doc.Para("Phase %d state (%s): %s.", ph.Spec.N, strings.Join(st.Operators, ", "), stateText(*st))
		}
	}
	if slices.ContainsFunc(res.Phases, func(ph *Phase) bool { return !ph.Spec.Stateful }) {
		doc.Para("Capacity of the query: %s rows/s, measured as rows per second of batch time over the batches of the unlimited spike phase lasting at least half the trigger (their fixed cost is amortised best).",
			capText(res.Capacity))
	}

	doc.Heading(2, "How phases are judged")
	doc.Para("A phase is **stable** when all three hold (four for the stateful phase), computed from the measurements only (never from the phase's name):")
	doc.Bullets(
		fmt.Sprintf("**batch duration**: the 95th percentile (nearest rank) of the durations of the batches that read rows is at most %.1f × the trigger interval;", StableP95Factor),
		fmt.Sprintf("**lag drained**: from some moment after the spike until the end of the phase, the lag — broker end offsets minus the offsets committed by finished batches, summed over partitions, sampled every %s — stays at or below what arrives at the base rate in %d trigger intervals;", SampleEvery, DrainThresholdTriggers),
		fmt.Sprintf("**memory**: with a memory budget, the query process's peak resident set is at most the budget plus %s of runtime overhead (sluice.BudgetOverhead);", report.Bytes(sluice.BudgetOverhead)),
		"**state memory** (stateful phase only): the query was not stopped by its state memory, its progress reports state operators, and the largest `memoryUsedBytes` of a batch (`stateOperators`, summed over operators) is within the state share of the budget (half of it).",
	)
	doc.Para("Drain time runs from the end of the spike until the lag stays under the threshold. Its physical minimum is (backlog at the end of the spike − the part of it the batch then running had already processed, at the measured capacity − threshold) ÷ (capacity − base arrival rate): what a query working flat out at its measured capacity would need. Lag in seconds is the age of a partition's oldest unprocessed record, from the sampled end offsets.")

	doc.Heading(2, "Advice")
	doc.Bullets(advice(res)...)

	if c, err := overviewCharts(charts, res); err != nil {
		return err
	} else if len(c) > 0 {
		doc.Heading(2, "All phases")
		for _, x := range c {
			doc.Image(x[0], x[1], x[2])
		}
	}
	for _, ph := range res.Phases {
		if err := phaseSection(&doc, charts, res, ph); err != nil {
			return err
		}
	}
	doc.Heading(2, "Files")
	doc.Bullets(
		"`"+VerdictsFile+"`: every phase's settings, verdict and figures (machine-readable)",
		"`phaseN/"+ProgressFile+"`: the query's progress reports, one batch a line (Spark's StreamingQueryProgress JSON with the `sluice` key)",
		"`phaseN/"+OffsetsFile+"`: the broker's end offsets per partition, sampled every "+SampleEvery.String()+" (`t` in Unix ms)",
		"`phaseN/"+MemoryFile+"`: the query process's resident set, sampled with the offsets",
		"`phaseN/"+LoadFile+"`: the load generator's per-second report",
		"`phaseN/"+PipelineFile+"`: the phase's query as a pipeline file (`sluice run` it to reproduce)",
		"`"+ChartsDir+"/`: the charts, PNG and SVG",
	)
	return doc.WriteFile(filepath.Join(dir, ReportFile))
}

func profileLine(p Profile) string {
	return fmt.Sprintf("Profile %q: %d partitions, %d workers, trigger %s; base %s rows/s, spike ×%g at %s for %s, then %s; baseline %s; sink cost %s/row (sluice.sink.delayPerRow); records ≥ %d B; phase 4 budget %s; phase 5 budget %s, window %s, watermark delay %s",
		p.Name, p.Partitions, p.Workers, p.Trigger, report.Number(int64(p.BaseRate)), p.SpikeFactor, p.Warmup, p.SpikeFor, p.After,
		p.Baseline, p.SinkDelayPerRow, p.RecordBytes, report.Bytes(p.MemoryBudget), report.Bytes(p.StatefulBudget), p.Window, p.WatermarkDelay)
}

// stateText sums up a stateful phase's state figures in a sentence.
func stateText(st StateFigures) string {
	s := fmt.Sprintf("peak %s rows and %s of state memory", report.Number(st.PeakRows), report.Bytes(st.PeakMemoryBytes))
	if st.ShareBytes > 0 {
		s += fmt.Sprintf(" (%s %% of its %s share of the budget)", report.Float(100*float64(st.PeakOverShare), 1), report.Bytes(st.ShareBytes))
	}
	s += fmt.Sprintf(", %s rows and %s at the end; %s late rows dropped by the watermark", report.Number(st.FinalRows),
		report.Bytes(st.FinalMemoryBytes), report.Number(st.LateRowsDropped))
	if st.Failure != "" {
		s += "; the query stopped on its state memory: " + st.Failure
	}
	return s
}

func capText(c float64) string {
	if math.IsNaN(c) {
		return "not measured"
	}
	return report.Number(int64(math.Round(c)))
}

func ms(v int64) string { return report.Number(v) + " ms" }

func drainText(v Verdict) string {
	if !v.Drained {
		return "not drained"
	}
	return report.Seconds(float64(v.DrainSeconds))
}

func failed(v Verdict) string {
	var names []string
	for _, c := range v.Criteria {
		if !c.Pass {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ", ")
}

// advice turns the measurements into recommendations with numbers.
func advice(res *Result) []string {
	var out []string
	p := res.Profile
	spike := p.BaseRate * p.SpikeFactor
	byN := map[int]*Phase{}
	for _, ph := range res.Phases {
		byN[ph.Spec.N] = ph
	}
	if c := res.Capacity; !math.IsNaN(c) {
		if spike > c {
			out = append(out, fmt.Sprintf("The spike (%s rows/s) is %.1f × the query's capacity (%s rows/s): a backlog during the spike is unavoidable; what matters is that batches stay bounded and the backlog drains afterwards.",
				report.Number(int64(spike)), spike/c, report.Number(int64(c))))
		} else {
			out = append(out, fmt.Sprintf("The query's capacity (%s rows/s) covers the spike (%s rows/s); a read limit only matters for bigger spikes or restarts after downtime.",
				report.Number(int64(c)), report.Number(int64(spike))))
		}
		l := int64(math.Round(p.Headroom * c * p.Trigger.Seconds()))
		out = append(out, fmt.Sprintf("For a %s trigger set maxOffsetsPerTrigger ≈ %.0f %% of capacity × trigger = %s, so that a full batch takes about %.0f %% of the interval.",
			p.Trigger, 100*p.Headroom, report.Number(l), 100*p.Headroom))
		if room := c - p.BaseRate; room > 0 {
			left := max(0, spike-c) * p.SpikeFor.Seconds()
			out = append(out, fmt.Sprintf("At the base rate a backlog drains at %s rows/s at best: a %s spike of this size leaves at least %s rows, which need at least %s to drain.",
				report.Number(int64(room)), p.SpikeFor, report.Number(int64(left)), report.Seconds(left/room)))
		} else {
			out = append(out, "The base rate alone reaches the capacity: no backlog can ever drain. Add partitions and workers, or make the sink cheaper.")
		}
	}
	if ph := byN[2]; ph != nil && !ph.Verdict.Stable {
		out = append(out, fmt.Sprintf("Without a read limit the batch after the spike swallowed the backlog: p95 batch %s against a %s trigger. This is the seed's symptom; do not run without a limit.",
			ms(ph.Verdict.P95Ms), ph.Spec.Trigger))
	}
	if ph := byN[3]; ph != nil {
		v := ph.Verdict
		if v.Stable {
			out = append(out, fmt.Sprintf("maxOffsetsPerTrigger %s kept batches bounded (p95 %s) and drained the backlog in %s (%s × the minimum; a static limit below capacity drains slower by design).",
				report.Number(ph.Spec.MaxOffsetsPerTrigger), ms(v.P95Ms), report.Seconds(float64(v.DrainSeconds)), report.Float(float64(v.DrainRatio), 2)))
		} else {
			out = append(out, fmt.Sprintf("maxOffsetsPerTrigger %s was not enough: %s. Lower it if batches overran, raise it (or the capacity) if the lag did not drain.",
				report.Number(ph.Spec.MaxOffsetsPerTrigger), failed(v)))
		}
	}
	if ph := byN[4]; ph != nil {
		v := ph.Verdict
		if v.Stable {
			out = append(out, fmt.Sprintf("Adaptive admission with a %s memory budget was stable: p95 batch %s, drained in %s (%s × the minimum), peak RSS %s. Prefer it to a static limit: it follows the measured cost.",
				report.Bytes(ph.Spec.MemoryBudget), ms(v.P95Ms), report.Seconds(float64(v.DrainSeconds)), report.Float(float64(v.DrainRatio), 2), report.Bytes(v.PeakRSSBytes)))
		} else {
			out = append(out, fmt.Sprintf("Adaptive admission with a memory budget was not stable (%s). See the phase's criteria below for the figures.", failed(v)))
		}
		if m := memoryAdvice(res, ph); m != "" {
			out = append(out, m)
		}
		if r := float64(v.DrainRatio); !math.IsNaN(r) && r > 1.15 {
			out = append(out, fmt.Sprintf("Phase 4 drained in %s × the physical minimum (target ≤ 1.15): the fixed cost of each batch and the wait for the next trigger boundary are the difference; a longer trigger amortises them.", report.Float(r, 2)))
		}
	}
	if ph := byN[StatefulPhase]; ph != nil && ph.Verdict.State != nil {
		v, st := ph.Verdict, ph.Verdict.State
		switch {
		case st.Failure != "":
			out = append(out, "The stateful query stopped when its state passed its share of the memory budget. Shorten the watermark delay or the window so old windows leave the state sooner, raise sluice.memory.budget, or use the disk state store (spark.sql.streaming.stateStore.providerClass=disk).")
		case v.Stable:
			out = append(out, fmt.Sprintf("The windowed count was stable under the spike: p95 batch %s, state peaked at %s (%s %% of its share) with %s late rows dropped.",
				ms(v.P95Ms), report.Bytes(st.PeakMemoryBytes), report.Float(100*float64(st.PeakOverShare), 1), report.Number(st.LateRowsDropped)))
		default:
			out = append(out, fmt.Sprintf("The windowed count was not stable under the spike (%s). See phase %d's criteria below.", failed(v), ph.Spec.N))
		}
		if st.LateRowsDropped > 0 {
			out = append(out, fmt.Sprintf("%s rows arrived after the watermark had passed their window and were dropped: a partition read behind the others under the backlog. A longer watermark delay (now %s) keeps them, at the cost of state held longer.",
				report.Number(st.LateRowsDropped), ph.Spec.WatermarkDelay))
		}
	}
	if len(out) == 0 {
		out = append(out, "Nothing measured to advise on.")
	}
	return out
}

// memoryAdvice explains a memory failure with the measured memory per row:
// the budget counts the bytes read, while the process also holds their
// decoded copies and the garbage collector's headroom.
func memoryAdvice(res *Result, ph *Phase) string {
	v := ph.Verdict
	if len(v.Criteria) < 3 || v.Criteria[2].Pass || v.PeakRSSBytes < 0 {
		return ""
	}
	base := int64(-1)
	for _, p := range res.Phases {
		if p.Spec.N == 1 && p.Verdict.PeakRSSBytes > 0 {
			base = p.Verdict.PeakRSSBytes
		}
	}
	var rows, inBytes int64
	for _, p := range ph.Data.Progress {
		if p.NumInputRows > rows {
			rows = p.NumInputRows
			if p.Sluice != nil && p.Sluice.Throughput != nil {
				inBytes = p.Sluice.Throughput.NumInputBytes
			}
		}
	}
	if base < 0 || rows == 0 {
		return fmt.Sprintf("Peak RSS %s exceeded the budget plus overhead (%s). Raise sluice.memory.budget or lower the target batch duration.",
			report.Bytes(v.PeakRSSBytes), report.Bytes(v.MemoryLimitBytes))
	}
	perRow := float64(v.PeakRSSBytes-base) / float64(rows)
	s := fmt.Sprintf("Peak RSS %s exceeded the budget plus overhead (%s): the largest batch held %s rows, and the process grew by about %s per row above the baseline phase's %s",
		report.Bytes(v.PeakRSSBytes), report.Bytes(v.MemoryLimitBytes), report.Number(rows), report.Bytes(int64(perRow)), report.Bytes(base))
	if inBytes > 0 {
		s += fmt.Sprintf(" — %.1f × the %s per row read from Kafka, which is what the budget counts", perRow/(float64(inBytes)/float64(rows)), report.Bytes(inBytes/rows))
	}
	fit := int64(float64(v.MemoryLimitBytes-base) / perRow)
	return s + fmt.Sprintf(". Batches of at most about %s rows fit: lower the target batch duration (or maxOffsetsPerTrigger) to that, or raise the budget.", report.Number(max(fit, 1)))
}

// phaseSection writes a phase's section with its charts.
func phaseSection(doc *report.Doc, charts string, res *Result, ph *Phase) error {
	v := ph.Verdict
	word := "stable"
	if !v.Stable {
		word = "unstable"
	}
	doc.Heading(2, "Phase %d: %s — %s", ph.Spec.N, ph.Spec.Title, word)
	doc.Para("Settings: %s. Load: %s for %s%s.", ph.Spec.Settings(), loadText(res.Profile, ph.Spec), ph.Spec.Duration, spikeText(res.Profile, ph.Spec))
	if len(ph.Spec.Notes) > 0 {
		doc.Bullets(ph.Spec.Notes...)
	}
	t := &report.Table{Header: []string{"criterion", "result", "figures"}}
	for _, c := range v.Criteria {
		r := "pass"
		if !c.Pass {
			r = "**fail**"
		}
		t.AddRow(c.Name, r, c.Detail)
	}
	doc.Table(t)
	f := &report.Table{Header: []string{"figure", "value"}, Right: []int{1}}
	f.AddRow("batches that read rows", fmt.Sprint(v.Batches)).
		AddRow("batch duration p50 / p95 / max", ms(v.P50Ms)+" / "+ms(v.P95Ms)+" / "+ms(v.MaxMs)).
		AddRow("trigger (target)", ms(v.TargetMs)).
		AddRow("peak lag (records, sampled)", report.Number(v.PeakLagRecords)).
		AddRow("peak lag reported by the engine (records)", report.Number(v.EnginePeakLagRecords)).
		AddRow("peak lag (seconds, worst partition)", report.Seconds(float64(v.PeakLagSeconds))).
		AddRow("backlog when the spike ended", report.Number(v.BacklogAtSpikeEnd)).
		AddRow("of which processed by the batch in flight (est.)", report.Number(v.InFlightAtSpikeEnd)).
		AddRow("drain threshold (records)", report.Number(v.DrainThreshold)).
		AddRow("time to drain", drainText(v)).
		AddRow("physical minimum", report.Seconds(float64(v.MinDrainSeconds))).
		AddRow("drain ÷ minimum", report.Float(float64(v.DrainRatio), 2)).
		AddRow("capacity used (rows/s)", capText(float64(v.CapacityRowsPerSec))).
		AddRow("this phase's capacity (rows/s)", capText(float64(v.PhaseCapacityRowsPerSec))).
		AddRow("peak RSS", report.Bytes(v.PeakRSSBytes))
	if v.MemoryBudgetBytes > 0 {
		f.AddRow("memory budget / limit", report.Bytes(v.MemoryBudgetBytes)+" / "+report.Bytes(v.MemoryLimitBytes))
	}
	if st := v.State; st != nil {
		f.AddRow("state operators", strings.Join(st.Operators, ", ")).
			AddRow("state rows, peak / at the end", report.Number(st.PeakRows)+" / "+report.Number(st.FinalRows)).
			AddRow("state memory (memoryUsedBytes), peak / at the end", report.Bytes(st.PeakMemoryBytes)+" / "+report.Bytes(st.FinalMemoryBytes))
		if st.ShareBytes > 0 {
			f.AddRow("state share of the budget", report.Bytes(st.ShareBytes)+" (peak "+report.Float(100*float64(st.PeakOverShare), 1)+" %)")
		}
		f.AddRow("state rows updated / removed", report.Number(st.RowsUpdated)+" / "+report.Number(st.RowsRemoved)).
			AddRow("late rows dropped by the watermark", report.Number(st.LateRowsDropped))
		if st.Failure != "" {
			f.AddRow("state-memory failure", st.Failure)
		}
	}
	doc.Table(f)
	cs, err := phaseCharts(charts, res.Profile, ph)
	if err != nil {
		return err
	}
	for _, c := range cs {
		doc.Image(c[0], c[1], c[2])
	}
	doc.Para("Raw data: `phase%d/`.", ph.Spec.N)
	return nil
}

func loadText(p Profile, s PhaseSpec) string {
	if !s.Spike {
		return fmt.Sprintf("steady %s rows/s", report.Number(int64(p.BaseRate)))
	}
	return fmt.Sprintf("%s rows/s, ×%g (%s rows/s) from %s for %s", report.Number(int64(p.BaseRate)), p.SpikeFactor,
		report.Number(int64(p.BaseRate*p.SpikeFactor)), p.Warmup, p.SpikeFor)
}

func spikeText(p Profile, s PhaseSpec) string {
	if !s.Spike {
		return ""
	}
	return fmt.Sprintf(" (the spike ends at %s)", p.Warmup+p.SpikeFor)
}

// chartRef is alt text and the PNG and SVG paths relative to the report.
type chartRef [3]string

func save(c *report.Chart, charts, base, alt string) (*chartRef, error) {
	_, _, err := c.Save(charts, base)
	if errors.Is(err, report.ErrEmpty) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &chartRef{alt, ChartsDir + "/" + base + ".png", ChartsDir + "/" + base + ".svg"}, nil
}

// rateSeries is the rate of a cumulative count over a trailing window.
func rateSeries(t []float64, cum []int64, window float64) ([]float64, []float64) {
	var xs, ys []float64
	j := 0
	for i := range t {
		for j < i && t[i]-t[j+1] >= window {
			j++
		}
		if i == j || t[i]-t[j] <= 0 {
			continue
		}
		xs = append(xs, (t[i]+t[j])/2) // centred on the window
		ys = append(ys, float64(cum[i]-cum[j])/(t[i]-t[j]))
	}
	return xs, ys
}

// shownPartitions picks the partitions to draw: all up to 12, else the 8
// with the highest peak lag.
func shownPartitions(lag []LagPoint) []int32 {
	peak := map[int32]int64{}
	for _, lp := range lag {
		for p, r := range lp.PartRecords {
			peak[p] = max(peak[p], r)
		}
	}
	parts := make([]int32, 0, len(peak))
	for p := range peak {
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	if len(parts) > 12 {
		sort.SliceStable(parts, func(i, j int) bool { return peak[parts[i]] > peak[parts[j]] })
		parts = parts[:8]
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	}
	return parts
}

// askedSeries is the load profile of a phase as a staircase.
func askedSeries(p Profile, s PhaseSpec) ([]float64, []float64) {
	end := s.Duration.Seconds()
	if !s.Spike {
		return []float64{0, end}, []float64{p.BaseRate, p.BaseRate}
	}
	a, b := p.Warmup.Seconds(), (p.Warmup + p.SpikeFor).Seconds()
	return []float64{0, a, b, end}, []float64{p.BaseRate, p.BaseRate * p.SpikeFactor, p.BaseRate, p.BaseRate}
}

func phaseCharts(charts string, p Profile, ph *Phase) ([]chartRef, error) {
	d := ph.Data
	n := ph.Spec.N
	var refs []chartRef
	add := func(c *report.Chart, base, alt string) error {
		r, err := save(c, charts, base, alt)
		if r != nil {
			refs = append(refs, *r)
		}
		return err
	}
	lag := Lag(d)
	var ts []float64
	var ends, committed []int64
	for _, lp := range lag {
		ts = append(ts, lp.T)
		ends = append(ends, lp.Ends)
		committed = append(committed, lp.Committed)
	}

	// Rates.
	rc := report.NewChart(fmt.Sprintf("Phase %d: input vs processed rate", n), "seconds since the load started", "records per second")
	ax, ay := askedSeries(p, ph.Spec)
	rc.Add(report.Series{Name: "asked (profile)", X: ax, Y: ay, Step: true, Dashed: true, Color: report.Grey})
	ix, iy := rateSeries(ts, ends, 1)
	rc.Add(report.Series{Name: "input (broker end offsets, 1 s window)", X: ix, Y: iy})
	px, py := rateSeries(ts, committed, 1)
	rc.Add(report.Series{Name: "processed (committed offsets, 1 s window)", X: px, Y: py})
	if err := add(rc, fmt.Sprintf("phase%d-rates", n), fmt.Sprintf("phase %d input vs processed rate", n)); err != nil {
		return nil, err
	}

	// Batch durations.
	bc := report.NewChart(fmt.Sprintf("Phase %d: batch duration vs trigger", n), "seconds since the load started (batch start)", "batch duration (s)")
	var bx, by []float64
	for _, p := range d.Progress {
		if p.NumInputRows <= 0 {
			continue
		}
		if st, err := progress.ParseTime(p.Timestamp); err == nil {
			bx = append(bx, st.Sub(d.Start).Seconds())
			by = append(by, float64(p.BatchDuration)/1000)
		}
	}
	bc.Add(report.Series{Name: "batch duration", X: bx, Y: by, Points: true})
	bc.AddHLine(report.HLine{Name: "trigger " + d.Trigger.String(), Y: d.Trigger.Seconds(), Dashed: true})
	bc.AddHLine(report.HLine{Name: fmt.Sprintf("stability limit (%.1f × trigger)", StableP95Factor), Y: StableP95Factor * d.Trigger.Seconds(), Dashed: true, Color: report.Red})
	if err := add(bc, fmt.Sprintf("phase%d-batches", n), fmt.Sprintf("phase %d batch duration", n)); err != nil {
		return nil, err
	}

	// Lag per partition, records and seconds.
	parts := shownPartitions(lag)
	lr := report.NewChart(fmt.Sprintf("Phase %d: lag per partition (records)", n), "seconds since the load started", "records behind")
	ls := report.NewChart(fmt.Sprintf("Phase %d: lag per partition (seconds)", n), "seconds since the load started", "age of oldest unprocessed record (s)")
	for _, p := range parts {
		var y1, y2 []float64
		for _, lp := range lag {
			y1 = append(y1, float64(lp.PartRecords[p]))
			y2 = append(y2, lp.PartSeconds[p])
		}
		lr.Add(report.Series{Name: fmt.Sprintf("p%d", p), X: ts, Y: y1})
		ls.Add(report.Series{Name: fmt.Sprintf("p%d", p), X: ts, Y: y2})
	}
	var total []float64
	for _, lp := range lag {
		total = append(total, float64(lp.Records))
	}
	lr.Add(report.Series{Name: "total", X: ts, Y: total, Color: report.Palette[7]})
	lr.AddHLine(report.HLine{Name: "drain threshold (total)", Y: float64(ph.Verdict.DrainThreshold), Dashed: true})
	if err := add(lr, fmt.Sprintf("phase%d-lag-records", n), fmt.Sprintf("phase %d lag in records per partition", n)); err != nil {
		return nil, err
	}
	if err := add(ls, fmt.Sprintf("phase%d-lag-seconds", n), fmt.Sprintf("phase %d lag in seconds per partition", n)); err != nil {
		return nil, err
	}

	// State.
	if ph.Spec.Stateful {
		sc := report.NewChart(fmt.Sprintf("Phase %d: state memory vs its share of the budget", n), "seconds since the load started (batch start)", "state memory (MiB)")
		var sx, sy []float64
		for _, p := range d.Progress {
			st, err := progress.ParseTime(p.Timestamp)
			if err != nil || len(p.StateOperators) == 0 {
				continue
			}
			var mem int64
			for _, so := range p.StateOperators {
				mem += so.MemoryUsedBytes
			}
			sx = append(sx, st.Sub(d.Start).Seconds())
			sy = append(sy, float64(mem)/(1<<20))
		}
		sc.Add(report.Series{Name: "memoryUsedBytes", X: sx, Y: sy})
		if d.StateShare > 0 {
			sc.AddHLine(report.HLine{Name: "state share of the budget", Y: float64(d.StateShare) / (1 << 20), Dashed: true, Color: report.Red})
		}
		if err := add(sc, fmt.Sprintf("phase%d-state", n), fmt.Sprintf("phase %d state memory", n)); err != nil {
			return nil, err
		}
	}

	// Memory.
	if len(d.Memory) > 0 {
		mc := report.NewChart(fmt.Sprintf("Phase %d: query process memory", n), "seconds since the load started", "resident set (MiB)")
		var mx, my []float64
		for _, m := range d.Memory {
			mx = append(mx, time.UnixMilli(m.UnixMs).Sub(d.Start).Seconds())
			my = append(my, float64(m.RSS)/(1<<20))
		}
		mc.Add(report.Series{Name: "RSS", X: mx, Y: my})
		if d.MemoryBudget > 0 {
			mc.AddHLine(report.HLine{Name: "budget", Y: float64(d.MemoryBudget) / (1 << 20), Dashed: true})
			mc.AddHLine(report.HLine{Name: "budget + overhead", Y: float64(d.MemoryBudget+sluice.BudgetOverhead) / (1 << 20), Dashed: true, Color: report.Red})
		}
		if err := add(mc, fmt.Sprintf("phase%d-memory", n), fmt.Sprintf("phase %d memory", n)); err != nil {
			return nil, err
		}
	}
	return refs, nil
}

func overviewCharts(charts string, res *Result) ([]chartRef, error) {
	bc := report.NewChart("Batch duration ÷ trigger, all phases", "seconds since the load started (batch start)", "batch duration ÷ trigger")
	lc := report.NewChart("Total lag, all phases", "seconds since the load started", "records behind")
	for _, ph := range res.Phases {
		d := ph.Data
		var x, y []float64
		for _, p := range d.Progress {
			if st, err := progress.ParseTime(p.Timestamp); err == nil && p.NumInputRows > 0 {
				x = append(x, st.Sub(d.Start).Seconds())
				y = append(y, float64(p.BatchDuration)/float64(d.Trigger.Milliseconds()))
			}
		}
		name := fmt.Sprintf("%d %s", ph.Spec.N, ph.Spec.Name)
		bc.Add(report.Series{Name: name, X: x, Y: y, Points: true})
		var lx, ly []float64
		for _, lp := range Lag(d) {
			lx = append(lx, lp.T)
			ly = append(ly, float64(lp.Records))
		}
		lc.Add(report.Series{Name: name, X: lx, Y: ly})
	}
	bc.AddHLine(report.HLine{Name: fmt.Sprintf("stability limit (%.1f)", StableP95Factor), Y: StableP95Factor, Dashed: true, Color: report.Red})
	var refs []chartRef
	for _, c := range []struct {
		c         *report.Chart
		base, alt string
	}{{bc, "overview-batches", "batch duration over trigger, all phases"}, {lc, "overview-lag", "total lag, all phases"}} {
		r, err := save(c.c, charts, c.base, c.alt)
		if err != nil {
			return nil, err
		}
		if r != nil {
			refs = append(refs, *r)
		}
	}
	return refs, nil
}
