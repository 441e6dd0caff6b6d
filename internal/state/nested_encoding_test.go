package state

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sluice-stream/sluice/batch"
)

var windowKind = batch.StructOf(
	batch.Field{Name: "start", Type: batch.Timestamp, Nullable: true},
	batch.Field{Name: "end", Type: batch.Timestamp, Nullable: true})

// sparkCompareNested extends sparkCompare to structs (field by field) and
// arrays (element by element, then by length), nulls first at every level.
func sparkCompareNested(k batch.Kind, a, b any) int {
	if a == nil || b == nil || !k.IsNested() {
		return sparkCompare(k, a, b)
	}
	switch k.Class() {
	case batch.Struct:
		x, y := a.(batch.StructValue).Values, b.(batch.StructValue).Values
		for i, f := range k.Fields() {
			if c := sparkCompareNested(f.Type, x[i], y[i]); c != 0 {
				return c
			}
		}
		return 0
	case batch.Array:
		x, y := a.([]any), b.([]any)
		for i := 0; i < len(x) && i < len(y); i++ {
			if c := sparkCompareNested(k.Elem(), x[i], y[i]); c != 0 {
				return c
			}
		}
		return len(x) - len(y)
	}
	panic(k)
}

func randomNested(r *rand.Rand, k batch.Kind) any {
	if !k.IsNested() {
		return randomCell(r, k)
	}
	if r.IntN(8) == 0 {
		return nil
	}
	switch k.Class() {
	case batch.Struct:
		vals := make([]any, len(k.Fields()))
		for i, f := range k.Fields() {
			vals[i] = randomNested(r, f.Type)
		}
		return batch.StructValue{Names: k.FieldNames(), Values: vals}
	case batch.Array:
		out := []any{}
		for range r.IntN(4) {
			out = append(out, randomNested(r, k.Elem()))
		}
		return out
	}
	panic(k)
}

// TestNestedKeyOrder: struct keys (a window, a struct holding an array)
// and array keys encode so that bytes.Compare is Spark's ordering, and
// decode back into columns.
func TestNestedKeyOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	kinds := []batch.Kind{
		windowKind,
		batch.ArrayOf(batch.String, true),
		batch.StructOf(batch.Field{Name: "id", Type: batch.Long, Nullable: true}, batch.Field{Name: "xs", Type: batch.ArrayOf(batch.Int, true), Nullable: true}),
		batch.ArrayOf(batch.ArrayOf(batch.Double, true), true),
	}
	for _, k := range kinds {
		type row struct {
			v   any
			enc []byte
		}
		var rows []row
		col := batch.NewColumn(k, 300)
		for range 300 {
			v := randomNested(r, k)
			enc, err := AppendKeyValue(nil, k, v)
			if err != nil {
				t.Fatal(err)
			}
			if err := col.AppendValue(v); err != nil {
				t.Fatal(err)
			}
			rows = append(rows, row{v, enc})
		}
		for i := range rows {
			if got := AppendKeyCell(nil, col, i); !bytes.Equal(got, rows[i].enc) {
				t.Fatalf("%s: column and value encodings differ for %#v", k, rows[i].v)
			}
			for j := range rows {
				if got, want := sign(bytes.Compare(rows[i].enc, rows[j].enc)), sign(sparkCompareNested(k, rows[i].v, rows[j].v)); got != want {
					t.Fatalf("%s: %#v vs %#v: encoded %d, Spark %d", k, rows[i].v, rows[j].v, got, want)
				}
			}
			out := []*batch.Column{batch.NewColumn(k, 1)}
			if err := DecodeKeyInto(rows[i].enc, out); err != nil {
				t.Fatal(err)
			}
			if sparkCompareNested(k, out[0].Value(0), rows[i].v) != 0 {
				t.Fatalf("%s: decoded %#v from %#v", k, out[0].Value(0), rows[i].v)
			}
		}
	}
	// A window key is its fields' encodings behind one presence byte:
	// windows order by start, then end.
	w := batch.StructValue{Names: windowKind.FieldNames(), Values: []any{int64(10), int64(20)}}
	enc, _ := AppendKeyValue(nil, windowKind, w)
	want := AppendKeyInt64(AppendKeyInt64([]byte{0x01}, 10), 20)
	if !bytes.Equal(enc, want) {
		t.Fatalf("window key %x, want %x", enc, want)
	}
	if KeyEncodable(batch.MapOf(batch.String, batch.Int, true)) || !KeyEncodable(windowKind) || KeyEncodable(batch.Null) {
		t.Fatal("KeyEncodable")
	}
}

func sign(c int) int {
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// TestNestedValueEncoding round-trips rows with nested columns, and
// refuses damaged bytes.
func TestNestedValueEncoding(t *testing.T) {
	kinds := []batch.Kind{
		windowKind,
		batch.ArrayOf(batch.StructOf(batch.Field{Name: "k", Type: batch.String, Nullable: true}, batch.Field{Name: "v", Type: batch.ArrayOf(batch.Long, true), Nullable: true}), true),
		batch.MapOf(batch.String, batch.ArrayOf(batch.Double, true), true),
		batch.Long,
	}
	rows := [][]any{
		{batch.StructValue{Values: []any{int64(1), nil}}, []any{batch.StructValue{Values: []any{"a", []any{int64(1), nil}}}, nil}, batch.MapValue{Keys: []any{"x"}, Values: []any{[]any{1.5}}}, int64(7)},
		{nil, []any{}, batch.MapValue{}, nil},
		{batch.StructValue{Values: []any{nil, nil}}, nil, batch.MapValue{Keys: []any{"p", "q"}, Values: []any{nil, []any{}}}, int64(-1)},
	}
	cols := make([]*batch.Column, len(kinds))
	for i, k := range kinds {
		cols[i] = batch.NewColumn(k, len(rows))
	}
	for _, r := range rows {
		for i, v := range r {
			if err := cols[i].AppendValue(v); err != nil {
				t.Fatal(err)
			}
		}
	}
	for r := range rows {
		enc := EncodeValue(nil, cols, r)
		out := make([]*batch.Column, len(kinds))
		for i, k := range kinds {
			out[i] = batch.NewColumn(k, 1)
		}
		if err := DecodeValueInto(enc, out); err != nil {
			t.Fatal(err)
		}
		for i := range kinds {
			if err := out[i].Validate(); err != nil {
				t.Fatal(err)
			}
			if got, want := out[i].Value(0), cols[i].Value(r); !reflect.DeepEqual(got, want) {
				t.Fatalf("row %d col %d: %#v, want %#v", r, i, got, want)
			}
		}
		for cut := 0; cut < len(enc); cut++ {
			out := make([]*batch.Column, len(kinds))
			for i, k := range kinds {
				out[i] = batch.NewColumn(k, 1)
			}
			if DecodeValueInto(enc[:cut], out) == nil {
				t.Fatalf("row %d: value cut at %d of %d decoded", r, cut, len(enc))
			}
		}
	}
}
