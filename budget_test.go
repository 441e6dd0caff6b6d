package sluice

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/procstat"
	"github.com/sluice-stream/sluice/progress"
)

// syncBuffer is a log sink safe for the query's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// drainWithBudget drains a small topic with sluice.memory.budget set to
// budget ("" = unset) and returns the last progress and the log.
func drainWithBudget(t *testing.T, addr, budget string) (*progress.Progress, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var logs syncBuffer
	w := NewSession(WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))).ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", addr).Option("subscribe", "bud").Option("startingOffsets", "earliest").
		Load().SelectExpr("CAST(value AS STRING) AS json").
		WriteStream().Format("noop").Option("checkpointLocation", t.TempDir()).Trigger(AvailableNow())
	if budget != "" {
		w.Option("sluice.memory.budget", budget)
	}
	q, err := w.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.AwaitTermination(ctx); err != nil {
		t.Fatal(err)
	}
	p := q.LastProgress()
	if p == nil || p.Sluice == nil {
		t.Fatalf("no progress: %+v", p)
	}
	return p, logs.String()
}

// TestMemoryBudgetByDefault: without sluice.memory.budget a query gets the
// budget derived from the process's memory limit, logged at start and shown
// in progress (sluice.memory and the admission section); "unlimited" opts
// out with a warning; a bad value names the allowed forms.
func TestMemoryBudgetByDefault(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "bud", Partitions: 2})
	preload(t, b.Addr(), "bud", 2, 100)
	lim, err := procstat.MemoryLimit()
	if err != nil {
		t.Skipf("no memory limit readable here: %v", err)
	}
	want := admission.DefaultBudget(lim.Bytes)

	p, logs := drainWithBudget(t, b.Addr(), "")
	m := p.Sluice.Memory
	if m == nil || m.BudgetBytes != want || !strings.HasPrefix(m.BudgetOrigin, "derived: a quarter of ") || !strings.Contains(m.BudgetOrigin, lim.Source) {
		t.Errorf("default: memory %+v, want budget %d derived from %s", m, want, lim.Source)
	}
	if a := p.Sluice.Admission; a == nil || a.MemoryBudgetBytes != want {
		t.Errorf("default: admission %+v, want memoryBudgetBytes %d", a, want)
	}
	if !strings.Contains(logs, `msg="memory budget"`) || !strings.Contains(logs, "budget_bytes="+strconv.FormatInt(want, 10)) {
		t.Errorf("the derived budget is not logged:\n%s", logs)
	}

	p, logs = drainWithBudget(t, b.Addr(), "32MiB")
	if m := p.Sluice.Memory; m == nil || m.BudgetBytes != 32<<20 || m.BudgetOrigin != "sluice.memory.budget" {
		t.Errorf("32MiB: memory %+v", m)
	}

	p, logs = drainWithBudget(t, b.Addr(), "Unlimited")
	if m := p.Sluice.Memory; m == nil || m.BudgetBytes != 0 || m.BudgetOrigin != "unlimited" {
		t.Errorf("unlimited: memory %+v", m)
	}
	if a := p.Sluice.Admission; a == nil || a.MemoryBudgetBytes != 0 || a.Limit != 0 {
		t.Errorf("unlimited: admission %+v, want no limit", a)
	}
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "sluice.memory.budget is unlimited") {
		t.Errorf("unlimited: no warning:\n%s", logs)
	}

	_, err = NewSession(WithLogger(quietLog)).ReadStream().Format("kafka").
		Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "bud").Load().
		WriteStream().Format("noop").Option("sluice.memory.budget", "lots").Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "sluice.memory.budget") || !strings.Contains(err.Error(), `"unlimited"`) {
		t.Errorf("bad budget: %v", err)
	}
}

