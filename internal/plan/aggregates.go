package plan

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/aggregate"
	"github.com/sluice-stream/sluice/internal/expr"
	"github.com/sluice-stream/sluice/internal/operator"
)

// This file recognises aggregate function calls in agg expressions and
// splits each expression into the calls (evaluated by the aggregation) and
// a projection over their results. It is the adapter sluice uses until
// package expr offers the same: it works on expr's AST only.

// errDistinctAgg is Spark's error for count(DISTINCT …) on a stream.
var errDistinctAgg = errors.New("Distinct aggregations are not supported on streaming DataFrames/Datasets. Consider using approx_count_distinct() instead.")

var distinctCall = regexp.MustCompile(`(?i)\(\s*distinct\b`)

// aggPlan is an analysed agg() list.
type aggPlan struct {
	calls []operator.AggCall
	// post is the projection over the aggregation's raw output (keys then
	// calls); nil when every agg expression is a plain call.
	post []expr.Node
}

// isAggregateName reports whether name is an aggregate function.
func isAggregateName(name string) bool {
	_, err := aggregate.ParseFunc(name)
	return err == nil
}

// analyzeAggs compiles the aggregate expressions of agg() over the input
// schema in; keys are the grouping expressions' output names.
func analyzeAggs(srcs []string, in batch.Schema, keys []string, ansi bool) (*aggPlan, error) {
	p := &aggPlan{}
	type item struct {
		node  expr.Node // rewritten, calls replaced by column references
		name  string
		plain bool // the item is one aggregate call, p.calls[call]
		call  int
	}
	var items []item
	for i, src := range srcs {
		n, err := expr.Parse(src)
		if err != nil {
			if distinctCall.MatchString(src) {
				return nil, errDistinctAgg
			}
			return nil, fmt.Errorf("agg[%d]: %w", i, err)
		}
		alias := ""
		if a, ok := n.(*expr.Alias); ok {
			alias, n = a.Name, a.X
		}
		if c, ok := n.(*expr.Call); ok && isAggregateName(c.Name) && !c.NoParens {
			call, err := compileCall(c, in, ansi)
			if err != nil {
				return nil, withSrc(fmt.Errorf("agg[%d]", i), err, src)
			}
			if alias != "" {
				call.Name = alias
			}
			items = append(items, item{name: call.Name, plain: true, call: len(p.calls)})
			p.calls = append(p.calls, call)
			continue
		}
		found := 0
		rewritten, err := rewrite(n, func(c *expr.Call) (expr.Node, bool, error) {
			if !isAggregateName(c.Name) || c.NoParens {
				return nil, false, nil
			}
			call, err := compileCall(c, in, ansi)
			if err != nil {
				return nil, false, err
			}
			hidden := fmt.Sprintf("__agg%d", len(p.calls))
			call.Name = hidden
			p.calls = append(p.calls, call)
			found++
			return &expr.Ident{Name: hidden, At: c.At}, true, nil
		})
		if err != nil {
			return nil, withSrc(fmt.Errorf("agg[%d]", i), err, src)
		}
		name := alias
		if name == "" {
			name = n.String()
		}
		items = append(items, item{node: rewritten, name: name})
	}
	direct := true
	for _, it := range items {
		direct = direct && it.plain
	}
	if direct {
		return p, nil
	}
	// A projection: the keys by position, then every item.
	for _, k := range keys {
		p.post = append(p.post, &expr.Ident{Name: k})
	}
	for _, it := range items {
		if it.plain {
			// The call's column is hidden now that a projection names it.
			hidden := fmt.Sprintf("__agg%d", it.call)
			p.calls[it.call].Name = hidden
			p.post = append(p.post, &expr.Alias{X: &expr.Ident{Name: hidden}, Name: it.name})
			continue
		}
		p.post = append(p.post, &expr.Alias{X: it.node, Name: it.name})
	}
	return p, nil
}

