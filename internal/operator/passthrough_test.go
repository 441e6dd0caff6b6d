package operator

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/state"
)

// A stage-1 task whose first rows are almost all new groups stops
// combining and ships each later row as a partial of its own; one whose
// rows repeat keys keeps combining. Either way stage 2 gives every key the
// count, first and last of its rows in order — across the switch (a key
// combined before it and sent row by row after), across tasks and across
// flushes — as an oracle computed from the rows says.
func TestPartialAggregationPassThrough(t *testing.T) {
	key, _ := expr.Compile(&expr.Ident{Name: "k"}, kv)
	arg, _ := expr.Compile(&expr.Ident{Name: "v"}, kv)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	first, _ := aggregate.New(aggregate.Spec{Func: aggregate.First, Input: batch.Long})
	last, _ := aggregate.New(aggregate.Spec{Func: aggregate.Last, Input: batch.Long})
	const parts = 5
	for _, tc := range []struct {
		name    string
		keyOf   func(task, i int) string
		flush   int
		passing bool
	}{
		// Distinct keys but for "dup-*", which recur before and after the
		// switch and in every task.
		{"distinct", func(task, i int) string {
			if i%97 == 0 {
				return fmt.Sprintf("dup-%d", i%3)
			}
			return fmt.Sprintf("t%d-k%05d", task, i)
		}, 0, true},
		{"distinct, small flushes", func(task, i int) string {
			if i%97 == 0 {
				return fmt.Sprintf("dup-%d", i%3)
			}
			return fmt.Sprintf("t%d-k%05d", task, i)
		}, 300, true},
		{"repeating", func(task, i int) string { return fmt.Sprintf("k%03d", i%500) }, 0, false},
		// Keys alike in their first 16 bytes and keys that are prefixes of
		// others (with NUL bytes): stage 2's sort compares the first 16
		// bytes as words and the rest byte by byte.
		{"long keys", func(task, i int) string {
			if i%5 == 0 {
				return "x" + strings.Repeat("\x00", i%7)
			}
			return fmt.Sprintf("%024d", i%900)
		}, 0, false},
	} {
		for _, countOnly := range []bool{false, true} {
			name, calls := tc.name, []AggCall{{Agg: cnt, Name: "n"}, {Agg: first, Arg: arg, Name: "f"}, {Agg: last, Arg: arg, Name: "l"}}
			if countOnly {
				// count(*) alone: a passing-through task ships one
				// constant state with every row.
				name, calls = name+", count only", calls[:1]
			}
			t.Run(name, func(t *testing.T) {
				a := &Aggregate{Keys: []expr.Compiled{key}, EventTime: -1, Mode: ModeComplete, FlushGroups: tc.flush,
					Calls: calls}
				a.Init()
				want := map[string][3]int64{}
				provs := make([]state.Provider, parts)
				for p := range provs {
					prov, err := state.OpenProvider(state.ID{Root: t.TempDir(), Partition: p}, a.Operators()[0].Schemas, state.DefaultConfig())
					if err != nil {
						t.Fatal(err)
					}
					defer prov.Close()
					provs[p] = prov
				}
				v := 0
				var got map[string][3]int64
				// Two batches of the same keys: the second finds every key in
				// the state (stage 2 looks the sorted keys up in one walk).
				for version := int64(0); version < 2; version++ {
					sent := make([][]*batch.Batch, parts)
					for task := 0; task < 3; task++ {
						w := a.NewShuffleWriter(engine.ShuffleEnv{Partitions: parts, BatchTime: time.Unix(0, 0),
							Send: func(p int, b *batch.Batch) error { sent[p] = append(sent[p], b); return nil }})
						var pairs []any
						for chunk := 0; chunk < 6; chunk++ {
							if task != 1 { // task 1: one chunk of 4200 rows, the others 700 each
								pairs = pairs[:0]
							}
							for i := chunk * 700; i < (chunk+1)*700; i++ {
								k := tc.keyOf(task, i)
								v++
								pairs = append(pairs, k, v)
								g, ok := want[k]
								if !ok {
									g[1] = int64(v)
								}
								g[0]++
								g[2] = int64(v)
								want[k] = g
							}
							if task == 1 && chunk < 5 {
								continue
							}
							if err := w.Write(rows(pairs...)); err != nil {
								t.Fatal(err)
							}
						}
						if err := w.Flush(); err != nil {
							t.Fatal(err)
						}
						if got := w.(*partialAgg).passing; got != tc.passing {
							t.Fatalf("task %d: passing %v, want %v", task, got, tc.passing)
						}
						if got := w.(*partialAgg).rowState != nil; tc.passing && got != countOnly {
							t.Fatalf("task %d: a constant row state %v, want %v", task, got, countOnly)
						}
					}
					got = map[string][3]int64{}
					for p := 0; p < parts; p++ {
						st, err := provs[p].Open(version)
						if err != nil {
							t.Fatal(err)
						}
						s2, _ := a.NewStage2(engine.Stage2Env{BatchID: version, Partition: p, Partitions: parts, BatchTime: time.Unix(0, 0), Stores: []state.Store{st}})
						for _, b := range sent[p] {
							if err := s2.Process(b); err != nil {
								t.Fatal(err)
							}
						}
						err = s2.Finish(func(b *batch.Batch) error {
							for i := 0; i < b.N; i++ {
								k := string(b.Columns[0].Bytes[i])
								if _, dup := got[k]; dup {
									t.Errorf("key %s emitted twice", k)
								}
								if countOnly {
									got[k] = [3]int64{b.Columns[1].Ints[i]}
									continue
								}
								got[k] = [3]int64{b.Columns[1].Ints[i], b.Columns[2].Ints[i], b.Columns[3].Ints[i]}
							}
							return nil
						})
						if err != nil {
							t.Fatal(err)
						}
						if _, err := st.Commit(); err != nil {
							t.Fatal(err)
						}
					}
				}
				if countOnly {
					for k, w := range want {
						want[k] = [3]int64{w[0]}
					}
				}
				if !reflect.DeepEqual(got, want) {
					for k, w := range want {
						if got[k] != w {
							t.Fatalf("%d keys, want %d; key %s: %v, want %v", len(got), len(want), k, got[k], w)
						}
					}
					t.Fatalf("%d keys, want %d", len(got), len(want))
				}
			})
		}
	}
}

