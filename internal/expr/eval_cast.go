package expr

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// castEval converts its operand to another kind with Spark's non-ANSI cast
// semantics: values that cannot be converted become NULL.
type castEval struct {
	x   evaluator
	to  batch.Kind
	try bool   // TRY_CAST: NULL even in ANSI mode
	sql string // for error messages
}

func (e *castEval) kind() batch.Kind { return e.to }
func (e *castEval) nullable() bool   { return e.x.nullable() || castMayNull(e.x.kind(), e.to) }
func (e *castEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	out := castColumn(x, e.to)
	if ctx != nil && ctx.ANSI && !e.try && out.Valid != nil {
		// A cell that was a value and became NULL could not be cast.
		for i := 0; i < out.Len; i++ {
			if out.Valid[i] || isNullAt(x, i) {
				continue
			}
			reason := fmt.Sprintf("CAST_INVALID_INPUT: the value %s of type %s cannot be cast to %s (in %s); use TRY_CAST to get NULL instead",
				cellSQL(x, i), typeSQL(x.Type), typeSQL(e.to), e.sql)
			if ctx.RowErrors == nil {
				return nil, fmt.Errorf("%s", reason)
			}
			ctx.RowErrors.Add(i, reason)
		}
	}
	return out, nil
}

// cellSQL renders a cell for an error message, shortened.
func cellSQL(c *batch.Column, i int) string {
	var s string
	switch c.Type {
	case batch.String, batch.Binary:
		s = "'" + string(c.Bytes[i]) + "'"
	default:
		s = fmt.Sprint(c.Value(i))
	}
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

var (
	trueBytes  = []byte("true")
	falseBytes = []byte("false")
)

// castColumn converts c to kind to. The compiler has checked canCast.
// BINARY↔STRING and INT→BIGINT share c's storage: only a new column header
// is allocated.
func castColumn(c *batch.Column, to batch.Kind) *batch.Column {
	from := c.Type
	n := c.Len
	switch {
	case from == to:
		return c
	case from == batch.Null:
		return nullCol(to, n)
	case from.IsNested() && to == batch.String:
		return castNestedToString(c)
	case from.IsNested():
		return castNested(c, to)
	case (from == batch.Binary && to == batch.String) || (from == batch.String && to == batch.Binary):
		return &batch.Column{Type: to, Valid: c.Valid, Bytes: c.Bytes, Len: n}
	case from == batch.Int && to == batch.Long:
		return &batch.Column{Type: to, Valid: c.Valid, Ints: c.Ints, Len: n}
	case to == batch.String:
		return castToString(c)
	case from == batch.String:
		return castFromString(c, to)
	}
	out := newCol(to, n)
	if c.Valid != nil {
		out.Valid = append([]bool(nil), c.Valid...)
	}
	for i := 0; i < n; i++ {
		if isNullAt(c, i) {
			continue
		}
		if !castCell(c, i, out) {
			setNull(out, i)
		}
	}
	zeroNulls(out)
	return out
}

// castCell converts cell i between non-string kinds, reporting false when
// the result is NULL.
func castCell(c *batch.Column, i int, out *batch.Column) bool {
	switch c.Type {
	case batch.Boolean:
		v := c.Bools[i]
		var x int64
		if v {
			x = 1
		}
		switch out.Type {
		case batch.Int, batch.Long, batch.Timestamp:
			out.Ints[i] = x // a boolean cast to timestamp is 0 or 1 microsecond
		case batch.Double:
			out.Floats[i] = float64(x)
		}
	case batch.Int, batch.Long:
		v := c.Ints[i]
		switch out.Type {
		case batch.Boolean:
			out.Bools[i] = v != 0
		case batch.Int:
			out.Ints[i] = int64(int32(v)) // wraps, as Spark's non-ANSI cast
		case batch.Long:
			out.Ints[i] = v
		case batch.Double:
			out.Floats[i] = float64(v)
		case batch.Timestamp:
			out.Ints[i] = saturatingMul(v, microsPerSecond)
		case batch.Binary:
			if c.Type == batch.Int {
				out.Bytes[i] = binary.BigEndian.AppendUint32(nil, uint32(int32(v)))
			} else {
				out.Bytes[i] = binary.BigEndian.AppendUint64(nil, uint64(v))
			}
		}
	case batch.Double:
		v := c.Floats[i]
		switch out.Type {
		case batch.Boolean:
			out.Bools[i] = v != 0
		case batch.Int:
			out.Ints[i] = saturatingInt(v, math.MinInt32, math.MaxInt32)
		case batch.Long:
			out.Ints[i] = saturatingInt(v, math.MinInt64, math.MaxInt64)
		case batch.Timestamp:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
			out.Ints[i] = saturatingInt(v*float64(microsPerSecond), math.MinInt64, math.MaxInt64)
		}
	case batch.Timestamp:
		v := c.Ints[i]
		switch out.Type {
		case batch.Boolean:
			out.Bools[i] = v != 0
		case batch.Int:
			out.Ints[i] = int64(int32(floorDiv(v, microsPerSecond)))
		case batch.Long:
			out.Ints[i] = floorDiv(v, microsPerSecond)
		case batch.Double:
			out.Floats[i] = float64(v) / float64(microsPerSecond)
		case batch.Date:
			out.Ints[i] = floorDiv(v, microsPerDay)
		}
	case batch.Date:
		if out.Type != batch.Timestamp {
			return false // Spark's non-ANSI cast of a date to a number or boolean is NULL
		}
		out.Ints[i] = saturatingMul(c.Ints[i], microsPerDay)
	default:
		return false
	}
	return true
}

// saturatingInt converts like Java's (long)/(int) narrowing of a double:
// truncation toward zero, NaN → 0, out-of-range values clamp.
func saturatingInt(v float64, lo, hi int64) int64 {
	switch {
	case math.IsNaN(v):
		return 0
	case v <= float64(lo):
		return lo
	case v >= float64(hi):
		return hi
	}
	return int64(v)
}

func saturatingMul(a, b int64) int64 {
	if a == 0 {
		return 0
	}
	r := a * b
	if r/b != a {
		if (a < 0) != (b < 0) {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return r
}

// castToString renders every cell as Spark does. Fixed-width values are
// rendered into one shared buffer.
func castToString(c *batch.Column) *batch.Column {
	n := c.Len
	out := &batch.Column{Type: batch.String, Len: n, Bytes: make([][]byte, n)}
	if c.Valid != nil {
		out.Valid = c.Valid // the result is null exactly where the input is
	}
	if c.Type == batch.Boolean {
		for i, v := range c.Bools {
			if isNullAt(c, i) {
				continue
			}
			if v {
				out.Bytes[i] = trueBytes
			} else {
				out.Bytes[i] = falseBytes
			}
		}
		return out
	}
	a := newArena(n * 12)
	for i := 0; i < n; i++ {
		if isNullAt(c, i) {
			continue
		}
		m := a.start(32)
		switch c.Type {
		case batch.Int, batch.Long:
			a.buf = strconv.AppendInt(a.buf, c.Ints[i], 10)
		case batch.Double:
			a.buf = sparktext.AppendDouble(a.buf, c.Floats[i])
		case batch.Date:
			a.buf = sparktext.AppendDate(a.buf, c.Ints[i])
		case batch.Timestamp:
			a.buf = sparktext.AppendTimestamp(a.buf, c.Ints[i], time.UTC)
		}
		out.Bytes[i] = a.end(m)
	}
	return out
}

// castFromString parses every cell; unparsable cells become NULL.
func castFromString(c *batch.Column, to batch.Kind) *batch.Column {
	n := c.Len
	out := newCol(to, n)
	if c.Valid != nil {
		out.Valid = append([]bool(nil), c.Valid...)
	}
	for i, s := range c.Bytes {
		if isNullAt(c, i) {
			continue
		}
		ok := true
		switch to {
		case batch.Boolean:
			out.Bools[i], ok = parseBool(s)
		case batch.Int:
			out.Ints[i], ok = parseIntegral(s, 32)
		case batch.Long:
			out.Ints[i], ok = parseIntegral(s, 64)
		case batch.Double:
			out.Floats[i], ok = parseDouble(s)
		case batch.Date:
			out.Ints[i], ok = parseDate(s)
		case batch.Timestamp:
			out.Ints[i], ok = parseTimestamp(s)
		}
		if !ok {
			setNull(out, i)
		}
	}
	zeroNulls(out)
	return out
}
