package expr

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
)

// Aggregate functions in expressions: the analyser of groupBy(...).agg(...)
// (Spark's Aggregate node) and the errors for aggregates used elsewhere.

// aggregateNames are the aggregate functions the analyser recognises, by
// lower-case name (Spark's names and aliases, see aggregate.ParseFunc).
var aggregateNames = map[string]bool{
	"count": true, "sum": true, "avg": true, "mean": true, "min": true, "max": true,
	"first": true, "first_value": true, "last": true, "last_value": true,
	"approx_count_distinct": true, "collect_list": true, "array_agg": true, "collect_set": true,
}

// unsupportedAggregates are Spark aggregates sluice does not compute.
var unsupportedAggregates = map[string]bool{
	"stddev": true, "stddev_pop": true, "stddev_samp": true, "variance": true, "var_pop": true, "var_samp": true,
	"percentile": true, "percentile_approx": true, "approx_percentile": true, "median": true, "mode": true,
	"any_value": true, "count_if": true, "bool_and": true, "bool_or": true, "every": true, "some": true, "any": true,
	"max_by": true, "min_by": true, "corr": true, "covar_pop": true, "covar_samp": true, "kurtosis": true, "skewness": true,
}

// aggregateDocs documents the aggregate functions for Functions (and so for
// `sluice functions` and the reference).
var aggregateDocs = map[string][2]string{
	"count":                 {"count(*) | count(expr)", "Aggregate: the number of rows, or of rows where expr is not NULL."},
	"sum":                   {"sum(expr)", "Aggregate: the sum (bigint for integers, double otherwise); NULL for no values."},
	"avg":                   {"avg(expr)", "Aggregate: the mean, as a double."},
	"mean":                  {"mean(expr)", "Aggregate: alias of avg()."},
	"min":                   {"min(expr)", "Aggregate: the smallest value."},
	"max":                   {"max(expr)", "Aggregate: the largest value."},
	"first":                 {"first(expr[, ignoreNulls])", "Aggregate: the first value in arrival order (the first non-NULL one with ignoreNulls)."},
	"first_value":           {"first_value(expr[, ignoreNulls])", "Aggregate: alias of first()."},
	"last":                  {"last(expr[, ignoreNulls])", "Aggregate: the last value in arrival order (the last non-NULL one with ignoreNulls)."},
	"last_value":            {"last_value(expr[, ignoreNulls])", "Aggregate: alias of last()."},
	"approx_count_distinct": {"approx_count_distinct(expr[, rsd])", "Aggregate: the approximate number of distinct values (HyperLogLog++, relative standard deviation rsd, default 0.05)."},
	"collect_list":          {"collect_list(expr)", "Aggregate: the non-NULL values as an array, in arrival order."},
	"array_agg":             {"array_agg(expr)", "Aggregate: alias of collect_list()."},
	"collect_set":           {"collect_set(expr)", "Aggregate: the distinct non-NULL values as an array."},
}

// IsAggregateFunction reports whether name (any case) is an aggregate
// function sluice computes.
func IsAggregateFunction(name string) bool { return aggregateNames[strings.ToLower(name)] }

// HasAggregate reports whether n calls an aggregate function: a select
// list holding one is a global aggregation (the plan compiles it with
// CompileAggregation and no grouping keys).
func HasAggregate(n Node) bool {
	found := false
	var walk func(Node)
	walk = func(n Node) {
		if found || n == nil {
			return
		}
		if c, ok := n.(*Call); ok && (aggregateNames[strings.ToLower(c.Name)] || unsupportedAggregates[strings.ToLower(c.Name)]) {
			found = true
			return
		}
		eachChild(n, walk)
	}
	walk(n)
	return found
}

// Spark's error texts.
const (
	errMissingGroupBy = "[MISSING_GROUP_BY] The query does not include a GROUP BY clause. " +
		"Add GROUP BY or turn it into the window functions using OVER clauses."
	errStreamingDistinct = "Distinct aggregations are not supported on streaming DataFrames/Datasets. " +
		"Consider using approx_count_distinct() instead."
	errNestedAggregate = "[NESTED_AGGREGATE_FUNCTION] It is not allowed to use an aggregate function in the argument " +
		"of another aggregate function. Please use the inner aggregate function in a sub-query."
)

