package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/internal/admission"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/source/sourcetest"
	"github.com/sluice-stream/sluice/internal/trigger/triggertest"
)

// TestActivity: what the engine reports to the health watchdog. While the
// planner asks the source what is available the query is active at that
// step since the step began; between triggers it is not. CaughtUp holds
// only when the last look found nothing to read: records held back by
// minOffsetsPerTrigger are not "caught up", although no batch runs. A
// query that has stopped says so (Ended).
func TestActivity(t *testing.T) {
	src := sourcetest.New(sourcetest.Options{Partitions: 1})
	src.AppendN(0, 5)
	clk := triggertest.New(t0)
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var atAvailable []engine.Activity
	var availableAt []time.Time
	var betweenTriggers []engine.Activity
	query := func() *engine.Query {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.q
	}
	src.SetHook(func(_ context.Context, at sourcetest.Point) error {
		if at.Op == sourcetest.OpAvailable {
			a := query().Activity()
			mu.Lock()
			atAvailable = append(atAvailable, a)
			availableAt = append(availableAt, clk.Now())
			mu.Unlock()
		}
		return nil
	})
	clk.OnSleep(func(time.Duration) {
		a := query().Activity()
		mu.Lock()
		betweenTriggers = append(betweenTriggers, a)
		n := len(betweenTriggers)
		mu.Unlock()
		switch n {
		case 1: // the first 5 records were read; add 20, fewer than the minimum
			src.AppendN(0, 20)
		case 2:
			cancel()
		}
		clk.Advance(time.Second) // so that Since tells the steps apart
	})
	err := run(t, ctx, engine.Config{Source: src, Sink: newSink("main", nil), CheckpointDir: t.TempDir(), Clock: clk,
		Limits: admission.Limits{MinOffsetsPerTrigger: 100, MaxTriggerDelay: time.Hour}, Observers: []engine.Observer{rec}})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.rows(); len(got) != 1 || got[0] != 5 {
		t.Fatalf("batches read %v rows, want one batch of 5 (then 20 held back by minOffsetsPerTrigger)", got)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(atAvailable) < 3 || len(betweenTriggers) != 2 {
		t.Fatalf("%d looks at the source, %d sleeps between triggers; want ≥ 3 and 2", len(atAvailable), len(betweenTriggers))
	}
	for i, a := range atAvailable {
		if !a.Active || a.Step != "Getting offsets from Fake[t]" || !a.Since.Equal(availableAt[i]) || a.Ended {
			t.Errorf("look %d at the source: %+v, want active at %q since %v", i, a, "Getting offsets from Fake[t]", availableAt[i])
		}
	}
	if a := betweenTriggers[0]; a.Active || !a.CaughtUp || a.Step != "Waiting for data to arrive" {
		t.Errorf("after reading everything: %+v, want inactive and caught up", a)
	}
	if a := betweenTriggers[1]; a.Active || a.CaughtUp {
		t.Errorf("with 20 records held back by minOffsetsPerTrigger: %+v, want inactive and not caught up", a)
	}
	if a := query().Activity(); !a.Ended || a.Active {
		t.Errorf("after the stop: %+v, want ended and inactive", a)
	}
}
