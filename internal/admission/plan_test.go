package admission

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/partition"
	"github.com/sluice-stream/sluice/internal/source"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestPlan(t *testing.T) {
	hist := History{Batches: []BatchStat{{Rows: 1000, Bytes: 300_000, Processing: 100 * time.Millisecond, Limit: 1000}}}
	cases := []struct {
		name       string
		in         Input
		wantLimit  int64
		wantReason string
		wantRead   source.ReadLimit
		wantSizes  []int64 // admitted per partition (partitioned sources)
	}{
		{"no limits", Input{Limits: Limits{Mode: ModeStatic}, Start: offs(0, 0), Latest: offs(10, 20)},
			0, "all available", source.ReadLimit{}, []int64{10, 20}},
		{"maxOffsetsPerTrigger split by backlog", Input{Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 1000}, Start: offs(0, 0, 0), Latest: offs(9000, 900, 100)},
			1000, "maxOffsetsPerTrigger", source.ReadLimit{MaxRows: 1000}, []int64{900, 90, 10}},
		{"per-partition default (Event Hubs)", Input{Limits: Limits{Mode: ModeStatic, DefaultMaxPerPartition: 1000}, Start: offs(0, 0, 0), Latest: offs(5000, 5000, 5000)},
			3000, "default limit: 1000 per partition × 3 partitions", source.ReadLimit{MaxRows: 3000}, []int64{1000, 1000, 1000}},
		{"maxOffsetsPerTrigger wins over the per-partition default", Input{Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 60, DefaultMaxPerPartition: 1000}, Start: offs(0, 0, 0), Latest: offs(50, 50, 50)},
			60, "maxOffsetsPerTrigger", source.ReadLimit{MaxRows: 60}, []int64{20, 20, 20}},
		{"once ignores read limits", Input{Once: true, Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 10, MinOffsetsPerTrigger: 5, MaxTriggerDelay: time.Hour, DefaultMaxPerPartition: 1}, Start: offs(0, 0), Latest: offs(100, 100)},
			0, "all available (Trigger.Once ignores read limits)", source.ReadLimit{}, []int64{100, 100}},
		{"once still honours the memory budget", Input{Once: true, Limits: Limits{Mode: ModeStatic, MemoryBudget: 4 << 20}, Start: offs(0), Latest: offs(1 << 20)},
			(4<<20 - 1<<20) / InitialBytesPerRecord, "memory budget (first batch: assumed 2 KiB per record)", source.ReadLimit{MaxRows: 1536}, []int64{1536}},
		{"budget from measured bytes per record, a quarter held back", Input{Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 100_000, MemoryBudget: 4_000_000}, History: hist},
			10_000, "memory budget", source.ReadLimit{MaxRows: 10_000}, nil},
		{"state held back and state per record added (stateful query)", Input{Limits: Limits{Mode: ModeStatic, MemoryBudget: 4_000_000}, History: hist, Reserved: 1_000_000, ExtraBytesPerRecord: 200},
			4000, "memory budget", source.ReadLimit{MaxRows: 4000}, nil},
		{"first batch of a stateful query", Input{Once: true, Limits: Limits{Mode: ModeStatic, MemoryBudget: 4 << 20}, ExtraBytesPerRecord: 1024},
			(4<<20 - 1<<20) / (InitialBytesPerRecord + 1024), "memory budget (first batch: assumed 2 KiB per record)", source.ReadLimit{MaxRows: 1024}, nil},
		{"budget above the max leaves the max", Input{Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 500, MemoryBudget: 4_000_000}, History: hist},
			500, "maxOffsetsPerTrigger", source.ReadLimit{MaxRows: 500}, nil},
		{"file source: maxFilesPerTrigger passed through", Input{Limits: Limits{Mode: ModeStatic, MaxFilesPerTrigger: 2}},
			0, "maxFilesPerTrigger", source.ReadLimit{MaxFiles: 2}, nil},
		{"file source: maxBytesPerTrigger passed through", Input{Limits: Limits{Mode: ModeStatic, MaxBytesPerTrigger: 10}},
			0, "maxBytesPerTrigger", source.ReadLimit{MaxBytes: 10}, nil},
		{"file source under once: all files", Input{Once: true, Limits: Limits{Mode: ModeStatic, MaxFilesPerTrigger: 2}},
			0, "all available (Trigger.Once ignores read limits)", source.ReadLimit{}, nil},
		{"rate source: maxRowsPerTrigger", Input{Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 7}},
			7, "maxOffsetsPerTrigger", source.ReadLimit{MaxRows: 7}, nil},
		{"adaptive, bounded by the per-partition default", Input{Limits: Limits{Mode: ModeAdaptive, TargetBatchDuration: time.Second, DefaultMaxPerPartition: 100}, Start: offs(0, 0), Latest: offs(5000, 5000)},
			200, "adaptive: maxOffsetsPerTrigger", source.ReadLimit{MaxRows: 200}, []int64{100, 100}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Now = t0
			d := Plan(c.in)
			if d.Limit != c.wantLimit || d.Reason != c.wantReason {
				t.Fatalf("limit %d (%q), want %d (%q)", d.Limit, d.Reason, c.wantLimit, c.wantReason)
			}
			if d.ReadLimit != c.wantRead {
				t.Fatalf("read limit %+v, want %+v", d.ReadLimit, c.wantRead)
			}
			if d.Mode != c.in.Limits.Mode || d.Limits != c.in.Limits || d.Delayed {
				t.Fatalf("decision %+v", d)
			}
			if c.in.Latest == nil {
				if d.End != nil {
					t.Fatalf("end offsets %v for a source that cuts its own batches", d.End)
				}
				return
			}
			if got := sizes(c.in.Start, d.End); fmt.Sprint(got) != fmt.Sprint(c.wantSizes) {
				t.Fatalf("admitted %v, want %v", got, c.wantSizes)
			}
			// The limit bound the batch exactly when it left records behind.
			if left := partition.Total(d.End, c.in.Latest); d.Bound != (left > 0) {
				t.Fatalf("Bound %v with %d records left behind", d.Bound, left)
			}
		})
	}
}

