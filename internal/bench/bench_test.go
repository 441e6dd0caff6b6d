package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	good := Config{Records: 1, RecordBytes: 0, Partitions: 1, ManyPartitions: 1, Rounds: 1, MemoryRecords: 1, MemoryRecordBytes: 1,
		MemoryBudget: 1, Command: func(a ...string) *exec.Cmd { return exec.Command("sluice", a...) }}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, tc := range map[string]struct {
		change func(*Config)
		want   string
	}{
		"unknown measurement": {func(c *Config) { c.Only = []string{"latency", "speed"} }, `"speed" is not a measurement`},
		"no records":          {func(c *Config) { c.Records = 0 }, "--records"},
		"no memory records":   {func(c *Config) { c.MemoryRecords = 0 }, "--memory-records"},
		"no budget":           {func(c *Config) { c.MemoryBudget = 0 }, "memory budget"},
		"no command":          {func(c *Config) { c.Command = nil }, "no command"},
	} {
		c := good
		tc.change(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// TestTargetsAndTable checks each target's verdict against its threshold
// and that the table shows every measurement present.
func TestTargetsAndTable(t *testing.T) {
	r := &Result{Records: 1000, RecordBytes: 200, Partitions: 8, RawRecordsPerSec: 100, SluiceRecordsPerSec: 95, Ratio: 0.95,
		MaxOffsets:     &Throughput{MaxOffsetsPerTrigger: 10, Ratio: 0.84, Batches: 3},
		ManyPartitions: &Partitions{Many: 200, Few: 8, Ratio: 0.7, RawRatio: 0.9},
		Latency: []Latency{{Label: "capacity probe", P99Ms: 900}, {Label: "at 50 % of capacity", P99Ms: 51},
			{Label: "light load", AskedPerSec: 10000, P99Ms: 10},
			// The opt-in's rows are shown but set no verdict: a low p99 with
			// asyncProgressTrackingEnabled does not meet the default's target.
			{Label: "at 50 % of capacity, " + asyncLabel, AsyncProgress: true, P99Ms: 5},
			{Label: "light load, " + asyncLabel, AsyncProgress: true, AskedPerSec: 10000, P99Ms: 5}},
		CPU:    &CPU{Ratio: 1.11},
		Idle:   &Idle{Seconds: 30, PercentOfCore: 0.1},
		Memory: &Memory{PeakWithBudget: 10 << 20, LimitBytes: 20 << 20, WithinBudgetPlus: true},
		Stateful: &Stateful{Keys: 10000, Window: "10 seconds", Watermark: "10 seconds", Ratio: 0.49, Met: false,
			StatefulCPUSecPerMillion: 4.25, StatelessCPUSecPerMillion: 0.75},
	}
	want := map[string]bool{
		"throughput ratio, default trigger":         true,  // 0.95 ≥ 0.95
		"throughput ratio, maxOffsetsPerTrigger=10": false, // 0.84 < 0.85
		"200 partitions vs raw franz-go on 200":     true,  // 0.90 ≥ 0.90
		"p99 latency at 50 % load (ms)":             false, // 51 > 50
		"p99 latency at 10000/s (ms)":               true,  // 10 ≤ 10
		"CPU per million records vs raw franz-go":   false, // 1.11 > 1.1
		"idle CPU (% of a core)":                    true,  // 0.1 ≤ 0.1
		"peak RSS with budget (MiB)":                true,
		"stateful window count vs stateless query":  false, // 0.49 < 0.5
	}
	got := Targets(r)
	if len(got) != len(want) {
		t.Fatalf("targets %+v, want %d", got, len(want))
	}
	for _, tg := range got {
		if met, ok := want[tg.Name]; !ok || met != tg.Met {
			t.Errorf("target %+v: want met=%v (known: %v)", tg, met, ok)
		}
	}
	table := Table(r).Text()
	for _, s := range []string{"throughput, default trigger", "maxOffsetsPerTrigger=10", "200 partitions, same records", "raw franz-go on 200",
		"capacity probe", "latency at 50 %", "latency light load", "latency light load, asyncProgressTrackingEnabled (opt-in, at-least-once)", "CPU s per million", "idle CPU", "peak RSS", "10 seconds-window count per key (10,000 keys",
		"CPU s per million records 4.25 vs stateless 0.75"} {
		if !strings.Contains(table, s) {
			t.Errorf("table lacks %q:\n%s", s, table)
		}
	}
	// Every target appears in the table with its verdict.
	if n := strings.Count(table, " yes") + strings.Count(table, " NO"); n != len(want) {
		t.Errorf("table has %d verdicts, want %d:\n%s", n, len(want), table)
	}
}

// TestScaleoutTargetAndTable checks the scale-out target (2 members over
// 1) and its rows, and that the measurement runs only when named.
func TestScaleoutTargetAndTable(t *testing.T) {
	for _, tc := range []struct {
		ratio2 float64
		met    bool
	}{{1.8, true}, {1.79, false}} {
		r := &Result{RecordBytes: 200, Scaleout: &Scaleout{Records: 1000, Partitions: 16, Target: TargetScaleout2, Rows: []ScaleoutRow{
			{Members: 1, RecordsPerSec: 100, Ratio: 1}, {Members: 2, RecordsPerSec: 100 * tc.ratio2, Ratio: tc.ratio2},
			{Members: 4, RecordsPerSec: 250, Ratio: 2.5, StableAfterMs: 1234, MachineBusy: 0.97}}}}
		got := Targets(r)
		if len(got) != 1 || got[0].Name != "scale-out, 2 members vs 1" || got[0].Met != tc.met || got[0].Value != tc.ratio2 {
			t.Errorf("ratio %.2f: targets %+v, want met=%v", tc.ratio2, got, tc.met)
		}
		table := Table(r).Text()
		for _, s := range []string{"scale-out: 1 member(s), GOMAXPROCS=1", "scale-out: 2 member(s)", "scale-out: 4 member(s)", "stable after 1234 ms", "cores 97 % busy while stable", "1 member 100/s", "2.50"} {
			if !strings.Contains(table, s) {
				t.Errorf("table lacks %q:\n%s", s, table)
			}
		}
		if n := strings.Count(table, " yes") + strings.Count(table, " NO"); n != 1 {
			t.Errorf("table has %d verdicts, want 1:\n%s", n, table)
		}
	}
	c := Config{Records: 1, Partitions: 1, ManyPartitions: 1, Rounds: 1, MemoryRecords: 1, MemoryRecordBytes: 1,
		MemoryBudget: 1, Command: func(a ...string) *exec.Cmd { return exec.Command("sluice", a...) }, Only: []string{"scaleout"}}
	if err := c.Validate(); err != nil {
		t.Errorf("--only scaleout: %v", err)
	}
	if slices.Contains(Parts, "scaleout") {
		t.Error("scaleout is in the default set: `sluice bench` would start member processes unasked")
	}
}

// TestScratchDirKeptUntilTheBenchEnds: under Run a run's directory is made
// in the bench's work directory and outlives the run (Run removes them all
// at its end); outside Run it is made in the system's temporary directory
// and removed when the run is done.
func TestScratchDirKeptUntilTheBenchEnds(t *testing.T) {
	work := t.TempDir()
	cfg := &Config{workDir: work}
	dir, done, err := cfg.scratchDir("query-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != work {
		t.Fatalf("run directory %s is not in the work directory %s", dir, work)
	}
	done()
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the run's directory went with the run: %v", err)
	}

	var none Config
	dir, done, err = none.scratchDir("query-")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(dir) != filepath.Clean(os.TempDir()) {
		t.Fatalf("run directory %s is not in %s", dir, os.TempDir())
	}
	done()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the run's directory outlived the run outside Run: %v", err)
	}
}
