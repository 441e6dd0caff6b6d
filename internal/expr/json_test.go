package expr

import (
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

func jsonBatch(vals ...any) *batch.Batch {
	s := batch.Schema{Fields: []batch.Field{{Name: "value", Type: batch.String, Nullable: true}}}
	rows := make([][]any, len(vals))
	for i, v := range vals {
		rows[i] = []any{v}
	}
	return mkBatch(s, rows...)
}

func TestFromJSON(t *testing.T) {
	sv := func(names []string, vals ...any) batch.StructValue {
		return batch.StructValue{Names: names, Values: vals}
	}
	for _, tc := range []struct {
		src, name, typ string
		in             []any
		want           []any
	}{
		// Spark's documented examples.
		{`from_json('{"a":1, "b":0.8}', 'a INT, b DOUBLE')`, `from_json({"a":1, "b":0.8})`, "struct<a:int,b:double>", []any{nil},
			[]any{sv([]string{"a", "b"}, int64(1), 0.8)}},
		{`from_json('{"time":"26/08/2015"}', 'time Timestamp', map('timestampFormat', 'dd/MM/yyyy'))`, `from_json({"time":"26/08/2015"})`, "struct<time:timestamp>", []any{nil},
			[]any{sv([]string{"time"}, micros(2015, 8, 26, 0, 0, 0))}},
		{`from_json('{"teacher": "Alice", "student": [{"name": "Bob", "rank": 1}, {"name": "Charlie", "rank": 2}]}', 'STRUCT<teacher: STRING, student: ARRAY<STRUCT<name: STRING, rank: INT>>>')`,
			`from_json({"teacher": "Alice", "student": [{"name": "Bob", "rank": 1}, {"name": "Charlie", "rank": 2}]})`,
			"struct<teacher:string,student:array<struct<name:string,rank:int>>>", []any{nil},
			[]any{sv([]string{"teacher", "student"}, "Alice", []any{sv([]string{"name", "rank"}, "Bob", int64(1)), sv([]string{"name", "rank"}, "Charlie", int64(2))})}},
		// A column: PERMISSIVE results, NULL for NULL and blank input.
		{"from_json(value, 'id BIGINT, amount DOUBLE')", "from_json(value)", "struct<id:bigint,amount:double>",
			[]any{`{"id": 7, "amount": 12.5}`, `{"id": "x", "amount": 1}`, `not json`, nil, "  ", `{"amount": 3}`},
			[]any{sv([]string{"id", "amount"}, int64(7), 12.5), sv([]string{"id", "amount"}, nil, 1.0), sv([]string{"id", "amount"}, nil, nil), nil, nil,
				sv([]string{"id", "amount"}, nil, 3.0)}},
		{"from_json(value, 'array<int>')", "from_json(value)", "array<int>", []any{`[1, 2]`, `[1, "x"]`, `{}`},
			[]any{[]any{int64(1), int64(2)}, nil, nil}},
		{"from_json(value, 'map<string,bigint>')", "from_json(value)", "map<string,bigint>", []any{`{"a": 1, "b": 2}`},
			[]any{batch.MapValue{Keys: []any{"a", "b"}, Values: []any{int64(1), int64(2)}}}},
		{`from_json(value, '{"type":"struct","fields":[{"name":"a","type":"long","nullable":false,"metadata":{}}]}')`, "from_json(value)",
			"struct<a:bigint>", []any{`{"a": 5}`}, []any{sv([]string{"a"}, int64(5))}},
		{"from_json(value, 'a INT, _corrupt_record STRING')", "from_json(value)", "struct<a:int,_corrupt_record:string>",
			[]any{`{"a": 1}`, `{"a": true}`}, []any{sv([]string{"a", "_corrupt_record"}, int64(1), nil), sv([]string{"a", "_corrupt_record"}, nil, `{"a": true}`)}},
		{"from_json(value, 'o STRUCT<amount: DOUBLE>').o.amount * 2", "(from_json(value).o.amount * 2)", "double",
			[]any{`{"o": {"amount": 21}}`}, []any{42.0}},
	} {
		c, got := evalOn(t, tc.src, jsonBatch(tc.in...))
		if c.Name() != tc.name || c.Type().String() != tc.typ || !sameValues(got, tc.want) {
			t.Errorf("%s:\n got %s %s = %#v\nwant %s %s = %#v", tc.src, c.Name(), c.Type(), got, tc.name, tc.typ, tc.want)
		}
	}
	// FAILFAST fails the batch (or routes the row) with Spark's error.
	c, err := compileSource("from_json(value, 'a INT', map('mode', 'FAILFAST'))", jsonBatch().Schema)
	if err != nil {
		t.Fatal(err)
	}
	b := jsonBatch(`{"a": 1}`, `{"a": "x"}`)
	if _, err := c.Eval(b, testCtx); err == nil || !strings.Contains(err.Error(), "[MALFORMED_RECORD_IN_PARSING") || !strings.Contains(err.Error(), "FAILFAST") {
		t.Errorf("FAILFAST: %v", err)
	}
	ctx := *testCtx
	ctx.RowErrors = &RowErrors{}
	col, err := c.Eval(b, &ctx)
	if err != nil || ctx.RowErrors.Len() != 1 || ctx.RowErrors.Reasons[1] == "" || col.Value(0) == nil {
		t.Errorf("FAILFAST with row errors: %v %v", err, ctx.RowErrors.Reasons)
	}
	for src, want := range map[string]string{
		"from_json(value, value)":                                 "INVALID_SCHEMA.NON_STRING_LITERAL",
		"from_json(value, 'a FOO')":                               "INVALID_SCHEMA.PARSE_ERROR",
		"from_json(value, 'int')":                                 "INVALID_SCHEMA.PARSE_ERROR",
		"from_json(value, 'map<int,string>')":                     "INVALID_JSON_MAP_KEY_TYPE",
		"from_json(value, 'a INT', map('mode', 'DROPMALFORMED'))": "[PARSE_MODE_UNSUPPORTED] The function `from_json` doesn't support the DROPMALFORMED mode.",
		"from_json(value, 'a INT', map('modes', 'FAILFAST'))":     `does not support the option "modes"`,
		"from_json(value, 'a INT', 'mode')":                       "options must be map(",
		"from_json(value, 'a INT, _corrupt_record INT')":          "INVALID_CORRUPT_RECORD_TYPE",
		"from_json(1, 'a INT')":                                   "must be a string",
	} {
		if _, err := compileSource(src, jsonBatch().Schema); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

func TestToJSON(t *testing.T) {
	for _, tc := range []struct{ src, name, want string }{
		// Spark's documented examples.
		{"to_json(named_struct('a', 1, 'b', 2))", "to_json(named_struct(a, 1, b, 2))", `{"a":1,"b":2}`},
		{"to_json(array(named_struct('a', 1, 'b', 2)))", "to_json(array(named_struct(a, 1, b, 2)))", `[{"a":1,"b":2}]`},
		{"to_json(map('a', named_struct('b', 1)))", "to_json(map(a, named_struct(b, 1)))", `{"a":{"b":1}}`},
		{"to_json(map(named_struct('a', 1), named_struct('b', 2)))", "to_json(map(named_struct(a, 1), named_struct(b, 2)))", `{"[1]":{"b":2}}`},
		{"to_json(map('a', 1))", "to_json(map(a, 1))", `{"a":1}`},
		{"to_json(array(map('a', 1)))", "to_json(array(map(a, 1)))", `[{"a":1}]`},
		// Nulls, timestamps and doubles as Spark's generator writes them.
		{"to_json(struct(CAST(NULL AS INT) AS n, timestamp_seconds(0) AS t, 1.0 AS d, 'x\"y' AS s))", "", `{"t":"1970-01-01T00:00:00.000Z","d":1.0,"s":"x\"y"}`},
		{"to_json(array(1, NULL))", "", `[1,null]`},
	} {
		c, got := evalOn(t, tc.src, jsonBatch(nil))
		if (tc.name != "" && c.Name() != tc.name) || got[0] != tc.want {
			t.Errorf("%s: %s = %v, want %s = %s", tc.src, c.Name(), got[0], tc.name, tc.want)
		}
	}
	// to_json reads back with from_json.
	_, got := evalOn(t, "from_json(to_json(named_struct('a', 1, 'b', array('x'))), 'a INT, b ARRAY<STRING>').b[0]", jsonBatch(nil))
	if got[0] != "x" {
		t.Errorf("round trip %v", got)
	}
	if _, err := compileSource("to_json(value)", jsonBatch().Schema); err == nil {
		t.Error("to_json of a string compiled")
	}
}

func TestGetJSONObjectFunction(t *testing.T) {
	c, got := evalOn(t, "get_json_object(value, '$.a')", jsonBatch(`{"a":"b"}`, `{"a": {"x": [1, 2.50]}}`, `bad`, nil, `{"b": 1}`))
	if c.Name() != "get_json_object(value, $.a)" || !sameValues(got, []any{"b", `{"x":[1,2.5]}`, nil, nil, nil}) {
		t.Errorf("%s = %#v", c.Name(), got)
	}
	_, got = evalOn(t, "get_json_object('{\"a\":[{\"b\":1},{\"b\":2}]}', value)", jsonBatch("$.a[*].b", "$.a[1]", "nope", nil))
	if !sameValues(got, []any{"[1,2]", `{"b":2}`, nil, nil}) {
		t.Errorf("paths from a column: %#v", got)
	}
}

func TestMapFunction(t *testing.T) {
	_, got := evalOn(t, "map('a', 1, 'b', NULL)", jsonBatch(nil))
	if !sameValues(got, []any{batch.MapValue{Keys: []any{"a", "b"}, Values: []any{int64(1), nil}}}) {
		t.Errorf("map = %#v", got)
	}
	for src, want := range map[string]string{
		"map('a', 1, 'a', 2)": "[DUPLICATED_MAP_KEY] Duplicate map key 'a'",
		"map(value, 1)":       "[NULL_MAP_KEY]",
	} {
		c, err := compileSource(src, jsonBatch().Schema)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Eval(jsonBatch(nil), testCtx); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", src, err, want)
		}
	}
	if _, err := compileSource("map('a')", jsonBatch().Schema); err == nil {
		t.Error("map('a') compiled")
	}
}
