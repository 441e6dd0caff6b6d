package delta

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/testutil"
)

var (
	lineKind   = batch.StructOf(batch.Field{Name: "sku", Type: batch.String, Nullable: true}, batch.Field{Name: "qty", Type: batch.Int, Nullable: true})
	windowKind = batch.StructOf(batch.Field{Name: "start", Type: batch.Timestamp, Nullable: true}, batch.Field{Name: "end", Type: batch.Timestamp, Nullable: true})
	nestedSch  = batch.Schema{Fields: []batch.Field{
		{Name: "id", Type: batch.Long},
		{Name: "w", Type: windowKind, Nullable: true},
		{Name: "o", Type: batch.StructOf(batch.Field{Name: "amount", Type: batch.Double, Nullable: true}, batch.Field{Name: "line", Type: lineKind, Nullable: true},
			batch.Field{Name: "flag", Type: batch.Boolean, Nullable: true}), Nullable: true},
		{Name: "xs", Type: batch.ArrayOf(batch.Long, false), Nullable: true},
		{Name: "m", Type: batch.MapOf(batch.String, batch.String, true), Nullable: true},
	}}
)

func st(vals ...any) batch.StructValue { return batch.StructValue{Values: vals} }

func nestedBatch(t *testing.T) *batch.Batch {
	t.Helper()
	rows := [][]any{
		{int64(1), st(int64(60_000_000), int64(120_000_000)), st(2.5, st("b", int64(3)), true), []any{int64(5), int64(6)}, batch.MapValue{Keys: []any{"k"}, Values: []any{"v"}}},
		{int64(2), nil, nil, nil, nil},
		{int64(3), st(int64(0), int64(60_000_000)), st(nil, st("a", nil), false), []any{}, batch.MapValue{Keys: []any{"z"}, Values: []any{nil}}},
		{int64(4), st(int64(120_000_000), int64(180_000_000)), st(7.0, nil, nil), []any{int64(-1)}, batch.MapValue{}},
	}
	cols := make([]*batch.Column, len(nestedSch.Fields))
	for i, f := range nestedSch.Fields {
		cols[i] = batch.NewColumn(f.Type, len(rows))
	}
	for _, r := range rows {
		for i, v := range r {
			if err := cols[i].AppendValue(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	return batch.New(nestedSch, cols, len(rows))
}

// TestNestedTable checks a table with nested columns: the schemaString
// (Spark's JSON, everything nullable as Delta stores new tables), stats
// nested as Delta nests them (leaves only; arrays and maps with a null
// count and no min/max), and the data read back.
func TestNestedTable(t *testing.T) {
	dir := t.TempDir()
	s := mustNew(t, map[string]string{"path": dir}, "q")
	b := nestedBatch(t)
	if err := runBatch(t, s, 0, []*batch.Batch{b}); err != nil {
		t.Fatal(err)
	}
	kinds, bodies := logLines(t, dir, 0)
	var md map[string]any
	var stats string
	for i, body := range bodies {
		switch kinds[i] {
		case "metaData":
			md = body
		case "add":
			stats, _ = body["stats"].(string)
		}
	}
	wantSchema := `{"type":"struct","fields":[` +
		`{"name":"id","type":"long","nullable":true,"metadata":{}},` +
		`{"name":"w","type":{"type":"struct","fields":[{"name":"start","type":"timestamp","nullable":true,"metadata":{}},{"name":"end","type":"timestamp","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},` +
		`{"name":"o","type":{"type":"struct","fields":[{"name":"amount","type":"double","nullable":true,"metadata":{}},` +
		`{"name":"line","type":{"type":"struct","fields":[{"name":"sku","type":"string","nullable":true,"metadata":{}},{"name":"qty","type":"integer","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},` +
		`{"name":"flag","type":"boolean","nullable":true,"metadata":{}}]},"nullable":true,"metadata":{}},` +
		`{"name":"xs","type":{"type":"array","elementType":"long","containsNull":true},"nullable":true,"metadata":{}},` +
		`{"name":"m","type":{"type":"map","keyType":"string","valueType":"string","valueContainsNull":true},"nullable":true,"metadata":{}}]}`
	if md["schemaString"] != wantSchema {
		t.Errorf("schemaString\n got %v\nwant %s", md["schemaString"], wantSchema)
	}
	wantStats := `{"numRecords":4,` +
		`"minValues":{"id":1,"w":{"start":"1970-01-01T00:00:00.000Z","end":"1970-01-01T00:01:00.000Z"},"o":{"amount":2.5,"line":{"sku":"a","qty":3}}},` +
		`"maxValues":{"id":4,"w":{"start":"1970-01-01T00:02:00.000Z","end":"1970-01-01T00:03:00.000Z"},"o":{"amount":7.0,"line":{"sku":"b","qty":3}}},` +
		`"nullCount":{"id":0,"w":{"start":1,"end":1},"o":{"amount":2,"line":{"sku":2,"qty":3},"flag":2},"xs":1,"m":1}}`
	if stats != wantStats {
		t.Errorf("stats\n got %s\nwant %s", stats, wantStats)
	}
	// Reopening the table accepts the same nested schema.
	s2 := mustNew(t, map[string]string{"path": dir}, "q")
	if err := runBatch(t, s2, 1, []*batch.Batch{b}); err != nil {
		t.Fatalf("second batch on the nested table: %v", err)
	}

	duck := duckDBDir(t)
	out := testutil.RunVerify(t, duck, "--rows", "--json-nested", "--order", "id", dir)
	var got deltaVerify
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got.Count != 8 {
		t.Fatalf("DuckDB counted %d rows, want 8", got.Count)
	}
	want := []map[string]any{
		{"id": "1", "w": `{"start":"1970-01-01 00:01:00+00","end":"1970-01-01 00:02:00+00"}`, "o": `{"amount":2.5,"line":{"sku":"b","qty":3},"flag":true}`, "xs": `[5,6]`, "m": `{"k":"v"}`},
		{"id": "2", "w": nil, "o": nil, "xs": nil, "m": nil},
		{"id": "3", "w": `{"start":"1970-01-01 00:00:00+00","end":"1970-01-01 00:01:00+00"}`, "o": `{"amount":null,"line":{"sku":"a","qty":null},"flag":false}`, "xs": `[]`, "m": `{"z":null}`},
		{"id": "4", "w": `{"start":"1970-01-01 00:02:00+00","end":"1970-01-01 00:03:00+00"}`, "o": `{"amount":7.0,"line":null,"flag":null}`, "xs": `[-1]`, "m": `{}`},
	}
	for i, w := range want {
		for _, row := range []map[string]any{got.Rows[2*i], got.Rows[2*i+1]} {
			for k, v := range w {
				if !sameJSON(t, row[k], v) {
					t.Errorf("row %v %s: DuckDB %v, want %v", w["id"], k, row[k], v)
				}
			}
		}
	}
}

func sameJSON(t *testing.T, a, b any) bool {
	t.Helper()
	as, aok := a.(string)
	bs, bok := b.(string)
	if !aok || !bok || as == "" || as[0] != '{' && as[0] != '[' {
		return reflect.DeepEqual(a, b)
	}
	var x, y any
	if json.Unmarshal([]byte(as), &x) != nil || json.Unmarshal([]byte(bs), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
