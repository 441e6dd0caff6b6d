package bench

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/internal/report"
)

// The project's targets (issue 16). Ratios are against the baseline
// measured in the same run.
const (
	// TargetThroughput: sluice's drain rate with the default trigger over
	// raw franz-go's.
	TargetThroughput = 0.95
	// TargetMaxOffsets: the same with maxOffsetsPerTrigger (small batches
	// should cost about what large ones do).
	TargetMaxOffsets = 0.85
	// TargetManyPartitions: sluice on many partitions over raw franz-go on
	// the same partitions.
	TargetManyPartitions = 0.90
	// TargetP99AtHalf and TargetP99Light: p99 end-to-end latency (ms) at
	// 50 % of capacity and at the light rate (10,000 records/s).
	TargetP99AtHalf = 50
	TargetP99Light  = 10
	// TargetIdlePercent: an idle query's CPU, % of a core.
	TargetIdlePercent = 0.1
	// TargetCPURatio: CPU per million records over raw franz-go's.
	TargetCPURatio = 1.1
	// MemoryHeadroom: peak RSS under a budget may exceed the budget by
	// this much (an idle query is about 28 MiB of it).
	MemoryHeadroom = 40 << 20
	// TargetStateful: a 10-second window count per key (10,000 keys) over
	// the stateless seed query on the same records (issue 12).
	TargetStateful = 0.5
	// TargetScaleout2: group mode's records/s with 2 member processes
	// (one core each) over 1 member's (issue 13).
	TargetScaleout2 = 1.8
)

// Targets compares the figures with the project's targets.
func Targets(r *Result) []Target {
	var t []Target
	if r.RawRecordsPerSec > 0 {
		t = append(t, Target{"throughput ratio, default trigger", r.Ratio, fmt.Sprintf("≥ %.2f", TargetThroughput), r.Ratio >= TargetThroughput})
	}
	if m := r.MaxOffsets; m != nil {
		t = append(t, Target{fmt.Sprintf("throughput ratio, maxOffsetsPerTrigger=%d", m.MaxOffsetsPerTrigger), m.Ratio, fmt.Sprintf("≥ %.2f", TargetMaxOffsets), m.Ratio >= TargetMaxOffsets})
	}
	if p := r.ManyPartitions; p != nil {
		t = append(t, Target{fmt.Sprintf("%d partitions vs raw franz-go on %d", p.Many, p.Many), p.RawRatio, fmt.Sprintf("≥ %.2f", TargetManyPartitions), p.RawRatio >= TargetManyPartitions})
	}
	for _, l := range r.Latency {
		switch {
		case l.AsyncProgress: // an opt-in's figure, beside the default's
		case strings.HasPrefix(l.Label, "at 50"):
			t = append(t, Target{"p99 latency at 50 % load (ms)", l.P99Ms, fmt.Sprintf("≤ %d", TargetP99AtHalf), l.P99Ms <= TargetP99AtHalf})
		case l.Label == "light load":
			t = append(t, Target{fmt.Sprintf("p99 latency at %.0f/s (ms)", l.AskedPerSec), l.P99Ms, fmt.Sprintf("≤ %d", TargetP99Light), l.P99Ms <= TargetP99Light})
		}
	}
	if c := r.CPU; c != nil {
		t = append(t, Target{"CPU per million records vs raw franz-go", c.Ratio, fmt.Sprintf("≤ %.1f", TargetCPURatio), c.Ratio <= TargetCPURatio})
	}
	if i := r.Idle; i != nil {
		t = append(t, Target{"idle CPU (% of a core)", i.PercentOfCore, fmt.Sprintf("≤ %.1f", TargetIdlePercent), i.PercentOfCore <= TargetIdlePercent})
	}
	if m := r.Memory; m != nil {
		t = append(t, Target{"peak RSS with budget (MiB)", float64(m.PeakWithBudget) / (1 << 20),
			fmt.Sprintf("≤ %.0f (budget + %d MiB)", float64(m.LimitBytes)/(1<<20), MemoryHeadroom>>20), m.WithinBudgetPlus})
	}
	if s := r.Stateful; s != nil {
		t = append(t, Target{"stateful window count vs stateless query", s.Ratio, fmt.Sprintf("≥ %.1f", TargetStateful), s.Ratio >= TargetStateful})
	}
	if s := r.Scaleout; s != nil {
		for _, row := range s.Rows {
			if row.Members == 2 {
				t = append(t, Target{"scale-out, 2 members vs 1", row.Ratio, fmt.Sprintf("≥ %.1f", s.Target), row.Ratio >= s.Target})
			}
		}
	}
	return t
}

