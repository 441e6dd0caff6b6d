package expr

import (
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-stream/sluice/batch"
)

// testSchema is the schema of testBatch: one column per kind, all nullable.
var testSchema = batch.Schema{Fields: []batch.Field{
	{Name: "i", Type: batch.Int, Nullable: true},
	{Name: "l", Type: batch.Long, Nullable: true},
	{Name: "d", Type: batch.Double, Nullable: true},
	{Name: "s", Type: batch.String, Nullable: true},
	{Name: "bin", Type: batch.Binary, Nullable: true},
	{Name: "b", Type: batch.Boolean, Nullable: true},
	{Name: "ts", Type: batch.Timestamp, Nullable: true},
	{Name: "dt", Type: batch.Date, Nullable: true},
	{Name: "My Col", Type: batch.Int, Nullable: false},
}}

// testBatch has four rows; row 2 is null in every nullable column.
func testBatch() *batch.Batch {
	return mkBatch(testSchema,
		[]any{1, 10, 1.5, "abc", []byte("xyz"), true, int64(0), 0, 7},
		[]any{-2, 20, -0.5, " 12 ", []byte{}, false, int64(1_500_000), 19000, 8},
		[]any{nil, 30, nil, nil, nil, nil, nil, nil, 9},
		[]any{math.MaxInt32, nil, 2.0, "héllo", []byte{0xff}, true, int64(1_700_000_000_123_456), -1, 10},
	)
}

var testCtx = &EvalContext{BatchTimestamp: time.Date(2024, 3, 1, 12, 30, 45, 678_000_000, time.UTC)}

// mkBatch builds a batch from rows of Go values; nil is null.
func mkBatch(s batch.Schema, rows ...[]any) *batch.Batch {
	cols := make([]*batch.Column, len(s.Fields))
	for j, f := range s.Fields {
		c := batch.NewColumn(f.Type, len(rows))
		for _, r := range rows {
			switch v := r[j].(type) {
			case nil:
				c.AppendNull()
			case bool:
				c.AppendBool(v)
			case int:
				c.AppendInt(int64(v))
			case int64:
				c.AppendInt(v)
			case float64:
				c.AppendFloat(v)
			case string:
				c.AppendBytes([]byte(v))
			case []byte:
				c.AppendBytes(v)
			default: // nested values: batch.StructValue, []any, batch.MapValue
				if err := c.AppendValue(v); err != nil {
					panic(fmt.Sprintf("mkBatch: %v", err))
				}
			}
		}
		cols[j] = c
	}
	return batch.New(s, cols, len(rows))
}

// norm makes expected values comparable with Column.Value results.
func norm(v any) any {
	if i, ok := v.(int); ok {
		return int64(i)
	}
	return v
}

func values(c *batch.Column, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = c.Value(i)
	}
	return out
}

// sameValues compares with NaN equal to NaN.
func sameValues(got, want []any) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		w := norm(want[i])
		if gf, ok := got[i].(float64); ok {
			if wf, ok := w.(float64); ok && math.IsNaN(gf) && math.IsNaN(wf) {
				continue
			}
		}
		if !reflect.DeepEqual(got[i], w) {
			return false
		}
	}
	return true
}

// evalExpr compiles src against testSchema and evaluates it on testBatch.
func evalExpr(t *testing.T, src string) (Compiled, []any) {
	t.Helper()
	return evalOn(t, src, testBatch())
}

// evalOn compiles src against b's schema and evaluates it on b.
func evalOn(t *testing.T, src string, b *batch.Batch) (Compiled, []any) {
	t.Helper()
	c, err := compileSource(src, b.Schema)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	col, err := c.Eval(b, testCtx)
	if err != nil {
		t.Fatalf("eval %q: %v", src, err)
	}
	if col.Len != b.N {
		t.Fatalf("eval %q: %d cells for %d rows", src, col.Len, b.N)
	}
	if col.Type != c.Type() {
		t.Fatalf("eval %q: column is %s, compiled type %s", src, col.Type, c.Type())
	}
	checkInvariants(t, src, col)
	return c, values(col, b.N)
}

// checkInvariants verifies package batch's column rules: one value slice of
// length Len and zero values in null slots.
func checkInvariants(t *testing.T, src string, c *batch.Column) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Errorf("%q: %v", src, err)
	}
	if c.Valid != nil && len(c.Valid) != c.Len {
		t.Errorf("%q: Valid has %d entries for %d cells", src, len(c.Valid), c.Len)
	}
	n := map[batch.Kind]int{
		batch.Boolean: len(c.Bools), batch.Int: len(c.Ints), batch.Long: len(c.Ints), batch.Date: len(c.Ints),
		batch.Timestamp: len(c.Ints), batch.Double: len(c.Floats), batch.String: len(c.Bytes), batch.Binary: len(c.Bytes),
	}
	if l, ok := n[c.Type]; ok && l != c.Len {
		t.Errorf("%q: value slice has %d entries for %d cells", src, l, c.Len)
	}
	for i := 0; i < c.Len; i++ {
		if !c.IsNull(i) {
			continue
		}
		zero := true
		switch c.Type {
		case batch.Boolean:
			zero = !c.Bools[i]
		case batch.Int, batch.Long, batch.Date, batch.Timestamp:
			zero = c.Ints[i] == 0
		case batch.Double:
			zero = c.Floats[i] == 0
		case batch.String, batch.Binary:
			zero = c.Bytes[i] == nil
		}
		if !zero {
			t.Errorf("%q: null cell %d has a non-zero value slot", src, i)
		}
	}
}
