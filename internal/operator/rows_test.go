package operator

import (
	"fmt"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/state"
)

// TestRowBuilderSizedChunks adds 1,000 rows of (key, count) to a row
// builder told to expect them: the rows come out as they went in, and
// the builder makes its columns once at that size and keeps the keys'
// strings in a few arena blocks — a handful of allocations, not the
// columns' doublings and a string per row. A builder that emits nothing
// allocates nothing.
func TestRowBuilderSizedChunks(t *testing.T) {
	kk, err := expr.Compile(&expr.Ident{Name: "k"}, kv)
	if err != nil {
		t.Fatal(err)
	}
	cnt, _ := aggregate.New(aggregate.Spec{Func: aggregate.CountStar})
	a := &Aggregate{Keys: []expr.Compiled{kk}, EventTime: -1, Mode: ModeUpdate, Calls: []AggCall{{Agg: cnt, Name: "n"}}}
	a.Init()
	const n = 1000
	keys := make([][]byte, n)
	for i := range keys {
		c := batch.NewColumn(batch.String, 1)
		c.AppendBytes(fmt.Appendf(nil, "key-%04d", i))
		keys[i] = state.EncodeKey(nil, []*batch.Column{c}, 0)
	}
	accs := a.newAccs()
	var got *batch.Batch
	emit := func(b *batch.Batch) error { got = b; return nil }
	allocs := testing.AllocsPerRun(1, func() {
		out := newRowBuilder(a, emit)
		out.expect = n
		for _, k := range keys {
			if err := out.add(k, accs); err != nil {
				t.Fatal(err)
			}
		}
		if err := out.flush(); err != nil {
			t.Fatal(err)
		}
	})
	if got == nil || got.N != n {
		t.Fatalf("emitted %v", got)
	}
	for i := range n {
		if k, want := got.Columns[0].Value(i), fmt.Sprintf("key-%04d", i); k != want {
			t.Fatalf("row %d: key %v, want %s", i, k, want)
		}
	}
	if allocs > 10 {
		t.Fatalf("%v allocations for %d rows", allocs, n)
	}
	if allocs := testing.AllocsPerRun(1, func() {
		if err := newRowBuilder(a, emit).flush(); err != nil {
			t.Fatal(err)
		}
	}); allocs > 1 {
		t.Fatalf("%v allocations emitting nothing", allocs)
	}
}
