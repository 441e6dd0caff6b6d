package operator

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/state"
)

// A scratch returned to the pool holds no reference into the rows of the
// batch it sorted (it would keep them alive), and an
// outsized one is not kept.
func TestFinishScratchDropsReferences(t *testing.T) {
	sc := &finishScratch{}
	ps := resize(&sc.ps, 3)
	for i := range ps {
		ps[i] = partial{key: []byte{byte(i)}, state: []byte{1}}
	}
	keys := resize(&sc.keys, 3)[:0]
	sc.keys = append(keys, []byte("a"), []byte("b"))
	if !sc.reset() {
		t.Fatal("a small scratch is not kept")
	}
	for i, p := range sc.ps[:cap(sc.ps)] {
		if p.key != nil || p.state != nil {
			t.Errorf("partial %d still refers to its row", i)
		}
	}
	for i, k := range sc.keys[:cap(sc.keys)] {
		if k != nil {
			t.Errorf("key %d still refers to its row", i)
		}
	}
	big := &finishScratch{ps: make([]partial, 0, maxPooledRows+1)}
	if big.reset() {
		t.Error("an outsized scratch is kept")
	}
}

// Finish reuses its working memory from one partition and batch to the
// next: a large batch followed by smaller ones (and by one with no rows)
// still merges, updates and emits exactly each batch's keys.
func TestStage2ScratchReuseAcrossBatches(t *testing.T) {
	a := countSum(t, 0)
	p, err := state.OpenProvider(state.ID{Root: t.TempDir()}, a.Operators()[0].Schemas, state.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	run := func(version int64, in *batch.Batch) map[string][2]int64 {
		t.Helper()
		got := map[string][2]int64{}
		runStage2(t, a, p, version, func(b *batch.Batch) {
			for i := 0; i < b.N; i++ {
				got[string(b.Columns[0].Bytes[i])] = [2]int64{b.Columns[1].Ints[i], b.Columns[2].Ints[i]}
			}
		}, in)
		return got
	}
	var pairs []any
	want := map[string][2]int64{}
	for i := 0; i < 500; i++ {
		k := fmt.Sprintf("k%03d", i%250)
		pairs = append(pairs, k, i)
		w := want[k]
		want[k] = [2]int64{w[0] + 1, w[1] + int64(i)}
	}
	if got := run(0, rows(pairs...)); !reflect.DeepEqual(got, want) {
		t.Fatalf("batch 0: %d keys, want %d (%v)", len(got), len(want), got)
	}
	got := run(1, rows("k007", 1000, "new", 5, "k007", 1))
	if w := (map[string][2]int64{"k007": {want["k007"][0] + 2, want["k007"][1] + 1001}, "new": {1, 5}}); !reflect.DeepEqual(got, w) {
		t.Fatalf("batch 1: %v, want %v", got, w)
	}
	if got := run(2, rows()); len(got) != 0 {
		t.Fatalf("batch 2 (no rows): %v", got)
	}
	if got, w := run(3, rows("new", 2)), (map[string][2]int64{"new": {2, 7}}); !reflect.DeepEqual(got, w) {
		t.Fatalf("batch 3: %v, want %v", got, w)
	}
}
