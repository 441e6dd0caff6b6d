package file

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/sink/memory"
	"github.com/sluice-stream/sluice/internal/source/rate"
	"github.com/sluice-stream/sluice/internal/trigger"
)

func TestScratchEngine(t *testing.T) {
	in, cp := t.TempDir(), t.TempDir()
	put(t, in, "a.json", `{"a":1}`+"\n"+`{"a":2}`+"\n", 0)
	put(t, in, "b.json", `{"a":3}`+"\n", 1)
	put(t, in, "c.json", `{"a":4}`+"\n", 2)
	opts := map[string]string{"path": in, "schema": "a INT", "maxFilesPerTrigger": "2"}
	run := func() *memory.Sink {
		src, err := New("json", opts, filepath.Join(cp, "sources", "0"), quiet)
		if err != nil {
			t.Fatal(err)
		}
		snk := memory.New()
		q, err := engine.Start(context.Background(), engine.Config{Source: src, Sink: snk, CheckpointDir: cp,
			Trigger: trigger.Trigger{Kind: trigger.AvailableNow}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := q.AwaitTermination(ctx); err != nil {
			t.Fatal(err)
		}
		return snk
	}
	s1 := run()
	t.Logf("run1 batches %v rows %v", s1.BatchIDs(), s1.Rows())
	put(t, in, "d.json", `{"a":5}`+"\n", 3)
	s2 := run()
	t.Logf("run2 batches %v rows %v", s2.BatchIDs(), s2.Rows())

	// rate-micro-batch through the engine, twice.
	cp2 := t.TempDir()
	for i := 0; i < 2; i++ {
		src, _ := rate.NewMicroBatch(map[string]string{"rowsPerBatch": "3", "numPartitions": "2"}, quiet)
		snk := memory.New()
		q, err := engine.Start(context.Background(), engine.Config{Source: src, Sink: snk, CheckpointDir: cp2,
			Trigger: trigger.Trigger{Kind: trigger.AvailableNow}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.AwaitTermination(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Logf("rmb run %d batches %v rows %v", i, snk.BatchIDs(), snk.Rows())
	}
	// rate through the engine.
	cp3 := t.TempDir()
	src, _ := rate.New(map[string]string{"rowsPerSecond": "5", "numPartitions": "2"}, quiet)
	snk := memory.New()
	q, err := engine.Start(context.Background(), engine.Config{Source: src, Sink: snk, CheckpointDir: cp3,
		Trigger: trigger.Trigger{Kind: trigger.ProcessingTime, Interval: 500 * time.Millisecond}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2300 * time.Millisecond)
	q.Stop()
	t.Logf("rate batches %v rows %d", snk.BatchIDs(), snk.NumRows())
}
