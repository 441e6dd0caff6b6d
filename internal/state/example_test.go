package state_test

import (
	"fmt"
	"os"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/state"
)

// A windowed count per device with append-mode eviction, the way a
// stateful operator uses the two packages for one shuffle partition: each
// batch opens the version it starts from, merges its partial aggregates into
// the stored ones, evicts (and emits) the windows the watermark passed, and
// commits the next version.
func Example() {
	dir, _ := os.MkdirTemp("", "state-example")
	defer os.RemoveAll(dir)

	count := must(aggregate.New(aggregate.Spec{Func: aggregate.CountStar}))
	schemas := state.Schemas{
		Key:   batch.Schema{Fields: []batch.Field{{Name: "window_end", Type: batch.Timestamp}, {Name: "device", Type: batch.String, Nullable: true}}},
		Value: batch.Schema{Fields: []batch.Field{{Name: "count", Type: batch.Long}}},
	}
	p := must(state.OpenProvider(state.ID{Root: dir + "/state", Operator: 0, Partition: 0}, schemas, state.DefaultConfig()))
	defer p.Close()

	type row struct {
		windowEnd int64
		device    string
	}
	batches := []struct {
		rows      []row
		watermark int64
	}{
		{[]row{{10, "a"}, {10, "a"}, {20, "b"}}, 0},
		{[]row{{20, "a"}}, 10}, // the watermark reaches window 10's end: emit it
		{nil, 20},              // a no-data batch evicts window 20
	}
	for batchID, b := range batches {
		s := must(p.Open(int64(batchID))) // version = batchId
		for _, r := range b.rows {        // late rows (window end ≤ watermark) were dropped before this point
			// (A real operator pre-aggregates per group with Update over a
			// column selection; here each row is its own partial.)
			partial := count.NewAccumulator()
			partial.Update(&batch.Column{Type: batch.Null, Len: 1}, nil)

			key := state.AppendKeyBytes(state.AppendKeyInt64(nil, r.windowEnd), []byte(r.device))
			acc := count.NewAccumulator()
			if old, ok, _ := s.Get(key); ok {
				acc.LoadState(old)
			}
			acc.Merge(partial)
			if err := s.Put(key, acc.AppendState(nil)); err != nil {
				panic(err) // a *state.MemoryExceededError: stop admitting, fail the query
			}
		}
		// Append mode: every window with end ≤ watermark is final.
		upper := state.AppendKeyInt64(nil, b.watermark+1)
		s.RemoveRange(nil, upper, func(key, value []byte) error {
			k, _ := state.DecodeKey(key, []batch.Kind{batch.Timestamp, batch.String})
			acc := count.NewAccumulator()
			acc.LoadState(value)
			fmt.Printf("batch %d emits window_end=%d device=%s count=%d\n", batchID, k[0], k[1], acc.Result())
			return nil
		})
		m := s.Metrics()
		v := must(s.Commit())
		p.Maintenance()
		fmt.Printf("batch %d committed version %d: %d keys, %d updated, %d removed\n", batchID, v, m.NumKeys, m.NumRowsUpdated, m.NumRowsRemoved)
	}
	// Output:
	// batch 0 committed version 1: 2 keys, 3 updated, 0 removed
	// batch 1 emits window_end=10 device=a count=2
	// batch 1 committed version 2: 2 keys, 1 updated, 1 removed
	// batch 2 emits window_end=20 device=a count=1
	// batch 2 emits window_end=20 device=b count=1
	// batch 2 committed version 3: 0 keys, 0 updated, 2 removed
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
