package file

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/parquetio"
)

// Nested columns: an order struct, a string array, a window struct, a map
// and an array of structs holding arrays.
var (
	orderKind  = batch.StructOf(batch.Field{Name: "amount", Type: batch.Double, Nullable: true}, batch.Field{Name: "sku", Type: batch.String, Nullable: true}, batch.Field{Name: "qty", Type: batch.Int, Nullable: true})
	windowKind = batch.StructOf(batch.Field{Name: "start", Type: batch.Timestamp, Nullable: true}, batch.Field{Name: "end", Type: batch.Timestamp, Nullable: true})
	deepKind   = batch.ArrayOf(batch.StructOf(batch.Field{Name: "k", Type: batch.String, Nullable: true}, batch.Field{Name: "v", Type: batch.ArrayOf(batch.Int, true), Nullable: true}), true)
	nestedSch  = batch.Schema{Fields: []batch.Field{
		{Name: "id", Type: batch.Long},
		{Name: "o", Type: orderKind, Nullable: true},
		{Name: "tags", Type: batch.ArrayOf(batch.String, true), Nullable: true},
		{Name: "w", Type: windowKind, Nullable: true},
		{Name: "m", Type: batch.MapOf(batch.String, batch.Long, true), Nullable: true},
		{Name: "deep", Type: deepKind, Nullable: true},
	}}
)

func st(vals ...any) batch.StructValue { return batch.StructValue{Values: vals} }

// nestedRows are the cells of the nested test batch (Go values as
// batch.Column.Value returns them, without struct names).
var nestedRows = [][]any{
	{int64(0), st(12.5, "A-1", int64(2)), []any{"x", "y"}, st(int64(1714564800000000), int64(1714565400000000)),
		batch.MapValue{Keys: []any{"a", "b"}, Values: []any{int64(1), nil}}, []any{st("k1", []any{int64(1), nil, int64(3)}), nil, st(nil, []any{})}},
	{int64(1), nil, nil, nil, nil, nil},
	{int64(2), st(nil, nil, nil), []any{}, st(nil, int64(0)), batch.MapValue{}, []any{}},
	{int64(3), st(-0.5, "Ü\"q", nil), []any{nil, "z"}, st(int64(-1), int64(1_500)), batch.MapValue{Keys: []any{"only"}, Values: []any{int64(-7)}}, []any{st("k", nil)}},
}

