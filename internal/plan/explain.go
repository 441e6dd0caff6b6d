package plan

import (
	"fmt"
	"sort"
	"strings"

	"github.com/sluice-stream/sluice/internal/operator"
	"github.com/sluice-stream/sluice/internal/state"
)

// ExplainOptions are the run-time facts the physical plan shows.
type ExplainOptions struct {
	// Sink is the sink format.
	Sink string
	// Partitions is spark.sql.shuffle.partitions.
	Partitions int
	// ShuffleBuffer bounds the exchange, in bytes.
	ShuffleBuffer int64
	// StateProvider names the state store provider.
	StateProvider string
}

// Explain renders the logical plan and the physical plan, in Spark's
// indented-tree style (the root first).
func (q *Query) Explain(o ExplainOptions) string {
	var b strings.Builder
	b.WriteString("== Logical Plan ==\n")
	var lines []string
	for n := q.Root; n != nil; n = n.Input {
		lines = append(lines, logicalLine(n))
	}
	tree(&b, lines, 0)
	b.WriteString("\n== Physical Plan ==\n")
	q.physical(&b, o)
	return b.String()
}

// tree writes lines as a Spark tree: each line the child of the one above.
func tree(b *strings.Builder, lines []string, indent int) {
	for i, l := range lines {
		pad := strings.Repeat(" ", indent)
		if i > 0 {
			pad += strings.Repeat("   ", i-1) + "+- "
		}
		b.WriteString(pad + l + "\n")
	}
}

func list(xs []string) string { return "[" + strings.Join(xs, ", ") + "]" }

func logicalLine(n *Node) string {
	switch n.Kind {
	case Scan:
		return "StreamingRelation " + n.Format + " " + options(n.Options)
	case SelectExpr, Select:
		return "Project " + list(n.Exprs)
	case WithColumn:
		return fmt.Sprintf("Project [*, %s AS %s]", n.Expr, n.Name)
	case Filter:
		return "Filter " + n.Expr
	case WithWatermark:
		return fmt.Sprintf("EventTimeWatermark %s, %s", n.EventTime, n.Delay)
	case Aggregate:
		return fmt.Sprintf("Aggregate %s, %s", list(n.GroupBy), list(append(append([]string{}, n.GroupBy...), n.Aggs...)))
	case Deduplicate:
		name := "Deduplicate"
		if n.WithinWatermark {
			name = "DeduplicateWithinWatermark"
		}
		cols := n.Columns
		if len(cols) == 0 {
			cols = []string{"*"}
		}
		return name + " " + list(cols)
	}
	return n.Kind.String()
}

// options lists a source's options without values that may be secrets.
func options(m map[string]string) string {
	var keys []string
	for k, v := range m {
		lk := strings.ToLower(k)
		if strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "jaas") ||
			strings.Contains(lk, "connectionstring") || strings.Contains(lk, "key") && !strings.HasSuffix(lk, "deserializer") {
			v = "***"
		}
		keys = append(keys, k+"="+v)
	}
	sort.Strings(keys)
	return list(keys)
}

