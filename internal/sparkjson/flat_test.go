package sparkjson

import (
	"fmt"
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

// flatPair returns parsers of flatKind with and without the fast path.
func flatPair(t testing.TB, corrupt int) (fast, general *Parser) {
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
}

// FuzzFlatMatchesGeneral compares the fast path with the general path on
// arbitrary input.
func FuzzFlatMatchesGeneral(f *testing.F) {
	for _, s := range flatSeeds {
		f.Add([]byte(s))
	}
	fast, general := flatPair(f, 6)
	f.Fuzz(func(t *testing.T, rec []byte) { checkSame(t, fast, general, rec) })
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
