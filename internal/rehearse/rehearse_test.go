package rehearse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/queryrun"
	"github.com/sluice-stream/sluice/internal/state"
)

func TestLoadQuery(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "q.yaml")
	os.WriteFile(p, []byte(`name: mine
options:
  sluice.memory.budget: 1GiB
  spark.sql.ansi.enabled: "true"
source:
  format: kafka
  options:
    kafka.bootstrap.servers: prod:9092
    subscribe: orders
    maxOffsetsPerTrigger: 50000
    kafka.security.protocol: PLAINTEXT
transform:
  - selectExpr: ["CAST(value AS STRING) AS json"]
  - filter: "json IS NOT NULL"
sink:
  format: console
  options:
    checkpointLocation: /prod/chk
    numRows: 5
trigger:
  processingTime: 20 seconds
`), 0o644)
	q, err := LoadQuery(p)
	if err != nil {
		t.Fatal(err)
	}
	if q.Name != "mine" || q.SinkFormat != "console" || q.SinkOptions["numRows"] != "5" || len(q.Steps) != 2 {
		t.Fatalf("query %+v", q)
	}
	if _, ok := q.SinkOptions["checkpointLocation"]; ok {
		t.Error("the production checkpoint was kept")
	}
	if q.SourceOptions["kafka.security.protocol"] != "PLAINTEXT" || len(q.SourceOptions) != 1 {
		t.Errorf("source options %v, want only the security option kept", q.SourceOptions)
	}
	if q.Options["spark.sql.ansi.enabled"] != "true" || len(q.Options) != 1 {
		t.Errorf("options %v", q.Options)
	}
	wantDropped := []string{"option sluice.memory.budget (phase 4 sets its own)", "source option kafka.bootstrap.servers",
		"source option maxOffsetsPerTrigger", "source option subscribe", "trigger processingTime (each phase sets its own)"}
	if !slices.Equal(q.Dropped, wantDropped) {
		t.Errorf("dropped %q\nwant %q", q.Dropped, wantDropped)
	}
	os.WriteFile(p, []byte("source:\n  format: rate\nsink:\n  format: console\n"), 0o644)
	if _, err := LoadQuery(p); err == nil || !strings.Contains(err.Error(), "needs a kafka source") {
		t.Fatalf("rate source: %v", err)
	}
}

