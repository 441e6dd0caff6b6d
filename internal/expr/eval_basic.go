package expr

import (
	"errors"
	"math"

	"github.com/sluice-stream/sluice/batch"
)

// colRef returns an input column as-is: no copy.
type colRef struct {
	idx  int
	k    batch.Kind
	null bool
}

func (e *colRef) kind() batch.Kind { return e.k }
func (e *colRef) nullable() bool   { return e.null }
func (e *colRef) eval(b *batch.Batch, _ *EvalContext) (*batch.Column, error) {
	return b.Columns[e.idx], nil
}

// literal produces a constant column of the batch's length. String values
// share one byte slice across all rows.
type literal struct {
	k batch.Kind
	v any
}

func (e *literal) kind() batch.Kind { return e.k }
func (e *literal) nullable() bool   { return e.v == nil }
func (e *literal) eval(b *batch.Batch, _ *EvalContext) (*batch.Column, error) {
	return constColumn(e.k, e.v, b.N), nil
}

// constColumn returns n copies of v (nil = null) as a column of kind k.
func constColumn(k batch.Kind, v any, n int) *batch.Column {
	if v == nil {
		return nullCol(k, n)
	}
	c := &batch.Column{Type: k, Len: n}
	switch x := v.(type) {
	case bool:
		c.Bools = fill(n, x)
	case int64:
		c.Ints = fill(n, x)
	case float64:
		c.Floats = fill(n, x)
	case string:
		c.Bytes = fill(n, []byte(x))
	case []byte:
		c.Bytes = fill(n, x)
	}
	return c
}

// arith is a binary arithmetic operator over two columns of kind k (for /
// and DIV the compiler has already cast the operands to DOUBLE and BIGINT).
// INT results wrap at 32 bits and BIGINT at 64, as in Spark's non-ANSI
// mode; division and remainder by zero give NULL, except that with ANSI
// on a division (/ or DIV) by zero raises Spark's DIVIDE_BY_ZERO.
type arith struct {
	op   string
	l, r evaluator
	k    batch.Kind
	sql  string // for error messages
}

// divideByZero is Spark's DIVIDE_BY_ZERO message, with the expression.
func (e *arith) divideByZero() string {
	return `[DIVIDE_BY_ZERO] Division by zero. Use ` + "`try_divide`" + ` to tolerate divisor being 0 and return NULL instead. ` +
		`If necessary set "spark.sql.ansi.enabled" to "false" to bypass this error. (in ` + e.sql + `)`
}

func (e *arith) kind() batch.Kind { return e.k }
func (e *arith) nullable() bool {
	return e.l.nullable() || e.r.nullable() || e.op == "/" || e.op == "%" || e.op == "DIV"
}

func (e *arith) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	l, err := e.l.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	r, err := e.r.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	n := b.N
	if l.Type == batch.Null || r.Type == batch.Null {
		return nullCol(e.k, n), nil
	}
	out := newCol(e.k, n)
	out.Valid = andValid(n, l, r)
	if ctx != nil && ctx.ANSI && (e.op == "/" || e.op == "DIV") {
		if err := e.checkDivisor(r, out, ctx); err != nil {
			return nil, err
		}
	}
	switch e.k {
	case batch.Int, batch.Long:
		x, y, z := l.Ints, r.Ints, out.Ints
		wrap := e.k == batch.Int
		switch e.op {
		case "+", "-", "*":
			addSubMul(e.op, x, y, z)
		case "%", "DIV":
			for i := range z {
				if y[i] == 0 {
					setNull(out, i)
					continue
				}
				if e.op == "%" {
					z[i] = x[i] % y[i]
				} else {
					z[i] = x[i] / y[i]
				}
			}
		}
		if wrap {
			for i, v := range z {
				z[i] = int64(int32(v))
			}
		}
	case batch.Double:
		x, y, z := l.Floats, r.Floats, out.Floats
		switch e.op {
		case "+", "-", "*":
			addSubMul(e.op, x, y, z)
		case "/", "%":
			for i := range z {
				if y[i] == 0 {
					setNull(out, i)
					continue
				}
				if e.op == "/" {
					z[i] = x[i] / y[i]
				} else {
					z[i] = math.Mod(x[i], y[i])
				}
			}
		}
	}
	zeroNulls(out)
	return out, nil
}

// checkDivisor raises DIVIDE_BY_ZERO for a row whose divisor is zero (in
// ANSI mode), or records it in ctx.RowErrors; the row's result is NULL.
func (e *arith) checkDivisor(r, out *batch.Column, ctx *EvalContext) error {
	for i := 0; i < out.Len; i++ {
		if isNullAt(out, i) {
			continue
		}
		zero := false
		switch r.Type {
		case batch.Double:
			zero = r.Floats[i] == 0
		default:
			zero = r.Ints[i] == 0
		}
		if !zero {
			continue
		}
		if ctx.RowErrors == nil {
			return errors.New(e.divideByZero())
		}
		ctx.RowErrors.Add(i, e.divideByZero())
	}
	return nil
}

// addSubMul computes z = x op y element-wise for op "+", "-" or "*"; one
// tight loop per operator and element type.
func addSubMul[T int64 | float64](op string, x, y, z []T) {
	switch op {
	case "+":
		for i := range z {
			z[i] = x[i] + y[i]
		}
	case "-":
		for i := range z {
			z[i] = x[i] - y[i]
		}
	case "*":
		for i := range z {
			z[i] = x[i] * y[i]
		}
	}
}

// negate is unary minus; INT wraps at 32 bits.
type negate struct{ x evaluator }

