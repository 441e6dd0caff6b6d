package ddl

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

func TestParse(t *testing.T) {
	f := func(name string, k batch.Kind, nullable bool) batch.Field {
		return batch.Field{Name: name, Type: k, Nullable: nullable}
	}
	tests := []struct {
		in   string
		want []batch.Field
	}{
		{"a INT, b STRING, ts TIMESTAMP", []batch.Field{f("a", batch.Int, true), f("b", batch.String, true), f("ts", batch.Timestamp, true)}},
		{"id bigint not null", []batch.Field{f("id", batch.Long, false)}},
		{"  x  DOUBLE  ,y Boolean,z date ", []batch.Field{f("x", batch.Double, true), f("y", batch.Boolean, true), f("z", batch.Date, true)}},
		{"b TINYINT, s SMALLINT, l LONG, r REAL, fl FLOAT, bin BINARY", []batch.Field{
			f("b", batch.Int, true), f("s", batch.Int, true), f("l", batch.Long, true),
			f("r", batch.Double, true), f("fl", batch.Double, true), f("bin", batch.Binary, true)}},
		{"name VARCHAR(20), c CHAR(1)", []batch.Field{f("name", batch.String, true), f("c", batch.String, true)}},
		{"`weird name` STRING, `back``tick` INT", []batch.Field{f("weird name", batch.String, true), f("back`tick", batch.Int, true)}},
		{"a INT COMMENT 'the a', b STRING NOT NULL COMMENT \"it's b\"", []batch.Field{f("a", batch.Int, true), f("b", batch.String, false)}},
		{"a: INT, b: STRING", []batch.Field{f("a", batch.Int, true), f("b", batch.String, true)}},
		{"struct<a:int,b:string>", []batch.Field{f("a", batch.Int, true), f("b", batch.String, true)}},
		{"STRUCT< a : bigint , `c d` : timestamp_ntz >", []batch.Field{f("a", batch.Long, true), f("c d", batch.Timestamp, true)}},
		{"int INT, string STRING", []batch.Field{f("int", batch.Int, true), f("string", batch.String, true)}},
		{"préfixe STRING", []batch.Field{f("préfixe", batch.String, true)}},
		// Nested types: Spark's complexColType syntax, colon optional.
		{"o STRUCT<amount: DOUBLE, sku STRING NOT NULL COMMENT 'x'>, tags ARRAY<STRING>, m MAP<STRING, BIGINT>",
			[]batch.Field{
				f("o", batch.StructOf(f("amount", batch.Double, true), f("sku", batch.String, false)), true),
				f("tags", batch.ArrayOf(batch.String, true), true),
				f("m", batch.MapOf(batch.String, batch.Long, true), true)}},
		{"w struct<start:timestamp,end:timestamp>, xs array<array<int>>, e struct<>",
			[]batch.Field{f("w", batch.StructOf(f("start", batch.Timestamp, true), f("end", batch.Timestamp, true)), true),
				f("xs", batch.ArrayOf(batch.ArrayOf(batch.Int, true), true), true), f("e", batch.StructOf(), true)}},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(got.Fields) != len(tc.want) {
				t.Fatalf("got %v, want %v", got.Fields, tc.want)
			}
			for i := range tc.want {
				if got.Fields[i] != tc.want[i] {
					t.Errorf("field %d = %+v, want %+v", i, got.Fields[i], tc.want[i])
				}
			}
		})
	}
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]string{
		"int":                             "int",
		"array<struct<a:int,b:string>>":   "array<struct<a:int,b:string>>",
		"MAP<STRING, ARRAY<BIGINT>>":      "map<string,array<bigint>>",
		"struct<a:int, `b c`: timestamp>": "struct<a:int,b c:timestamp>",
		" struct < x : array < date > > ": "struct<x:array<date>>",
	} {
		k, err := ParseType(in)
		if err != nil || k.String() != want {
			t.Errorf("ParseType(%q) = %v, %v; want %s", in, k, err, want)
		}
	}
	for _, bad := range []string{"", "a INT", "array<int> x", "struct<a:int", "map<string>"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) accepted", bad)
		}
	}
	// Format and Parse round-trip nested schemas.
	s, err := Parse("o STRUCT<`a b`: INT NOT NULL, c: ARRAY<MAP<STRING, DATE>>>, n BIGINT NOT NULL")
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(Format(s))
	if err != nil || back.String() != s.String() || back.Fields[0].Type != s.Fields[0].Type {
		t.Errorf("Format %q does not parse back: %v", Format(s), err)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "the schema is empty"},
		{"   ", "the schema is empty"},
		{"a", `expected a type for column "a"`},
		{"a INT,", "expected a column name, got end of input"},
		{"a INT b STRING", `unexpected "b" after the type`},
		{"a INT, A STRING", `column "A" is defined twice`},
		{"a DECIMAL(10,2)", "DECIMAL is not supported"},
		{"a ARRAY", "ARRAY needs its element type"},
		{"a MAP<STRING>", `expected ','`},
		{"a STRUCT", "STRUCT needs its fields"},
		{"a ARRAY<INT", `expected '>'`},
		{"a STRUCT<x INT y INT>", "expected ',' or '>' in STRUCT<…>"},
		{"a MAP<MAP<INT,INT>,INT>", "a map key cannot be a map"},
		{"a ARRAY<DECIMAL(3,1)>", "DECIMAL is not supported"},
		{"a " + strings.Repeat("ARRAY<", 200) + "INT" + strings.Repeat(">", 200), "nest more than 100 levels"},
		{"a FOO", `unknown type "FOO"`},
		{"a VARCHAR", "VARCHAR needs a length"},
		{"a INT(3)", "takes no parameters"},
		{"a VARCHAR(x)", "expected a length"},
		{"a INT NOT", "expected NULL after NOT"},
		{"a INT COMMENT", "expected a quoted string after COMMENT"},
		{"`a INT", "unterminated `quoted` name"},
		{"a INT COMMENT 'x", "unterminated string"},
		{"a INT; DROP", "unexpected character ';'"},
		{"struct<a INT>", `expected ':' after field name "a"`},
		{"struct<a:INT", "expected ',' or '>'"},
		{"struct<a:INT> x", "unexpected \"x\""},
		{"`` INT", "a column name is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) accepted", tc.in)
			}
			var de *Error
			if !errors.As(err, &de) {
				t.Errorf("error %T is not *ddl.Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestFormatRoundTrip(t *testing.T) {
	s := batch.Schema{Fields: []batch.Field{
		{Name: "a", Type: batch.Int, Nullable: true},
		{Name: "with space", Type: batch.String, Nullable: false},
		{Name: "not", Type: batch.Timestamp, Nullable: true},
		{Name: "x`y", Type: batch.Binary, Nullable: true},
		{Name: "d", Type: batch.Date, Nullable: true},
		{Name: "l", Type: batch.Long, Nullable: true},
		{Name: "b", Type: batch.Boolean, Nullable: true},
		{Name: "f", Type: batch.Double, Nullable: true},
	}}
	out := Format(s)
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Format) = %v for %q", err, out)
	}
	if got.String() != s.String() {
		t.Errorf("round trip %q: got %s, want %s", out, got, s)
	}
	for i := range s.Fields {
		if got.Fields[i] != s.Fields[i] {
			t.Errorf("field %d: %+v, want %+v", i, got.Fields[i], s.Fields[i])
		}
	}
}
