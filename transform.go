package sluice

import (
	"fmt"
	"time"

	"github.com/sluice-stream/sluice/batch"
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
}

func (c *chain) Schema() batch.Schema { return c.out }

func (c *chain) Apply(b *batch.Batch, batchTime time.Time) (*batch.Batch, error) {
	ctx := &expr.EvalContext{BatchTimestamp: batchTime}
	var err error
	for _, s := range c.steps {
		if b, err = s.Apply(b, ctx); err != nil {
			return nil, err
		}
	}
	return b, nil
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
			return nil, fmt.Errorf("transform step %d, %s:\n%w", i+1, o, err)
		}
		c.steps = append(c.steps, s)
		schema = s.Schema()
	}
	c.out = schema
	return c, nil
}