func (q *Query) physical(b *strings.Builder, o ExplainOptions) {
	ops := q.Root.Ops()
	var stage1, stage2 []string
	var stateNode *Node
	for _, n := range ops {
		switch {
		case q.stateStep >= 0 && n.Step == q.stateStep:
			stateNode = n
		case stateNode != nil:
			stage2 = append(stage2, physicalLine(n))
		default:
			stage1 = append(stage1, physicalLine(n))
		}
	}
	scan := "Scan " + q.Root.Source().Format + " " + options(q.Root.Source().Options)
	sinkLine := fmt.Sprintf("WriteToSink %s, output mode %s", o.Sink, q.OutputMode)
	reverse := func(xs []string) []string {
		out := make([]string, len(xs))
		for i, x := range xs {
			out[len(xs)-1-i] = x
		}
		return out
	}
	if q.Stateful == nil {
		b.WriteString("Stage 1: one task per source range, on the worker pool (no exchange)\n")
		lines := append([]string{sinkLine}, reverse(stage1)...)
		tree(b, append(lines, scan), 0)
		return
	}
	provider := o.StateProvider
	if provider == "" {
		provider = "memory"
	}
	fmt.Fprintf(b, "Stage 2: one task per shuffle partition (%d), on the worker pool\n", o.Partitions)
	lines := append([]string{sinkLine}, reverse(stage2)...)
	var shuffleKey string
	switch s := q.Stateful.(type) {
	case *operator.Aggregate:
		keys := make([]string, len(s.Keys))
		for i, k := range s.Keys {
			keys[i] = k.Name()
		}
		calls := make([]string, len(s.Calls))
		for i, c := range s.Calls {
			calls[i] = c.Name
		}
		et := "no event time (state is kept forever)"
		if s.EventTime >= 0 {
			what := keys[s.EventTime]
			if s.WindowEnd {
				what += ".end"
			}
			et = fmt.Sprintf("event time %s: late keys dropped, %s", what, map[string]string{
				ModeAppend: "groups emitted and evicted when the watermark passes them", ModeUpdate: "changed groups emitted, groups the watermark passed evicted",
				ModeComplete: "every group emitted, nothing evicted"}[s.Mode])
		}
		if s.Post != nil && len(s.Post.Steps) > 0 {
			lines = append(lines, "Project "+list(s.Post.Steps[0].Schema().Names()))
		}
		lines = append(lines,
			fmt.Sprintf("StateStoreSave %s, %s, state operator 0 (%s, %s provider), %s", list(keys), list(calls), state.OperatorNameAggregate, provider, et),
			fmt.Sprintf("MergeAggregate %s, %s", list(keys), list(calls)))
		shuffleKey = list(keys)
		if s.Window != nil {
			stage1 = append(stage1, "Expand "+s.Window.SQL+" (a row per window it falls in)")
		}
		stage1 = append(stage1, fmt.Sprintf("PartialAggregate %s, %s", list(keys), list(calls)))
	case *operator.SessionAggregate:
		var keys, groups []string
		for i, k := range s.Keys {
			keys = append(keys, k.Name())
			if i != s.Session {
				groups = append(groups, k.Name())
			}
		}
		calls := make([]string, len(s.Calls))
		for i, c := range s.Calls {
			calls[i] = c.Name
		}
		et := "no watermark on the session (sessions are kept forever)"
		if s.EventTime >= 0 {
			et = map[string]string{ModeAppend: "late sessions dropped, sessions emitted and evicted when the watermark passes their end",
				ModeComplete: "every session emitted, nothing evicted"}[s.Mode]
		}
		if s.Post != nil && len(s.Post.Steps) > 0 {
			lines = append(lines, "Project "+list(s.Post.Steps[0].Schema().Names()))
		}
		lines = append(lines,
			fmt.Sprintf("SessionWindowStateStoreSave %s, %s, state operator 0 (%s, %s provider, sessions keyed by %s and start), %s",
				list(keys), list(calls), state.OperatorNameSession, provider, list(groups), et),
			fmt.Sprintf("MergingSessions %s, %s (merges sessions that overlap or touch, with the stored ones)", list(keys), list(calls)))
		shuffleKey = list(groups)
		stage1 = append(stage1, "Expand "+s.Window.SQL+" (each row's initial session [t, t + gap))",
			fmt.Sprintf("PartialAggregate %s, %s (per initial session)", list(keys), list(calls)))
	case *operator.Deduplicate:
		keys := make([]string, len(s.Keys))
		for i, k := range s.Keys {
			keys[i] = s.In.Fields[k].Name
		}
		name, what := state.OperatorNameDedup, "first row per key kept"
		if s.WithinWatermark {
			name, what = state.OperatorNameDedupWithin, "keys kept until the watermark passes their first event time + delay"
		}
		if s.EventTime >= 0 {
			what += fmt.Sprintf("; rows at or below the watermark on %s dropped", s.In.Fields[s.EventTime].Name)
		}
		lines = append(lines, fmt.Sprintf("StreamingDeduplicate %s, state operator 0 (%s, %s provider), %s", list(keys), name, provider, what))
		shuffleKey = list(keys)
	}
	lines = append(lines, fmt.Sprintf("Exchange hashpartitioning(%s, %d), buffer ≤ %s", shuffleKey, o.Partitions, state.FormatBytes(o.ShuffleBuffer)))
	tree(b, lines, 0)
	b.WriteString("Stage 1: one task per source range, on the worker pool\n")
	depth := len(lines) - 1
	rest := append(reverse(stage1), scan)
	for i, l := range rest {
		b.WriteString(strings.Repeat(" ", 3*(depth+i)) + "+- " + l + "\n")
	}
}

func physicalLine(n *Node) string {
	switch n.Kind {
	case WithWatermark:
		return fmt.Sprintf("EventTimeWatermark %s, %s (observes event times; the stateful operator drops late rows)", n.EventTime, n.Delay)
	}
	return logicalLine(n)
}
