package expr

import (
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

var (
	orderKind = batch.StructOf(
		batch.Field{Name: "amount", Type: batch.Double, Nullable: true},
		batch.Field{Name: "sku", Type: batch.String, Nullable: true},
		batch.Field{Name: "qty", Type: batch.Int, Nullable: true})
	winKind = batch.StructOf(
		batch.Field{Name: "start", Type: batch.Timestamp, Nullable: true},
		batch.Field{Name: "end", Type: batch.Timestamp, Nullable: true})
	nestedSchema = batch.Schema{Fields: []batch.Field{
		{Name: "o", Type: orderKind, Nullable: true},
		{Name: "o2", Type: orderKind, Nullable: true},
		{Name: "tags", Type: batch.ArrayOf(batch.String, true), Nullable: true},
		{Name: "tags2", Type: batch.ArrayOf(batch.String, true), Nullable: true},
		{Name: "m", Type: batch.MapOf(batch.String, batch.Long, true), Nullable: true},
		{Name: "w", Type: winKind, Nullable: true},
		{Name: "bs", Type: batch.StructOf(batch.Field{Name: "b", Type: batch.Binary, Nullable: true}), Nullable: true},
	}}
)

func sv(vals ...any) batch.StructValue { return batch.StructValue{Values: vals} }

// nestedBatch has four rows: values, nulls inside, top-level nulls, and
// values that order differently.
func nestedBatch() *batch.Batch {
	return mkBatch(nestedSchema,
		[]any{sv(12.5, "A-1", 2), sv(12.5, "A-1", 2), []any{"x", nil, "z"}, []any{"x", nil, "z"},
			batch.MapValue{Keys: []any{"a", "b"}, Values: []any{int64(1), nil}}, sv(int64(1714564800000000), int64(1714565400000000)), sv([]byte("hi"))},
		[]any{sv(nil, nil, nil), sv(nil, nil, nil), []any{}, []any{"a"}, batch.MapValue{}, sv(nil, int64(0)), sv(nil)},
		[]any{nil, sv(1.0, "b", 1), nil, []any{}, nil, nil, nil},
		[]any{sv(1.0, "b", 3), sv(1.0, "b", 1), []any{"y"}, []any{"x", "zz"}, batch.MapValue{Keys: []any{"k"}, Values: []any{int64(-1)}}, sv(int64(-1), int64(1)), sv([]byte{})},
	)
}

func TestNestedCastToString(t *testing.T) {
	for _, tc := range []struct {
		src  string
		name string
		want []any
	}{
		// Spark's CAST(... AS STRING): nested nulls print as null.
		{"CAST(o AS STRING)", "o", []any{"{12.5, A-1, 2}", "{null, null, null}", nil, "{1.0, b, 3}"}},
		{"CAST(tags AS STRING)", "tags", []any{"[x, null, z]", "[]", nil, "[y]"}},
		{"CAST(m AS STRING)", "m", []any{"{a -> 1, b -> null}", "{}", nil, "{k -> -1}"}},
		{"CAST(w AS STRING)", "w", []any{"{2024-05-01 12:00:00, 2024-05-01 12:10:00}", "{null, 1970-01-01 00:00:00}", nil, "{1969-12-31 23:59:59.999999, 1970-01-01 00:00:00.000001}"}},
		{"CAST(bs AS STRING)", "bs", []any{"{hi}", "{null}", nil, "{}"}},
		{"typeof(o)", "typeof(o)", []any{"struct<amount:double,sku:string,qty:int>", "struct<amount:double,sku:string,qty:int>", "struct<amount:double,sku:string,qty:int>", "struct<amount:double,sku:string,qty:int>"}},
	} {
		c, got := evalOn(t, tc.src, nestedBatch())
		if c.Name() != tc.name || !sameValues(got, tc.want) {
			t.Errorf("%s: %s = %#v, want %s = %#v", tc.src, c.Name(), got, tc.name, tc.want)
		}
	}
}

func TestNestedCasts(t *testing.T) {
	// struct → struct by position, names from the target, fields cast.
	c, got := evalOn(t, "CAST(o AS STRUCT<price: STRING, code: STRING, n: BIGINT>)", nestedBatch())
	want := []any{
		batch.StructValue{Names: []string{"price", "code", "n"}, Values: []any{"12.5", "A-1", int64(2)}},
		batch.StructValue{Names: []string{"price", "code", "n"}, Values: []any{nil, nil, nil}},
		nil,
		batch.StructValue{Names: []string{"price", "code", "n"}, Values: []any{"1.0", "b", int64(3)}},
	}
	if !sameValues(got, want) {
		t.Errorf("struct cast = %#v", got)
	}
	if c.Type().String() != "struct<price:string,code:string,n:bigint>" || c.Name() != "o" {
		t.Errorf("struct cast type %s name %s", c.Type(), c.Name())
	}
	_, got = evalOn(t, "CAST(tags AS ARRAY<INT>)", nestedBatch())
	if !sameValues(got, []any{[]any{nil, nil, nil}, []any{}, nil, []any{nil}}) {
		t.Errorf("array cast = %#v", got)
	}
	_, got = evalOn(t, "CAST(m AS MAP<STRING, STRING>)", nestedBatch())
	if !sameValues(got, []any{batch.MapValue{Keys: []any{"a", "b"}, Values: []any{"1", nil}}, batch.MapValue{Keys: []any{}, Values: []any{}}, nil,
		batch.MapValue{Keys: []any{"k"}, Values: []any{"-1"}}}) {
		t.Errorf("map cast = %#v", got)
	}
	for _, bad := range []string{
		"CAST(o AS STRUCT<a: INT>)",                     // field count
		"CAST(o AS ARRAY<INT>)",                         // class
		"CAST(s AS STRUCT<a: INT>)",                     // string to struct
		"CAST(tags AS ARRAY<STRUCT<a: INT>>)",           // element
		"CAST(o AS STRUCT<a: INT, b: BINARY, c: DATE>)", // double → binary
	} {
		in := batch.Schema{Fields: append(append([]batch.Field(nil), nestedSchema.Fields...), batch.Field{Name: "s", Type: batch.String, Nullable: true})}
		if _, err := compileSource(bad, in); err == nil || !strings.Contains(err.Error(), "cannot cast") {
			t.Errorf("%s: err = %v, want cannot cast", bad, err)
		}
	}
}

func TestNestedComparisons(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []any
	}{
		// Nested nulls compare as equal; a top-level null gives null.
		{"o = o2", []any{true, true, nil, false}},
		{"o <=> o2", []any{true, true, false, false}},
		{"o > o2", []any{false, false, nil, true}},
		{"tags = tags2", []any{true, false, nil, false}},
		// Arrays order element by element, then by length.
		{"tags < tags2", []any{false, true, nil, false}},
		{"tags > tags2", []any{false, false, nil, true}},
		{"o IN (o2, CAST(NULL AS STRUCT<amount: DOUBLE, sku: STRING, qty: INT>))", []any{true, true, nil, nil}},
		{"coalesce(o, o2) = o2", []any{true, true, true, false}},
		{"CASE WHEN tags IS NULL THEN tags2 ELSE tags END = tags", []any{true, true, nil, true}},
	} {
		_, got := evalOn(t, tc.src, nestedBatch())
		if !sameValues(got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.src, got, tc.want)
		}
	}
	for _, bad := range []string{"m = m", "m < m", "o = tags", "o IN (tags)"} {
		if _, err := compileSource(bad, nestedSchema); err == nil {
			t.Errorf("%s compiled; maps and different shapes do not compare", bad)
		}
	}
	// Structs with fields of different numeric types compare at the wider type.
	wide := batch.Schema{Fields: []batch.Field{
		{Name: "a", Type: batch.StructOf(batch.Field{Name: "x", Type: batch.Int, Nullable: true}), Nullable: true},
		{Name: "b", Type: batch.StructOf(batch.Field{Name: "X", Type: batch.Long}), Nullable: true},
	}}
	_, got := evalOn(t, "a = b", mkBatch(wide, []any{sv(int64(1)), sv(int64(1))}, []any{sv(int64(1)), sv(int64(1) << 40)}))
	if !sameValues(got, []any{true, false}) {
		t.Errorf("a = b (int vs bigint fields) = %v", got)
	}
}

