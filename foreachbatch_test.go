package sluice

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
)

// TestForeachBatchOncePerCommitAgainOnReplay: the callback sees each batch
// id once per successful commit, and a batch interrupted before its commit
// is seen again — same id, same rows — after the restart.
func TestForeachBatchOncePerCommitAgainOnReplay(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "fb", Partitions: 2})
	preload(t, b.Addr(), "fb", 2, 50)
	chk := t.TempDir()
	var mu sync.Mutex
	calls := map[int64][]string{} // batch id → rows seen per call, joined
	var order []int64
	fn := func(_ context.Context, bt *batch.Batch, id int64) error {
		var rows []string
		for i := 0; i < bt.N; i++ {
			r := bt.Row(i)
			rows = append(rows, fmt.Sprintf("%v/%v", r[0], r[1]))
		}
		mu.Lock()
		defer mu.Unlock()
		order = append(order, id)
		calls[id] = append(calls[id], strings.Join(rows, ","))
		return nil
	}
	run := func(crashAt int64) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w := NewSession(WithLogger(quietLog)).ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "fb").Option("startingOffsets", "earliest").
			Option("maxOffsetsPerTrigger", 30).Load().
			SelectExpr("partition", "offset").
			WriteStream().ForeachBatch(fn).Option("checkpointLocation", chk).Trigger(AvailableNow())
		w.hooks.beforeCommit = func(id int64) error {
			if id == crashAt {
				return fmt.Errorf("crash before commits/%d", id)
			}
			return nil
		}
		q, err := w.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q.AwaitTermination(ctx)
	}
	if err := run(2); err == nil {
		t.Fatal("first run should stop at the simulated crash")
	}
	if err := run(-1); err != nil {
		t.Fatal(err)
	}
	// 100 records / 30 per batch = batches 0..3; batch 2 was seen before the
	// crash and again in the replay, every other batch exactly once.
	want := []int64{0, 1, 2, 2, 3}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("foreachBatch calls %v, want %v", order, want)
	}
	if calls[2][0] != calls[2][1] {
		t.Fatalf("replayed batch 2 saw different rows:\n%s\n%s", calls[2][0], calls[2][1])
	}
	total := 0
	for _, id := range []int64{0, 1, 2, 3} {
		total += strings.Count(calls[id][0], "/")
	}
	if total != 100 {
		t.Fatalf("batches 0..3 held %d rows, want 100", total)
	}
}
