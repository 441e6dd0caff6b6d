package expr

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

func kafkaBatch() *batch.Batch {
	return mkBatch(kafkaSchema,
		[]any{[]byte("k1"), []byte(`{"id":1}`), "orders", 0, 100, int64(1_000_000), 0},
		[]any{nil, nil, "orders", 1, 101, int64(2_000_000), 0},
		[]any{[]byte("k3"), []byte(`{"id":3}`), "orders", 1, 102, int64(3_000_000), 1},
	)
}

func fieldsOf(s batch.Schema) string {
	var b strings.Builder
	for i, f := range s.Fields {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(f.Name + ":" + f.Type.String())
		if !f.Nullable {
			b.WriteString(" not null")
		}
	}
	return b.String()
}

// TestSeedPlan runs the seed query's transform: selectExpr then withColumn.
func TestSeedPlan(t *testing.T) {
	p := NewPlan(kafkaSchema)
	if err := p.SelectExpr("CAST(value AS STRING) AS json"); err != nil {
		t.Fatal(err)
	}
	if err := p.WithColumn("processed_ts", "current_timestamp()"); err != nil {
		t.Fatal(err)
	}
	if got, want := fieldsOf(p.Schema()), "json:string, processed_ts:timestamp not null"; got != want {
		t.Errorf("schema = %s, want %s", got, want)
	}
	in := kafkaBatch()
	out, err := p.Apply(in, testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	ts := testCtx.BatchTimestamp.UnixMicro()
	want := [][]any{{`{"id":1}`, ts}, {nil, ts}, {`{"id":3}`, ts}}
	for i := range want {
		if got := out.Row(i); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("row %d = %v, want %v", i, got, want[i])
		}
	}
	if &out.Columns[0].Bytes[0][0] != &in.Columns[1].Bytes[0][0] {
		t.Error("json does not alias the value bytes")
	}
}