// aggregateOutside is the error for an aggregate call compiled outside an
// aggregation (select, withColumn, filter).
func aggregateOutside(c *compiler, n *Call) error {
	name := strings.ToLower(n.Name)
	switch {
	case n.Distinct:
		return errAt(n.At, "%s", errStreamingDistinct)
	case unsupportedAggregates[name]:
		return errAt(n.At, "aggregate function %s() is not supported (supported: count, sum, avg, min, max, first, last, approx_count_distinct, collect_list, collect_set)", name)
	case c.filter:
		return errAt(n.At, "[INVALID_WHERE_CONDITION] The WHERE condition contains invalid expressions: %s. "+
			"Rewrite the query to avoid window functions, aggregate functions, and generator functions in the WHERE clause.", n)
	}
	return errAt(n.At, "%s (%s() is an aggregate function: use groupBy(...).agg(...), or agg: in a pipeline file)", errMissingGroupBy, name)
}

// AggOptions configure CompileAggregation.
type AggOptions struct {
	// ANSI is spark.sql.ansi.enabled: sum of integers fails on overflow.
	ANSI bool
}

// AggCall is one aggregate call of an aggregation.
type AggCall struct {
	// Name is the call as Spark names its column: count(1) for count(*),
	// sum(amount), avg((a + b)).
	Name string
	// Agg validates the call and makes its accumulators.
	Agg *aggregate.Aggregate
	// Arg computes the argument over Aggregation.Input; nil for count(*).
	Arg Compiled
}

// Aggregation is a compiled groupBy(keys...).agg(exprs...): what a
// streaming aggregation computes, split into
//
//   - Window: the window() or session_window() grouping key, if any; the
//     plan expands each input batch with Window.Expand, whose output is
//     Input;
//   - Keys: the grouping expressions over Input;
//   - Calls: the distinct aggregate calls, with their arguments over Input;
//   - Grouped: the schema of the aggregated rows, the keys (named as the
//     output names them) then one column per call (named call.Name), which
//     the accumulators fill (aggregate.Accumulator.AppendResult);
//   - Output: the projection of Grouped rows into the result, Spark's
//     output of agg: the grouping columns then each agg expression, e.g.
//     sum(a) / count(a) computed from the two calls' columns.
type Aggregation struct {
	Input   batch.Schema
	Window  *TimeWindow
	Keys    []Compiled
	Calls   []AggCall
	Grouped batch.Schema
	Output  *Projection
}

