package diagnose

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func tasks(n int, rows int64, fetch, transform, sink time.Duration) []Task {
	var out []Task
	for i := 0; i < n; i++ {
		out = append(out, Task{Name: fmt.Sprintf("t-%d", i), Rows: rows, Fetch: fetch, Transform: transform, Sink: sink, Total: fetch + transform + sink})
	}
	return out
}

// shuffleTasks are n stage-2 tasks of rows each taking total.
func shuffleTasks(n int, rows int64, total time.Duration) []Task {
	var out []Task
	for i := 0; i < n; i++ {
		out = append(out, Task{Name: fmt.Sprintf("shuffle-%d", i), Rows: rows, Total: total})
	}
	return out
}

func TestAnalyze(t *testing.T) {
	cases := []struct {
		name     string
		batch    Batch
		limiting string
		want     []string // substrings of the findings, in order
	}{
		{
			name:     "slow sink",
			batch:    Batch{Duration: 1000 * ms, Checkpoint: 20 * ms, Workers: 2, Tasks: tasks(2, 1000, 100*ms, 50*ms, 780*ms)},
			limiting: StageSink,
			want:     []string{"sink write is 78 % of batch time; admitting more will not help"},
		},
		{
			name: "slow object store",
			batch: Batch{Duration: 1000 * ms, Checkpoint: 20 * ms, Workers: 2, Tasks: func() []Task {
				ts := tasks(2, 1000, 100*ms, 50*ms, 780*ms)
				for i := range ts {
					ts[i].Store = 700 * ms // of the 780 ms in the sink, uploads
				}
				return ts
			}()},
			limiting: StageStore,
			want:     []string{"waiting for the store (uploads, disk writes) is 70 % of batch time: the store is the bottleneck"},
		},
		{
			name: "skewed partition",
			batch: Batch{Duration: 1000 * ms, Workers: 4,
				Tasks:   append(tasks(3, 100, 50*ms, 50*ms, 50*ms), Task{Name: "orders-3", Rows: 2000, Fetch: 300 * ms, Transform: 300 * ms, Sink: 300 * ms, Total: 900 * ms}),
				Backlog: map[string]int64{"orders-0": 1300, "orders-1": 1300, "orders-2": 1300, "orders-3": 6100}},
			want: []string{"task orders-3 took 6.0× the median task", "partition orders-3 holds 61 % of the backlog: skew"},
		},
		{
			name:     "too many partitions",
			batch:    Batch{Duration: 2250 * ms, Checkpoint: 10 * ms, Workers: 2, Tasks: tasks(200, 10, 5*ms, 2*ms, 2*ms)},
			limiting: StageTransform, // no dominant stage above 40 % is fine too; the finding matters
			want:     []string{"200 tasks on 2 workers = 100 waves; per-task overhead 9ms is 40 % of the batch"},
		},
		{
			name:     "checkpoint dominates tiny batches",
			batch:    Batch{Duration: 100 * ms, Checkpoint: 70 * ms, Workers: 2, Tasks: tasks(2, 5, 5*ms, 5*ms, 5*ms)},
			limiting: StageCheckpoint,
			want:     []string{"checkpoint writes are 70 % of batch time"},
		},
		{
			name:     "batch well inside its trigger blames nothing",
			batch:    Batch{Duration: 4 * ms, TriggerInterval: 5000 * ms, Checkpoint: 2 * ms, Workers: 2, Tasks: tasks(2, 5, ms/4, ms/4, ms/4)},
			limiting: StageCheckpoint,
			want:     nil,
		},
		{
			// 200 state stores committed every batch: the commits dominate.
			name: "state commits of many stores",
			batch: Batch{Duration: 1000 * ms, Checkpoint: 20 * ms, Workers: 2, Tasks: tasks(2, 1000, 50*ms, 50*ms, 20*ms),
				Shuffle: shuffleTasks(200, 50, 2*ms), StateCommit: 450 * ms,
				Operators: []Operator{{ID: 0, Name: "stateStoreSave", Update: 80 * ms, Removal: 20 * ms, Commit: 900 * ms, Rows: 56000, Stores: 200}}},
			limiting: StageState,
			want:     []string{"stateful operator 0 (stateStoreSave) is the bottleneck: state is 65 % of batch time (updates 80ms, evictions 20ms, commits 900ms over 200 state stores; 56,000 keys) — committing 200 stores every batch dominates: lower spark.sql.shuffle.partitions"},
		},
		{
			// A deduplication feeding an aggregation: the aggregation
			// (operator 1) is the slow one, and it is CPU-bound.
			name: "state updates of the slowest operator",
			batch: Batch{Duration: 1000 * ms, Workers: 2, Tasks: tasks(2, 1000, 50*ms, 50*ms, 20*ms),
				Shuffle: shuffleTasks(4, 5000, 350*ms), StateCommit: 20 * ms,
				Operators: []Operator{{ID: 0, Name: "dedupe", Update: 100 * ms, Commit: 10 * ms, Stores: 4}, {ID: 1, Name: "stateStoreSave", Update: 600 * ms, Removal: 50 * ms, Commit: 10 * ms, Stores: 4}}},
			limiting: StageState,
			want:     []string{"stateful operator 1 (stateStoreSave) is the bottleneck: state is 72 % of batch time (updates 600ms, evictions 50ms, commits 10ms over 4 state stores; 0 keys) — state updates are CPU-bound"},
		},
		{
			// One hot key: shuffle partition 3 gets most rows. The empty
			// partitions (keys land on few of many) are not the median.
			name: "skewed shuffle partition",
			batch: Batch{Duration: 1000 * ms, Workers: 2, Tasks: tasks(2, 1000, 50*ms, 50*ms, 20*ms),
				Shuffle: append(append(shuffleTasks(3, 100, 40*ms), Task{Name: "shuffle-3", Rows: 2700, Total: 600 * ms}), shuffleTasks(20, 0, ms/10)...)},
			limiting: StageState, // 36 %: no stage finding, the skew is the news
			want:     []string{"shuffle partition 3 took 15.0× the median stage-2 task with 90 % of the rows: skewed keys"},
		},
		{
			name: "keys on few partitions of many are not skew",
			batch: Batch{Duration: 1000 * ms, Workers: 2, Tasks: tasks(2, 1000, 300*ms, 300*ms, 20*ms),
				Shuffle: append(shuffleTasks(4, 500, 60*ms), shuffleTasks(196, 0, ms/10)...)},
			want: nil,
		},
		{
			name:     "healthy batch says nothing",
			batch:    Batch{Duration: 1000 * ms, Checkpoint: 100 * ms, Workers: 2, Tasks: tasks(2, 100, 300*ms, 300*ms, 300*ms)},
			limiting: "",
			want:     nil,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Analyze(c.batch)
			if len(r.Findings) != len(c.want) {
				t.Fatalf("findings %q, want %d matching %q (shares %v)", r.Findings, len(c.want), c.want, r.Shares)
			}
			for i, w := range c.want {
				if !strings.Contains(r.Findings[i].Message, w) {
					t.Errorf("finding %d = %q, want it to contain %q", i, r.Findings[i].Message, w)
				}
			}
			if c.limiting != "" && c.name != "too many partitions" && r.Limiting != c.limiting {
				t.Errorf("limiting %q, want %q (shares %v)", r.Limiting, c.limiting, r.Shares)
			}
		})
	}
}