// Table renders the result as a table; the target and met columns come
// from Targets.
func Table(r *Result) *report.Table {
	t := &report.Table{Header: []string{"measurement", "sluice", "baseline", "ratio", "target", "met"}, Right: []int{1, 2, 3}}
	rate := func(v float64) string { return report.Number(int64(v)) + "/s" }
	targets := map[string]Target{}
	for _, tg := range Targets(r) {
		targets[tg.Name] = tg
	}
	verdict := func(name string) (string, string) {
		tg, ok := targets[name]
		switch {
		case !ok:
			return "", ""
		case tg.Met:
			return tg.Target, "yes"
		}
		return tg.Target, "NO"
	}
	row := func(name, measurement, sluice, baseline, ratio string) {
		target, met := verdict(name)
		t.AddRow(measurement, sluice, baseline, ratio, target, met)
	}
	if r.RawRecordsPerSec > 0 {
		row("throughput ratio, default trigger", fmt.Sprintf("throughput, default trigger (%s × %d B, %d partitions)", report.Number(int64(r.Records)), r.RecordBytes, r.Partitions),
			rate(r.SluiceRecordsPerSec), "raw franz-go "+rate(r.RawRecordsPerSec), report.Float(r.Ratio, 3))
	}
	if m := r.MaxOffsets; m != nil {
		row(fmt.Sprintf("throughput ratio, maxOffsetsPerTrigger=%d", m.MaxOffsetsPerTrigger),
			fmt.Sprintf("throughput, maxOffsetsPerTrigger=%s (%d batches)", report.Number(m.MaxOffsetsPerTrigger), m.Batches),
			rate(m.SluiceRecordsPerSec), "raw franz-go "+rate(m.RawRecordsPerSec), report.Float(m.Ratio, 3))
	}
	if p := r.ManyPartitions; p != nil {
		row(fmt.Sprintf("%d partitions vs raw franz-go on %d", p.Many, p.Many),
			fmt.Sprintf("%d partitions, same records (sluice on %d: %s, %.2f of it)", p.Many, p.Few, rate(p.FewRecordsPerSec), p.Ratio),
			rate(p.ManyRecordsPerSec), fmt.Sprintf("raw franz-go on %d %s", p.Many, rate(p.RawManyRecordsPerSc)), report.Float(p.RawRatio, 3))
	}
	if r.EndToEndCapacityGiven {
		t.AddRow("end-to-end capacity: given (--latency-capacity), not probed", rate(r.EndToEndCapacity), "", "", "", "")
	}
	for _, l := range r.Latency {
		note := ""
		if l.ProducerBound {
			note = ", producer-bound"
		}
		if l.Label == "capacity probe" {
			t.AddRow(fmt.Sprintf("end-to-end capacity probe: asked %s, produced %s, processed %s", rate(l.AskedPerSec), rate(l.AchievedPerSec), rate(l.ProcessedPerSec)),
				rate(r.EndToEndCapacity), fmt.Sprintf("p99 %.0f ms (saturated)", l.P99Ms), "", "", "")
			continue
		}
		name := ""
		switch {
		case l.AsyncProgress: // no target: the targets are the defaults'
		case strings.HasPrefix(l.Label, "at 50"):
			name = "p99 latency at 50 % load (ms)"
		case l.Label == "light load":
			name = fmt.Sprintf("p99 latency at %.0f/s (ms)", l.AskedPerSec)
		}
		row(name, fmt.Sprintf("latency %s: asked %s, produced %s%s", l.Label, rate(l.AskedPerSec), rate(l.AchievedPerSec), note),
			fmt.Sprintf("p50 %.0f ms, p99 %.0f ms", l.P50Ms, l.P99Ms), fmt.Sprintf("max %.0f ms", l.MaxMs), "")
	}
	if c := r.CPU; c != nil {
		row("CPU per million records vs raw franz-go", fmt.Sprintf("CPU s per million records (child processes, %s records)", report.Number(int64(c.Records))),
			report.Float(c.SluiceCPUSecPerMil, 2)+" s", "raw franz-go "+report.Float(c.RawCPUSecPerMil, 2)+" s", report.Float(c.Ratio, 2))
	}
	if i := r.Idle; i != nil {
		how := ""
		if i.Method != "" {
			how = ", " + i.Method
			if i.Method != IdleMethodRusage {
				how += fmt.Sprintf("; clock ticks %.2f s", i.TickCPUSeconds)
			}
		}
		row("idle CPU (% of a core)", fmt.Sprintf("idle CPU over %.0f s, no data%s", i.Seconds, how), report.Float(i.PercentOfCore, 3)+" % of a core",
			report.Float(i.CPUSeconds, 4)+" CPU s", "")
	}
	if m := r.Memory; m != nil {
		row("peak RSS with budget (MiB)", fmt.Sprintf("peak RSS draining %s × %d B (sink %s/row)", report.Number(int64(m.Records)), m.RecordBytes, m.SinkDelayPerRow),
			report.Bytes(m.PeakWithBudget)+" with a "+report.Bytes(m.BudgetBytes)+" budget", report.Bytes(m.PeakWithout)+" unlimited",
			report.Float(m.Ratio, 2))
	}
	if s := r.Stateful; s != nil {
		row("stateful window count vs stateless query",
			fmt.Sprintf("stateful: %s-window count per key (%s keys, watermark %s, append → noop; %d batches, peak state %s rows, %s; CPU s per million records %.2f vs stateless %.2f)",
				s.Window, report.Number(int64(s.Keys)), s.Watermark, s.Batches, report.Number(s.PeakStateRows), report.Bytes(s.PeakStateBytes),
				s.StatefulCPUSecPerMillion, s.StatelessCPUSecPerMillion),
			rate(s.StatefulRecordsPerSec), "stateless "+rate(s.StatelessRecordsPerSec), report.Float(s.Ratio, 3))
	}
	if s := r.Scaleout; s != nil && len(s.Rows) > 0 {
		one := s.Rows[0]
		for _, sr := range s.Rows {
			name := ""
			if sr.Members == 2 {
				name = "scale-out, 2 members vs 1"
			}
			row(name, fmt.Sprintf("scale-out: %d member(s), GOMAXPROCS=1 each (%s × %d B, %d partitions; stable after %d ms; cores %.0f %% busy while stable; %s from the start; CPU s members %.1f, broker %.1f over %.1f s)",
				sr.Members, report.Number(int64(s.Records)), r.RecordBytes, s.Partitions, sr.StableAfterMs, 100*sr.MachineBusy, rate(sr.WallRecordsPerSec), sr.MembersCPUSec, sr.BrokerCPUSec, sr.WallSec),
				rate(sr.RecordsPerSec), fmt.Sprintf("%d member %s", one.Members, rate(one.RecordsPerSec)), report.Float(sr.Ratio, 2))
		}
	}
	return t
}
