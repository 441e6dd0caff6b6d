package pipeline

import (
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sluice-stream/sluice/internal/plan"
)

const statefulFile = `name: iot
source:
  format: rate
sink:
  format: console
  outputMode: update
transform:
  - withColumn: {name: ts, expr: "timestamp_seconds(value)"}
  - withWatermark: {eventTime: ts, delay: 10 seconds}
  - groupBy: [ts, "value % 2 AS parity"]
    agg: ["count(*) AS n", "max(value)"]
  - agg: ["count(*)"]
  - agg: [sum(n)]
    groupBy: []
  - dropDuplicates: [a, b]
  - dropDuplicates: []
  - dropDuplicates: {columns: [a], withinWatermark: true}
  - dropDuplicates: {withinWatermark: true}
`

func TestStatefulSteps(t *testing.T) {
	f, err := Parse("p.yaml", []byte(statefulFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []plan.Op{
		{Kind: plan.WithColumn, Name: "ts", Expr: "timestamp_seconds(value)"},
		{Kind: plan.WithWatermark, EventTime: "ts", Delay: "10 seconds"},
		{Kind: plan.Aggregate, GroupBy: []string{"ts", "value % 2 AS parity"}, Aggs: []string{"count(*) AS n", "max(value)"}},
		{Kind: plan.Aggregate, GroupBy: []string{}, Aggs: []string{"count(*)"}},
		{Kind: plan.Aggregate, GroupBy: []string{}, Aggs: []string{"sum(n)"}},
		{Kind: plan.Deduplicate, Columns: []string{"a", "b"}},
		{Kind: plan.Deduplicate, Columns: []string{}},
		{Kind: plan.Deduplicate, Columns: []string{"a"}, WithinWatermark: true},
		{Kind: plan.Deduplicate, Columns: []string{}, WithinWatermark: true},
	}
	if len(f.Transform) != len(want) {
		t.Fatalf("%d steps, want %d", len(f.Transform), len(want))
	}
	for i, st := range f.Transform {
		if !reflect.DeepEqual(st.Op, want[i]) {
			t.Errorf("step %d: %+v, want %+v", i, st.Op, want[i])
		}
		if st.Line != 8+i+map[bool]int{true: 1, false: 0}[i > 2]+map[bool]int{true: 1, false: 0}[i > 4] {
			t.Errorf("step %d at line %d", i, st.Line)
		}
		// Render is the inverse of parsing.
		m, err := Render(st.Op, nil)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := yaml.Marshal([]any{m})
		g, err := Parse("r.yaml", []byte("source: {format: rate}\nsink: {format: console}\ntransform:\n"+indent(string(out))), nil)
		if err != nil {
			t.Fatalf("step %d renders to %s, which does not parse: %v", i, out, err)
		}
		if !reflect.DeepEqual(g.Transform[0].Op, st.Op) {
			t.Errorf("step %d round trip: %+v, want %+v", i, g.Transform[0].Op, st.Op)
		}
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}
