package sluice

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/broker"
	"github.com/sluice-stream/sluice/internal/broker/brokertest"
	"github.com/sluice-stream/sluice/internal/state"
)

// TestStateVersionAfterSinkCommit: a stateful batch writes its state
// version only after the sink has committed it (its delta files may be
// created, empty, beside stage 1: state.DeltaPreparer), so a sink commit
// that fails leaves no file of the new version and no commits/N, and the
// re-run starts from the version before and ends with the right counts.
func TestStateVersionAfterSinkCommit(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "sc", Partitions: 2})
	preload(t, b.Addr(), "sc", 2, 50)
	chk := t.TempDir()
	list := func(v int64, written bool) []string { return deltaFiles(t, chk, v, written) }
	deltas := func(v int64) []string { return list(v, false) }
	var (
		mu       sync.Mutex
		atCommit []string             // version 2's deltas when the sink committed batch 1
		counts   = map[string]int64{} // partition → last count emitted
	)
	run := func(failAt int64) error {
		fn := func(_ context.Context, bt *batch.Batch, id int64) error {
			mu.Lock()
			defer mu.Unlock()
			if id == failAt {
				atCommit = list(id+1, true)
				return errors.New("sink unavailable")
			}
			for i := 0; i < bt.N; i++ {
				r := bt.Row(i)
				counts[fmt.Sprint(r[0])] = r[1].(int64)
			}
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		q, err := quietSession("spark.sql.shuffle.partitions", "2").ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "sc").Option("startingOffsets", "earliest").
			Option("maxOffsetsPerTrigger", 30).Load().
			GroupBy("partition").Count().
			WriteStream().ForeachBatch(fn).OutputMode("update").Option("checkpointLocation", chk).
			Trigger(AvailableNow()).Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q.AwaitTermination(ctx)
	}
	if err := run(1); err == nil {
		t.Fatal("the run should fail at batch 1's sink commit")
	}
	if len(atCommit) != 0 {
		t.Fatalf("when the sink committed batch 1, version 2's deltas were written already: %v", atCommit)
	}
	if left := deltas(2); len(left) != 0 {
		t.Fatalf("the failed batch left %v behind", left)
	}
	if _, err := os.Stat(filepath.Join(chk, "commits", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("commits/1 after the failed sink commit: %v", err)
	}
	if err := run(-1); err != nil {
		t.Fatal(err)
	}
	if counts["0"] != 50 || counts["1"] != 50 {
		t.Fatalf("final counts %v, want 50 per partition", counts)
	}
	if got := deltas(2); len(got) != 2 {
		t.Fatalf("version 2's deltas after the re-run: %v", got)
	}
}

// TestStatefulStage1WhileOffsetsLogged: with a staged sink, a stateful
// batch's stage 1 runs while offsets/N is written (its delta files are
// created meanwhile), its stage 2 and sink wait for offsets/N; a failed
// offsets write fails the batch with no state version written, and the
// re-run counts right.
func TestStatefulStage1WhileOffsetsLogged(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "so", Partitions: 2})
	preload(t, b.Addr(), "so", 2, 50)
	chk := t.TempDir()
	deltas := func(v int64, written bool) []string { return deltaFiles(t, chk, v, written) }
	out := &orderedCounts{chk: chk}
	fail := errors.New("offsets log unavailable")
	run := func(failAt int64) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		w := quietSession("spark.sql.shuffle.partitions", "2").ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "so").Option("startingOffsets", "earliest").
			Option("maxOffsetsPerTrigger", 30).Load().
			GroupBy("partition").Count().
			WriteStream().ForeachBatch(out.sink).OutputMode("update").Option("checkpointLocation", chk).
			Trigger(AvailableNow())
		w.hooks.beforeOffsetsLog = func(id int64) error {
			if id != 1 {
				return nil
			}
			// Batch 1's stage 1 runs meanwhile: its stores' files appear.
			deadline := time.Now().Add(10 * time.Second)
			for len(deltas(2, false)) < 2 {
				if time.Now().After(deadline) {
					out.note("batch 1's stage 1 did not start while offsets/1 was being written")
					break
				}
				time.Sleep(time.Millisecond)
			}
			if failAt == 1 {
				return fail
			}
			return nil
		}
		q, err := w.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q.AwaitTermination(ctx)
	}
	if err := run(1); !errors.Is(err, fail) {
		t.Fatalf("run = %v, want the offsets log's failure", err)
	}
	if w := deltas(2, true); len(w) != 0 {
		t.Fatalf("the batch whose offsets/1 failed wrote state version 2: %v", w)
	}
	if _, err := os.Stat(filepath.Join(chk, "commits", "1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("commits/1 after the failed offsets write: %v", err)
	}
	if err := run(-1); err != nil {
		t.Fatal(err)
	}
	out.check(t, 50)
}

// orderedCounts is the foreachBatch sink of a count per partition: it keeps
// each partition's last count and notes every batch that reached it before
// its offsets/N was durable (with commits, before commits/N−1 too).
type orderedCounts struct {
	chk     string
	commits bool
	mu      sync.Mutex
	bad     []string
	counts  map[string]int64
}