// TestPlanSplitRotatesByBatchID: the split of a cap smaller than the
// partitions with backlog rotates with the batch id, and the same batch
// id plans the same ranges (a replayed batch is re-planned identically).
func TestPlanSplitRotatesByBatchID(t *testing.T) {
	in := Input{Now: t0, Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 2}, Start: offs(0, 0, 0), Latest: offs(5, 5, 5)}
	want := map[int64]string{0: "[1 1 0]", 1: "[0 1 1]", 2: "[1 0 1]", 3: "[1 1 0]"}
	for id := int64(0); id < 4; id++ {
		in.BatchID = id
		for again := 0; again < 2; again++ {
			if got := fmt.Sprint(sizes(in.Start, Plan(in).End)); got != want[id] {
				t.Fatalf("batch %d: admitted %s, want %s", id, got, want[id])
			}
		}
	}
}

// TestPlanMinOffsetsPerTriggerAndMaxTriggerDelay replays Spark's delayBatch
// on the engine's clock: the first check never delays, fewer records than
// the minimum wait until maxTriggerDelay has passed since the last
// release, released batches are capped by maxOffsetsPerTrigger.
func TestPlanMinOffsetsPerTriggerAndMaxTriggerDelay(t *testing.T) {
	lim := Limits{}.WithSourceDefaults(source.ReadLimit{MinRows: 100, MaxRows: 150, MaxTriggerDelay: 400 * time.Millisecond})
	if lim.Mode != ModeStatic || lim.MinOffsetsPerTrigger != 100 || lim.MaxOffsetsPerTrigger != 150 || lim.MaxTriggerDelay != 400*time.Millisecond {
		t.Fatalf("limits from the source's defaults: %+v", lim)
	}
	start, latest := offs(0, 0), offs(0, 0)
	now := t0
	var hist History
	batch := int64(0)
	produce := func(perPartition int64) {
		for p := range latest {
			latest[p] += perPartition
		}
	}
	step := func(what string, wantRows int64) {
		t.Helper()
		d := Plan(Input{BatchID: batch, Now: now, Limits: lim, Start: start, Latest: maps.Clone(latest), History: hist})
		if d.Released {
			hist.LastRelease = now
		}
		got := partition.Total(start, d.End)
		if got != wantRows || (wantRows == 0 && partition.Total(start, latest) > 0 && !d.Delayed) {
			t.Fatalf("%s: batch of %d rows (delayed %v: %s), want %d", what, got, d.Delayed, d.Reason, wantRows)
		}
		if got > 0 {
			batch++
		}
		start = d.End
	}
	produce(10) // 20 available
	step("the first check never delays (as Spark's lastTriggerMillis starts at 0)", 20)
	produce(25) // 50 available < 100
	step("below minOffsetsPerTrigger within maxTriggerDelay: delayed", 0)
	produce(30) // 110 available ≥ 100
	step("minOffsetsPerTrigger reached: released", 110)
	produce(100) // 200 available
	step("released batches are capped by maxOffsetsPerTrigger", 150)
	now = now.Add(399 * time.Millisecond)
	step("the remaining 50 wait for more data", 0)
	now = now.Add(time.Millisecond)
	step("maxTriggerDelay passed: released below the minimum", 50)
	step("nothing new", 0)
	d := Plan(Input{Now: now, Limits: lim, Start: start, Latest: offs(start[tp(0)]+10, start[tp(1)]), History: hist})
	if !d.Delayed || d.Reason != "minOffsetsPerTrigger: 10 of 100 records available, waiting up to maxTriggerDelay 400ms" {
		t.Fatalf("delayed plan: %+v", d)
	}
	if d = Plan(Input{Once: true, Now: now, Limits: lim, Start: start, Latest: offs(start[tp(0)]+10, start[tp(1)]), History: hist}); d.Delayed || partition.Total(start, d.End) != 10 {
		t.Fatalf("Trigger.Once must not delay: %+v", d)
	}
}