// CompileAggregation analyses groupBy(groupBy...).agg(agg...) over rows of
// schema in, with Spark's rules: aggregates are count(*), count(expr),
// sum, avg/mean, min, max, first/last [with ignoreNulls], approx_count_distinct
// [with rsd], collect_list/array_agg and collect_set; DISTINCT aggregates
// are refused with Spark's streaming error; an agg expression may use
// grouping expressions and aggregate calls but no other column
// (MISSING_AGGREGATION); aggregates do not nest. An empty groupBy is a
// global aggregation.
func CompileAggregation(groupBy, agg []string, in batch.Schema, opts AggOptions) (*Aggregation, error) {
	a := &Aggregation{Input: in}
	type key struct {
		node Node   // the expression without its alias
		name string // the output (and Grouped) column name
	}
	var keys []key
	for i, src := range groupBy {
		n, err := Parse(src)
		if err != nil {
			return nil, fmt.Errorf("groupBy[%d]: %w", i, err)
		}
		if HasAggregate(n) {
			return nil, fmt.Errorf("groupBy[%d]: %w", i, withSource(errAt(n.Pos(),
				"[GROUP_BY_AGGREGATE] Aggregate functions are not allowed in GROUP BY, but found %s.", n), src))
		}
		w, ok, err := FindTimeWindow(n, in)
		if err != nil {
			return nil, fmt.Errorf("groupBy[%d]: %w", i, withSource(err, src))
		}
		if ok {
			if a.Window != nil {
				return nil, fmt.Errorf("groupBy[%d]: %w", i, withSource(errAt(n.Pos(),
					"Multiple time/session window expressions would result in a cartesian product of rows, therefore they are currently not supported."), src))
			}
			a.Window = w
			a.Input = batch.Schema{Fields: append(append([]batch.Field(nil), in.Fields...), batch.Field{Name: w.Name, Type: WindowKind})}
			name := w.Name
			if al, isAlias := n.(*Alias); isAlias {
				name = al.Name
			}
			keys = append(keys, key{node: stripAlias(n), name: name})
			continue
		}
		keys = append(keys, key{node: stripAlias(n)})
	}
	// Compile the keys over Input (a window key reads the expanded column).
	for i := range keys {
		k := &keys[i]
		node := k.node
		if c, ok := node.(*Call); ok && a.Window != nil && isWindowCall(c) {
			node = &Ident{Name: a.Window.Name, At: c.At}
		}
		var alias string
		if al, ok := parseAlias(groupBy[i]); ok {
			alias = al
		}
		c, err := Compile(node, a.Input)
		if err != nil {
			return nil, fmt.Errorf("groupBy[%d]: %w", i, withSource(err, groupBy[i]))
		}
		if alias != "" {
			k.name = alias
		} else if k.name == "" {
			k.name = c.Name()
		}
		a.Keys = append(a.Keys, &compiled{ev: c.(*compiled).ev, name: k.name, in: a.Input})
		a.Grouped.Fields = append(a.Grouped.Fields, batch.Field{Name: k.name, Type: c.Type(), Nullable: c.Nullable()})
	}

	// Rewrite each agg expression over Grouped: grouping expressions and
	// aggregate calls become column references.
	calls := map[string]int{} // name → index in a.Calls
	var rewrite func(n Node, src string) (Node, error)
	rewrite = func(n Node, src string) (Node, error) {
		for _, k := range keys {
			if n.String() == k.node.String() {
				return &Ident{Name: k.name, At: n.Pos()}, nil
			}
		}
		switch x := n.(type) {
		case *Ident:
			for _, k := range keys {
				if strings.EqualFold(x.Name, k.name) {
					return &Ident{Name: k.name, At: x.At}, nil
				}
			}
			if in.Index(x.Name) >= 0 {
				return nil, errAt(x.At, "[MISSING_AGGREGATION] The non-aggregating expression %q is based on columns which are not participating in the GROUP BY clause. "+
					"Add the columns or the expression to the GROUP BY, aggregate the expression, or use \"any_value(%s)\" if you do not care which of the values within a group is returned.",
					x.Name, x.Name)
			}
			return x, nil // unknown: compiling reports it
		case *Call:
			name := strings.ToLower(x.Name)
			if x.Distinct {
				return nil, errAt(x.At, "%s", errStreamingDistinct)
			}
			if unsupportedAggregates[name] {
				return nil, errAt(x.At, "aggregate function %s() is not supported (supported: count, sum, avg, min, max, first, last, approx_count_distinct, collect_list, collect_set)", name)
			}
			if aggregateNames[name] {
				for _, arg := range x.Args {
					if HasAggregate(arg) {
						return nil, errAt(arg.Pos(), "%s", errNestedAggregate)
					}
				}
				call, err := a.compileCall(x, name, opts)
				if err != nil {
					return nil, err
				}
				if j, seen := calls[call.Name]; seen {
					if a.Calls[j].Agg.Spec() != call.Agg.Spec() {
						return nil, errAt(x.At, "two different aggregates are both named %s; give one of them an alias in its own step", call.Name)
					}
				} else {
					calls[call.Name] = len(a.Calls)
					a.Calls = append(a.Calls, call)
				}
				return &Ident{Name: call.Name, At: x.At}, nil
			}
			if _, known := functions[name]; !known && !x.NoParens {
				return nil, unknownFunction(x)
			}
		}
		return mapChildren(n, func(c Node) (Node, error) { return rewrite(c, src) })
	}
	var outNodes []Node
	for _, k := range keys {
		outNodes = append(outNodes, &Ident{Name: k.name})
	}
	for i, src := range agg {
		n, err := Parse(src)
		if err != nil {
			return nil, fmt.Errorf("agg[%d]: %w", i, err)
		}
		if _, ok := n.(*Star); ok {
			return nil, fmt.Errorf("agg[%d]: %w", i, withSource(errAt(n.Pos(), "'*' is not allowed in agg"), src))
		}
		if at := tooDeepAt(n); at >= 0 {
			return nil, fmt.Errorf("agg[%d]: %w", i, withSource(errAt(at, "%s", tooDeep), src))
		}
		alias := ""
		body := n
		if al, ok := n.(*Alias); ok {
			alias, body = al.Name, al.X
		}
		rw, err := rewrite(body, src)
		if err != nil {
			return nil, fmt.Errorf("agg[%d]: %w", i, withSource(err, src))
		}
		if alias != "" {
			rw = &Alias{X: rw, Name: alias}
		}
		outNodes = append(outNodes, rw)
	}
	for _, c := range a.Calls {
		for _, f := range a.Grouped.Fields[:len(keys)] {
			if f.Name == c.Name {
				return nil, fmt.Errorf("agg: the grouping column %s has the name of the aggregate %s; alias one of them", f.Name, c.Name)
			}
		}
		a.Grouped.Fields = append(a.Grouped.Fields, batch.Field{Name: c.Name, Type: c.Agg.ResultType(), Nullable: c.Agg.Nullable()})
	}
	out, err := CompileSelectNodes(outNodes, a.Grouped)
	if err != nil {
		return nil, fmt.Errorf("agg: %w", err)
	}
	a.Output = out
	return a, nil
}

