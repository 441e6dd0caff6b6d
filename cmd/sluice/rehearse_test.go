package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/rehearse"
)

// useTestBinaryAsSluice makes child `sluice` processes re-run this test
// binary (see TestMain).
func useTestBinaryAsSluice(t *testing.T) {
	old := sluiceCommand
	sluiceCommand = func(args ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "SLUICE_TEST_MAIN_ARGS="+strings.Join(args, "\x1f"))
		return cmd
	}
	t.Cleanup(func() { sluiceCommand = old })
}

// useBuiltSluice makes child `sluice` processes run the release build of
// cmd/sluice (sluiceBinary): what phase 4's memory promise is about is the
// binary users run, whose executable is less resident than this test
// binary's (linked externally when cgo is on, and larger).
func useBuiltSluice(t *testing.T) {
	bin := sluiceBinary(t)
	old := sluiceCommand
	sluiceCommand = func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }
	t.Cleanup(func() { sluiceCommand = old })
}

// TestRehearseQuick runs `sluice rehearse --quick` as CI does: the four
// phases in under a minute, phase 2 judged unstable and phase 4 stable from
// what they measured, exit code 0, and a report whose figures agree with
// its raw progress lines.
func TestRehearseQuick(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy, timing-sensitive test (about 45 s): set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	useBuiltSluice(t)
	dir := filepath.Join(t.TempDir(), "report")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := realMain([]string{"rehearse", "--quick", "--out", dir}, &stdout, &stderr)
	took := time.Since(start)
	t.Logf("rehearse --quick took %s:\n%s", took.Round(time.Millisecond), stdout.String())
	if code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	if took > 60*time.Second {
		t.Errorf("rehearse --quick took %s, want under 60 s", took)
	}
	var vj struct {
		FinalStable bool `json:"finalStable"`
		Phases      []struct {
			Spec struct {
				N         int   `json:"phase"`
				TriggerMs int64 `json:"triggerMs"`
				MaxOffs   int64 `json:"maxOffsetsPerTrigger"`
				Adaptive  bool  `json:"adaptive"`
				Budget    int64 `json:"memoryBudgetBytes"`
			} `json:"spec"`
			Verdict struct {
				Stable       bool  `json:"stable"`
				Batches      int   `json:"batches"`
				P50Ms        int64 `json:"p50Ms"`
				P95Ms        int64 `json:"p95Ms"`
				MaxMs        int64 `json:"maxMs"`
				PeakRSS      int64 `json:"peakRssBytes"`
				PeakLag      int64 `json:"peakLagRecords"`
				MemoryLimit  int64 `json:"memoryLimitBytes"`
				Drained      bool  `json:"drained"`
				CriteriaPass []struct {
					Pass bool `json:"pass"`
				} `json:"criteria"`
			} `json:"verdict"`
		} `json:"phases"`
	}
	data, err := os.ReadFile(filepath.Join(dir, rehearse.VerdictsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &vj); err != nil {
		t.Fatal(err)
	}
	if len(vj.Phases) != 4 {
		t.Fatalf("%d phases, want 4", len(vj.Phases))
	}
	md, err := os.ReadFile(filepath.Join(dir, rehearse.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, ph := range vj.Phases {
		n := i + 1
		if ph.Spec.N != n {
			t.Fatalf("phase %d at position %d", ph.Spec.N, i)
		}
		ps, err := queryrun.ReadProgress(filepath.Join(dir, "phase"+strconv.Itoa(n), rehearse.ProgressFile))
		if err != nil {
			t.Fatal(err)
		}
		var durs []int64
		for _, p := range ps {
			if p.NumInputRows > 0 {
				durs = append(durs, p.BatchDuration)
			}
		}
		slices.Sort(durs)
		if len(durs) == 0 {
			t.Fatalf("phase %d: no batch", n)
		}
		rank := func(q float64) int64 { return durs[int(math.Ceil(q*float64(len(durs))))-1] }
		v := ph.Verdict
		if v.Batches != len(durs) || v.P95Ms != rank(0.95) || v.P50Ms != rank(0.5) || v.MaxMs != durs[len(durs)-1] {
			t.Errorf("phase %d: verdict %d batches p50 %d p95 %d max %d; the progress lines give %d, %d, %d, %d",
				n, v.Batches, v.P50Ms, v.P95Ms, v.MaxMs, len(durs), rank(0.5), rank(0.95), durs[len(durs)-1])
		}
		okDur := float64(rank(0.95)) <= rehearse.StableP95Factor*float64(ph.Spec.TriggerMs)
		okMem := ph.Spec.Budget == 0 || v.PeakRSS < 0 || v.PeakRSS <= v.MemoryLimit
		if want := okDur && v.Drained && okMem; v.Stable != want {
			t.Errorf("phase %d: stable %v, but p95 ok %v, drained %v, memory ok %v", n, v.Stable, okDur, v.Drained, okMem)
		}
		if v.PeakRSS <= 0 {
			t.Errorf("phase %d: peak RSS not measured (%d) though the query ran in a child process", n, v.PeakRSS)
		}
		for _, c := range []string{"rates", "batches", "lag-records", "lag-seconds", "memory"} {
			base := filepath.Join(dir, rehearse.ChartsDir, "phase"+strconv.Itoa(n)+"-"+c)
			f, err := os.Open(base + ".png")
			if err != nil {
				t.Error(err)
				continue
			}
			if _, err := png.Decode(f); err != nil {
				t.Errorf("%s.png: %v", base, err)
			}
			f.Close()
			if svg, err := os.ReadFile(base + ".svg"); err != nil || !bytes.Contains(svg, []byte("<svg")) {
				t.Errorf("%s.svg: %v", base, err)
			}
		}
		if !bytes.Contains(md, []byte("## Phase "+strconv.Itoa(n)+":")) {
			t.Errorf("report.md lacks phase %d", n)
		}
	}
	p2, p3, p4 := vj.Phases[1], vj.Phases[2], vj.Phases[3]
	if p2.Verdict.Stable {
		t.Errorf("phase 2 (no limit) judged stable: p95 %d ms vs trigger %d ms", p2.Verdict.P95Ms, p2.Spec.TriggerMs)
	}
	if !p4.Verdict.Stable || !vj.FinalStable {
		t.Errorf("phase 4 (adaptive + budget) judged unstable: %+v", p4.Verdict)
	}
	if p3.Spec.MaxOffs <= 0 || !p4.Spec.Adaptive || p4.Spec.Budget <= 0 {
		t.Errorf("phase settings: 3 %+v, 4 %+v", p3.Spec, p4.Spec)
	}
	if p2.Verdict.MaxMs <= 2*p2.Spec.TriggerMs {
		t.Errorf("phase 2's longest batch %d ms: the backlog should have grown it well past the %d ms trigger", p2.Verdict.MaxMs, p2.Spec.TriggerMs)
	}
	if !strings.Contains(stdout.String(), "final phase 4") {
		t.Errorf("stdout lacks the final line:\n%s", stdout.String())
	}
}

// TestRehearseStatefulQuick runs `sluice rehearse --quick --phases 5`: the
// stateful phase alone (a windowed count with a watermark, append mode,
// under the spike with adaptive admission and a memory budget), in a child
// process. Its state figures in verdicts.json must agree with the progress
// lines, be in report.md and on the console, and its verdict must follow
// from its four criteria.
func TestRehearseStatefulQuick(t *testing.T) {
	if os.Getenv("SLUICE_SERIAL_TESTS") != "1" {
		t.Skip("heavy, timing-sensitive test (about 15 s): set SLUICE_SERIAL_TESTS=1 (CI runs these in a serial step)")
	}
	useTestBinaryAsSluice(t)
	dir := filepath.Join(t.TempDir(), "report")
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"rehearse", "--quick", "--phases", "5", "--out", dir}, &stdout, &stderr)
	t.Logf("rehearse --quick --phases 5:\n%s", stdout.String())
	if code != 0 && code != 1 { // 1: ran, judged unstable (checked below)
		t.Fatalf("exit %d\nstderr:\n%s", code, stderr.String())
	}
	var vj struct {
		FinalStable bool `json:"finalStable"`
		Phases      []struct {
			Spec struct {
				N           int   `json:"phase"`
				Stateful    bool  `json:"stateful"`
				Adaptive    bool  `json:"adaptive"`
				Budget      int64 `json:"memoryBudgetBytes"`
				WindowMs    int64 `json:"windowMs"`
				WatermarkMs int64 `json:"watermarkDelayMs"`
				TriggerMs   int64 `json:"triggerMs"`
			} `json:"spec"`
			Verdict struct {
				Stable   bool  `json:"stable"`
				P95Ms    int64 `json:"p95Ms"`
				Drained  bool  `json:"drained"`
				PeakRSS  int64 `json:"peakRssBytes"`
				MemLimit int64 `json:"memoryLimitBytes"`
				Criteria []struct {
					Name string `json:"name"`
					Pass bool   `json:"pass"`
				} `json:"criteria"`
				State *struct {
					Operators       []string `json:"operators"`
					PeakRows        int64    `json:"peakRows"`
					PeakMemoryBytes int64    `json:"peakMemoryBytes"`
					LateRowsDropped int64    `json:"lateRowsDropped"`
					ShareBytes      int64    `json:"shareBytes"`
					Failure         string   `json:"failure"`
				} `json:"state"`
			} `json:"verdict"`
		} `json:"phases"`
	}
	data, err := os.ReadFile(filepath.Join(dir, rehearse.VerdictsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &vj); err != nil {
		t.Fatal(err)
	}
	if len(vj.Phases) != 1 || vj.Phases[0].Spec.N != 5 {
		t.Fatalf("phases %+v, want phase 5 alone", vj.Phases)
	}
	ph := vj.Phases[0]
	q := rehearse.Quick()
	if !ph.Spec.Stateful || !ph.Spec.Adaptive || ph.Spec.Budget != q.StatefulBudget ||
		ph.Spec.WindowMs != q.Window.Milliseconds() || ph.Spec.WatermarkMs != q.WatermarkDelay.Milliseconds() {
		t.Errorf("phase 5 spec %+v", ph.Spec)
	}
	v := ph.Verdict
	if v.State == nil {
		t.Fatalf("phase 5 verdict has no state figures: %s", data)
	}
	// The state figures are the progress lines' stateOperators.
	ps, err := queryrun.ReadProgress(filepath.Join(dir, "phase5", rehearse.ProgressFile))
	if err != nil {
		t.Fatal(err)
	}
	var peakRows, peakMem, dropped int64
	for _, p := range ps {
		var rows, mem int64
		for _, so := range p.StateOperators {
			rows += so.NumRowsTotal
			mem += so.MemoryUsedBytes
			dropped += so.NumRowsDroppedByWatermark
			if so.OperatorName != "stateStoreSave" {
				t.Errorf("batch %d: state operator %q, want stateStoreSave", p.BatchID, so.OperatorName)
			}
		}
		peakRows, peakMem = max(peakRows, rows), max(peakMem, mem)
	}
	st := v.State
	if st.PeakRows != peakRows || st.PeakMemoryBytes != peakMem || st.LateRowsDropped != dropped || !slices.Equal(st.Operators, []string{"stateStoreSave"}) {
		t.Errorf("state figures %+v; the progress lines give peak %d rows, %d bytes, %d dropped", st, peakRows, peakMem, dropped)
	}
	// 1,000 customers: at least one window's worth of keys was held.
	if st.PeakRows < 1000 || st.PeakMemoryBytes <= 0 {
		t.Errorf("state peaked at %d rows, %d bytes: the window count kept no state", st.PeakRows, st.PeakMemoryBytes)
	}
	if st.ShareBytes != q.StatefulBudget/2 {
		t.Errorf("state share %d, want half of %d", st.ShareBytes, q.StatefulBudget)
	}
	// The verdict follows from the four criteria.
	names := []string{"batch duration", "lag drained", "memory", "state memory"}
	if len(v.Criteria) != len(names) {
		t.Fatalf("criteria %+v", v.Criteria)
	}
	all := true
	for i, c := range v.Criteria {
		if c.Name != names[i] {
			t.Errorf("criterion %d is %q, want %q", i, c.Name, names[i])
		}
		all = all && c.Pass
	}
	okDur := float64(v.P95Ms) <= rehearse.StableP95Factor*float64(ph.Spec.TriggerMs)
	okMem := v.PeakRSS < 0 || v.PeakRSS <= v.MemLimit
	okState := st.Failure == "" && st.PeakMemoryBytes <= st.ShareBytes
	if v.Criteria[0].Pass != okDur || v.Criteria[1].Pass != v.Drained || v.Criteria[2].Pass != okMem || v.Criteria[3].Pass != okState {
		t.Errorf("criteria %+v; p95 ok %v, drained %v, memory ok %v, state ok %v", v.Criteria, okDur, v.Drained, okMem, okState)
	}
	if v.Stable != all || vj.FinalStable != v.Stable || (code == 0) != v.Stable {
		t.Errorf("stable %v, final %v, exit %d, criteria all pass %v", v.Stable, vj.FinalStable, code, all)
	}
	// A window count of 1,000 keys in 32 MiB: state stays far below its share.
	if !v.Criteria[3].Pass {
		t.Errorf("state memory failed: %+v", st)
	}
	md, err := os.ReadFile(filepath.Join(dir, rehearse.ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Phase 5:", "Phase 5 state (stateStoreSave)", "| state rows, peak / at the end |",
		"| late rows dropped by the watermark |", "| state memory |", "**state memory** (stateful phase only)", rehearse.ChartsDir + "/phase5-state.png"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, want := range []string{"phase 5: Stateful window count", "state memory", "  state: peak ", "late rows dropped by the watermark"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	pipe, err := os.ReadFile(filepath.Join(dir, "phase5", rehearse.PipelineFile))
	if err != nil || !bytes.Contains(pipe, []byte("withWatermark")) || !bytes.Contains(pipe, []byte("from_json")) {
		t.Errorf("phase5/pipeline.yaml: %v\n%s", err, pipe)
	}
}

// TestRehearseFlagErrors: bad flags exit 2 before anything runs.
func TestRehearseFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"rehearse", "--phases", "6"},
		{"rehearse", "--phases", "0,5"},
		{"rehearse", "--stateful-memory-budget", "lots"},
		{"rehearse", "--quick", "--phases", "5", "--window", "0s"},
		{"rehearse", "--quick", "--watermark-delay", "-1s"},
		{"rehearse", "--memory-budget", "lots"},
		{"rehearse", "--quick", "--headroom", "1.5"},
		{"rehearse", "--pipeline", "/nonexistent.yaml"},
		{"rehearse", "extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}

// TestLoadgenCommand produces with `sluice loadgen` on its embedded broker
// and reads the JSON result.
func TestLoadgenCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := realMain([]string{"loadgen", "--duration", "2s", "--rate", "3000", "--partitions", "3", "--shape", "iot", "--json", "--quiet"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var res loadgenResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout.String())
	}
	if res.Asked != 6000 || math.Abs(res.AchievedPerSec/res.AskedPerSec-1) > 0.05 || len(res.PartitionCounts) != 3 || res.Throttled {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(stderr.String(), "embedded broker listening on 127.0.0.1:") {
		t.Errorf("stderr does not give the broker's address:\n%s", stderr.String())
	}
	for _, args := range [][]string{
		{"loadgen", "--profile", "square"},
		{"loadgen", "--profile", "csv"},
		{"loadgen", "--shape", "xml"},
		{"loadgen", "--zipf", "0.5"},
		{"loadgen", "--profile", "sine", "--amplitude", "5000", "--rate", "10"},
		{"loadgen", "--compression", "brotli"},
	} {
		stderr.Reset()
		if code := realMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, stderr.String())
		}
	}
}
