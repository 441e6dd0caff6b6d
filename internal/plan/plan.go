// Package plan is a query's one logical plan: a tree of operators (Scan,
// Project, Filter, WithWatermark, Aggregate, Deduplicate) built by both the
// Go API (DataFrame) and pipeline files (each transform step is an Op), and
// its analysis at query start.
//
// Analyze resolves the tree against the source schema once — column names,
// expression types, the event-time column a watermark marks and where it
// flows, Spark's output-mode and operator rules with Spark's error texts —
// so every problem is found before the query writes offsets/0. Its result,
// a Query, is the physical plan the engine runs:
//
//   - stage 1, one task per source range: scan → project/filter (and
//     watermark observation) → for a stateful query, partial aggregation
//     and the exchange writer, which hashes each row's key into one of
//     spark.sql.shuffle.partitions partitions;
//   - stage 2 (stateful queries), one task per shuffle partition: merge →
//     state store → late-row filter, eviction and emission by output mode →
//     the operators after the stateful one → sink writer.
//
// A stateless query is stage 1 alone, run inside the source task with no
// exchange, exactly as before plans existed. Explain prints both plans.
package plan

import (
	"fmt"
	"strings"
)

// Kind is an operator of the logical plan.
type Kind int

// The operators. Their String is the pipeline-file step name.
const (
	Scan Kind = iota
	SelectExpr
	Select
	WithColumn
	Filter
	WithWatermark
	Aggregate
	Deduplicate
)

var kindNames = map[Kind]string{
	Scan: "scan", SelectExpr: "selectExpr", Select: "select", WithColumn: "withColumn", Filter: "filter",
	WithWatermark: "withWatermark", Aggregate: "groupBy", Deduplicate: "dropDuplicates",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Op is one operation of a query before it is attached to its input: what
// a DataFrame method or a pipeline-file step adds. Which fields are used
// depends on Kind.
type Op struct {
	Kind Kind
	// Format and Options describe the source (Scan).
	Format  string
	Options map[string]string
	// Exprs are the expressions of SelectExpr and Select (Select: column
	// names).
	Exprs []string
	// Name and Expr are WithColumn's column and expression; Expr is also
	// Filter's condition.
	Name, Expr string
	// EventTime and Delay are WithWatermark's column and delay threshold
	// ("10 seconds").
	EventTime, Delay string
	// GroupBy and Aggs are Aggregate's grouping expressions and aggregate
	// expressions ("count(*) AS n").
	GroupBy, Aggs []string
	// Columns are Deduplicate's key columns (none: all columns);
	// WithinWatermark makes it dropDuplicatesWithinWatermark.
	Columns         []string
	WithinWatermark bool
}

// String renders the operation as the DataFrame call that adds it.
func (o Op) String() string {
	switch o.Kind {
	case Scan:
		return "readStream.format(" + o.Format + ")"
	case SelectExpr:
		return "selectExpr(" + strings.Join(o.Exprs, ", ") + ")"
	case Select:
		return "select(" + strings.Join(o.Exprs, ", ") + ")"
	case WithColumn:
		return fmt.Sprintf("withColumn(%s, %s)", o.Name, o.Expr)
	case Filter:
		return "filter(" + o.Expr + ")"
	case WithWatermark:
		return fmt.Sprintf("withWatermark(%s, %s)", o.EventTime, o.Delay)
	case Aggregate:
		return fmt.Sprintf("groupBy(%s).agg(%s)", strings.Join(o.GroupBy, ", "), strings.Join(o.Aggs, ", "))
	case Deduplicate:
		name := "dropDuplicates"
		if o.WithinWatermark {
			name = "dropDuplicatesWithinWatermark"
		}
		return name + "(" + strings.Join(o.Columns, ", ") + ")"
	}
	return o.Kind.String()
}

// Node is a node of the logical plan: an Op applied to its input. The tree
// is linear today (every operator has one input); Join will add a second.
// Nodes are immutable once built and may be shared by several trees.
type Node struct {
	Op
	// Input is the node this one reads; nil for Scan.
	Input *Node
	// Step is the position of the operation among the query's
	// transformations, from 0 (-1 for Scan): errors name it, and a
	// pipeline file maps it to its line.
	Step int
}

// NewScan starts a plan at a source.
func NewScan(format string, options map[string]string) *Node {
	return &Node{Op: Op{Kind: Scan, Format: format, Options: options}, Step: -1}
}

// With returns a new node applying op to n.
func (n *Node) With(op Op) *Node {
	return &Node{Op: op, Input: n, Step: n.Step + 1}
}

// Ops returns the transformations from the scan up to n, in order (the
// scan itself excluded).
func (n *Node) Ops() []*Node {
	var out []*Node
	for x := n; x != nil && x.Kind != Scan; x = x.Input {
		out = append(out, x)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// Source returns the plan's Scan node.
func (n *Node) Source() *Node {
	x := n
	for x.Input != nil {
		x = x.Input
	}
	return x
}

// HasAggregate reports whether the plan aggregates (whether or not it
// analyses), for checks that must run when analysis failed elsewhere.
func (n *Node) HasAggregate() bool {
	for x := n; x != nil; x = x.Input {
		if x.Kind == Aggregate {
			return true
		}
	}
	return false
}
