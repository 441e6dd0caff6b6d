package pipeline

import (
	"fmt"

	"github.com/sluice-stream/sluice/internal/plan"
)

// Render returns a transform step as a pipeline file writes it — the
// inverse of parsing it — for tools that generate pipeline files (the
// rehearsal and benchmark harnesses). escape is applied to every
// expression and name (e.g. to protect "${" from variable expansion).
func Render(op plan.Op, escape func(string) string) (map[string]any, error) {
	if escape == nil {
		escape = func(s string) string { return s }
	}
	list := func(xs []string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[i] = escape(x)
		}
		return out
	}
	switch op.Kind {
	case plan.SelectExpr, plan.Select:
		return map[string]any{op.Kind.String(): list(op.Exprs)}, nil
	case plan.WithColumn:
		return map[string]any{"withColumn": map[string]string{"name": escape(op.Name), "expr": escape(op.Expr)}}, nil
	case plan.Filter:
		return map[string]any{"filter": escape(op.Expr)}, nil
	case plan.WithWatermark:
		return map[string]any{"withWatermark": map[string]string{"eventTime": escape(op.EventTime), "delay": escape(op.Delay)}}, nil
	case plan.Aggregate:
		return map[string]any{"groupBy": list(op.GroupBy), "agg": list(op.Aggs)}, nil
	case plan.Deduplicate:
		if op.WithinWatermark {
			return map[string]any{"dropDuplicates": map[string]any{"columns": list(op.Columns), "withinWatermark": true}}, nil
		}
		return map[string]any{"dropDuplicates": list(op.Columns)}, nil
	}
	return nil, fmt.Errorf("pipeline: step %s cannot be rendered", op.Kind)
}