func nestedBatch(t *testing.T) *batch.Batch {
	t.Helper()
	cols := make([]*batch.Column, len(nestedSch.Fields))
	for i, f := range nestedSch.Fields {
		cols[i] = batch.NewColumn(f.Type, len(nestedRows))
	}
	for _, r := range nestedRows {
		for i, v := range r {
			if err := cols[i].AppendValue(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	b := batch.New(nestedSch, cols, len(nestedRows))
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	return b
}

func writeNested(t *testing.T, format string) string {
	t.Helper()
	dir := t.TempDir()
	s := mustNew(t, format, map[string]string{"path": dir})
	b := nestedBatch(t)
	if err := runBatch(t, s, 0, []*batch.Batch{sliceBatch(b, 0, 2), sliceBatch(b, 2, 4)}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestJSONNested checks the JSON lines against Spark's JSON writer: null
// struct fields omitted at every level, null array elements and map values
// written as null, timestamps in the writer's default format.
func TestJSONNested(t *testing.T) {
	dir := writeNested(t, JSON)
	var lines []string
	for _, f := range loggedFiles(t, dir) {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		fh.Close()
	}
	want := []string{
		`{"id":0,"o":{"amount":12.5,"sku":"A-1","qty":2},"tags":["x","y"],"w":{"start":"2024-05-01T12:00:00.000Z","end":"2024-05-01T12:10:00.000Z"},"m":{"a":1,"b":null},"deep":[{"k":"k1","v":[1,null,3]},null,{"v":[]}]}`,
		`{"id":1}`,
		`{"id":2,"o":{},"tags":[],"w":{"end":"1970-01-01T00:00:00.000Z"},"m":{},"deep":[]}`,
		`{"id":3,"o":{"amount":-0.5,"sku":"Ü\"q"},"tags":[null,"z"],"w":{"start":"1969-12-31T23:59:59.999Z","end":"1970-01-01T00:00:00.001Z"},"m":{"only":-7},"deep":[{"k":"k"}]}`,
	}
	if !reflect.DeepEqual(lines, want) {
		t.Fatalf("JSON lines\n got %q\nwant %q", lines, want)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Errorf("invalid JSON %s", l)
		}
	}
}

// loggedFiles are the committed data files, absolute.
func loggedFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, rel := range logged(t, dir) {
		out = append(out, filepath.Join(dir, rel))
	}
	return out
}

func TestParquetNestedReadBack(t *testing.T) {
	dir := writeNested(t, Parquet)
	var rows [][]any
	for _, f := range loggedFiles(t, dir) {
		tab, err := parquetio.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, tab.Rows...)
	}
	if len(rows) != len(nestedRows) {
		t.Fatalf("%d rows, want %d", len(rows), len(nestedRows))
	}
	b := nestedBatch(t)
	for i := range rows {
		if want := b.Row(int(rows[i][0].(int64))); !reflect.DeepEqual(rows[i], want) {
			t.Errorf("row %d\n got %#v\nwant %#v", i, rows[i], want)
		}
	}
}

// TestCSVRefusesNested: Spark's CSV writer refuses structs, arrays and maps
// (UNSUPPORTED_DATA_TYPE_FOR_DATASOURCE) before writing anything.
func TestCSVRefusesNested(t *testing.T) {
	for _, f := range nestedSch.Fields[1:] {
		s := mustNew(t, CSV, map[string]string{"path": t.TempDir()})
		_, err := s.NewWriter(context.Background(), 0, 0, batch.Schema{Fields: []batch.Field{{Name: "id", Type: batch.Long}, f}})
		want := "[UNSUPPORTED_DATA_TYPE_FOR_DATASOURCE] The CSV datasource doesn't support the column `" + f.Name + "` of the type \"" + f.Type.SQL() + "\"."
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "to_json") {
			t.Errorf("%s: err = %v, want %q and the to_json remedy", f.Name, err, want)
		}
	}
	s := mustNew(t, CSV, map[string]string{"path": t.TempDir()})
	_, err := s.NewWriter(context.Background(), 0, 0, batch.Schema{Fields: []batch.Field{{Name: "o", Type: orderKind}}})
	if err == nil || !strings.Contains(err.Error(), `"STRUCT<amount: DOUBLE, sku: STRING, qty: INT>"`) {
		t.Errorf("type in the error: %v", err)
	}
}

// TestDuckDBReadsNested reads the nested columns back with DuckDB, which
// renders each struct, list and map with its own to_json: the Parquet
// groups, LIST and MAP types must come back as the same types and values.
// DuckDB infers JSON objects as structs, so for JSON files maps are
// compared by their non-null keys.
func TestDuckDBReadsNested(t *testing.T) {
	duck := duckDBDir(t)
	wantTypes := map[string]string{
		"id": "BIGINT", "o": "STRUCT(amount DOUBLE, sku VARCHAR, qty INTEGER)", "tags": "VARCHAR[]",
		"w": `STRUCT("start" TIMESTAMP WITH TIME ZONE, "end" TIMESTAMP WITH TIME ZONE)`,
		"m": "MAP(VARCHAR, BIGINT)", "deep": "STRUCT(k VARCHAR, v INTEGER[])[]",
	}
	// DuckDB's to_json of the values (timestamps in UTC with an offset).
	want := []map[string]string{
		{"o": `{"amount":12.5,"sku":"A-1","qty":2}`, "tags": `["x","y"]`, "w": `{"start":"2024-05-01 12:00:00+00","end":"2024-05-01 12:10:00+00"}`,
			"m": `{"a":1,"b":null}`, "deep": `[{"k":"k1","v":[1,null,3]},null,{"k":null,"v":[]}]`},
		{},
		{"o": `{"amount":null,"sku":null,"qty":null}`, "tags": `[]`, "w": `{"start":null,"end":"1970-01-01 00:00:00+00"}`, "m": `{}`, "deep": `[]`},
		{"o": `{"amount":-0.5,"sku":"Ü\"q","qty":null}`, "tags": `[null,"z"]`, "w": `{"start":"1969-12-31 23:59:59.999999+00","end":"1970-01-01 00:00:00.0015+00"}`,
			"m": `{"only":-7}`, "deep": `[{"k":"k","v":null}]`},
	}
	for _, format := range []string{Parquet, JSON} {
		t.Run(format, func(t *testing.T) {
			dir := writeNested(t, format)
			var got struct {
				Columns []struct{ Name, Type string } `json:"columns"`
				Rows    []map[string]any              `json:"rows"`
			}
			if err := json.Unmarshal(runVerify(t, duck, dir, "--rows", "--json-nested", "--order", "id"), &got); err != nil {
				t.Fatal(err)
			}
			if format == Parquet {
				for _, c := range got.Columns {
					if wantTypes[c.Name] != c.Type {
						t.Errorf("DuckDB type of %s = %s, want %s", c.Name, c.Type, wantTypes[c.Name])
					}
				}
			}
			if len(got.Rows) != len(want) {
				t.Fatalf("%d rows, want %d", len(got.Rows), len(want))
			}
			for i, w := range want {
				for _, col := range []string{"o", "tags", "w", "m", "deep"} {
					exp := w[col]
					if format == JSON {
						exp = jsonFileForm(col, exp)
					}
					g, _ := got.Rows[i][col].(string)
					if !sameJSON(t, g, exp, format == JSON && col == "m") {
						t.Errorf("row %d %s: DuckDB %s, want %s", i, col, g, exp)
					}
				}
			}
		})
	}
}

// jsonFileForm adapts an expected DuckDB rendering to what DuckDB reads
// from a JSON file: timestamps are strings it parses without an offset,
// in milliseconds (the JSON writer's format), and integers are BIGINT.
func jsonFileForm(col, s string) string {
	if col != "w" {
		return s
	}
	r := strings.NewReplacer("+00", "", ".999999", ".999", ".0015", ".001")
	return r.Replace(s)
}

// sameJSON compares two JSON texts as values ("" is SQL NULL); with
// ignoreNulls, null members of objects are ignored (DuckDB's struct for a
// JSON map holds the union of all keys).
func sameJSON(t *testing.T, a, b string, ignoreNulls bool) bool {
	t.Helper()
	if a == "" || b == "" {
		return a == b
	}
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if ignoreNulls {
		x, y = dropNulls(x), dropNulls(y)
	}
	return reflect.DeepEqual(x, y)
}

func dropNulls(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	for k, x := range m {
		if x == nil {
			delete(m, k)
		}
	}
	return m
}