// compileCall compiles one aggregate call's argument and validates it.
func compileCall(c *expr.Call, in batch.Schema, ansi bool) (operator.AggCall, error) {
	fn, _ := aggregate.ParseFunc(c.Name)
	lname := strings.ToLower(c.Name)
	for _, a := range c.Args {
		bad := false
		rewrite(a, func(x *expr.Call) (expr.Node, bool, error) { //nolint:errcheck // only inspects
			if isAggregateName(x.Name) && !x.NoParens {
				bad = true
			}
			return nil, false, nil
		})
		if bad {
			return operator.AggCall{}, fmt.Errorf("it is not allowed to use an aggregate function in the argument of another aggregate function (%s)", c)
		}
	}
	spec := aggregate.Spec{Func: fn, ANSI: ansi}
	var arg expr.Compiled
	argName := ""
	switch {
	case fn == aggregate.Count && len(c.Args) == 1 && isStarOrLiteral(c.Args[0]):
		spec.Func = aggregate.CountStar
		argName = "1"
	case len(c.Args) == 0:
		return operator.AggCall{}, fmt.Errorf("%s() needs an argument", lname)
	default:
		maxArgs := 1
		switch fn {
		case aggregate.First, aggregate.Last, aggregate.ApproxCountDistinct:
			maxArgs = 2
		}
		if len(c.Args) > maxArgs {
			return operator.AggCall{}, fmt.Errorf("%s() takes at most %d argument(s), got %d", lname, maxArgs, len(c.Args))
		}
		if _, ok := c.Args[0].(*expr.Star); ok {
			return operator.AggCall{}, fmt.Errorf("%s(*) is not allowed; only count(*) takes *", lname)
		}
		var err error
		if arg, err = expr.Compile(c.Args[0], in); err != nil {
			return operator.AggCall{}, err
		}
		spec.Input = arg.Type()
		argName = arg.Name()
		if _, ok := c.Args[0].(*expr.Ident); !ok {
			argName = c.Args[0].String()
		}
		if len(c.Args) == 2 {
			lit, ok := c.Args[1].(*expr.Literal)
			switch {
			case !ok:
				return operator.AggCall{}, fmt.Errorf("the second argument of %s() must be a literal", lname)
			case fn == aggregate.ApproxCountDistinct:
				switch v := lit.Value.(type) {
				case float64:
					spec.RelativeSD = v
				case int64:
					spec.RelativeSD = float64(v)
				default:
					return operator.AggCall{}, fmt.Errorf("the relative standard deviation of approx_count_distinct() must be a number")
				}
			default:
				b, ok := lit.Value.(bool)
				if !ok {
					return operator.AggCall{}, fmt.Errorf("the second argument of %s() (ignoreNulls) must be true or false", lname)
				}
				spec.IgnoreNulls = b
			}
		}
	}
	agg, err := aggregate.New(spec)
	if err != nil {
		return operator.AggCall{}, err
	}
	if agg.ResultIsArray() {
		return operator.AggCall{}, fmt.Errorf("%s() returns an array, and array columns are not available yet", lname)
	}
	return operator.AggCall{Agg: agg, Arg: arg, Name: lname + "(" + argName + ")"}, nil
}

func isStarOrLiteral(n expr.Node) bool {
	switch x := n.(type) {
	case *expr.Star:
		return true
	case *expr.Literal:
		return x.Value != nil
	}
	return false
}

// withSrc prefixes err with what and, for an expression error without its
// source text, renders it with a caret under src.
func withSrc(what, err error, src string) error {
	var ee *expr.Error
	if errors.As(err, &ee) {
		return fmt.Errorf("%v: %w", what, err)
	}
	if pe, ok := err.(interface{ Pos() int }); ok {
		return fmt.Errorf("%v: %w", what, &expr.Error{Kind: "analysis error", Src: src, Offset: pe.Pos(), Msg: err.Error()})
	}
	return fmt.Errorf("%v: %w", what, err)
}

// rewrite returns n with every call f replaces substituted (f returns the
// replacement and true, or false to descend into the call's arguments).
// Nodes are copied only where something changed.
func rewrite(n expr.Node, f func(*expr.Call) (expr.Node, bool, error)) (expr.Node, error) {
	var err error
	var walk func(expr.Node) expr.Node
	walk = func(n expr.Node) expr.Node {
		if err != nil || n == nil {
			return n
		}
		switch x := n.(type) {
		case *expr.Call:
			r, ok, ferr := f(x)
			if ferr != nil {
				err = ferr
				return n
			}
			if ok {
				return r
			}
			c := *x
			c.Args = make([]expr.Node, len(x.Args))
			for i, a := range x.Args {
				c.Args[i] = walk(a)
			}
			return &c
		case *expr.Alias:
			c := *x
			c.X = walk(x.X)
			return &c
		case *expr.Unary:
			c := *x
			c.X = walk(x.X)
			return &c
		case *expr.Binary:
			c := *x
			c.L, c.R = walk(x.L), walk(x.R)
			return &c
		case *expr.IsNull:
			c := *x
			c.X = walk(x.X)
			return &c
		case *expr.IsBool:
			c := *x
			c.X = walk(x.X)
			return &c
		case *expr.IsDistinct:
			c := *x
			c.L, c.R = walk(x.L), walk(x.R)
			return &c
		case *expr.In:
			c := *x
			c.X = walk(x.X)
			c.List = make([]expr.Node, len(x.List))
			for i, e := range x.List {
				c.List[i] = walk(e)
			}
			return &c
		case *expr.Between:
			c := *x
			c.X, c.Lo, c.Hi = walk(x.X), walk(x.Lo), walk(x.Hi)
			return &c
		case *expr.Like:
			c := *x
			c.X, c.Pattern = walk(x.X), walk(x.Pattern)
			return &c
		case *expr.Case:
			c := *x
			c.Operand = walk(x.Operand)
			c.Whens = make([]expr.When, len(x.Whens))
			for i, w := range x.Whens {
				c.Whens[i] = expr.When{Cond: walk(w.Cond), Then: walk(w.Then)}
			}
			c.Else = walk(x.Else)
			return &c
		case *expr.Cast:
			c := *x
			c.X = walk(x.X)
			return &c
		}
		return n
	}
	out := walk(n)
	return out, err
}
