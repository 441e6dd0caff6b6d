package sparkjson

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

// flatKind is a flat schema of every class the fast path converts, with a
// corrupt-record field.
var flatKind = batch.StructOf(
	batch.Field{Name: "s", Type: batch.String, Nullable: true},
	batch.Field{Name: "i", Type: batch.Int, Nullable: true},
	batch.Field{Name: "l", Type: batch.Long, Nullable: true},
	batch.Field{Name: "d", Type: batch.Double, Nullable: true},
	batch.Field{Name: "t", Type: batch.Timestamp, Nullable: true},
	batch.Field{Name: "b", Type: batch.Boolean, Nullable: true},
	batch.Field{Name: "_corrupt_record", Type: batch.String, Nullable: true},
)

// namesKind is a flat schema whose names share lengths and first words,
// with one longer than a name table holds.
var namesKind = batch.StructOf(
	batch.Field{Name: "order_id", Type: batch.String, Nullable: true},
	batch.Field{Name: "order_ix", Type: batch.Long, Nullable: true},
	batch.Field{Name: "order_id_", Type: batch.String, Nullable: true},
	batch.Field{Name: "customer_id_with_a_name_longer_than_32", Type: batch.String, Nullable: true},
	batch.Field{Name: "ts", Type: batch.Timestamp, Nullable: true},
	batch.Field{Name: "", Type: batch.Double, Nullable: true},
)

// flatPair returns parsers of flatKind with and without the fast path.
func flatPair(t testing.TB, corrupt int) (fast, general *Parser) {
	return kindPair(t, flatKind, corrupt)
}

// kindPair returns parsers of k with and without the fast path.
func kindPair(t testing.TB, k batch.Kind, corrupt int) (fast, general *Parser) {
	flatKind := k
	fast, err := NewParser(flatKind, Options{CorruptField: corrupt})
	if err != nil {
		t.Fatal(err)
	}
	if !fast.flat {
		t.Fatal("flatKind does not take the fast path")
	}
	general, _ = NewParser(flatKind, Options{CorruptField: corrupt})
	general.flat = false
	return fast, general
}

// checkSame parses rec (twice, reusing the decoder) with both parsers and
// fails on any difference in cells, statuses or reasons.
func checkSame(t testing.TB, fast, general *Parser, rec []byte) {
	parse := func(p *Parser) string {
		col := batch.NewColumn(p.Kind(), 2)
		d := p.NewDecoder()
		st1, why1 := d.Append(col, rec)
		st2, why2 := d.Append(col, rec)
		if err := col.Validate(); err != nil {
			t.Fatalf("%q: %v", rec, err)
		}
		return fmt.Sprintf("%v %v %s %q %s %q", col.Value(0), col.Value(1), st1, why1, st2, why2)
	}
	if a, b := parse(fast), parse(general); a != b {
		t.Fatalf("%q:\nfast path    %s\ngeneral path %s", rec, a, b)
	}
}