func stripAlias(n Node) Node {
	if al, ok := n.(*Alias); ok {
		return al.X
	}
	return n
}

func parseAlias(src string) (string, bool) {
	n, err := Parse(src)
	if err != nil {
		return "", false
	}
	if al, ok := n.(*Alias); ok {
		return al.Name, true
	}
	return "", false
}

func isWindowCall(c *Call) bool {
	n := strings.ToLower(c.Name)
	return n == "window" || n == "session_window"
}

// compileCall compiles one aggregate call's argument and validates it with
// package aggregate.
func (a *Aggregation) compileCall(x *Call, name string, opts AggOptions) (AggCall, error) {
	fn, err := aggregate.ParseFunc(name)
	if err != nil {
		return AggCall{}, errAt(x.At, "%v", err)
	}
	spec := aggregate.Spec{Func: fn, ANSI: opts.ANSI}
	c := &compiler{in: a.Input}
	maxArgs := 1
	switch fn {
	case aggregate.First, aggregate.Last, aggregate.ApproxCountDistinct:
		maxArgs = 2
	}
	if len(x.Args) < 1 || len(x.Args) > maxArgs {
		return AggCall{}, errAt(x.At, "%s() takes %s, got %d", name, map[int]string{1: "1 argument", 2: "1 or 2 arguments"}[maxArgs], len(x.Args))
	}
	call := AggCall{}
	if _, star := x.Args[0].(*Star); star {
		if fn != aggregate.Count {
			return AggCall{}, errAt(x.At, "%s(*) is not allowed; only count(*) takes *", name)
		}
		spec.Func = aggregate.CountStar
		call.Name = "count(1)"
	} else {
		arg, err := c.compile(x.Args[0])
		if err != nil {
			return AggCall{}, err
		}
		if fn == aggregate.Count && arg.lit != nil && arg.lit.Value != nil {
			// count(1), count('x'): every row, named as Spark names it.
			spec.Func = aggregate.CountStar
			call.Name = "count(" + arg.sql + ")"
		} else {
			if (fn == aggregate.Sum || fn == aggregate.Avg) && arg.kind() == batch.String {
				arg = coerce(arg, batch.Double) // Spark's implicit cast
			}
			spec.Input = arg.kind()
			call.Arg = &compiled{ev: arg.ev, name: arg.sql, in: a.Input}
			call.Name = name + "(" + arg.sql + ")"
		}
	}
	if len(x.Args) == 2 {
		second, err := c.compile(x.Args[1])
		if err != nil {
			return AggCall{}, err
		}
		switch fn {
		case aggregate.First, aggregate.Last:
			b, ok := literalValue(second).(bool)
			if !ok {
				return AggCall{}, errAt(x.Args[1].Pos(), "the second argument of %s() must be a boolean literal (ignoreNulls)", name)
			}
			spec.IgnoreNulls = b
		case aggregate.ApproxCountDistinct:
			switch v := literalValue(second).(type) {
			case float64:
				spec.RelativeSD = v
			case int64:
				spec.RelativeSD = float64(v)
			default:
				return AggCall{}, errAt(x.Args[1].Pos(), "the second argument of approx_count_distinct() must be a numeric literal (the relative standard deviation)")
			}
		}
	}
	agg, err := aggregate.New(spec)
	if err != nil {
		return AggCall{}, errAt(x.At, "%v", err)
	}
	call.Agg = agg
	return call, nil
}