func TestCompileSelect(t *testing.T) {
	p, err := CompileSelect([]string{"*", "upper(topic) AS t", "offset + 1"}, kafkaSchema)
	if err != nil {
		t.Fatal(err)
	}
	want := "key:binary, value:binary, topic:string, partition:int, offset:bigint, timestamp:timestamp, " +
		"timestampType:int, t:string, (offset + 1):bigint"
	if got := fieldsOf(p.Schema()); got != want {
		t.Errorf("schema = %s\nwant %s", got, want)
	}
	in := kafkaBatch()
	out, err := p.Apply(in, testCtx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range kafkaSchema.Fields {
		if out.Columns[i] != in.Columns[i] {
			t.Errorf("column %d was copied by *", i)
		}
	}
	if got := values(out.Columns[8], 3); !sameValues(got, []any{101, 102, 103}) {
		t.Errorf("offset + 1 = %v", got)
	}
	if _, err := CompileSelect([]string{"CAST(valu AS STRING)"}, kafkaSchema); err == nil ||
		!strings.HasPrefix(err.Error(), "selectExpr[0]: analysis error at 1:6: cannot resolve column `valu`; did you mean `value`?") {
		t.Errorf("error = %v", err)
	}
}

func TestCompileSelectNodesAndColumns(t *testing.T) {
	nodes, err := ParseList("topic, partition AS p")
	if err != nil {
		t.Fatal(err)
	}
	p, err := CompileSelectNodes(nodes, kafkaSchema)
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(p.Schema()); got != "topic:string, p:int" {
		t.Errorf("schema = %s", got)
	}
	s := batch.Schema{Fields: []batch.Field{{Name: "my col", Type: batch.Int}, {Name: "a.b", Type: batch.Int}}}
	p, err = CompileSelectColumns([]string{"a.b", "my col", "`my col`", "*"}, s)
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(p.Schema()); got != "a.b:int not null, my col:int not null, my col:int not null, my col:int not null, a.b:int not null" {
		t.Errorf("schema = %s", got)
	}
	if _, err := CompileSelectColumns([]string{"nope"}, s); err == nil || err.Error() != "select: analysis error: cannot resolve column `nope` (input columns: `my col`, `a.b`)" {
		t.Errorf("error = %v", err)
	}
}

func TestCompileWithColumn(t *testing.T) {
	tests := []struct {
		name, expr, want string
	}{
		{"PARTITION", "partition + 1", "key:binary, value:binary, topic:string, PARTITION:int, offset:bigint, timestamp:timestamp, timestampType:int"},
		{"extra", "1 AS ignored", "key:binary, value:binary, topic:string, partition:int, offset:bigint, timestamp:timestamp, timestampType:int, extra:int not null"},
	}
	for _, tt := range tests {
		p, err := CompileWithColumn(tt.name, tt.expr, kafkaSchema)
		if err != nil {
			t.Fatal(err)
		}
		if got := fieldsOf(p.Schema()); got != tt.want {
			t.Errorf("withColumn(%s, %s) schema = %s\nwant %s", tt.name, tt.expr, got, tt.want)
		}
	}
	p, err := CompileWithColumn("partition", "partition * 10", kafkaSchema)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Apply(kafkaBatch(), testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(out.Columns[3], 3); !sameValues(got, []any{0, 10, 10}) {
		t.Errorf("partition = %v", got)
	}
	if _, err := CompileWithColumn("x", "upper(", kafkaSchema); err == nil || !strings.HasPrefix(err.Error(), "withColumn x: syntax error at 1:7") {
		t.Errorf("error = %v", err)
	}
}

func TestFilter(t *testing.T) {
	tests := []struct {
		cond    string
		offsets []any
	}{
		{"partition = 1", []any{101, 102}},
		{"partition = 1 AND value IS NOT NULL", []any{102}},
		{"length(CAST(value AS STRING)) > 0", []any{100, 102}}, // NULL rows are dropped
		{"offset > 0", []any{100, 101, 102}},
		{"false", []any{}},
		{"NULL", []any{}},
	}
	for _, tt := range tests {
		f, err := CompileFilter(tt.cond, kafkaSchema)
		if err != nil {
			t.Fatal(err)
		}
		in := kafkaBatch()
		out, err := f.Apply(in, testCtx)
		if err != nil {
			t.Fatal(err)
		}
		if err := out.Validate(); err != nil {
			t.Fatalf("%s: %v", tt.cond, err)
		}
		if got := values(out.Column("offset"), out.N); !sameValues(got, tt.offsets) {
			t.Errorf("filter(%s) offsets = %v, want %v", tt.cond, got, tt.offsets)
		}
		if out.N == in.N && out != in {
			t.Errorf("filter(%s) kept every row but copied the batch", tt.cond)
		}
	}
	_, err := CompileFilter("offset + 1", kafkaSchema)
	if want := "filter: analysis error at 1:1: filter condition (offset + 1) must be boolean but is bigint\noffset + 1\n^"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestFilterKeepsNullsAndValues(t *testing.T) {
	f, err := CompileFilter("i IS NULL OR i > 0", testSchema)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Apply(testBatch(), testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Validate(); err != nil {
		t.Fatal(err)
	}
	want := [][]any{testBatch().Row(0), testBatch().Row(2), testBatch().Row(3)}
	for i := range want {
		if got := out.Row(i); !reflect.DeepEqual(got, want[i]) {
			t.Errorf("row %d = %v, want %v", i, got, want[i])
		}
	}
}

func TestDropRenameChain(t *testing.T) {
	p := NewPlan(kafkaSchema)
	if err := p.Drop("KEY", "missing", "timestamptype"); err != nil {
		t.Fatal(err)
	}
	if err := p.WithColumnRenamed("value", "payload"); err != nil {
		t.Fatal(err)
	}
	if err := p.WithColumnRenamed("missing", "x"); err != nil {
		t.Fatal(err)
	}
	if err := p.Select("payload", "offset"); err != nil {
		t.Fatal(err)
	}
	if err := p.Filter("offset >= 101"); err != nil {
		t.Fatal(err)
	}
	if got := fieldsOf(p.Schema()); got != "payload:binary, offset:bigint" {
		t.Errorf("schema = %s", got)
	}
	out, err := p.Apply(kafkaBatch(), testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(out.Columns[1], out.N); !sameValues(got, []any{101, 102}) {
		t.Errorf("offsets = %v", got)
	}

	// Chain checks that steps line up.
	sel, err := CompileSelect([]string{"topic"}, kafkaSchema)
	if err != nil {
		t.Fatal(err)
	}
	up, err := CompileSelect([]string{"upper(topic) AS t"}, sel.Schema())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Chain(sel, up); err != nil {
		t.Errorf("Chain: %v", err)
	}
	if _, err := Chain(up, sel); err == nil {
		t.Error("Chain accepted steps compiled for different schemas")
	}
	if _, err := Chain(); err == nil {
		t.Error("Chain accepted no steps")
	}
}

func TestApplyRejectsWrongBatch(t *testing.T) {
	p, err := CompileSelect([]string{"offset + 1"}, kafkaSchema)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Apply(testBatch(), testCtx); err == nil {
		t.Error("Apply accepted a batch with a different schema")
	}
}

// TestConcurrentApply shares one compiled plan between goroutines, as the
// engine's tasks do; run with -race.
func TestConcurrentApply(t *testing.T) {
	p := NewPlan(testSchema)
	for _, e := range []string{"s || 'x' AS a", "upper(s) AS b", "CASE WHEN i > 0 THEN i ELSE 0 END AS c", "current_timestamp() AS d", "CAST(d AS STRING) AS e"} {
		if err := p.SelectExpr("*", e); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Filter("s LIKE '%l%' OR s IS NULL OR i > 0"); err != nil {
		t.Fatal(err)
	}
	in := testBatch()
	ref, err := p.Apply(in, testCtx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 0; r < 50; r++ {
				out, err := p.Apply(in, testCtx)
				if err != nil {
					t.Error(err)
					return
				}
				for i := 0; i < out.N; i++ {
					if !reflect.DeepEqual(out.Row(i), ref.Row(i)) {
						t.Errorf("row %d differs between runs", i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