func TestPerTaskOverheadIntercept(t *testing.T) {
	// total = 4ms + 1µs/row
	var ts []Task
	for _, rows := range []int64{100, 1000, 5000, 20000} {
		ts = append(ts, Task{Rows: rows, Total: 4*ms + time.Duration(rows)*time.Microsecond})
	}
	if got := perTaskOverhead(ts); got < 3900*time.Microsecond || got > 4100*time.Microsecond {
		t.Fatalf("overhead %s, want ≈ 4ms", got)
	}
}

func TestReadLimit(t *testing.T) {
	// The case: 12,000 per 2 s trigger, batches take 1.1 s of which
	// 1 s grows with the records; 112,000 behind, 2,000/s arriving.
	base := Limit{Option: "maxOffsetsPerTrigger", Limit: 12000, Bound: true, TriggerInterval: 2 * time.Second,
		Duration: 1100 * time.Millisecond, Processing: time.Second, Rows: 12000, Backlog: 112000, Arrival: 2000}
	tests := []struct {
		name string
		mod  func(*Limit)
		want string // "" = no finding
	}{
		// Fill 80 % of 2 s = 1.6 s − 0.1 s fixed = 1.5 s at 83.3 µs per
		// record = 18,000; drains at 9,000/s − 2,000/s = 7,000/s → 16 s.
		{"binding", func(*Limit) {}, "read limit is binding: capacity ≈ 11,000/s, admitting 6,000/s; raising maxOffsetsPerTrigger to ≈ 18,000 would drain in 16 s"},
		{"arrivals unknown count as none", func(l *Limit) { l.Arrival = math.NaN() }, "would drain in 13 s"},
		// A cheap sink: 1.6 s would fit 1.5 million records, but the next
		// batch can find no more than 7,835 + 5 s × 4,006/s = 27,865:
		// suggest 28,000, which drains at 5,600/s − 4,006/s in 5 s.
		{"no more than the next batch could find", func(l *Limit) {
			*l = Limit{Limit: 10000, Bound: true, TriggerInterval: 5 * time.Second, Duration: 80 * time.Millisecond,
				Processing: 75 * time.Millisecond, Rows: 10000, Backlog: 7835, Arrival: 4006}
		}, "capacity ≈ 130,000/s, admitting 2,000/s; raising maxOffsetsPerTrigger to ≈ 28,000 would drain in 5 s"},
		{"the backlog fits the limit", func(l *Limit) { l.Backlog = 1000; l.Arrival = 0; l.Limit = 20000 }, ""},
		{"arrivals beyond what fits", func(l *Limit) { l.Arrival = 9500 },
			"even maxOffsetsPerTrigger ≈ 18,000 (the most a 2s trigger fits) would not keep up with 9,500/s arriving"},
		{"not bound", func(l *Limit) { l.Bound = false }, ""},
		{"nothing behind", func(l *Limit) { l.Backlog = 0 }, ""},
		{"batches fill the trigger", func(l *Limit) { l.Duration = 1700 * time.Millisecond; l.Processing = 1600 * time.Millisecond }, ""},
		{"default trigger", func(l *Limit) { l.TriggerInterval = 0 }, ""},
		{"no limit", func(l *Limit) { l.Limit = 0 }, ""},
	}
	for _, tt := range tests {
		l := base
		tt.mod(&l)
		f, ok := ReadLimit(l)
		switch {
		case tt.want == "" && ok:
			t.Errorf("%s: unexpected finding %q", tt.name, f.Message)
		case tt.want != "" && (!ok || !strings.Contains(f.Message, tt.want)):
			t.Errorf("%s: finding %q (%v), want it to contain %q", tt.name, f.Message, ok, tt.want)
		}
	}
	stage := Result{Limiting: StageSink, Findings: []Finding{{"stage", "sink write is 72 % of batch time; admitting more will not help"}, {"skew", "task t-3 took 3.0× the median task"}}}
	f, _ := ReadLimit(base)
	got := stage.WithReadLimit(f)
	if got.Limiting != StageReadLimit || len(got.Findings) != 2 || got.Findings[0].Kind != "limit" || got.Findings[1].Kind != "skew" {
		t.Errorf("WithReadLimit = %+v", got)
	}
	if len(stage.Findings) != 2 || stage.Limiting != StageSink {
		t.Error("WithReadLimit changed its receiver")
	}
}