// A passing-through task copies each partition's keys into an arena of
// that partition's own: consecutive keys of a sent batch lie side by side
// in memory (stage 2 reads them as a stream), not among the other
// partitions' keys. An empty string's key is sent as such, never as a
// null.
func TestPassThroughKeysSideBySide(t *testing.T) {
	key, _ := expr.Compile(&expr.Ident{Name: "k"}, kv)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	a := &Aggregate{Keys: []expr.Compiled{key}, EventTime: -1, Mode: ModeComplete, Calls: []AggCall{{Agg: cnt, Name: "n"}}}
	a.Init()
	const parts = 7
	var sent []*batch.Batch
	w := a.NewShuffleWriter(engine.ShuffleEnv{Partitions: parts, BatchTime: time.Unix(0, 0),
		Send: func(_ int, b *batch.Batch) error { sent = append(sent, b); return nil }})
	var pairs []any
	for i := range 6000 {
		pairs = append(pairs, fmt.Sprintf("key-%05d", i), i)
	}
	if err := w.Write(rows(pairs...)); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rows("", 1)); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !w.(*partialAgg).passing {
		t.Fatal("the task did not pass rows through")
	}
	emptyKey := state.EncodeKey(nil, rows("", 0).Columns[:1], 0)
	adjacent, pairsSeen, rowsSeen, empty := 0, 0, 0, 0
	for _, b := range sent {
		keys := b.Columns[0]
		for i := range b.N {
			rowsSeen++
			if keys.IsNull(i) {
				t.Fatalf("a null key in a sent batch")
			}
			if string(keys.Bytes[i]) == string(emptyKey) {
				empty++
			}
			if i == 0 {
				continue
			}
			pairsSeen++
			prev, cur := keys.Bytes[i-1], keys.Bytes[i]
			if unsafe.SliceData(cur) == (*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(prev)), len(prev))) {
				adjacent++
			}
		}
	}
	if rowsSeen < 5000 || empty != 1 {
		t.Fatalf("%d rows sent, %d empty keys", rowsSeen, empty)
	}
	// The task's first passSample rows were combined (and sent from the
	// groups' arena) before it decided to pass rows through.
	if adjacent < pairsSeen*3/4 {
		t.Fatalf("%d of %d consecutive keys side by side", adjacent, pairsSeen)
	}
}

// A passing-through task makes its partitions' columns as large as the
// previous task's partitions held on average, plus a quarter: in a
// stream of like tasks the second task's columns hold their rows without
// growing (the first task's, made for 64 rows, grow). With count(*) alone
// the state column is one cell, the constant row state.
func TestPassThroughColumnsSized(t *testing.T) {
	key, _ := expr.Compile(&expr.Ident{Name: "k"}, kv)
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	a := &Aggregate{Keys: []expr.Compiled{key}, EventTime: -1, Mode: ModeComplete, Calls: []AggCall{{Agg: cnt, Name: "n"}}}
	a.Init()
	const parts, n = 50, 8000 // 160 rows a partition
	for task := range 2 {
		var sent []*batch.Batch
		w := a.NewShuffleWriter(engine.ShuffleEnv{Partitions: parts, BatchTime: time.Unix(0, 0),
			Send: func(_ int, b *batch.Batch) error { sent = append(sent, b); return nil }})
		var pairs []any
		for i := range n {
			pairs = append(pairs, fmt.Sprintf("t%d-%05d", task, i), i)
		}
		if err := w.Write(rows(pairs...)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		size := w.(*partialAgg).passSize
		fit, total := 0, 0
		for _, b := range sent[1:] { // after the combined sample's batches
			if b.N < 100 {
				continue // the sample's
			}
			total++
			if cap(b.Columns[0].Bytes) == size {
				fit++
			}
			// count(*) alone: one state cell for all the batch's rows.
			if len(b.Columns[1].Bytes) != 1 {
				t.Fatalf("task %d: a passed batch of %d rows has %d state cells, want 1", task, b.N, len(b.Columns[1].Bytes))
			}
		}
		switch {
		case total < parts*9/10:
			t.Fatalf("task %d: %d passed batches", task, total)
		case task == 0 && size != passMinRows:
			t.Fatalf("first task: columns for %d rows, want %d", size, passMinRows)
		case task == 1 && (size < 160 || size > 240 || fit < total*9/10):
			t.Fatalf("second task: columns for %d rows; %d of %d batches held in them", size, fit, total)
		}
	}
}
