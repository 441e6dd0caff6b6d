package operator

import (
	"reflect"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/state"
)

var kv = batch.Schema{Fields: []batch.Field{{Name: "k", Type: batch.String}, {Name: "v", Type: batch.Long}}}

func rows(pairs ...any) *batch.Batch {
	k, v := batch.NewColumn(batch.String, 0), batch.NewColumn(batch.Long, 0)
	for i := 0; i < len(pairs); i += 2 {
		k.AppendBytes([]byte(pairs[i].(string)))
		v.AppendInt(int64(pairs[i+1].(int)))
	}
	return batch.New(kv, []*batch.Column{k, v}, k.Len)
}

// runStage2 runs one batch of a through one shuffle partition: each task's
// rows through a shuffle writer (stage 1), what it sends into stage 2 over
// the store of version, Finish (each emitted batch to emit), and the
// store's commit.
func runStage2(t *testing.T, a *Aggregate, p state.Provider, version int64, emit func(*batch.Batch), tasks ...*batch.Batch) {
	t.Helper()
	st, err := p.Open(version)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := a.NewStage2(engine.Stage2Env{BatchID: version, Partitions: 1, BatchTime: time.Unix(0, 0), Stores: []state.Store{st}})
	for _, task := range tasks {
		var sent []*batch.Batch
		w := a.NewShuffleWriter(engine.ShuffleEnv{Partitions: 1, BatchTime: time.Unix(0, 0),
			Send: func(_ int, b *batch.Batch) error { sent = append(sent, b); return nil }})
		if err := w.Write(task); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		for _, b := range sent {
			if err := s2.Process(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s2.Finish(func(b *batch.Batch) error { emit(b); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(); err != nil {
		t.Fatal(err)
	}
}

func countSum(t *testing.T, flush int) *Aggregate {
	t.Helper()
	key, err := expr.Compile(&expr.Ident{Name: "k"}, kv)
	if err != nil {
		t.Fatal(err)
	}
	arg, _ := expr.Compile(&expr.Ident{Name: "v"}, kv)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	sum, _ := aggregate.New(aggregate.Spec{Func: aggregate.Sum, Input: batch.Long})
	a := &Aggregate{Keys: []expr.Compiled{key}, EventTime: -1, Mode: ModeUpdate, FlushGroups: flush,
		Calls: []AggCall{{Agg: cnt, Name: "n"}, {Agg: sum, Arg: arg, Name: "s"}}}
	a.Init()
	return a
}

// shuffle runs one stage-1 task over chunks and returns, per key, the
// partitions it was sent to and the merged (count, sum).
func shuffle(t *testing.T, a *Aggregate, chunks ...*batch.Batch) (map[string]map[int]bool, map[string][2]int64) {
	t.Helper()
	parts := map[string]map[int]bool{}
	merged := map[string][]aggregate.Accumulator{}
	send := func(p int, b *batch.Batch) error {
		for i := 0; i < b.N; i++ {
			dec, err := state.DecodeKey(b.Columns[0].Bytes[i], []batch.Kind{batch.String})
			if err != nil {
				t.Fatal(err)
			}
			key := dec[0].(string)
			if parts[key] == nil {
				parts[key] = map[int]bool{}
			}
			parts[key][p] = true
			accs := []aggregate.Accumulator{a.Calls[0].Agg.NewAccumulator(), a.Calls[1].Agg.NewAccumulator()}
			if err := aggregate.LoadStates(b.Columns[1].Bytes[i], accs); err != nil {
				t.Fatal(err)
			}
			if m, ok := merged[key]; ok {
				m[0].Merge(accs[0])
				m[1].Merge(accs[1])
			} else {
				merged[key] = accs
			}
		}
		return nil
	}
	w := a.NewShuffleWriter(engine.ShuffleEnv{Partitions: 7, BatchTime: time.Unix(0, 0), Send: send})
	for _, c := range chunks {
		if err := w.Write(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int64{}
	for k, m := range merged {
		out[k] = [2]int64{m[0].Result().(int64), m[1].Result().(int64)}
	}
	return parts, out
}

// A key's shuffle partition depends on its value only — not on how the
// input was split into chunks or tasks, nor on when partial aggregates are
// flushed — and partial aggregation loses nothing.
func TestPartialAggregationPlacement(t *testing.T) {
	all := rows("a", 1, "b", 2, "a", 3, "c", 4, "b", 5, "d", 6, "a", 7)
	p1, r1 := shuffle(t, countSum(t, 0), all)
	p2, r2 := shuffle(t, countSum(t, 2), rows("a", 1, "b", 2), rows("a", 3, "c", 4, "b", 5), rows("d", 6, "a", 7))
	want := map[string][2]int64{"a": {3, 11}, "b": {2, 7}, "c": {1, 4}, "d": {1, 6}}
	for k, w := range want {
		if r1[k] != w || r2[k] != w {
			t.Errorf("key %s: %v and %v, want %v", k, r1[k], r2[k], w)
		}
		if len(p1[k]) != 1 || len(p2[k]) != 1 {
			t.Errorf("key %s went to several partitions: %v %v", k, p1[k], p2[k])
		}
		for p := range p1[k] {
			if !p2[k][p] {
				t.Errorf("key %s: partition %v with one chunking, %v with another", k, p1[k], p2[k])
			}
		}
	}
	if PartitionOf([]byte("x"), 1) != 0 || PartitionOf([]byte("x"), 200) != PartitionOf([]byte("x"), 200) {
		t.Fatal("PartitionOf is not deterministic")
	}
}

func TestEventTimePrefix(t *testing.T) {
	for _, us := range []int64{0, 1000, -5_000_000, 15_000_000} {
		k := evictUpper(us / 1000)
		got, ok := eventTimeOf(k)
		if !ok || got != us+1 {
			t.Errorf("eventTimeOf(evictUpper(%d)) = %d %v", us, got, ok)
		}
	}
	if _, ok := eventTimeOf([]byte{0}); ok {
		t.Error("a null event time decoded")
	}
}

// Stage 2 merges a key's partials from several tasks in arrival order
// (first and last see the tasks in the order their rows came), folds them
// into the stored state, and stores a key that one task sent as it came;
// across two batches the stored state carries on.
func TestStage2MergesPartialsInArrivalOrder(t *testing.T) {
	key, _ := expr.Compile(&expr.Ident{Name: "k"}, kv)
	arg, _ := expr.Compile(&expr.Ident{Name: "v"}, kv)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	first, _ := aggregate.New(aggregate.Spec{Func: aggregate.First, Input: batch.Long})
	last, _ := aggregate.New(aggregate.Spec{Func: aggregate.Last, Input: batch.Long})
	a := &Aggregate{Keys: []expr.Compiled{key}, EventTime: -1, Mode: ModeComplete,
		Calls: []AggCall{{Agg: cnt, Name: "n"}, {Agg: first, Arg: arg, Name: "f"}, {Agg: last, Arg: arg, Name: "l"}}}
	a.Init()
	p, err := state.OpenProvider(state.ID{Root: t.TempDir()}, a.Operators()[0].Schemas, state.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func(version int64, tasks ...*batch.Batch) map[string][3]int64 {
		t.Helper()
		got := map[string][3]int64{}
		runStage2(t, a, p, version, func(b *batch.Batch) {
			for i := 0; i < b.N; i++ {
				got[string(b.Columns[0].Bytes[i])] = [3]int64{b.Columns[1].Ints[i], b.Columns[2].Ints[i], b.Columns[3].Ints[i]}
			}
		}, tasks...)
		return got
	}
	got := run(0, rows("a", 1, "b", 2, "a", 3), rows("a", 4, "c", 5), rows("b", 6, "a", 7))
	want := map[string][3]int64{"a": {4, 1, 7}, "b": {2, 2, 6}, "c": {1, 5, 5}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch 0: %v, want %v", got, want)
	}
	got = run(1, rows("c", 8), rows("a", 9, "d", 10))
	want = map[string][3]int64{"a": {5, 1, 9}, "b": {2, 2, 6}, "c": {2, 5, 8}, "d": {1, 10, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch 1: %v, want %v", got, want)
	}
}
