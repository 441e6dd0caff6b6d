// Package operator holds the executable operators of a query's physical
// plan (package plan compiles them; package engine runs them):
//
//   - Chain, the stateless stage: projections, filters and watermark
//     observation over each chunk, run inside the source task (stage 1) or
//     after a stateful operator (stage 2), with dead-letter routing;
//   - Aggregate, streaming aggregation: partial aggregation and the
//     exchange writer in stage 1, merge, state, late rows, eviction and
//     output modes in stage 2;
//   - Deduplicate: dropDuplicates (with or without a watermark) and
//     dropDuplicatesWithinWatermark.
//
// The stateful operators implement engine.Stateful; their state keys use
// package state's order-preserving encoding with the event-time value (a
// timestamp, or a window's end) first, so that everything the watermark
// passed is one key range.
package operator

import (
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/engine"
	"github.com/sluice-stream/sluice/internal/expr"
)

// Step is one compiled stateless operation: an expr.Projection, an
// expr.Filter or an Observe.
type Step interface {
	Schema() batch.Schema
	Apply(b *batch.Batch, ctx *expr.EvalContext) (*batch.Batch, error)
}

// Chain is a stateless stage: its steps compiled once, at query start,
// against the input schema. It is the engine.Transform of stage 1, and
// runs after a stateful operator in stage 2. Apply is safe for
// concurrent use.
type Chain struct {
	Steps []Step
	Out   batch.Schema
	// ANSI is spark.sql.ansi.enabled: invalid casts are errors.
	ANSI bool
	// RouteErrors collects rows that fail (ANSI casts) as dead letters
	// instead of failing the batch; set when the query has a dead-letter
	// sink.
	RouteErrors bool
}

// NewChain returns a chain over in with no steps yet.
func NewChain(in batch.Schema) *Chain { return &Chain{Out: in} }

// Add appends a step compiled against the chain's current output.
func (c *Chain) Add(s Step) {
	c.Steps = append(c.Steps, s)
	c.Out = s.Schema()
}

// Schema is the chain's output schema.
func (c *Chain) Schema() batch.Schema { return c.Out }

// Empty reports whether the chain has no steps.
func (c *Chain) Empty() bool { return c == nil || len(c.Steps) == 0 }

// Apply runs the steps over one chunk. batchTime is what
// current_timestamp() returns. With RouteErrors, rows a step fails on are
// returned as dead letters (naming their row in b) and dropped.
func (c *Chain) Apply(b *batch.Batch, batchTime time.Time) (*batch.Batch, []engine.DeadLetter, error) {
	ctx := &expr.EvalContext{BatchTimestamp: batchTime, ANSI: c.ANSI}
	if !c.RouteErrors {
		var err error
		for _, s := range c.Steps {
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
	for _, s := range c.Steps {
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