// TestRehearsalInProcess runs a miniature rehearsal (phases 1 and 4) inside
// the test and checks the report directory: files, charts that decode, and
// verdict figures that agree with the progress lines.
func TestRehearsalInProcess(t *testing.T) {
	dir := t.TempDir()
	prof := Profile{
		Name: "tiny", Partitions: 2, Workers: 2, Trigger: 200 * time.Millisecond,
		BaseRate: 500, SpikeFactor: 4, Warmup: 500 * time.Millisecond, SpikeFor: 500 * time.Millisecond, After: time.Second,
		Baseline: time.Second, SinkDelayPerRow: 100 * time.Microsecond, MemoryBudget: 8 << 20, Headroom: 0.8, AdaptiveTarget: 1,
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{Profile: prof, Dir: dir, Runner: &queryrun.InProcessRunner{}, Phases: []int{1, 4}, Out: &out})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if len(res.Phases) != 2 || res.Phases[0].Spec.N != 1 || res.Phases[1].Spec.N != 4 {
		t.Fatalf("phases %+v", res.Phases)
	}
	checkReport(t, dir, []int{1, 4})
	if ph := res.Phases[1]; !ph.Spec.Adaptive || ph.Spec.MemoryBudget != 8<<20 || ph.Verdict.PeakRSSBytes != -1 {
		t.Errorf("phase 4 spec %+v, peak RSS %d (in-process: not measured)", ph.Spec, ph.Verdict.PeakRSSBytes)
	}
	for _, want := range []string{"phase 1: Baseline at steady load", "phase 4: Spike with adaptive admission", "verdict:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// checkReport checks a report directory against its own raw data.
func checkReport(t *testing.T, dir string, phases []int) {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	var vj struct {
		FinalStable bool `json:"finalStable"`
		Phases      []struct {
			Spec struct {
				N         int   `json:"phase"`
				TriggerMs int64 `json:"triggerMs"`
			} `json:"spec"`
			Verdict struct {
				Stable   bool  `json:"stable"`
				Batches  int   `json:"batches"`
				P50Ms    int64 `json:"p50Ms"`
				P95Ms    int64 `json:"p95Ms"`
				TargetMs int64 `json:"targetMs"`
				Drained  bool  `json:"drained"`
				Criteria []struct {
					Name string `json:"name"`
					Pass bool   `json:"pass"`
				} `json:"criteria"`
			} `json:"verdict"`
		} `json:"phases"`
	}
	data, err := os.ReadFile(filepath.Join(dir, VerdictsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &vj); err != nil {
		t.Fatal(err)
	}
	if len(vj.Phases) != len(phases) {
		t.Fatalf("%d phases in verdicts.json, want %d", len(vj.Phases), len(phases))
	}
	for i, ph := range vj.Phases {
		n := phases[i]
		if ph.Spec.N != n {
			t.Fatalf("phase %d in position %d", ph.Spec.N, i)
		}
		// Recompute the batch figures from the progress lines.
		ps, err := queryrun.ReadProgress(filepath.Join(dir, "phase"+itoa(n), ProgressFile))
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
			t.Fatalf("phase %d: no batch read rows", n)
		}
		p95 := durs[int(math.Ceil(0.95*float64(len(durs))))-1]
		p50 := durs[int(math.Ceil(0.5*float64(len(durs))))-1]
		v := ph.Verdict
		if v.Batches != len(durs) || v.P95Ms != p95 || v.P50Ms != p50 || v.TargetMs != ph.Spec.TriggerMs {
			t.Errorf("phase %d: verdict says %d batches p50 %d p95 %d target %d; progress gives %d, %d, %d, trigger %d",
				n, v.Batches, v.P50Ms, v.P95Ms, v.TargetMs, len(durs), p50, p95, ph.Spec.TriggerMs)
		}
		// The verdict follows from the criteria, and criterion 1 from
		// the recomputed p95.
		wantCriteria := 3
		if n == StatefulPhase {
			wantCriteria = 4 // and state memory
		}
		all := len(v.Criteria) == wantCriteria
		for _, c := range v.Criteria {
			all = all && c.Pass
		}
		if v.Stable != all {
			t.Errorf("phase %d: stable %v but criteria %+v", n, v.Stable, v.Criteria)
		}
		if want := float64(p95) <= StableP95Factor*float64(ph.Spec.TriggerMs); v.Criteria[0].Pass != want {
			t.Errorf("phase %d: batch-duration criterion %v, but p95 %d vs trigger %d says %v", n, v.Criteria[0].Pass, p95, ph.Spec.TriggerMs, want)
		}
		if v.Criteria[1].Pass != v.Drained {
			t.Errorf("phase %d: lag criterion %v, drained %v", n, v.Criteria[1].Pass, v.Drained)
		}
		for _, f := range []string{OffsetsFile, MemoryFile, LoadFile, PipelineFile} {
			if _, err := os.Stat(filepath.Join(dir, "phase"+itoa(n), f)); err != nil {
				t.Errorf("phase %d: %v", n, err)
			}
		}
		for _, c := range []string{"rates", "batches", "lag-records", "lag-seconds"} {
			base := filepath.Join(dir, ChartsDir, "phase"+itoa(n)+"-"+c)
			checkPNG(t, base+".png")
			if svg, err := os.ReadFile(base + ".svg"); err != nil || !bytes.Contains(svg, []byte("<svg")) {
				t.Errorf("%s.svg: %v", base, err)
			}
			if !bytes.Contains(md, []byte(ChartsDir+"/phase"+itoa(n)+"-"+c+".png")) {
				t.Errorf("report.md does not show %s", base)
			}
		}
		if !bytes.Contains(md, []byte("## Phase "+itoa(n)+":")) {
			t.Errorf("report.md has no section for phase %d", n)
		}
	}
	last := vj.Phases[len(vj.Phases)-1].Verdict.Stable
	if vj.FinalStable != last {
		t.Errorf("finalStable %v, last phase stable %v", vj.FinalStable, last)
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Errorf("%s does not decode: %v", path, err)
		return
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 150 {
		t.Errorf("%s is only %v", path, b)
	}
}

func itoa(n int) string { return string(rune('0' + n)) }

// deadRunner starts queries that fail at once.
type deadRunner struct{}

func (deadRunner) Describe() string { return "dead" }
func (deadRunner) Start(context.Context, string, string) (queryrun.Process, error) {
	p := &deadProc{done: make(chan struct{})}
	close(p.done)
	return p, nil
}

type deadProc struct{ done chan struct{} }

func (p *deadProc) PID() int               { return 0 }
func (p *deadProc) Stop() error            { return errors.New("query failed: boom") }
func (p *deadProc) Done() <-chan struct{}  { return p.done }
func (p *deadProc) PeakRSS() int64         { return -1 }
func (p *deadProc) CPUTime() time.Duration { return -1 }

// TestQueryFailureEndsPhase: a query that dies ends the phase's load at
// once and the rehearsal reports its error.
func TestQueryFailureEndsPhase(t *testing.T) {
	prof := Quick()
	prof.Baseline = 30 * time.Second
	start := time.Now()
	_, err := Run(context.Background(), Config{Profile: prof, Dir: t.TempDir(), Runner: deadRunner{}, Phases: []int{1}})
	if err == nil || !strings.Contains(err.Error(), "phase 1: query failed: boom") {
		t.Fatalf("err = %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the phase ran on for %s after its query died", took)
	}
}

// stateDeadRunner starts queries that stop at once with the engine's
// state-memory error, as a child process reports it.
type stateDeadRunner struct{}

func (stateDeadRunner) Describe() string { return "state-dead" }
func (stateDeadRunner) Start(context.Context, string, string) (queryrun.Process, error) {
	p := &stateDeadProc{deadProc{done: make(chan struct{})}}
	close(p.done)
	return p, nil
}

type stateDeadProc struct{ deadProc }

func (p *stateDeadProc) Stop() error {
	me := &state.MemoryExceededError{Partition: 2, StoreBytes: 5 << 20, Used: 33 << 20, Limit: 32 << 20, Budget: true}
	return errors.New("query process: exit status 1; last output:\nsluice run: stateful operator 0 (stateStoreSave) stopped the query: batch 3 shuffle partition 2: " + me.Error())
}

// TestStateMemoryFailureFailsPhase: when state memory stops phase 5's
// query the rehearsal goes on and judges the phase unstable, with the
// engine's message as the reason; the same error in a stateless phase is
// a failure of the rehearsal.
func TestStateMemoryFailureFailsPhase(t *testing.T) {
	prof := Quick()
	prof.Warmup, prof.SpikeFor, prof.After = 30*time.Second, time.Second, time.Second
	dir := t.TempDir()
	var out bytes.Buffer
	start := time.Now()
	res, err := Run(context.Background(), Config{Profile: prof, Dir: dir, Runner: stateDeadRunner{}, Phases: []int{5}, Out: &out})
	if err != nil {
		t.Fatalf("rehearsal failed: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the phase ran on for %s after its query died", took)
	}
	v := res.Final().Verdict
	if v.Stable || v.State == nil || len(v.Criteria) != 4 {
		t.Fatalf("verdict %+v", v)
	}
	c := v.Criteria[3]
	if c.Pass || !strings.Contains(c.Detail, "the query stopped on its state memory: sluice run: stateful operator 0 (stateStoreSave) stopped the query") ||
		!strings.Contains(c.Detail, "over its share of the memory budget (32.0 MiB)") {
		t.Errorf("state criterion %+v", c)
	}
	md, _ := os.ReadFile(filepath.Join(dir, ReportFile))
	vj, _ := os.ReadFile(filepath.Join(dir, VerdictsFile))
	for _, b := range [][]byte{md, vj, out.Bytes()} {
		if !bytes.Contains(b, []byte("would take state memory to 33.0 MiB")) {
			t.Errorf("the failure is not reported:\n%s", b)
		}
	}
	if !bytes.Contains(md, []byte("The stateful query stopped when its state passed its share of the memory budget")) {
		t.Errorf("report.md gives no advice on the state failure")
	}
	if _, err := Run(context.Background(), Config{Profile: prof, Dir: t.TempDir(), Runner: stateDeadRunner{}, Phases: []int{4}}); err == nil ||
		!strings.Contains(err.Error(), "phase 4: query process") {
		t.Errorf("phase 4 with the same error: %v", err)
	}
}