func TestNestedTypeSyntax(t *testing.T) {
	for src, want := range map[string]string{
		"CAST(NULL AS ARRAY<ARRAY<INT>>)":                         "array<array<int>>",
		"CAST(NULL AS MAP<STRING, ARRAY<BIGINT>>)":                "map<string,array<bigint>>",
		"CAST(NULL AS STRUCT<a: INT, `b c` STRING NOT NULL>)":     "struct<a:int,b c:string>",
		"CAST(NULL AS STRUCT<>)":                                  "struct<>",
		"NULL::struct<x:timestamp,y:array<date>>":                 "struct<x:timestamp,y:array<date>>",
		"CAST(NULL AS STRUCT<a: INT COMMENT 'the a', b: BINARY>)": "struct<a:int,b:binary>",
	} {
		c, err := compileSource(src, nestedSchema)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if c.Type().String() != want {
			t.Errorf("%s: type %s, want %s", src, c.Type(), want)
		}
	}
	c, _ := compileSource("CAST(NULL AS STRUCT<a: INT, `b c` STRING NOT NULL>)", nestedSchema)
	if c.Name() != "CAST(NULL AS STRUCT<a: INT, `b c`: STRING NOT NULL>)" {
		t.Errorf("name %s", c.Name())
	}
	for _, bad := range []string{"CAST(NULL AS ARRAY<>)", "CAST(NULL AS MAP<INT>)", "CAST(NULL AS ARRAY<INT)", "CAST(NULL AS STRUCT<a>)", "CAST(NULL AS MAP<MAP<INT, INT>, INT>)"} {
		if _, err := compileSource(bad, nestedSchema); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}