func TestDecisionConfAndReplay(t *testing.T) {
	d := Plan(Input{Now: t0, Limits: Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 250, TriggerInterval: 2 * time.Second, MemoryBudget: 1 << 30},
		Start: offs(0), Latest: offs(1000)})
	conf := d.Conf()
	want := map[string]string{
		"sluice.admission.mode": "static", "sluice.admission.limit": "250", "sluice.admission.reason": "maxOffsetsPerTrigger",
		"sluice.maxOffsetsPerTrigger": "250", "sluice.triggerIntervalMs": "2000", "sluice.memory.budget": "1073741824",
	}
	if !maps.Equal(conf, want) {
		t.Fatalf("conf %v, want %v", conf, want)
	}
	if c := (Decision{Mode: ModeAdaptive, Limit: 7, Reason: "adaptive: estimate"}).Conf(); len(c) != 3 {
		t.Fatalf("unset limits must not be recorded: %v", c)
	}
	now := Limits{Mode: ModeStatic, MaxOffsetsPerTrigger: 1000}
	r := Replayed(conf, now)
	if r.Mode != "static" || r.Limit != 250 || r.Reason != "replay of the logged batch" || r.Limits != now {
		t.Fatalf("replayed %+v", r)
	}
}

func TestHistoryKeepsTheNewest(t *testing.T) {
	var h History
	for i := 1; i <= HistorySize+5; i++ {
		h.Add(BatchStat{Rows: int64(i)})
	}
	if len(h.Batches) != HistorySize || h.Batches[0].Rows != 6 || h.Batches[HistorySize-1].Rows != HistorySize+5 {
		t.Fatalf("history %v", h.Batches)
	}
	if BufferShare(1<<20) != 256<<10 {
		t.Fatalf("BufferShare(1 MiB) = %d, want a quarter", BufferShare(1<<20))
	}
}