func (o *orderedCounts) sink(_ context.Context, bt *batch.Batch, id int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := os.Stat(filepath.Join(o.chk, "offsets", fmt.Sprint(id))); err != nil {
		o.bad = append(o.bad, fmt.Sprintf("batch %d reached the sink before offsets/%d: %v", id, id, err))
	}
	if _, err := os.Stat(filepath.Join(o.chk, "commits", fmt.Sprint(id-1))); o.commits && id > 0 && err != nil {
		o.bad = append(o.bad, fmt.Sprintf("batch %d reached the sink before commits/%d: %v", id, id-1, err))
	}
	if o.counts == nil {
		o.counts = map[string]int64{}
	}
	for i := 0; i < bt.N; i++ {
		r := bt.Row(i)
		o.counts[fmt.Sprint(r[0])] = r[1].(int64)
	}
	return nil
}

// note records a problem found outside the sink.
func (o *orderedCounts) note(problem string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.bad = append(o.bad, problem)
}

// problems returns what was noted so far.
func (o *orderedCounts) problems() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.bad...)
}

// check fails the test on a noted problem or a final count other than want
// for partitions 0 and 1.
func (o *orderedCounts) check(t *testing.T, want int64) {
	t.Helper()
	if bad := o.problems(); len(bad) > 0 {
		t.Fatal(bad)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts["0"] != want || o.counts["1"] != want {
		t.Fatalf("final counts %v, want %d per partition", o.counts, want)
	}
}

// deltaFiles lists the state/0/<p>/<v>.delta files of the checkpoint chk,
// sorted; with written, only those that are not empty (a delta file
// created ahead of its store, state.DeltaPreparer, is empty).
func deltaFiles(t *testing.T, chk string, v int64, written bool) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(chk, "state", "0", "*", fmt.Sprintf("%d.delta", v)))
	if err != nil {
		t.Fatal(err)
	}
	if written {
		m = slices.DeleteFunc(m, func(name string) bool {
			fi, err := os.Stat(name)
			return err == nil && fi.Size() == 0
		})
	}
	sort.Strings(m)
	return m
}

// TestStatefulStage1WhileStateCommits: a stateful batch whose commit is
// pipelined commits its state in the background while the next batch is
// planned and runs its stage 1, but offsets/N+1 and the next batch's state
// stores (opened by a full exchange during stage 1) wait for that commit:
// a state commit that fails once batch 2 has started leaves neither
// commits/1 nor offsets/2 (nor state version 2), batch 2 fails with that
// error alone, and the re-run counts right.
func TestStatefulStage1WhileStateCommits(t *testing.T) {
	b := brokertest.Start(t, broker.TopicSpec{Name: "sw", Partitions: 2})
	preload(t, b.Addr(), "sw", 2, 50)
	chk := t.TempDir()
	deltas := func(v int64, written bool) []string { return deltaFiles(t, chk, v, written) }
	out := &orderedCounts{chk: chk, commits: true}
	fail := errors.New("state commit failed")
	run := func(failAt int64) error {
		next := make(chan struct{}) // batch 2's offsets/2 write has started
		var once sync.Once
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A one-byte exchange: batch 2's stage 1 finds it full and opens
		// its stores (at the version batch 1 commits) while it runs.
		w := quietSession("spark.sql.shuffle.partitions", "2", "sluice.shuffle.bufferSize", "1").ReadStream().Format("kafka").
			Option("kafka.bootstrap.servers", b.Addr()).Option("subscribe", "sw").Option("startingOffsets", "earliest").
			Option("maxOffsetsPerTrigger", 30).Load().
			GroupBy("partition").Count().
			WriteStream().ForeachBatch(out.sink).OutputMode("update").Option("checkpointLocation", chk).
			Trigger(AvailableNow())
		w.hooks.beforeOffsetsLog = func(id int64) error {
			if id == failAt+1 {
				once.Do(func() { close(next) })
			}
			return nil
		}
		w.hooks.beforeStateCommit = func(id int64) error {
			if id != failAt {
				return nil
			}
			select {
			case <-next:
				time.Sleep(300 * time.Millisecond) // batch 2's stage 1 runs meanwhile
			case <-time.After(10 * time.Second):
				out.note(fmt.Sprintf("batch %d was not planned while batch %d's state committed", id+1, id))
			}
			return fail
		}
		q, err := w.Start(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return q.AwaitTermination(ctx)
	}
	// Batch 2's stores waited for the commit: its stage 1 failed with the
	// commit's error, not by opening a version that was not committed.
	if err := run(1); !errors.Is(err, fail) || errors.Is(err, state.ErrVersionNotFound) {
		t.Fatalf("run = %v, want the state commit's failure alone", err)
	}
	if bad := out.problems(); len(bad) > 0 {
		t.Fatal(bad)
	}
	for _, name := range []string{"commits/1", "offsets/2"} {
		if _, err := os.Stat(filepath.Join(chk, name)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s after batch 1's state commit failed: %v", name, err)
		}
	}
	if w := deltas(2, true); len(w) != 0 {
		t.Fatalf("the failed state commit wrote state version 2: %v", w)
	}
	if err := run(-1); err != nil {
		t.Fatal(err)
	}
	out.check(t, 50)
}
