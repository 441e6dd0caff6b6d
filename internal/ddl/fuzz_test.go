package ddl

import (
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that accepted schemas have
// unique non-empty names, and that Format(Parse(s)) parses to the same schema.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"a INT, b STRING, ts TIMESTAMP", "id bigint not null", "`x y` STRING COMMENT 'c'",
		"struct<a:int,b:string>", "a VARCHAR(3)", "a DECIMAL(10,2)", "", ",", "`", "'", "a:INT",
		"o STRUCT<a: INT NOT NULL, `b c` ARRAY<MAP<STRING, DATE>>>", "x ARRAY<STRUCT<>>", "m MAP<STRING,ARRAY<INT>>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sch, err := Parse(s)
		if err != nil {
			return
		}
		if len(sch.Fields) == 0 {
			t.Fatalf("Parse(%q) accepted an empty schema", s)
		}
		seen := map[string]bool{}
		for _, fl := range sch.Fields {
			if fl.Name == "" || seen[strings.ToLower(fl.Name)] {
				t.Fatalf("Parse(%q): bad or duplicate name %q", s, fl.Name)
			}
			seen[strings.ToLower(fl.Name)] = true
		}
		again, err := Parse(Format(sch))
		if err != nil {
			t.Fatalf("Parse(Format(Parse(%q))) = %v; formatted %q", s, err, Format(sch))
		}
		if len(again.Fields) != len(sch.Fields) {
			t.Fatalf("round trip of %q changed the field count", s)
		}
		for i := range sch.Fields {
			if again.Fields[i] != sch.Fields[i] {
				t.Fatalf("round trip of %q: field %d %+v became %+v", s, i, sch.Fields[i], again.Fields[i])
			}
		}
	})
}

// FuzzParseType checks that ParseType never panics and that an accepted
// type prints (DataType.sql) to a string that parses back to the same kind.
func FuzzParseType(f *testing.F) {
	for _, s := range []string{"int", "array<struct<a:int,b:string>>", "map<string,array<bigint>>", "struct<>",
		"struct<`a``b`: int not null comment 'x'>", "array<", "map<int,", "struct<a int, b>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseType(s)
		if err != nil {
			return
		}
		again, err := ParseType(k.SQL())
		if err != nil || again != k {
			t.Fatalf("ParseType(%q) = %s; its SQL %q parses to %v, %v", s, k, k.SQL(), again, err)
		}
	})
}