var flatSeeds = []string{
	`{"s":"x","i":1,"l":-2,"d":1.5,"t":"2026-11-25T13:00:00.000Z","b":true}`,
	`{"order_id":"o-000001","s":"a\"b","x":[1,{"y":null}],"t":"2026-11-25 13:00:00Z","pad":"xxxx"}`,
	` { "s" : "x" , "i" : 2147483648 } `, `{"i":-2147483648,"l":9223372036854775807,"l":1}`,
	`{"s":"a","i":1,"s":"b"}`, `{"l":1,"l":2}`, `{"i":1.0}`, `{"d":1e400}`, `{"d":NaN}`, `{"d":"NaN"}`, `{"t":1700000000}`, `{"t":""}`, `{"t":"x"}`,
	`{"s":1}`, `{"s":'q'}`, `{'s':"q"}`, `{"s\u0041":"q"}`, `{"b":"true"}`, `{"b":tru}`, `{"s":"x",}`,
	`{"s":"x"`, `{"s":"x"} trailing`, `{}`, `{ }`, `{"i":01}`, `{"i":-}`, `{"s":null,"i":null}`,
	`{"_corrupt_record":"c","s":"x"}`, `[1]`, `{"s":"a	b"}`, `{"i":+1}`, `{"l":-0}`, `{"l":123456789012345678901}`,
	// Unwanted values the fast path skips itself, or leaves to the lexer.
	`{"x":"a\"b","s":"y"}`, `{"x":"a\\","s":"y"}`, `{"x":"a\`, `{"x":"\u00e9","s":"\u00e9"}`, `{"x":"a` + "\x01" + `b","s":"y"}`,
	`{"x":-1.5e+3,"y":0,"z":-0.0E-0,"s":"y"}`, `{"x":01,"s":"y"}`, `{"x":1.,"s":"y"}`, `{"x":1e,"s":"y"}`, `{"x":-,"s":"y"}`,
	`{"x":NaN,"y":-Infinity,"z":+INF,"s":"y"}`, `{"x":+1,"s":"y"}`, `{"x":1x,"s":"y"}`, `{"x":1 ,"s":"y"}`, `{"x":1.5.5,"s":"y"}`,
	`{"x":{"s":"\""},"y":["}"],"s":"y"}`, `{"x":'a"b',"s":"y"}`, `{"x":true,"y":null,"s":"y"}`,
	// Repeats and errors after every wanted field was seen.
	`{"s":"a","i":1,"l":2,"d":3,"t":"2026-11-25T13:00:00Z","b":false,"s":"b"}`,
	`{"s":"a","i":1,"l":2,"d":3,"t":"2026-11-25T13:00:00Z","b":false,"x":"y"`,
	`{"s":"a","i":1,"l":2,"d":3,"t":"2026-11-25T13:00:00Z","b":false,"x":"y",}`,
	`{"s":"a","i":1,"l":2,"d":3,"t":"2026-11-25T13:00:00Z","b":false,"x":"` + "\n" + `"}`,
	// Quotes next to '#' (one bit apart from '"'), and across 64-byte blocks.
	`{"#":"#","s":"#\"#","x":"##"}`,
	`{"padding_to_cross_a_block_boundary":"xxxxxxxxxxxxxxxxxxxxxx","s":"crossing","t":"2026-11-25T13:00:00.123Z","x":"` + strings.Repeat("y", 70) + `"}`,
	`{"padding_to_cross_a_block_boundary":"xxxxxxxxxxxxxxxxxxxxxxxxx","s":"a\\","i":7}`,
	`{"s":"x"} "\` + strings.Repeat(" ", 64) + `"`, `{"s":"x"}` + "\t",
	// Names of the same length and first word, and long names.
	`{"order_id":"a","order_ix":1,"order_id_":"b","order_iy":2,"ts":"2026-11-25T13:00:00Z","":1.5}`,
	`{"customer_id_with_a_name_longer_than_32":"c","customer_id_with_a_name_longer_than_3Z":"d","order_i":"e"}`,
	`{"order_id":"a","order_id":"b"}`, `{"order_id9":"z","order_ix":3}`, `{"":1,"":2}`, `{"order_ix":1,"order_id_":null,"ts":null}`,
}

// The fast path reads plain records and gives up on everything else; the
// records of both kinds parse exactly as the general path parses them,
// with and without a corrupt-record field.
func TestFlatMatchesGeneral(t *testing.T) {
	for _, corrupt := range []int{-1, 6} {
		fast, general := flatPair(t, corrupt)
		for _, s := range flatSeeds {
			checkSame(t, fast, general, []byte(s))
		}
	}
	fast, general := kindPair(t, namesKind, 3)
	for _, s := range flatSeeds {
		checkSame(t, fast, general, []byte(s))
	}
}

// FuzzFlatMatchesGeneral compares the fast path with the general path on
// arbitrary input.
func FuzzFlatMatchesGeneral(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	fast, general := flatPair(f, 6)
	fast2, general2 := kindPair(f, namesKind, 3)
	f.Fuzz(func(t *testing.T, rec []byte) {
		checkSame(t, fast, general, rec)
		checkSame(t, fast2, general2, rec)
	})
}

// The fast path is taken for flat schemas only.
func TestFlatSchemas(t *testing.T) {
	for _, tc := range []struct {
		k    batch.Kind
		flat bool
	}{
		{batch.StructOf(batch.Field{Name: "a", Type: batch.String, Nullable: true}, batch.Field{Name: "t", Type: batch.Timestamp, Nullable: true}), true},
		{batch.StructOf(batch.Field{Name: "a", Type: batch.Date, Nullable: true}), false},
		{batch.StructOf(batch.Field{Name: "a", Type: batch.ArrayOf(batch.Long, true), Nullable: true}), false},
		{batch.ArrayOf(batch.Long, true), false},
	} {
		p, err := NewParser(tc.k, Options{CorruptField: -1})
		if err != nil {
			t.Fatal(err)
		}
		if p.flat != tc.flat {
			t.Errorf("%s: flat %v, want %v", tc.k.SQL(), p.flat, tc.flat)
		}
	}
}
