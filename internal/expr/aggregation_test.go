package expr

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
)

// runAggregation executes a compiled aggregation over one batch the way a
// plan does: expand windows, evaluate keys and arguments, fold each
// group's rows into accumulators, emit the Grouped rows and project them.
// Groups come out in order of first appearance.
func runAggregation(t *testing.T, a *Aggregation, b *batch.Batch) *batch.Batch {
	t.Helper()
	if a.Window != nil {
		var err error
		if b, err = a.Window.Expand(b, testCtx); err != nil {
			t.Fatal(err)
		}
	}
	keys := make([]*batch.Column, len(a.Keys))
	for i, k := range a.Keys {
		c, err := k.Eval(b, testCtx)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = c
	}
	args := make([]*batch.Column, len(a.Calls))
	for i, c := range a.Calls {
		if c.Arg == nil {
			args[i] = &batch.Column{Type: batch.Null, Len: b.N}
			continue
		}
		col, err := c.Arg.Eval(b, testCtx)
		if err != nil {
			t.Fatal(err)
		}
		args[i] = col
	}
	type group struct {
		first int
		rows  []int32
	}
	groups := map[string]*group{}
	var order []string
	for r := 0; r < b.N; r++ {
		var sb strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&sb, "%#v|", k.Value(r))
		}
		g, ok := groups[sb.String()]
		if !ok {
			g = &group{first: r}
			groups[sb.String()] = g
			order = append(order, sb.String())
		}
		g.rows = append(g.rows, int32(r))
	}
	if len(a.Keys) == 0 && len(order) == 0 { // a global aggregate of no rows
		groups[""] = &group{}
		order = []string{""}
	}
	cols := make([]*batch.Column, len(a.Grouped.Fields))
	for i, f := range a.Grouped.Fields {
		cols[i] = batch.NewColumn(f.Type, len(order))
	}
	for _, k := range order {
		g := groups[k]
		for i := range keys {
			cols[i].AppendFrom(keys[i], g.first)
		}
		for i, c := range a.Calls {
			acc := c.Agg.NewAccumulator()
			if err := acc.Update(args[i], g.rows); err != nil {
				t.Fatal(err)
			}
			if err := acc.AppendResult(cols[len(keys)+i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	grouped := batch.New(a.Grouped, cols, len(order))
	if err := grouped.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := a.Output.Apply(grouped, testCtx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rowsOf(b *batch.Batch) []string {
	var out []string
	for i := 0; i < b.N; i++ {
		out = append(out, fmt.Sprint(b.Row(i)))
	}
	return out
}

func mustAgg(t *testing.T, groupBy, agg []string, in batch.Schema) *Aggregation {
	t.Helper()
	a, err := CompileAggregation(groupBy, agg, in, AggOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func colBatch(name string, k batch.Kind, vals ...any) *batch.Batch {
	s := batch.Schema{Fields: []batch.Field{{Name: name, Type: k, Nullable: true}}}
	rows := make([][]any, len(vals))
	for i, v := range vals {
		rows[i] = []any{v}
	}
	return mkBatch(s, rows...)
}

// TestAggregateSparkExamples replays the examples of Spark's aggregate
// function documentation as global aggregations.
func TestAggregateSparkExamples(t *testing.T) {
	for _, tc := range []struct {
		agg  string
		in   *batch.Batch
		name string
		typ  string
		want string
	}{
		{"count(*)", colBatch("col", batch.Int, nil, 5, 5, 20), "count(1)", "bigint", "[4]"},
		{"count(col)", colBatch("col", batch.Int, nil, 5, 5, 20), "count(col)", "bigint", "[3]"},
		{"count(1)", colBatch("col", batch.Int, nil, 5), "count(1)", "bigint", "[2]"},
		{"sum(col)", colBatch("col", batch.Int, 5, 10, 15), "sum(col)", "bigint", "[30]"},
		{"sum(col)", colBatch("col", batch.Int, nil, nil), "sum(col)", "bigint", "[<nil>]"},
		{"avg(col)", colBatch("col", batch.Int, 1, 2, 3), "avg(col)", "double", "[2]"},
		{"mean(col)", colBatch("col", batch.Int, 1, 2, 3), "mean(col)", "double", "[2]"},
		{"min(col)", colBatch("col", batch.Int, 10, -1, 20), "min(col)", "int", "[-1]"},
		{"max(col)", colBatch("col", batch.Int, 10, -1, 20), "max(col)", "int", "[20]"},
		{"first(col)", colBatch("col", batch.Int, 10, 5, 20), "first(col)", "int", "[10]"},
		{"first(col, true)", colBatch("col", batch.Int, nil, 5, 20), "first(col)", "int", "[5]"},
		{"last(col)", colBatch("col", batch.Int, 10, 5, 20), "last(col)", "int", "[20]"},
		{"collect_list(col)", colBatch("col", batch.Int, 1, 2, 1), "collect_list(col)", "array<int>", "[[1 2 1]]"},
		{"collect_set(col)", colBatch("col", batch.Int, 1, 2, 1), "collect_set(col)", "array<int>", "[[1 2]]"},
		{"approx_count_distinct(col1)", colBatch("col1", batch.Int, 1, 1, 2, 2, 3), "approx_count_distinct(col1)", "bigint", "[3]"},
		{"approx_count_distinct(col1, 0.01)", colBatch("col1", batch.Int, 1, 1, 2, 2, 3), "approx_count_distinct(col1)", "bigint", "[3]"},
		{"sum(col) / count(col)", colBatch("col", batch.Int, 1, 2, 6), "(sum(col) / count(col))", "double", "[3]"},
		{"avg(col) AS a", colBatch("col", batch.Int, 1, 2, 6), "a", "double", "[3]"},
		{"sum(col * 2)", colBatch("col", batch.Int, 1, 2), "sum((col * 2))", "bigint", "[6]"},
		{"sum(col)", colBatch("col", batch.String, "1.5", "2"), "sum(col)", "double", "[3.5]"},
		{"count(*)", colBatch("col", batch.Int), "count(1)", "bigint", "[0]"},
	} {
		a := mustAgg(t, nil, []string{tc.agg}, tc.in.Schema)
		out := runAggregation(t, a, tc.in)
		f := a.Output.Schema().Fields[0]
		if f.Name != tc.name || f.Type.String() != tc.typ || strings.Join(rowsOf(out), " ") != tc.want {
			t.Errorf("%s: %s %s = %s, want %s %s = %s", tc.agg, f.Name, f.Type, rowsOf(out), tc.name, tc.typ, tc.want)
		}
	}
}

// TestWindowedAggregation is Spark's window() documentation example as a
// groupBy(a, window(b, '5 minutes')).agg(count(*) AS cnt), through the
// Aggregation API.
func TestWindowedAggregation(t *testing.T) {
	rows := eventsBatch([2]string{"A1", "2021-01-01 00:00:00"}, [2]string{"A1", "2021-01-01 00:04:30"},
		[2]string{"A1", "2021-01-01 00:06:00"}, [2]string{"A2", "2021-01-01 00:01:00"}, [2]string{"A2", ""})
	a := mustAgg(t, []string{"a", "window(b, '10 minutes', '5 minutes')"},
		[]string{"window.start", "count(*) AS cnt", "max(b) AS last_seen", "count(*) + 1"}, eventsSchema)
	if got := a.Output.Schema().String(); got != "struct<a:string,window:struct<start:timestamp,end:timestamp>,start:timestamp,cnt:bigint,last_seen:string,(count(1) + 1):bigint>" {
		t.Errorf("output schema %s", got)
	}
	if a.Window == nil || a.Window.Name != "window" || len(a.Calls) != 2 || a.Calls[0].Name != "count(1)" || a.Calls[1].Name != "max(b)" {
		t.Fatalf("aggregation %+v", a)
	}
	out := runAggregation(t, a, rows)
	var got []string
	for i := 0; i < out.N; i++ {
		start := out.Columns[2].Ints[i]
		got = append(got, fmt.Sprintf("%s %s %d", out.Columns[0].Value(i), ts(start), out.Columns[3].Ints[i]))
	}
	sort.Strings(got)
	want := []string{
		"A1 2020-12-31 23:55:00 2", "A1 2021-01-01 00:00:00 3", "A1 2021-01-01 00:05:00 1",
		"A2 2020-12-31 23:55:00 1", "A2 2021-01-01 00:00:00 1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("windows:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAggregationKeys(t *testing.T) {
	s := batch.Schema{Fields: []batch.Field{{Name: "dev", Type: batch.String, Nullable: true}, {Name: "v", Type: batch.Long, Nullable: true}}}
	b := mkBatch(s, []any{"x", int64(1)}, []any{"X", int64(2)}, []any{"x", int64(3)}, []any{nil, int64(4)})
	// A grouping expression, aliased, used inside an agg expression.
	a := mustAgg(t, []string{"upper(dev) AS d"}, []string{"lower(d)", "upper(dev)", "sum(v)", "collect_list(v)"}, s)
	out := runAggregation(t, a, b)
	if got := strings.Join(rowsOf(out), " "); got != "[X x X 6 [1 2 3]] [<nil> <nil> <nil> 4 [4]]" {
		t.Errorf("rows %s (schema %s)", got, out.Schema)
	}
	if a.Grouped.String() != "struct<d:string,sum(v):bigint,collect_list(v):array<bigint>>" {
		t.Errorf("grouped %s", a.Grouped)
	}
	// The same call twice is computed once.
	a = mustAgg(t, []string{"dev"}, []string{"sum(v)", "sum(v) * 2", "SUM(v) AS s"}, s)
	if len(a.Calls) != 1 {
		t.Errorf("%d calls for one distinct aggregate", len(a.Calls))
	}
	// Struct keys group by value (nulls inside equal).
	st := batch.Schema{Fields: []batch.Field{{Name: "o", Type: orderKind, Nullable: true}}}
	sb := mkBatch(st, []any{sv(1.0, nil, 2)}, []any{sv(1.0, nil, 2)}, []any{sv(1.0, "a", 2)})
	out = runAggregation(t, mustAgg(t, []string{"o"}, []string{"count(*)"}, st), sb)
	if got := strings.Join(rowsOf(out), " "); got != "[{[amount sku qty] [1 <nil> 2]} 2] [{[amount sku qty] [1 a 2]} 1]" {
		t.Errorf("struct keys: %s", got)
	}
}

func TestAggregationErrors(t *testing.T) {
	s := batch.Schema{Fields: []batch.Field{{Name: "dev", Type: batch.String, Nullable: true}, {Name: "v", Type: batch.Long, Nullable: true}, {Name: "ts", Type: batch.Timestamp, Nullable: true}}}
	for _, tc := range []struct {
		groupBy, agg []string
		want         string
	}{
		{[]string{"dev"}, []string{"v"}, `[MISSING_AGGREGATION] The non-aggregating expression "v" is based on columns which are not participating in the GROUP BY clause.`},
		{[]string{"dev"}, []string{"count(DISTINCT v)"}, "Distinct aggregations are not supported on streaming DataFrames/Datasets. Consider using approx_count_distinct() instead."},
		{[]string{"dev"}, []string{"sum(count(v))"}, "[NESTED_AGGREGATE_FUNCTION]"},
		{[]string{"sum(v)"}, []string{"count(*)"}, "[GROUP_BY_AGGREGATE]"},
		{[]string{"dev"}, []string{"stddev(v)"}, "stddev() is not supported"},
		{[]string{"dev"}, []string{"sum(dev > 'a')"}, "sum does not accept an argument of type boolean"},
		{[]string{"dev"}, []string{"first(v, 1)"}, "must be a boolean literal"},
		{[]string{"dev"}, []string{"approx_count_distinct(v, 2.0)"}, "approx_count_distinct"},
		{[]string{"window(ts, '1 minute')", "window(ts, '2 minutes')"}, []string{"count(*)"}, "Multiple time/session window expressions"},
		{[]string{"dev"}, []string{"sum(*)"}, "only count(*) takes *"},
		{[]string{"dev"}, []string{"nope(v)"}, "undefined function nope()"},
	} {
		if _, err := CompileAggregation(tc.groupBy, tc.agg, s, AggOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("groupBy %v agg %v: err = %v, want %q", tc.groupBy, tc.agg, err, tc.want)
		}
	}
	// Outside an aggregation: Spark's errors.
	if _, err := CompileFilter("sum(v) > 1", s); err == nil || !strings.Contains(err.Error(), "[INVALID_WHERE_CONDITION]") {
		t.Errorf("filter with an aggregate: %v", err)
	}
	if _, err := CompileSelect([]string{"dev", "count(*)"}, s); err == nil || !strings.Contains(err.Error(), "[MISSING_GROUP_BY]") {
		t.Errorf("select with an aggregate: %v", err)
	}
	if n, _ := Parse("1 + max(v)"); !HasAggregate(n) || HasAggregate(&Ident{Name: "v"}) {
		t.Error("HasAggregate")
	}
}

func TestANSISumOverflow(t *testing.T) {
	s := batch.Schema{Fields: []batch.Field{{Name: "v", Type: batch.Long}}}
	a, err := CompileAggregation(nil, []string{"sum(v)"}, s, AggOptions{ANSI: true})
	if err != nil {
		t.Fatal(err)
	}
	acc := a.Calls[0].Agg.NewAccumulator()
	col := batch.NewColumn(batch.Long, 2)
	col.AppendInt(1 << 62)
	col.AppendInt(1 << 62)
	if err := acc.Update(col, nil); err == nil || !strings.Contains(err.Error(), "ARITHMETIC_OVERFLOW") {
		t.Errorf("ANSI sum overflow: %v", err)
	}
	_ = aggregate.CountStar
}
