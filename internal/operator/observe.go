package operator

import (
	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/watermark"
)

// Observe is the physical withWatermark: it passes rows through unchanged
// and records the event times of the column it watches (Spark's
// EventTimeWatermarkExec). Late rows are counted too; dropping them is the
// stateful operator's job. Null event times are skipped (Spark reads them
// as the epoch, which drags min and avg to 1970).
type Observe struct {
	in  batch.Schema
	col int
	// Collector gathers the batch's Stats from all tasks.
	Collector *watermark.Collector
}

// NewObserve watches column col (a timestamp) of in.
func NewObserve(in batch.Schema, col int) *Observe {
	return &Observe{in: in, col: col, Collector: &watermark.Collector{}}
}

// Schema is the input schema.
func (o *Observe) Schema() batch.Schema { return o.in }

// Apply records the chunk's event times and returns b.
func (o *Observe) Apply(b *batch.Batch, _ *expr.EvalContext) (*batch.Batch, error) {
	c := b.Columns[o.col]
	var s watermark.Stats
	for i, v := range c.Ints[:c.Len] {
		if c.Valid != nil && !c.Valid[i] {
			continue
		}
		s.Add(floorDiv(v, 1000)) // microseconds → milliseconds
	}
	o.Collector.Merge(s)
	return b, nil
}

// floorDiv divides rounding toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
