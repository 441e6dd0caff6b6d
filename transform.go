package sluice

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
)

// step is one compiled DataFrame operation.
type step interface {
	Schema() batch.Schema
	Apply(b *batch.Batch, ctx *expr.EvalContext) (*batch.Batch, error)
}

// chain is the engine.Transform of a DataFrame: its operations compiled
// once, at query start, against the source schema.
type chain struct {
	steps []step
	out   batch.Schema
	// ansi is spark.sql.ansi.enabled: invalid casts are errors.
	ansi bool
	// routeErrors collects rows that fail (ANSI casts) as dead letters
	// instead of failing the batch; set when the query has a dead-letter sink.
	routeErrors bool
}

func (c *chain) Schema() batch.Schema { return c.out }

func (c *chain) Apply(b *batch.Batch, batchTime time.Time) (*batch.Batch, []engine.DeadLetter, error) {
	ctx := &expr.EvalContext{BatchTimestamp: batchTime, ANSI: c.ansi}
	if !c.routeErrors {
		var err error
		for _, s := range c.steps {
			if b, err = s.Apply(b, ctx); err != nil {
				return nil, nil, err
			}
		}
		return b, nil, nil
	}
	// Track which input row each current row came from, so a failure at
	// any step names its source row.
	input := b
	var orig []int // nil = identity
	var dead []engine.DeadLetter
	origOf := func(i int) int {
		if orig == nil {
			return i
		}
		return orig[i]
	}
	for _, s := range c.steps {
		errs := &expr.RowErrors{}
		ctx.RowErrors = errs
		var keep []bool
		kept := b.N
		var out *batch.Batch
		if f, ok := s.(*expr.Filter); ok {
			mask, n, err := f.Mask(b, ctx)
			if err != nil {
				return nil, nil, err
			}
			keep, kept = mask, n
			out = b
		} else {
			var err error
			if out, err = s.Apply(b, ctx); err != nil {
				return nil, nil, err
			}
		}
		if errs.Len() > 0 {
			if keep == nil {
				keep = make([]bool, b.N)
				for i := range keep {
					keep[i] = true
				}
			}
			for i, reason := range errs.Reasons {
				if keep[i] {
					keep[i] = false
					kept--
				}
				dead = append(dead, engine.DeadLetter{Reason: reason, Input: input, Row: origOf(i)})
			}
		}
		if keep != nil && kept < b.N {
			next := make([]int, 0, kept)
			for i, k := range keep {
				if k {
					next = append(next, origOf(i))
				}
			}
			orig = next
			out = expr.FilterRows(out, keep, kept)
		}
		b = out
	}
	return b, dead, nil
}

// requiredColumns returns the source columns a DataFrame's operations read,
// or nil when they read all of them. Only a leading projection (select,
// selectExpr) can drop columns; everything else passes them through.
func requiredColumns(ops []op) []string {
	if len(ops) == 0 || (ops[0].kind != opSelectExpr && ops[0].kind != opSelect) {
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for _, e := range ops[0].exprs {
		n, err := expr.Parse(e)
		if err != nil {
			return nil
		}
		cols, star := expr.Columns(n)
		if star {
			return nil
		}
		for _, c := range cols {
			if !seen[c] {
				seen[c] = true
				names = append(names, c)
			}
		}
	}
	if names == nil {
		names = []string{} // reads no column at all (constants only)
	}
	return names
}

// compileTransform compiles ops against the input schema; nil when there
// are no operations.
func compileTransform(ops []op, in batch.Schema) (*chain, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	c := &chain{}
	schema := in
	for i, o := range ops {
		var s step
		var err error
		switch o.kind {
		case opSelectExpr, opSelect:
			s, err = expr.CompileSelect(o.exprs, schema)
		case opWithColumn:
			s, err = expr.CompileWithColumn(o.name, o.exprs[0], schema)
		case opFilter:
			s, err = expr.CompileFilter(o.exprs[0], schema)
		}
		if err != nil {
			return nil, &stepError{step: i, op: o, err: err}
		}
		c.steps = append(c.steps, s)
		schema = s.Schema()
	}
	c.out = schema
	return c, nil
}

// clip shortens s to at most n runes, marking a cut with "…", so that an
// error about a huge generated expression stays readable.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// stepError is a transform step that does not compile; step counts from 0.
type stepError struct {
	step int
	op   op
	err  error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("transform step %d, %s:\n%v", e.step+1, clip(e.op.String(), 200), e.err)
}

func (e *stepError) Unwrap() error { return e.err }
