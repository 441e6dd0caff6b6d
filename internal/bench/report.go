package bench

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/internal/report"
)

// Targets compares the figures with the project's targets.
func Targets(r *Result) []Target {
	var t []Target
	if r.RawRecordsPerSec > 0 {
		t = append(t, Target{"throughput ratio, default trigger", r.Ratio, "≥ 0.90", r.Ratio >= 0.9})
	}
	if m := r.MaxOffsets; m != nil {
		t = append(t, Target{fmt.Sprintf("throughput ratio, maxOffsetsPerTrigger=%d", m.MaxOffsetsPerTrigger), m.Ratio, "≥ 0.90", m.Ratio >= 0.9})
	}
	if p := r.ManyPartitions; p != nil {
		t = append(t, Target{fmt.Sprintf("%d vs %d partitions", p.Many, p.Few), p.Ratio, "≥ 0.80", p.Ratio >= 0.8})
	}
	for _, l := range r.Latency {
		if strings.HasPrefix(l.Label, "at 50") {
			t = append(t, Target{"p99 latency at 50 % load (ms)", l.P99Ms, "≤ 50", l.P99Ms <= 50})
		}
	}
	if i := r.Idle; i != nil {
		t = append(t, Target{"idle CPU (% of a core)", i.PercentOfCore, "< 1", i.PercentOfCore < 1})
	}
	if m := r.Memory; m != nil {
		t = append(t, Target{"peak RSS with budget (MiB)", float64(m.PeakWithBudget) / (1 << 20),
			fmt.Sprintf("≤ %.0f (budget + overhead)", float64(m.LimitBytes)/(1<<20)), m.WithinBudgetPlus})
	}
	return t
}

// Table renders the result as a table.
func Table(r *Result) *report.Table {
	t := &report.Table{Header: []string{"measurement", "sluice", "baseline", "ratio", "target", "met"}, Right: []int{1, 2, 3}}
	rate := func(v float64) string { return report.Number(int64(v)) + "/s" }
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "NO"
	}
	if r.RawRecordsPerSec > 0 {
		t.AddRow(fmt.Sprintf("throughput, default trigger (%s × %d B, %d partitions)", report.Number(int64(r.Records)), r.RecordBytes, r.Partitions),
			rate(r.SluiceRecordsPerSec), "raw franz-go "+rate(r.RawRecordsPerSec), report.Float(r.Ratio, 3), "≥ 0.90", met(r.Ratio >= 0.9))
	}
	if m := r.MaxOffsets; m != nil {
		t.AddRow(fmt.Sprintf("throughput, maxOffsetsPerTrigger=%s (%d batches)", report.Number(m.MaxOffsetsPerTrigger), m.Batches),
			rate(m.SluiceRecordsPerSec), "raw franz-go "+rate(m.RawRecordsPerSec), report.Float(m.Ratio, 3), "≥ 0.90", met(m.Ratio >= 0.9))
	}
	if p := r.ManyPartitions; p != nil {
		t.AddRow(fmt.Sprintf("%d vs %d partitions, same records (raw on %d: %s)", p.Many, p.Few, p.Many, rate(p.RawManyRecordsPerSc)),
			rate(p.ManyRecordsPerSec), fmt.Sprintf("%d partitions %s", p.Few, rate(p.FewRecordsPerSec)), report.Float(p.Ratio, 3), "≥ 0.80", met(p.Ratio >= 0.8))
	}
	for _, l := range r.Latency {
		note := ""
		if l.ProducerBound {
			note = ", producer-bound"
		}
		target, ok := "", ""
		if strings.HasPrefix(l.Label, "at 50") {
			target, ok = "p99 ≤ 50 ms", met(l.P99Ms <= 50)
		}
		if l.Label == "capacity probe" {
			t.AddRow(fmt.Sprintf("end-to-end capacity probe: asked %s, produced %s, processed %s", rate(l.AskedPerSec), rate(l.AchievedPerSec), rate(l.ProcessedPerSec)),
				rate(r.EndToEndCapacity), fmt.Sprintf("p99 %.0f ms (saturated)", l.P99Ms), "", "", "")
			continue
		}
		t.AddRow(fmt.Sprintf("latency %s: asked %s, produced %s%s", l.Label, rate(l.AskedPerSec), rate(l.AchievedPerSec), note),
			fmt.Sprintf("p50 %.0f ms, p99 %.0f ms", l.P50Ms, l.P99Ms), fmt.Sprintf("max %.0f ms", l.MaxMs), "", target, ok)
	}
	if c := r.CPU; c != nil {
		t.AddRow(fmt.Sprintf("CPU s per million records (child processes, %s records)", report.Number(int64(c.Records))),
			report.Float(c.SluiceCPUSecPerMil, 2)+" s", "raw franz-go "+report.Float(c.RawCPUSecPerMil, 2)+" s", report.Float(c.Ratio, 2), "", "")
	}
	if i := r.Idle; i != nil {
		t.AddRow(fmt.Sprintf("idle CPU over %.0f s, no data", i.Seconds), report.Float(i.PercentOfCore, 2)+" % of a core",
			report.Float(i.CPUSeconds, 3)+" CPU s", "", "< 1 %", met(i.PercentOfCore < 1))
	}
	if m := r.Memory; m != nil {
		t.AddRow(fmt.Sprintf("peak RSS draining %s × %d B (sink %s/row)", report.Number(int64(m.Records)), m.RecordBytes, m.SinkDelayPerRow),
			report.Bytes(m.PeakWithBudget)+" with a "+report.Bytes(m.BudgetBytes)+" budget", report.Bytes(m.PeakWithout)+" without",
			report.Float(m.Ratio, 2), "≤ "+report.Bytes(m.LimitBytes), met(m.WithinBudgetPlus))
	}
	return t
}