func (e *negate) kind() batch.Kind { return e.x.kind() }
func (e *negate) nullable() bool   { return e.x.nullable() }
func (e *negate) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	k := e.x.kind()
	if x.Type == batch.Null {
		return nullCol(k, b.N), nil
	}
	out := newCol(k, b.N)
	if x.Valid != nil {
		out.Valid = append([]bool(nil), x.Valid...)
	}
	switch k {
	case batch.Int:
		for i, v := range x.Ints {
			out.Ints[i] = int64(-int32(v))
		}
	case batch.Long:
		for i, v := range x.Ints {
			out.Ints[i] = -v
		}
	case batch.Double:
		for i, v := range x.Floats {
			out.Floats[i] = -v
		}
	}
	zeroNulls(out)
	return out, nil
}

// notEval is three-valued NOT.
type notEval struct{ x evaluator }

func (e *notEval) kind() batch.Kind { return batch.Boolean }
func (e *notEval) nullable() bool   { return e.x.nullable() }
func (e *notEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	if x.Type == batch.Null {
		return nullCol(batch.Boolean, b.N), nil
	}
	out := newCol(batch.Boolean, b.N)
	if x.Valid != nil {
		out.Valid = append([]bool(nil), x.Valid...)
	}
	for i, v := range x.Bools {
		out.Bools[i] = !v
	}
	zeroNulls(out)
	return out, nil
}

// logic is three-valued (Kleene) AND / OR: FALSE AND NULL is FALSE, TRUE OR
// NULL is TRUE, otherwise NULL wins.
type logic struct {
	and  bool
	l, r evaluator
}

func (e *logic) kind() batch.Kind { return batch.Boolean }
func (e *logic) nullable() bool   { return e.l.nullable() || e.r.nullable() }
func (e *logic) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	l, err := e.l.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	r, err := e.r.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	return kleene(e.and, l, r, b.N), nil
}

func kleene(and bool, l, r *batch.Column, n int) *batch.Column {
	out := newCol(batch.Boolean, n)
	if !l.HasNulls() && !r.HasNulls() {
		for i := range out.Bools {
			if and {
				out.Bools[i] = l.Bools[i] && r.Bools[i]
			} else {
				out.Bools[i] = l.Bools[i] || r.Bools[i]
			}
		}
		return out
	}
	// dominant is the value that decides the result on its own.
	dominant := !and
	for i := 0; i < n; i++ {
		lv, rv := !isNullAt(l, i), !isNullAt(r, i)
		ld := lv && l.Bools[i] == dominant
		rd := rv && r.Bools[i] == dominant
		switch {
		case ld || rd:
			out.Bools[i] = dominant
		case !lv || !rv:
			setNull(out, i)
		default:
			out.Bools[i] = !dominant
		}
	}
	return out
}

// isNull is IS [NOT] NULL; it is never null itself.
type isNull struct {
	x   evaluator
	not bool
}

func (e *isNull) kind() batch.Kind { return batch.Boolean }
func (e *isNull) nullable() bool   { return false }
func (e *isNull) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	out := newCol(batch.Boolean, b.N)
	for i := range out.Bools {
		out.Bools[i] = isNullAt(x, i) != e.not
	}
	return out, nil
}

// inList is x IN (items...): TRUE if x equals an item, NULL if x is NULL or
// no item matched but one was NULL, FALSE otherwise.
type inList struct {
	x     evaluator
	items []evaluator
}

func (e *inList) kind() batch.Kind { return batch.Boolean }
func (e *inList) nullable() bool {
	if e.x.nullable() {
		return true
	}
	for _, it := range e.items {
		if it.nullable() {
			return true
		}
	}
	return false
}

func (e *inList) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	x, err := e.x.eval(b, ctx)
	if err != nil {
		return nil, err
	}
	n := b.N
	found := make([]bool, n)
	sawNull := make([]bool, n)
	eq := make([]bool, n)
	for _, it := range e.items {
		v, err := it.eval(b, ctx)
		if err != nil {
			return nil, err
		}
		if v.Type == batch.Null || x.Type == batch.Null {
			for i := range sawNull {
				sawNull[i] = true
			}
			continue
		}
		compareKernel(cmpEq, x, v, eq)
		for i := range eq {
			if isNullAt(v, i) {
				sawNull[i] = true
			} else if eq[i] {
				found[i] = true
			}
		}
	}
	out := newCol(batch.Boolean, n)
	for i := 0; i < n; i++ {
		switch {
		case isNullAt(x, i):
			setNull(out, i)
		case found[i]:
			out.Bools[i] = true
		case sawNull[i]:
			setNull(out, i)
		}
	}
	return out, nil
}

// caseEval is a searched CASE; simple CASE is rewritten into it.
type caseEval struct {
	conds, vals []evaluator
	els         evaluator
	k           batch.Kind
}

func (e *caseEval) kind() batch.Kind { return e.k }
func (e *caseEval) nullable() bool {
	if e.els == nil || e.els.nullable() {
		return true
	}
	for _, v := range e.vals {
		if v.nullable() {
			return true
		}
	}
	return false
}

func (e *caseEval) eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	n := b.N
	choice := fill(n, -1)
	decided := make([]bool, n)
	srcs := make([]*batch.Column, 0, len(e.vals)+1)
	for j := range e.conds {
		cond, err := e.conds[j].eval(b, ctx)
		if err != nil {
			return nil, err
		}
		val, err := e.vals[j].eval(b, ctx)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, val)
		for i := 0; i < n; i++ {
			if !decided[i] && !isNullAt(cond, i) && cond.Bools[i] {
				decided[i] = true
				choice[i] = j
			}
		}
	}
	if e.els != nil {
		els, err := e.els.eval(b, ctx)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, els)
		for i := 0; i < n; i++ {
			if !decided[i] {
				choice[i] = len(srcs) - 1
			}
		}
	}
	return pick(e.k, n, choice, srcs), nil
}
