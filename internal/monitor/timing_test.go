package monitor

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/engine"
)

var base = time.Date(2024, 5, 14, 10, 0, 0, 0, time.UTC)

func tasks(durs ...time.Duration) []engine.TaskInfo {
	var out []engine.TaskInfo
	for _, d := range durs {
		out = append(out, engine.TaskInfo{Duration: d})
	}
	return out
}

func TestTiming(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name                    string
		info                    engine.BatchInfo
		prevEnd                 time.Time
		ratio, util, skew, busy float64
		intervalMs, delayMs     int64
	}{
		// The first batch of a processingTime query: busy for 100 ms of
		// its 200 ms trigger.
		{"processingTime, 4 tasks on 2 workers",
			engine.BatchInfo{TriggerStart: base.Add(30 * ms), IntendedStart: base, TriggerInterval: 200 * ms, Workers: 2,
				Durations: map[string]time.Duration{"triggerExecution": 100 * ms}, Tasks: tasks(40*ms, 60*ms, 20*ms, 80*ms)},
			time.Time{}, 0.5, 1.0, 80.0 / 50, 0.5, 200, 30},
		{"default trigger, odd task count, idle workers",
			engine.BatchInfo{TriggerStart: base, IntendedStart: base, Workers: 4,
				Durations: map[string]time.Duration{"triggerExecution": 100 * ms}, Tasks: tasks(10*ms, 30*ms, 90*ms)},
			time.Time{}, math.NaN(), 130.0 / 400, 3, 1, 0, 0},
		{"no tasks, no intended start",
			engine.BatchInfo{TriggerStart: base, TriggerInterval: time.Second, Workers: 2,
				Durations: map[string]time.Duration{"triggerExecution": 1500 * ms}},
			time.Time{}, 1.5, math.NaN(), math.NaN(), 1, 1000, 0},
		{"zero median task time",
			engine.BatchInfo{TriggerStart: base, Workers: 1,
				Durations: map[string]time.Duration{"triggerExecution": 10 * ms}, Tasks: tasks(0, 0, 5*ms)},
			time.Time{}, math.NaN(), 0.5, math.NaN(), 1, 0, 0},
		{"started before its boundary (clock step) gives no negative delay",
			engine.BatchInfo{TriggerStart: base, IntendedStart: base.Add(time.Second), Workers: 1,
				Durations: map[string]time.Duration{"triggerExecution": 10 * ms}, Tasks: tasks(10 * ms)},
			time.Time{}, math.NaN(), 1, 1, 1, 0, 0},
		// Idle 900 ms since the previous batch ended, then busy 100 ms:
		// Flink's busy time is 10 %, whatever the workers did meanwhile.
		{"idle time between batches counts",
			engine.BatchInfo{TriggerStart: base, IntendedStart: base, TriggerInterval: time.Second, Workers: 2,
				Durations: map[string]time.Duration{"triggerExecution": 100 * ms}, Tasks: tasks(100*ms, 100*ms)},
			base.Add(-900 * ms), 0.1, 1, 1, 0.1, 1000, 0},
		// A batch overrunning its trigger is busy all the time.
		{"back to back",
			engine.BatchInfo{TriggerStart: base, IntendedStart: base, TriggerInterval: time.Second, Workers: 1,
				Durations: map[string]time.Duration{"triggerExecution": 1300 * ms}, Tasks: tasks(1200 * ms)},
			base.Add(-2 * ms), 1.3, 1200.0 / 1300, 1, 1300.0 / 1302, 1000, 0},
	}
	same := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 || (math.IsNaN(a) && math.IsNaN(b)) }
	for _, tt := range tests {
		got := Timing(&tt.info, tt.prevEnd)
		if !same(float64(got.BatchDurationVsTrigger), tt.ratio) || !same(float64(got.WorkerUtilization), tt.util) ||
			!same(float64(got.TaskSkew), tt.skew) || !same(float64(got.BusyRatio), tt.busy) ||
			got.TriggerIntervalMs != tt.intervalMs || got.SchedulingDelayMs != tt.delayMs {
			t.Errorf("%s: got ratio %v utilization %v skew %v busy %v interval %d delay %d; want %v %v %v %v %d %d", tt.name,
				got.BatchDurationVsTrigger, got.WorkerUtilization, got.TaskSkew, got.BusyRatio, got.TriggerIntervalMs, got.SchedulingDelayMs,
				tt.ratio, tt.util, tt.skew, tt.busy, tt.intervalMs, tt.delayMs)
		}
	}
}

func TestThroughput(t *testing.T) {
	info := &engine.BatchInfo{TriggerStart: base.Add(2 * time.Second), InputBytes: 4000,
		Durations: map[string]time.Duration{"triggerExecution": 500 * time.Millisecond}}
	got := Throughput(info, base)
	if got.NumInputBytes != 4000 || float64(got.InputBytesPerSecond) != 2000 || float64(got.ProcessedBytesPerSecond) != 8000 {
		t.Errorf("Throughput = %+v, want 4000 bytes, 2000 B/s in, 8000 B/s processed", got)
	}
	if first := Throughput(info, time.Time{}); !math.IsNaN(float64(first.InputBytesPerSecond)) {
		t.Errorf("first batch input bytes/s = %v, want unknown", first.InputBytesPerSecond)
	}
}