// TestGoMemoryLimit checks the Go runtime's soft limit leaves room for the
// executable's resident pages, which the runtime does not count, so that
// the resident set (not only the heap) aims at the budget plus goLimitAim
// and stays within the budget plus BudgetOverhead; and that the limit never
// squeezes the heap below the budget plus an eighth (at least 12 MiB).
func TestGoMemoryLimit(t *testing.T) {
	const mi = 1 << 20
	for _, c := range []struct {
		budget, outside int64
		want            int64
		floored         bool
	}{
		// Nothing outside the runtime: budget + aim − margin.
		{16 * mi, 0, 16*mi + goLimitAim - goLimitMargin, false},
		// rehearse --quick phase 4: 16 MiB budget, 19 MiB of the release
		// build resident: 56 − 19 − 12 = 25 MiB is below the floor of
		// 16 + 12 = 28 MiB.
		{16 * mi, 19 * mi, 28 * mi, false},
		// A 68 MB binary mapped in large folios (45 MiB resident): the
		// floor, which still keeps the process within the 80 MiB promise.
		{16 * mi, 45 * mi, 28 * mi, false},
		// bench --only memory: 64 MiB budget, 15 MiB of the executable
		// resident after the start-up pages were released.
		{64 * mi, 15 * mi, 77 * mi, false},
		// The default budget's cap: the floor (128 + 16 MiB) wins with
		// 19 MiB of executable resident; with 50 MiB, 144 + 50 exceeds
		// 192: reported.
		{128 * mi, 19 * mi, 144 * mi, false},
		{128 * mi, 50 * mi, 144 * mi, true},
		// A tiny budget: the floor is 12 MiB above it.
		{8 * mi, 70 * mi, 20 * mi, true},
	} {
		got, floored := goMemoryLimit(c.budget, c.outside)
		if got != c.want || floored != c.floored {
			t.Errorf("goMemoryLimit(%d MiB, %d MiB) = %.1f MiB, floored %v; want %.1f MiB, %v",
				c.budget/mi, c.outside/mi, float64(got)/mi, floored, float64(c.want)/mi, c.floored)
		}
		if !floored && got > c.budget+max(c.budget/8, 12*mi) && got+c.outside+goLimitMargin != c.budget+goLimitAim {
			t.Errorf("budget %d MiB, outside %d MiB: limit %d MiB does not aim at budget + %d MiB",
				c.budget/mi, c.outside/mi, got/mi, goLimitAim/mi)
		}
		if !floored && got+c.outside > c.budget+BudgetOverhead {
			t.Errorf("budget %d MiB, outside %d MiB: limit %d MiB lets the resident set exceed budget + overhead",
				c.budget/mi, c.outside/mi, got/mi)
		}
	}
}

// TestStatefulFirstBatchBudget: a stateful query's first batch under a
// memory budget holds back the whole state share only when it may restore
// state. Started on a fresh checkpoint, batch 0 opens state version 0,
// which is empty: it holds back the exchange's eighth alone and counts a
// state entry per record ((8 − 2 − 1) MiB / (2 KiB + 256 B) = 2275
// records, not the 1 MiB / 2 KiB = 512 of a batch that held back the
// state's half too). Restarted on the same checkpoint, the first batch
// of the new run cannot know the restored state's size and holds back the
// whole share (512), as before.
func TestStatefulFirstBatchBudget(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "sfb", Partitions: 2})
	preload(t, b.Addr(), "sfb", 2, 2000)
	chk := t.TempDir()
	first := func() *progress.Progress {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		q, err := quietSession("spark.sql.shuffle.partitions", "2").ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "sfb").Option("startingOffsets", "earliest").
			Load().SelectExpr("CAST(value AS STRING) AS v").GroupBy("v").Count().
			WriteStream().Format("noop").OutputMode("update").Option("sluice.memory.budget", "8MiB").
			Option("checkpointLocation", chk).Trigger(AvailableNow()).Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range q.RecentProgress() {
			if p.NumInputRows > 0 {
				return p
			}
		}
		t.Fatal("no batch ran")
		return nil
	}
	const initial = "memory budget (first batch: assumed 2 KiB per record)"
	p := first()
	if a := p.Sluice.Admission; p.BatchID != 0 || a == nil || a.Limit != (8<<20-2<<20-1<<20)/(admission.InitialBytesPerRecord+256) ||
		a.Reason != initial || p.NumInputRows != a.Limit {
		t.Fatalf("fresh checkpoint: batch %d read %d rows, admission %+v; want batch 0 limited to 2275 (%s)", p.BatchID, p.NumInputRows, a, initial)
	}
	preload(t, b.Addr(), "sfb", 2, 1000)
	p = first()
	if a := p.Sluice.Admission; p.BatchID == 0 || a == nil || a.Limit != (1<<20)/admission.InitialBytesPerRecord || a.Reason != initial {
		t.Fatalf("restarted: batch %d, admission %+v; want the whole state share held back (limit 512, %s)", p.BatchID, a, initial)
	}
}
