package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/internal/bench"
)

// runBenchJSON runs `sluice bench` with args plus toy sizes and decodes
// its JSON.
func runBenchJSON(t *testing.T, args ...string) bench.Result {
	t.Helper()
	useTestBinaryAsSluice(t)
	var stdout, stderr bytes.Buffer
	code := realMain(append([]string{"bench", "--quick", "--json", "--records", "20000", "--many-partitions", "20",
		"--idle", "1s", "--latency-for", "1s", "--light-rate", "2000", "--memory-records", "4000", "--memory-budget", "8MiB"}, args...), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var r bench.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// TestBenchJSON runs the suite's quicker measurements at toy sizes and
// checks the JSON: ratios are the quotients of the rates given, the
// original fields are kept, sections not asked for are left out.
func TestBenchJSON(t *testing.T) {
	r := runBenchJSON(t, "--only", "throughput,partitions,memory")
	checkThroughput(t, r)
	if r.Latency != nil || r.CPU != nil || r.Idle != nil {
		t.Errorf("measurements not asked for were run: %+v %+v %+v", r.Latency, r.CPU, r.Idle)
	}
	if m := r.Memory; m == nil || m.PeakWithBudget <= 0 || m.PeakWithout <= 0 || m.BudgetBytes != 8<<20 || m.WithinBudgetPlus != (m.PeakWithBudget <= m.LimitBytes) {
		t.Errorf("memory %+v", m)
	}
	if len(r.Targets) != 4 {
		t.Errorf("targets %+v, want 4", r.Targets)
	}
	checkTargets(t, r.Targets)
}

func checkThroughput(t *testing.T, r bench.Result) {
	t.Helper()
	if r.Records != 20000 || r.Rounds != 1 || r.RawRecordsPerSec <= 0 || r.SluiceRecordsPerSec <= 0 || !near(r.Ratio, r.SluiceRecordsPerSec/r.RawRecordsPerSec) {
		t.Errorf("throughput %+v", r)
	}
	if m := r.MaxOffsets; m == nil || m.MaxOffsetsPerTrigger != 10000 || m.Batches < 2 || !near(m.Ratio, m.SluiceRecordsPerSec/r.RawRecordsPerSec) {
		t.Errorf("maxOffsetsPerTrigger run %+v: 20,000 records at 10,000 per batch need at least 2 batches", m)
	}
	if p := r.ManyPartitions; p == nil || p.Many != 20 || p.Few != 8 || !near(p.Ratio, p.ManyRecordsPerSec/p.FewRecordsPerSec) ||
		!near(p.RawRatio, p.ManyRecordsPerSec/p.RawManyRecordsPerSc) {
		t.Errorf("partitions %+v", p)
	}
}

// checkTargets checks that each target's verdict follows from its value.
func checkTargets(t *testing.T, targets []bench.Target) {
	t.Helper()
	for _, tg := range targets {
		var met bool
		switch {
		case strings.HasPrefix(tg.Target, "≥ "):
			met = tg.Value >= mustFloat(t, strings.TrimPrefix(tg.Target, "≥ "))
		case strings.HasPrefix(tg.Target, "≤ "):
			met = tg.Value <= mustFloat(t, strings.Fields(strings.TrimPrefix(tg.Target, "≤ "))[0])
		case strings.HasPrefix(tg.Target, "< "):
			met = tg.Value < mustFloat(t, strings.TrimPrefix(tg.Target, "< "))
		}
		if met != tg.Met {
			t.Errorf("target %+v: met should be %v", tg, met)
		}
	}
}

// TestTimingBenchSuite runs every measurement at toy sizes (child
// processes, an idle wait, five latency runs: the probe, then 50 % and
// light load each with defaults and with asyncProgressTrackingEnabled)
// and checks each section and the table.
func TestTimingBenchSuite(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy test: set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	r := runBenchJSON(t)
	checkThroughput(t, r)
	if len(r.Latency) != 5 {
		t.Fatalf("latency runs %+v, want the capacity probe, then 50 %% and light load each with defaults and with asyncProgressTrackingEnabled", r.Latency)
	}
	for i, async := range []bool{false, false, true, false, true} {
		if l := r.Latency[i]; l.AsyncProgress != async || async != strings.Contains(l.Label, "asyncProgressTrackingEnabled") {
			t.Errorf("latency run %d %q: async progress tracking %v, want %v (and said in its label)", i, l.Label, l.AsyncProgress, async)
		}
	}
	probe := r.Latency[0]
	if probe.Label != "capacity probe" || !near(probe.AskedPerSec, r.SluiceRecordsPerSec) || !near(r.EndToEndCapacity, math.Min(probe.AchievedPerSec, probe.ProcessedPerSec)) {
		t.Errorf("probe %+v, end-to-end capacity %v", probe, r.EndToEndCapacity)
	}
	for _, l := range r.Latency {
		if l.Records <= 0 || l.P50Ms > l.P99Ms || l.P99Ms > l.MaxMs || l.Batches <= 0 {
			t.Errorf("latency %+v", l)
		}
		if l.Tail == nil || l.Tail.Records <= 0 || l.Tail.Batches <= 0 || l.Phases.BatchMs <= 0 {
			t.Errorf("latency run %q: tail %+v, phases %+v", l.Label, l.Tail, l.Phases)
		}
		if !l.OwnProcesses {
			t.Errorf("latency run %q: broker and load generator in the bench process, want processes of their own", l.Label)
		}
	}
	for _, i := range []int{1, 2} {
		if !near(r.Latency[i].AskedPerSec, r.EndToEndCapacity/2) || r.Latency[i+2].AskedPerSec != 2000 {
			t.Errorf("latency rates %v and %v, want half of %v and 2000", r.Latency[i].AskedPerSec, r.Latency[i+2].AskedPerSec, r.EndToEndCapacity)
		}
	}
	if c := r.CPU; c == nil || c.SluiceCPUSecPerMil <= 0 || c.RawCPUSecPerMil <= 0 || !near(c.Ratio, c.SluiceCPUSecPerMil/c.RawCPUSecPerMil) {
		t.Errorf("cpu %+v", c)
	}
	if i := r.Idle; i == nil || i.Seconds < 1 || i.Seconds > 3 || !near(i.PercentOfCore, 100*i.CPUSeconds/i.Seconds) {
		t.Errorf("idle %+v", i)
	}
	if m := r.Memory; m == nil || m.PeakWithBudget <= 0 || m.PeakWithout <= 0 || m.BudgetBytes != 8<<20 || m.WithinBudgetPlus != (m.PeakWithBudget <= m.LimitBytes) {
		t.Errorf("memory %+v", m)
	}
	if s := r.Stateful; s == nil || s.StatefulRecordsPerSec <= 0 || s.StatelessRecordsPerSec <= 0 || !near(s.Ratio, s.StatefulRecordsPerSec/s.StatelessRecordsPerSec) {
		t.Errorf("stateful %+v", s)
	}
	if len(r.Targets) != 9 {
		t.Errorf("targets %+v, want 9 (the stateful ratio is in the default set)", r.Targets)
	}
	checkTargets(t, r.Targets)
	// The table form shows every measurement.
	table := bench.Table(&r).Text()
	for _, want := range []string{"throughput, default trigger", "maxOffsetsPerTrigger=10,000", "20 partitions, same records", "latency at 50 %", "latency light load", "CPU s per million", "idle CPU", "peak RSS draining", "window count per key"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}

// TestTimingBenchLatencyCapacity: with --latency-capacity the latency
// part runs no capacity probe (nor the throughput rounds it would need); its 50 % runs load half the capacity
// given, and the JSON and the table say it was given.
func TestTimingBenchLatencyCapacity(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy test: set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	prof := filepath.Join(t.TempDir(), "q")
	r := runBenchJSON(t, "--only", "latency", "--latency-capacity", "4000", "--light-rate", "0", "--latency-cpuprofile", prof)
	for _, name := range []string{"-at-50-of-capacity.pprof", "-at-50-of-capacity-async.pprof"} {
		// A CPU profile is gzip-compressed protobuf.
		if b, err := os.ReadFile(prof + name); err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("--latency-cpuprofile: %s: %v (%d bytes), want the query's CPU profile", prof+name, err, len(b))
		}
	}
	if r.RawRecordsPerSec != 0 || r.SluiceRecordsPerSec != 0 {
		t.Errorf("throughput rounds ran (raw %v/s, sluice %v/s): with the capacity given, --only latency needs none", r.RawRecordsPerSec, r.SluiceRecordsPerSec)
	}
	if !r.EndToEndCapacityGiven || r.EndToEndCapacity != 4000 {
		t.Errorf("end-to-end capacity %v given %v, want 4000 given", r.EndToEndCapacity, r.EndToEndCapacityGiven)
	}
	if len(r.Latency) != 2 {
		t.Fatalf("latency runs %+v, want the 50 %% run with defaults and with asyncProgressTrackingEnabled, no probe", r.Latency)
	}
	for _, l := range r.Latency {
		if !strings.HasPrefix(l.Label, "at 50 % of capacity") || l.AskedPerSec != 2000 || l.Records <= 0 {
			t.Errorf("latency run %q asked %v/s over %d records, want a 50 %% run at 2000/s", l.Label, l.AskedPerSec, l.Records)
		}
	}
	if table := bench.Table(&r).Text(); !strings.Contains(table, "given (--latency-capacity), not probed") || strings.Contains(table, "capacity probe") {
		t.Errorf("table should say the capacity was given, and show no probe:\n%s", table)
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmt.Sscan(s, &f); err != nil {
		t.Fatalf("target %q: %v", s, err)
	}
	return f
}

func TestBenchFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--only", "speed"},
		{"bench", "--records", "0"},
		{"bench", "--memory-budget", "much"},
		{"bench", "--latency-cpuprofile", "q", "--latency-in-process"},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}

// TestTimingBenchScaleout runs `sluice bench --only scaleout` at a small
// size: 1, 2 and 4 member processes (GOMAXPROCS=1 each) of a group-mode
// query on a 16-partition topic. It checks the rows and that ratios are the
// quotients of the rates, not the figures themselves (measured, not
// asserted; see docs/benchmarks.md).
func TestTimingBenchScaleout(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy test: set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	if !groupModeBuilt() {
		t.Skip("this build has no group mode (kafka source option sluice.group)")
	}
	useTestBinaryAsSluice(t)
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"bench", "--json", "--only", "scaleout", "--scaleout-records", "1000000", "--rounds", "1"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var r bench.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, stdout.String())
	}
	s := r.Scaleout
	if s == nil || s.Partitions != 16 || s.Records != 1000000 || len(s.Rows) != 3 {
		t.Fatalf("scaleout %+v", s)
	}
	for i, n := range []int{1, 2, 4} {
		row := s.Rows[i]
		if row.Members != n || row.RecordsPerSec <= 0 || row.WallRecordsPerSec <= 0 || !near(row.Ratio, row.RecordsPerSec/s.Rows[0].RecordsPerSec) ||
			row.CommittedAtStable >= int64(s.Records) {
			t.Errorf("row %d: %+v", i, row)
		}
	}
	if len(r.Targets) != 1 || r.Targets[0].Name != "scale-out, 2 members vs 1" || r.Targets[0].Value != s.Rows[1].Ratio {
		t.Errorf("targets %+v", r.Targets)
	}
	t.Logf("%s", stderr.String())
}
