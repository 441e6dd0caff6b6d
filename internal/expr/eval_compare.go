package expr

import (
	"bytes"
	"cmp"
	"math"

	"github.com/sluice-stream/sluice/batch"
)

// cmpOp is a comparison operator.
type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpNe
	cmpLt
	cmpLe
	cmpGt
	cmpGe
	cmpNullSafeEq
)

func cmpOpOf(op string) cmpOp {
	switch op {
	case "=", "==":
		return cmpEq
	case "!=", "<>":
		return cmpNe
	case "<":
		return cmpLt
	case "<=":
		return cmpLe
	case ">":
		return cmpGt
	case ">=":
		return cmpGe
	}
	return cmpNullSafeEq
}

// holds reports whether a three-way comparison result c satisfies op.
func (op cmpOp) holds(c int) bool {
	switch op {
	case cmpEq, cmpNullSafeEq:
		return c == 0
	case cmpNe:
		return c != 0
	case cmpLt:
		return c < 0
	case cmpLe:
		return c <= 0
	case cmpGt:
		return c > 0
	}
	return c >= 0
}

// compare is a comparison of two columns of the same kind. <=> is never
// null: two nulls are equal, a null and a value are not.
type compare struct {
	op   cmpOp
	l, r evaluator
}

func (e *compare) kind() batch.Kind { return batch.Boolean }
func (e *compare) nullable() bool {
	return e.op != cmpNullSafeEq && (e.l.nullable() || e.r.nullable())
}

func (e *compare) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	l, err := e.l.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	r, err := e.r.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	n := b.N
	out := newCol(batch.Boolean, n)
	if e.op == cmpNullSafeEq {
		if l.Type != batch.Null && r.Type != batch.Null {
			compareKernel(cmpEq, l, r, out.Bools)
		}
		if l.HasNulls() || r.HasNulls() {
			for i := 0; i < n; i++ {
				ln, rn := isNullAt(l, i), isNullAt(r, i)
				if ln || rn {
					out.Bools[i] = ln && rn
				}
			}
		}
		return out, nil
	}
	if l.Type == batch.Null || r.Type == batch.Null {
		return nullCol(batch.Boolean, n), nil
	}
	compareKernel(e.op, l, r, out.Bools)
	out.Valid = andValid(n, l, r)
	zeroNulls(out)
	return out, nil
}

// compareKernel writes op(l[i], r[i]) into out for every row, ignoring
// nulls; l and r have the same kind. Doubles order NaN above every other
// value and equal to itself, as Spark does.
func compareKernel(op cmpOp, l, r *batch.Column, out []bool) {
	if l.Type.IsNested() {
		for i := range out {
			out[i] = op.holds(compareCells(l, i, r, i))
		}
		return
	}
	switch l.Type {
	case batch.Boolean:
		for i := range out {
			out[i] = op.holds(cmpBool(l.Bools[i], r.Bools[i]))
		}
	case batch.Int, batch.Long, batch.Date, batch.Timestamp:
		orderedKernel(op, l.Ints, r.Ints, out)
	case batch.Double:
		x, y := l.Floats, r.Floats
		for i := range out {
			out[i] = op.holds(cmpFloat(x[i], y[i]))
		}
	case batch.String, batch.Binary:
		x, y := l.Bytes, r.Bytes
		if op == cmpEq || op == cmpNe {
			for i := range out {
				out[i] = bytes.Equal(x[i], y[i]) == (op == cmpEq)
			}
			return
		}
		for i := range out {
			out[i] = op.holds(bytes.Compare(x[i], y[i]))
		}
	}
}

func orderedKernel[T cmp.Ordered](op cmpOp, x, y []T, out []bool) {
	switch op {
	case cmpEq, cmpNullSafeEq:
		for i := range out {
			out[i] = x[i] == y[i]
		}
	case cmpNe:
		for i := range out {
			out[i] = x[i] != y[i]
		}
	case cmpLt:
		for i := range out {
			out[i] = x[i] < y[i]
		}
	case cmpLe:
		for i := range out {
			out[i] = x[i] <= y[i]
		}
	case cmpGt:
		for i := range out {
			out[i] = x[i] > y[i]
		}
	case cmpGe:
		for i := range out {
			out[i] = x[i] >= y[i]
		}
	}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// cmpFloat orders doubles like Spark: NaN equals NaN and is greater than
// any other value; -0.0 equals 0.0.
func cmpFloat(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
