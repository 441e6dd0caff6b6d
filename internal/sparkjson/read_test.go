package sparkjson

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/ddl"
)

func mustType(t testing.TB, s string) batch.Kind {
	t.Helper()
	k, err := ddl.ParseType(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func parseOne(t testing.TB, k batch.Kind, opts Options, rec string) (any, Status) {
	t.Helper()
	p, err := NewParser(k, opts)
	if err != nil {
		t.Fatal(err)
	}
	col := batch.NewColumn(k, 1)
	st, _ := p.NewDecoder().Append(col, []byte(rec))
	if err := col.Validate(); err != nil {
		t.Fatalf("%s: %v", rec, err)
	}
	if col.Len != 1 {
		t.Fatalf("%s: %d cells", rec, col.Len)
	}
	return col.Value(0), st
}

func row(vals ...any) batch.StructValue { return batch.StructValue{Values: vals} }

func sameCell(a, b any) bool {
	switch x := a.(type) {
	case batch.StructValue:
		y, ok := b.(batch.StructValue)
		if !ok || len(x.Values) != len(y.Values) {
			return false
		}
		for i := range x.Values {
			if !sameCell(x.Values[i], y.Values[i]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameCell(x[i], y[i]) {
				return false
			}
		}
		return true
	case batch.MapValue:
		y, ok := b.(batch.MapValue)
		return ok && sameCell(x.Keys, y.Keys) && sameCell(x.Values, y.Values)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	}
	return reflect.DeepEqual(a, b)
}

// TestPermissive replays Spark's from_json results (Spark 4 defaults:
// PERMISSIVE, partial results, exact string parsing).
func TestPermissive(t *testing.T) {
	ab := mustType(t, "struct<a:int,b:string>")
	for _, tc := range []struct {
		schema batch.Kind
		in     string
		want   any
		st     Status
	}{
		{ab, `{"a": 1, "b": "x"}`, row(int64(1), "x"), OK},
		{ab, `{"a": 1}`, row(int64(1), nil), OK},                                      // missing field
		{ab, `{"a": 1, "c": {"deep": [1, 2]}}`, row(int64(1), nil), OK},               // extra field skipped
		{ab, `{"a": 1, "a": 2}`, row(int64(2), nil), OK},                              // the last wins
		{ab, `{'a': 1, 'b': 'single'}`, row(int64(1), "single"), OK},                  // allowSingleQuotes
		{ab, `{"a": 1} trailing`, row(int64(1), nil), OK},                             // after the value: ignored
		{ab, `{"a": "x", "b": "y"}`, row(nil, "y"), Partial},                          // a type mismatch nulls the field only
		{ab, `{"a": 1.5, "b": "y"}`, row(nil, "y"), Partial},                          // no truncation
		{ab, `{"a": 2147483648}`, row(nil, nil), Partial},                             // out of int range
		{ab, `{"a": "", "b": ""}`, row(nil, ""), Partial},                             // empty string: only for strings
		{ab, `{"b": {"x": 1,  "y": [true]}}`, row(nil, `{"x": 1,  "y": [true]}`), OK}, // exact text
		{ab, `{"b": 1.50}`, row(nil, "1.50"), OK},
		{ab, `[{"a": 1}]`, row(nil, nil), Malformed}, // an array for a struct schema
		{ab, `5`, row(nil, nil), Malformed},
		{ab, `null`, row(nil, nil), Malformed},
		{ab, `{"a": 1`, row(nil, nil), Malformed},           // not JSON: all fields null
		{ab, `{"a": 01}`, row(nil, nil), Malformed},         // leading zero
		{ab, `{"a": 1,}`, row(nil, nil), Malformed},         // trailing comma
		{ab, `{a: 1}`, row(nil, nil), Malformed},            // unquoted name
		{ab, "{\"b\": \"a\tb\"}", row(nil, nil), Malformed}, // raw control character
		{ab, ``, nil, OK}, // blank: NULL
		{ab, " \n\t", nil, OK},
		{ab, `{"b": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}`, row(nil, "q\"\\/\b\f\n\r\té😀"), OK},
		// Doubles, booleans, bigints.
		{mustType(t, "struct<d:double,e:double,f:double,g:double>"), `{"d": NaN, "e": "-Infinity", "f": -1.5e3, "g": "x"}`,
			row(math.NaN(), math.Inf(-1), -1500.0, nil), Partial},
		{mustType(t, "struct<b:boolean,c:boolean,l:bigint>"), `{"b": true, "c": "true", "l": -9223372036854775808}`,
			row(true, nil, int64(math.MinInt64)), Partial},
		// Timestamps, dates, binary.
		{mustType(t, "struct<t:timestamp,u:timestamp,v:timestamp,w:timestamp>"),
			`{"t": "2024-05-01T12:00:00Z", "u": 1714564800, "v": "2024-05-01 14:00:00+02:00", "w": "garbage"}`,
			row(int64(1714564800000000), int64(1714564800000000), int64(1714564800000000), nil), Partial},
		{mustType(t, "struct<d:date,e:date,b:binary>"), `{"d": "2024-05-01", "e": "-5", "b": "aGk="}`,
			row(int64(19844), int64(-5), []byte("hi")), OK}, // "-5" is no date: a day count
		// SPARK-33134: partial results for nested structs and arrays.
		{mustType(t, "struct<c1:bigint,c2:array<struct<c3:bigint,c4:string>>>"), `{"c2": [19], "c1": 123456}`,
			row(int64(123456), nil), Partial},
		{mustType(t, "struct<data:struct<c1:bigint,c2:array<struct<c3:bigint,c4:string>>>>"), `{"data": {"c2": [19], "c1": 123456}}`,
			row(row(int64(123456), nil)), Partial},
		{mustType(t, "array<struct<c1:bigint,c2:array<struct<c3:bigint,c4:string>>>>"), `[{"c2": [19], "c1": 123456}]`,
			[]any{row(int64(123456), nil)}, Partial},
		{mustType(t, "struct<o:struct<a:int,b:int>>"), `{"o": {"a": "x", "b": 2}}`, row(row(nil, int64(2))), Partial},
		// Arrays and maps: an element or value that does not fit fails the whole collection.
		{mustType(t, "array<int>"), `[1, 2, null]`, []any{int64(1), int64(2), nil}, OK},
		{mustType(t, "array<int>"), `[1, "x", 3]`, nil, Malformed},
		{mustType(t, "array<int>"), `{"a": 1}`, nil, Malformed},
		{mustType(t, "struct<xs:array<int>,n:int>"), `{"xs": [1, "x"], "n": 7}`, row(nil, int64(7)), Partial},
		{mustType(t, "array<struct<a:int>>"), `{"a": 4}`, []any{row(int64(4))}, OK}, // a lone object
		{mustType(t, "map<string,int>"), `{"a": 1, "b": null, "a": 3}`,
			batch.MapValue{Keys: []any{"a", "b", "a"}, Values: []any{int64(1), nil, int64(3)}}, OK},
		{mustType(t, "map<string,int>"), `{"a": 1, "b": "x"}`, nil, Malformed},
		{mustType(t, "struct<m:map<string,int>,n:int>"), `{"m": {"a": "x"}, "n": 1}`, row(nil, int64(1)), Partial},
		{mustType(t, "map<string,struct<a:int,b:int>>"), `{"k": {"a": "x", "b": 1}}`,
			batch.MapValue{Keys: []any{"k"}, Values: []any{row(nil, int64(1))}}, Partial},
	} {
		got, st := parseOne(t, tc.schema, Options{CorruptField: -1}, tc.in)
		if !sameCell(got, tc.want) || st != tc.st {
			t.Errorf("%s as %s:\n got %#v (%s)\nwant %#v (%s)", tc.in, tc.schema, got, st, tc.want, tc.st)
		}
	}
}

func TestCorruptRecordField(t *testing.T) {
	k := mustType(t, "struct<a:int,_corrupt_record:string>")
	opts := Options{CorruptField: 1}
	for in, want := range map[string]batch.StructValue{
		`{"a": 1}`:                          row(int64(1), nil),
		`{"a": "x"}`:                        row(nil, `{"a": "x"}`),
		`{"a`:                               row(nil, `{"a`),
		`{"a": 2, "_corrupt_record": "no"}`: row(int64(2), nil), // the field is not read from the input
	} {
		if got, _ := parseOne(t, k, opts, in); !sameCell(got, want) {
			t.Errorf("%s: %#v, want %#v", in, got, want)
		}
	}
	if _, err := NewParser(k, Options{CorruptField: 0}); err == nil {
		t.Error("an INT corrupt record field was accepted")
	}
}

func TestParserErrors(t *testing.T) {
	for _, s := range []string{"int", "map<int,string>", "struct<m:map<int,int>>"} {
		if _, err := NewParser(mustType(t, s), Options{CorruptField: -1}); err == nil {
			t.Errorf("NewParser(%s) accepted", s)
		}
	}
}

func TestTimestampFormat(t *testing.T) {
	k := mustType(t, "struct<t:timestamp,d:date>")
	opts := Options{TimestampLayout: "02/01/2006 15:04", DateLayout: "02/01/2006", CorruptField: -1}
	got, st := parseOne(t, k, opts, `{"t": "01/05/2024 12:00", "d": "01/05/2024"}`)
	if !sameCell(got, row(int64(1714564800000000), int64(19844))) || st != OK {
		t.Errorf("formats: %#v %s", got, st)
	}
	// With a format there is no fallback to the default parsing.
	got, _ = parseOne(t, k, opts, `{"t": "2024-05-01 12:00:00", "d": "2024-05-01"}`)
	if !sameCell(got, row(nil, nil)) {
		t.Errorf("no fallback: %#v", got)
	}
}

// TestDeepNesting: nesting deeper than Jackson's 1000 levels is malformed,
// not a stack overflow.
func TestDeepNesting(t *testing.T) {
	k := mustType(t, "struct<a:string>")
	deep := `{"a": ` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}`
	if got, st := parseOne(t, k, Options{CorruptField: -1}, deep); st != Malformed || !sameCell(got, row(nil)) {
		t.Errorf("deep: %s", st)
	}
	ok := `{"a": ` + strings.Repeat("[", 900) + strings.Repeat("]", 900) + `}`
	if _, st := parseOne(t, k, Options{CorruptField: -1}, ok); st != OK {
		t.Errorf("900 levels: %s", st)
	}
}

// TestWriteReadRoundTrip: what AppendValue writes, the parser reads back.
func TestWriteReadRoundTrip(t *testing.T) {
	k := mustType(t, "struct<id:bigint,o:struct<amount:double,sku:string>,tags:array<string>,m:map<string,bigint>,ts:timestamp,d:date,b:binary,f:boolean>")
	in := batch.NewColumn(k, 1)
	v := row(int64(7), row(12.25, "A\"1\n"), []any{"x", nil}, batch.MapValue{Keys: []any{"k"}, Values: []any{int64(-1)}},
		int64(1714564800123000), int64(19844), []byte{0, 1, 2}, true)
	if err := in.AppendValue(v); err != nil {
		t.Fatal(err)
	}
	js := AppendValue(nil, in, 0)
	if !json.Valid(js) {
		t.Fatalf("invalid %s", js)
	}
	got, st := parseOne(t, k, Options{CorruptField: -1}, string(js))
	if st != OK || !sameCell(got, v) {
		t.Errorf("%s read back as %#v (%s)", js, got, st)
	}
}
