package expr

import (
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

func TestFieldAccess(t *testing.T) {
	for _, tc := range []struct {
		src, name, typ string
		want           []any
	}{
		{"o.amount", "amount", "double", []any{12.5, nil, nil, 1.0}},
		{"o.SKU", "sku", "string", []any{"A-1", nil, nil, "b"}},
		{"o['qty']", "qty", "int", []any{int64(2), nil, nil, int64(3)}},
		{"w.start", "start", "timestamp", []any{int64(1714564800000000), nil, nil, int64(-1)}},
		{"o.amount * 2", "(o.amount * 2)", "double", []any{25.0, nil, nil, 2.0}},
		{"CAST(o.qty AS STRING)", "o.qty", "string", []any{"2", nil, nil, "3"}},
		{"tags[0]", "tags[0]", "string", []any{"x", nil, nil, "y"}},
		{"tags[1]", "tags[1]", "string", []any{nil, nil, nil, nil}},
		{"tags[-1]", "tags[-1]", "string", []any{nil, nil, nil, nil}},
		{"tags2[size(tags2) - 1]", "tags2[(size(tags2) - 1)]", "string", []any{"z", "a", nil, "zz"}},
		{"m['a']", "m[a]", "bigint", []any{int64(1), nil, nil, nil}},
		{"m.k", "m.k", "bigint", []any{nil, nil, nil, int64(-1)}},
		{"m['b']", "m[b]", "bigint", []any{nil, nil, nil, nil}},
	} {
		c, got := evalOn(t, tc.src, nestedBatch())
		if c.Name() != tc.name || c.Type().String() != tc.typ || !sameValues(got, tc.want) {
			t.Errorf("%s: %s %s = %#v, want %s %s = %#v", tc.src, c.Name(), c.Type(), got, tc.name, tc.typ, tc.want)
		}
	}
	for src, want := range map[string]string{
		"o.nope":     "[FIELD_NOT_FOUND] No such struct field `nope` in `amount`, `sku`, `qty`.",
		"tags.x":     `[INVALID_EXTRACT_BASE_FIELD_TYPE] Can't extract a value from "tags". Need a complex type [STRUCT, ARRAY, MAP] but got "ARRAY<STRING>".`,
		"o.amount.x": `[INVALID_EXTRACT_BASE_FIELD_TYPE] Can't extract a value from "o.amount". Need a complex type [STRUCT, ARRAY, MAP] but got "DOUBLE".`,
		"o[1]":       "[INVALID_EXTRACT_FIELD_TYPE] Field name should be a non-null string literal, but it's 1.",
		"tags[1.5]":  "an array subscript must be an integer",
		"nope.x":     "cannot resolve column `nope`",
	} {
		if _, err := compileSource(src, nestedSchema); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
	// A column whose name holds a dot is pointed at with back-quotes.
	dotted := batch.Schema{Fields: []batch.Field{{Name: "t.value", Type: batch.String}}}
	if _, err := compileSource("t.value", dotted); err == nil || !strings.Contains(err.Error(), "back-quote it: `t.value`") {
		t.Errorf("t.value: %v", err)
	}
	if c, err := compileSource("`t.value`", dotted); err != nil || c.Name() != "t.value" {
		t.Errorf("`t.value`: %v", err)
	}
}

func TestArrayOfStructsField(t *testing.T) {
	// Spark's GetArrayStructFields: headers.key is the array of every key.
	s := batch.Schema{Fields: []batch.Field{{Name: "headers", Type: batch.Headers, Nullable: true}}}
	c := batch.NewColumn(batch.Headers, 3)
	c.AppendHeaders([]batch.Header{{Key: "a", Value: []byte("1")}, {Key: "b"}})
	c.AppendHeaders(nil)
	c.AppendHeaders([]batch.Header{})
	b := batch.New(s, []*batch.Column{c}, 3)
	cc, got := evalOn(t, "headers.key", b)
	if cc.Type().String() != "array<string>" || cc.Name() != "key" || !sameValues(got, []any{[]any{"a", "b"}, nil, []any{}}) {
		t.Errorf("headers.key: %s %s %#v", cc.Name(), cc.Type(), got)
	}
	_, got = evalOn(t, "CAST(headers[0].value AS STRING)", b)
	if !sameValues(got, []any{"1", nil, nil}) {
		t.Errorf("headers[0].value: %#v", got)
	}
}

func TestStructAndArrayFunctions(t *testing.T) {
	b := testBatch()
	for _, tc := range []struct {
		src, name, typ string
		want           []any
	}{
		// Spark's documented examples.
		{"named_struct('a', 1, 'b', 2, 'c', 3)", "named_struct(a, 1, b, 2, c, 3)", "struct<a:int,b:int,c:int>",
			repeat(4, batch.StructValue{Names: []string{"a", "b", "c"}, Values: []any{int64(1), int64(2), int64(3)}})},
		{"array(1, 2, 3)", "array(1, 2, 3)", "array<int>", repeat(4, []any{int64(1), int64(2), int64(3)})},
		{"size(array('b', 'd', 'c', 'a'))", "size(array(b, d, c, a))", "int", repeat(4, int64(4))},
		{"element_at(array(1, 2, 3), 2)", "element_at(array(1, 2, 3), 2)", "int", repeat(4, int64(2))},
		{"element_at(array(1, 2, 3), -1)", "element_at(array(1, 2, 3), -1)", "int", repeat(4, int64(3))},
		{"element_at(array(1, 2, 3), 4)", "element_at(array(1, 2, 3), 4)", "int", repeat(4, nil)},
		// Field names from columns, aliases and positions.
		{"struct(i, s AS name, l + 1)", "struct(i, s AS name, (l + 1))", "struct<i:int,name:string,col3:bigint>", []any{
			batch.StructValue{Names: []string{"i", "name", "col3"}, Values: []any{int64(1), "abc", int64(11)}},
			batch.StructValue{Names: []string{"i", "name", "col3"}, Values: []any{int64(-2), " 12 ", int64(21)}},
			batch.StructValue{Names: []string{"i", "name", "col3"}, Values: []any{nil, nil, int64(31)}},
			batch.StructValue{Names: []string{"i", "name", "col3"}, Values: []any{int64(2147483647), "héllo", nil}},
		}},
		{"struct(i, s).s", "s", "string", []any{"abc", " 12 ", nil, "héllo"}},
		{"array(i, l, NULL)", "array(i, l, NULL)", "array<bigint>", []any{
			[]any{int64(1), int64(10), nil}, []any{int64(-2), int64(20), nil}, []any{nil, int64(30), nil}, []any{int64(2147483647), nil, nil}}},
		{"size(array(i, l)[5])", "size(array(i, l)[5])", "int", nil},
		{"array(struct(i), struct(i))[1].i", "i", "int", []any{int64(1), int64(-2), nil, int64(2147483647)}},
		{"typeof(array())", "typeof(array())", "string", repeat(4, "array<void>")},
	} {
		if tc.want == nil {
			if _, err := compileSource(tc.src, testSchema); err == nil {
				t.Errorf("%s compiled", tc.src)
			}
			continue
		}
		c, got := evalOn(t, tc.src, b)
		if c.Name() != tc.name || c.Type().String() != tc.typ || !sameValues(got, tc.want) {
			t.Errorf("%s: %s %s = %#v\n want %s %s = %#v", tc.src, c.Name(), c.Type(), got, tc.name, tc.typ, tc.want)
		}
	}
	// size(NULL) is -1, or NULL in ANSI mode.
	c, _ := compileSource("size(CAST(NULL AS ARRAY<INT>))", testSchema)
	col, _ := c.Eval(b, testCtx)
	ansi := *testCtx
	ansi.ANSI = true
	col2, _ := c.Eval(b, &ansi)
	if col.Value(0) != int64(-1) || col2.Value(0) != nil {
		t.Errorf("size(NULL) = %v, ANSI %v", col.Value(0), col2.Value(0))
	}
	// element_at(arr, 0) is always an error; out of range is one in ANSI mode.
	c, _ = compileSource("element_at(array(1), 0)", testSchema)
	if _, err := c.Eval(b, testCtx); err == nil || !strings.Contains(err.Error(), "[INVALID_INDEX_OF_ZERO]") {
		t.Errorf("element_at(…, 0): %v", err)
	}
	c, _ = compileSource("array(1)[3]", testSchema)
	if _, err := c.Eval(b, &ansi); err == nil || !strings.Contains(err.Error(), "[INVALID_ARRAY_INDEX] The index 3 is out of bounds. The array has 1 elements.") {
		t.Errorf("array(1)[3] in ANSI mode: %v", err)
	}
	for src, want := range map[string]string{
		"named_struct('a')":       "[WRONG_NUM_ARGS",
		"named_struct(s, 1)":      "CREATE_NAMED_STRUCT_WITHOUT_FOLDABLE_STRING",
		"array(1, ts, bin)":       "incompatible types",
		"size(s)":                 "must be an array or a map",
		"element_at(array(1), s)": "must be an integer",
	} {
		if _, err := compileSource(src, testSchema); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

func repeat(n int, v any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func TestParseFieldAccessRoundTrip(t *testing.T) {
	for _, src := range []string{"o.amount", "a.b.c", "xs[0].k", "m['k'].x[1]", "struct(a AS x, b)", "f(x).y", "`a.b`.c"} {
		n, err := Parse(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		again, err := Parse(n.String())
		if err != nil || again.String() != n.String() {
			t.Errorf("%s: %s does not parse back the same (%v)", src, n, err)
		}
		if cols, _ := Columns(n); len(cols) == 0 {
			t.Errorf("%s: Columns found none", src)
		}
	}
}