func literalValue(c cexpr) any {
	if c.lit == nil {
		return nil
	}
	return c.lit.Value
}

// mapChildren rebuilds n with each direct child replaced by f(child).
func mapChildren(n Node, f func(Node) (Node, error)) (Node, error) {
	var err error
	m := func(c Node) Node {
		if c == nil || err != nil {
			return c
		}
		var out Node
		out, err = f(c)
		return out
	}
	list := func(xs []Node) []Node {
		out := make([]Node, len(xs))
		for i, x := range xs {
			out[i] = m(x)
		}
		return out
	}
	var out Node
	switch x := n.(type) {
	case *Alias:
		out = &Alias{X: m(x.X), Name: x.Name, At: x.At}
	case *Unary:
		out = &Unary{Op: x.Op, X: m(x.X), At: x.At}
	case *Binary:
		out = &Binary{Op: x.Op, L: m(x.L), R: m(x.R), OpAt: x.OpAt}
	case *IsNull:
		out = &IsNull{X: m(x.X), Not: x.Not}
	case *IsBool:
		out = &IsBool{X: m(x.X), Not: x.Not, Value: x.Value}
	case *IsDistinct:
		out = &IsDistinct{L: m(x.L), R: m(x.R), Not: x.Not}
	case *In:
		out = &In{X: m(x.X), List: list(x.List), Not: x.Not, OpAt: x.OpAt}
	case *Between:
		out = &Between{X: m(x.X), Lo: m(x.Lo), Hi: m(x.Hi), Not: x.Not, OpAt: x.OpAt}
	case *Like:
		out = &Like{X: m(x.X), Pattern: m(x.Pattern), Not: x.Not, Op: x.Op, Escape: x.Escape, OpAt: x.OpAt}
	case *Case:
		c := &Case{Operand: m(x.Operand), Else: m(x.Else), At: x.At}
		for _, w := range x.Whens {
			c.Whens = append(c.Whens, When{Cond: m(w.Cond), Then: m(w.Then)})
		}
		out = c
	case *Cast:
		out = &Cast{X: m(x.X), To: x.To, Try: x.Try, At: x.At}
	case *Call:
		out = &Call{Name: x.Name, Args: list(x.Args), NoParens: x.NoParens, Distinct: x.Distinct, At: x.At}
	case *Field:
		out = &Field{X: m(x.X), Name: x.Name, At: x.At}
	case *Subscript:
		out = &Subscript{X: m(x.X), Key: m(x.Key), At: x.At}
	default:
		return n, nil // leaves: Ident, Literal, Star
	}
	return out, err
}
