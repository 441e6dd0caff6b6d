package expr

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluice-stream/sluice/batch"
	"github.com/sluice-stream/sluice/internal/options"
	"github.com/sluice-stream/sluice/internal/sparktext"
)

// EvalContext carries the values an evaluation reads that are not in the
// batch.
type EvalContext struct {
	// BatchTimestamp is the micro-batch's timestamp (Spark's
	// batchTimestampMs from the offset log). current_timestamp() and
	// current_date() return it for every row of the batch, so a replayed
	// batch sees the same value.
	BatchTimestamp time.Time
	// ANSI turns on Spark's ANSI mode for casts (spark.sql.ansi.enabled):
	// a value that cannot be cast is an error instead of NULL. TRY_CAST
	// keeps returning NULL.
	ANSI bool
	// RowErrors, when set in ANSI mode, collects per-row failures instead of
	// failing the whole evaluation: the failing cells become NULL and the
	// caller decides (dead-letter routing). Row indices are those of the
	// batch passed to Eval/Apply.
	RowErrors *RowErrors
}

// RowErrors collects per-row evaluation failures.
type RowErrors struct {
	// Reasons maps a row index to why it failed (the first failure wins).
	Reasons map[int]string
}

// Add records a failure of row i.
func (r *RowErrors) Add(i int, reason string) {
	if r.Reasons == nil {
		r.Reasons = map[int]string{}
	}
	if _, ok := r.Reasons[i]; !ok {
		r.Reasons[i] = reason
	}
}

// Len is the number of failed rows.
func (r *RowErrors) Len() int { return len(r.Reasons) }

// Compiled is an expression resolved and type-checked against an input
// schema. It is immutable and safe for concurrent use.
type Compiled interface {
	// Type is the kind of the column Eval returns.
	Type() batch.Kind
	// Name is the output column name: the alias if one was given, otherwise
	// a Spark-like generated name.
	Name() string
	// Nullable reports whether Eval may return null cells.
	Nullable() bool
	// Eval computes the expression for every row of b, which must have the
	// schema the expression was compiled against. The result has b.N cells;
	// it may share storage with b's columns and must not be mutated.
	Eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error)
}

// evaluator is a compiled expression node.
type evaluator interface {
	kind() batch.Kind
	nullable() bool
	eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error)
}

// cexpr is a compiled node with the metadata the compiler needs from its
// children.
type cexpr struct {
	ev evaluator
	// sql is Spark's "pretty SQL" of the expression, from which unaliased
	// output names are generated.
	sql string
	// col is the column name when the expression is a bare column
	// reference; a top-level cast of a column is named after the column.
	col string
	// castOf is set on a cast of a bare column reference (or of a field
	// access).
	castOf string
	// name is the name Spark gives the expression as an unaliased select
	// item when it is not its SQL: a field access o.amount is "amount".
	name string
	// lit is set for literal nodes (including a cast of a literal) so that
	// patterns and scales can be checked at compile time.
	lit *Literal
	// pos is the source offset of the node, for errors.
	pos int
}

func (c cexpr) kind() batch.Kind { return c.ev.kind() }

type compiled struct {
	ev   evaluator
	name string
	in   batch.Schema
}

func (c *compiled) Type() batch.Kind { return c.ev.kind() }
func (c *compiled) Name() string     { return c.name }
func (c *compiled) Nullable() bool   { return c.ev.nullable() }

func (c *compiled) Eval(b *batch.Batch, ctx *EvalContext) (*batch.Column, error) {
	if err := checkInput(c.in, b); err != nil {
		return nil, err
	}
	col, err := c.ev.eval(b, ctx)
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", c.name, err)
	}
	return col, nil
}

// checkInput verifies that b has the shape an expression was compiled
// against; column positions are resolved at compile time.
func checkInput(in batch.Schema, b *batch.Batch) error {
	if len(b.Columns) != len(in.Fields) {
		return fmt.Errorf("batch has %d columns, expressions were compiled for %d (%s)", len(b.Columns), len(in.Fields), in)
	}
	for i, c := range b.Columns {
		if c.Type != in.Fields[i].Type {
			return fmt.Errorf("batch column %d (%s) is %s, expressions were compiled for %s",
				i, in.Fields[i].Name, c.Type, in.Fields[i].Type)
		}
	}
	return nil
}

// Compile resolves n against the input schema and type-checks it. An Alias
// names the result; a Star is rejected (use CompileSelect). Errors carry the
// node's position; the string-based entry points render them with a caret.
func Compile(n Node, in batch.Schema) (Compiled, error) {
	c := &compiler{in: in}
	name := ""
	if a, ok := n.(*Alias); ok {
		name, n = a.Name, a.X
	}
	if _, ok := n.(*Star); ok {
		return nil, errAt(n.Pos(), "'*' can only be used as a select item")
	}
	if at := tooDeepAt(n); at >= 0 {
		return nil, errAt(at, "%s", tooDeep)
	}
	ce, err := c.compile(n)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = outputName(ce)
	}
	return &compiled{ev: ce.ev, name: name, in: in}, nil
}

// outputName is the name Spark gives an unaliased select item: a column
// keeps its name, a cast of a column is named after the column, anything
// else after its pretty SQL.
func outputName(ce cexpr) string {
	if ce.castOf != "" {
		return ce.castOf
	}
	if ce.name != "" {
		return ce.name
	}
	return ce.sql
}

// compileSource parses and compiles one expression string.
func compileSource(src string, in batch.Schema) (Compiled, error) {
	n, err := Parse(src)
	if err != nil {
		return nil, err
	}
	c, err := Compile(n, in)
	return c, withSource(err, src)
}

type compiler struct {
	in batch.Schema
	// filter marks a filter condition, where aggregates get Spark's
	// INVALID_WHERE_CONDITION.
	filter bool
}

func (c *compiler) compile(n Node) (cexpr, error) {
	ce, err := c.compileNode(n)
	ce.pos = n.Pos()
	return ce, err
}

func (c *compiler) compileNode(n Node) (cexpr, error) {
	switch n := n.(type) {
	case *Ident:
		return c.column(n.Name, n.At)
	case *Literal:
		return cexpr{ev: &literal{k: n.Type, v: n.Value}, sql: literalSQL(n), lit: n}, nil
	case *Star:
		return cexpr{}, errAt(n.At, "'*' can only be used as a select item")
	case *Alias:
		return cexpr{}, errAt(n.At, "an alias is only allowed on a select item")
	case *Unary:
		return c.unary(n)
	case *Binary:
		return c.binary(n)
	case *IsNull:
		x, err := c.compile(n.X)
		if err != nil {
			return cexpr{}, err
		}
		sql := "(" + x.sql + " IS NULL)"
		if n.Not {
			sql = "(" + x.sql + " IS NOT NULL)"
		}
		return cexpr{ev: &isNull{x: x.ev, not: n.Not}, sql: sql}, nil
	case *IsBool:
		// Spark rewrites x IS [NOT] TRUE to [NOT] (x <=> true).
		eq := &Binary{Op: "<=>", L: n.X, R: &Literal{Type: batch.Boolean, Value: n.Value, At: n.X.Pos()}, OpAt: n.X.Pos()}
		if n.Not {
			return c.compile(&Unary{Op: "NOT", X: eq, At: n.X.Pos()})
		}
		return c.compile(eq)
	case *IsDistinct:
		eq := &Binary{Op: "<=>", L: n.L, R: n.R, OpAt: n.L.Pos()}
		if n.Not {
			return c.compile(eq)
		}
		return c.compile(&Unary{Op: "NOT", X: eq, At: n.L.Pos()})
	case *In:
		return c.inPredicate(n)
	case *Between:
		// Spark 3 rewrites BETWEEN into two comparisons joined by AND.
		and := &Binary{Op: "AND", OpAt: n.OpAt,
			L: &Binary{Op: ">=", L: n.X, R: n.Lo, OpAt: n.OpAt},
			R: &Binary{Op: "<=", L: n.X, R: n.Hi, OpAt: n.OpAt}}
		if n.Not {
			return c.compile(&Unary{Op: "NOT", X: and, At: n.OpAt})
		}
		return c.compile(and)
	case *Like:
		return c.like(n)
	case *Case:
		return c.caseWhen(n)
	case *Cast:
		return c.cast(n)
	case *Call:
		return c.call(n)
	case *Field:
		return c.field(n)
	case *Subscript:
		return c.subscript(n)
	}
	return cexpr{}, errAt(n.Pos(), "unsupported expression %s", n)
}

// column resolves a column reference, case-insensitively.
func (c *compiler) column(name string, pos int) (cexpr, error) {
	i := c.in.Index(name)
	if i < 0 {
		names := c.in.Names()
		msg := fmt.Sprintf("cannot resolve column %s", quoteIdent(name, true))
		if s := closest(name, names); s != "" {
			msg += fmt.Sprintf("; did you mean %s?", quoteIdent(s, true))
		}
		if len(names) == 0 {
			msg += " (the input has no columns)"
		} else {
			msg += " (input columns: " + quoteList(names) + ")"
		}
		return cexpr{}, errAt(pos, "%s", msg)
	}
	f := c.in.Fields[i]
	return cexpr{ev: &colRef{idx: i, k: f.Type, null: f.Nullable}, sql: f.Name, col: f.Name}, nil
}

// coerce wraps e in an implicit cast to k. Implicit casts are invisible in
// generated names, as in Spark.
func coerce(e cexpr, k batch.Kind) cexpr {
	if e.kind() == k {
		return e
	}
	return cexpr{ev: &castEval{x: e.ev, to: k}, sql: e.sql, lit: e.lit, pos: e.pos}
}

func (c *compiler) unary(n *Unary) (cexpr, error) {
	x, err := c.compile(n.X)
	if err != nil {
		return cexpr{}, err
	}
	switch n.Op {
	case "NOT":
		if k := x.kind(); k != batch.Boolean && k != batch.Null {
			return cexpr{}, errAt(n.At, "NOT needs a boolean operand but %s is %s", x.sql, k)
		}
		x = coerce(x, batch.Boolean)
		return cexpr{ev: &notEval{x: x.ev}, sql: "(NOT " + x.sql + ")"}, nil
	default: // "-", "+"
		k := x.kind()
		switch {
		case k.IsNumeric():
		case k == batch.String:
			k = batch.Double
		case k == batch.Null:
			k = batch.Double
		default:
			return cexpr{}, errAt(n.At, "unary %s needs a numeric operand but %s is %s", n.Op, x.sql, x.kind())
		}
		x = coerce(x, k)
		sql := "(" + n.Op + " " + x.sql + ")"
		if n.Op == "+" {
			return cexpr{ev: x.ev, sql: sql}, nil
		}
		return cexpr{ev: &negate{x: x.ev}, sql: sql}, nil
	}
}

func (c *compiler) binary(n *Binary) (cexpr, error) {
	l, err := c.compile(n.L)
	if err != nil {
		return cexpr{}, err
	}
	r, err := c.compile(n.R)
	if err != nil {
		return cexpr{}, err
	}
	switch n.Op {
	case "+", "-", "*", "/", "%", "DIV":
		return arithmetic(n, l, r)
	case "||":
		return concatExprs("concat", []cexpr{l, r}, n.OpAt)
	case "AND", "OR":
		for _, x := range []cexpr{l, r} {
			if k := x.kind(); k != batch.Boolean && k != batch.Null {
				return cexpr{}, errAt(n.OpAt, "%s needs boolean operands but %s is %s", n.Op, x.sql, k)
			}
		}
		l, r = coerce(l, batch.Boolean), coerce(r, batch.Boolean)
		sql := "(" + l.sql + " " + n.Op + " " + r.sql + ")"
		return cexpr{ev: &logic{and: n.Op == "AND", l: l.ev, r: r.ev}, sql: sql}, nil
	}
	return comparison(n.Op, l, r, n.OpAt)
}

// arithmetic types and builds + - * / % DIV. Strings are cast to DOUBLE as
// in Spark's non-ANSI mode; / is always DOUBLE and DIV always BIGINT.
func arithmetic(n *Binary, l, r cexpr) (cexpr, error) {
	operand := func(x cexpr) (batch.Kind, error) {
		switch k := x.kind(); {
		case k.IsNumeric(), k == batch.Null:
			return k, nil
		case k == batch.String:
			return batch.Double, nil
		default:
			return 0, errAt(n.OpAt, "cannot apply '%s' to %s (%s): a numeric operand is required", n.Op, x.sql, k)
		}
	}
	lk, err := operand(l)
	if err != nil {
		return cexpr{}, err
	}
	rk, err := operand(r)
	if err != nil {
		return cexpr{}, err
	}
	var k batch.Kind
	switch {
	case n.Op == "/":
		k = batch.Double
	case n.Op == "DIV":
		k = batch.Long
	case lk == batch.Null && rk == batch.Null:
		k = batch.Double
	case lk == batch.Null:
		k = rk
	case rk == batch.Null:
		k = lk
	default:
		k = widerNumeric(lk, rk)
	}
	l, r = coerce(l, k), coerce(r, k)
	op := n.Op
	if op == "DIV" {
		op = "div"
	}
	sql := "(" + l.sql + " " + op + " " + r.sql + ")"
	return cexpr{ev: &arith{op: n.Op, l: l.ev, r: r.ev, k: k, sql: sql}, sql: sql}, nil
}

// comparison types and builds = == != <> < <= > >= <=>.
func comparison(op string, l, r cexpr, pos int) (cexpr, error) {
	k, ok := comparisonType(l.kind(), r.kind())
	if !ok {
		return cexpr{}, errAt(pos, "cannot compare %s (%s) with %s (%s)", l.sql, l.kind(), r.sql, r.kind())
	}
	if k == batch.Null {
		k = batch.Boolean
	}
	l, r = coerce(l, k), coerce(r, k)
	var sql string
	switch op {
	case "!=", "<>":
		sql = "(NOT (" + l.sql + " = " + r.sql + "))"
	case "==":
		sql = "(" + l.sql + " = " + r.sql + ")"
	default:
		sql = "(" + l.sql + " " + op + " " + r.sql + ")"
	}
	return cexpr{ev: &compare{op: cmpOpOf(op), l: l.ev, r: r.ev}, sql: sql}, nil
}

func (c *compiler) inPredicate(n *In) (cexpr, error) {
	x, err := c.compile(n.X)
	if err != nil {
		return cexpr{}, err
	}
	items := make([]cexpr, len(n.List))
	k := x.kind()
	for i, it := range n.List {
		items[i], err = c.compile(it)
		if err != nil {
			return cexpr{}, err
		}
		nk, ok := commonType(k, items[i].kind())
		if !ok {
			return cexpr{}, errAt(it.Pos(), "IN list value %s (%s) is not compatible with %s (%s)",
				items[i].sql, items[i].kind(), x.sql, x.kind())
		}
		k = nk
	}
	if k == batch.Null {
		k = batch.Boolean
	}
	if !orderable(k) {
		return cexpr{}, errAt(n.OpAt, "IN cannot compare %s values", k)
	}
	x = coerce(x, k)
	evs := make([]evaluator, len(items))
	sqls := make([]string, len(items))
	for i := range items {
		items[i] = coerce(items[i], k)
		evs[i], sqls[i] = items[i].ev, items[i].sql
	}
	sql := "(" + x.sql + " IN (" + strings.Join(sqls, ", ") + "))"
	var ev evaluator = &inList{x: x.ev, items: evs}
	if n.Not {
		sql = "(NOT " + sql + ")"
		ev = &notEval{x: ev}
	}
	return cexpr{ev: ev, sql: sql}, nil
}

func (c *compiler) like(n *Like) (cexpr, error) {
	x, err := c.compile(n.X)
	if err != nil {
		return cexpr{}, err
	}
	pat, err := c.compile(n.Pattern)
	if err != nil {
		return cexpr{}, err
	}
	for _, e := range []cexpr{x, pat} {
		if k := e.kind(); k.IsNested() || k == batch.Boolean {
			return cexpr{}, errAt(n.OpAt, "%s needs string operands but %s is %s", n.Op, e.sql, k)
		}
	}
	x, pat = coerce(x, batch.String), coerce(pat, batch.String)
	esc := '\\'
	if n.Escape != "" {
		esc = []rune(n.Escape)[0]
	}
	lk := &likeEval{x: x.ev, pat: pat.ev, escape: esc, fold: n.Op == "ILIKE"}
	if pat.lit != nil {
		if s, ok := pat.lit.Value.(string); ok {
			m, err := compileLike(s, esc, lk.fold)
			if err != nil {
				return cexpr{}, errAt(n.Pattern.Pos(), "invalid LIKE pattern: %v", err)
			}
			lk.fixed = m
		}
	}
	var sql string
	if n.Op == "ILIKE" {
		sql = "ilike(" + x.sql + ", " + pat.sql + ")"
	} else {
		sql = x.sql + " LIKE " + pat.sql
		if esc != '\\' {
			sql += " ESCAPE '" + string(esc) + "'"
		}
	}
	var ev evaluator = lk
	if n.Not {
		sql = "(NOT " + sql + ")"
		ev = &notEval{x: ev}
	}
	return cexpr{ev: ev, sql: sql}, nil
}

func (c *compiler) caseWhen(n *Case) (cexpr, error) {
	var conds, vals []cexpr
	var b strings.Builder
	b.WriteString("CASE")
	for _, w := range n.Whens {
		var cond cexpr
		var err error
		if n.Operand != nil {
			// CASE x WHEN v is CASE WHEN x = v.
			cond, err = c.compile(&Binary{Op: "=", L: n.Operand, R: w.Cond, OpAt: w.Cond.Pos()})
		} else {
			cond, err = c.compile(w.Cond)
		}
		if err != nil {
			return cexpr{}, err
		}
		if k := cond.kind(); k != batch.Boolean && k != batch.Null {
			return cexpr{}, errAt(w.Cond.Pos(), "WHEN condition %s must be boolean but is %s", cond.sql, k)
		}
		cond = coerce(cond, batch.Boolean)
		val, err := c.compile(w.Then)
		if err != nil {
			return cexpr{}, err
		}
		conds, vals = append(conds, cond), append(vals, val)
		b.WriteString(" WHEN " + cond.sql + " THEN " + val.sql)
	}
	var els *cexpr
	if n.Else != nil {
		e, err := c.compile(n.Else)
		if err != nil {
			return cexpr{}, err
		}
		els = &e
		b.WriteString(" ELSE " + e.sql)
	}
	b.WriteString(" END")
	all := vals
	if els != nil {
		all = append(append([]cexpr(nil), vals...), *els)
	}
	k, err := unify(all, "CASE branches")
	if err != nil {
		return cexpr{}, err
	}
	ce := &caseEval{k: k}
	for i := range conds {
		ce.conds = append(ce.conds, conds[i].ev)
		ce.vals = append(ce.vals, coerce(vals[i], k).ev)
	}
	if els != nil {
		ce.els = coerce(*els, k).ev
	}
	return cexpr{ev: ce, sql: b.String()}, nil
}

// unify finds the common type of several expressions.
func unify(xs []cexpr, what string) (batch.Kind, error) {
	k := batch.Null
	for _, x := range xs {
		nk, ok := commonType(k, x.kind())
		if !ok {
			return 0, errAt(x.pos, "%s have incompatible types: %s and %s (%s)", what, k, x.kind(), x.sql)
		}
		k = nk
	}
	return k, nil
}

func (c *compiler) cast(n *Cast) (cexpr, error) {
	x, err := c.compile(n.X)
	if err != nil {
		return cexpr{}, err
	}
	if !canCast(x.kind(), n.To) {
		return cexpr{}, errAt(n.At, "cannot cast %s to %s", x.kind(), typeSQL(n.To))
	}
	fn := "CAST"
	if n.Try {
		fn = "TRY_CAST"
	}
	castOf := x.col
	if castOf == "" && x.name != "" {
		castOf = x.sql // a field access: Spark names the cast after o.amount
	}
	out := cexpr{ev: x.ev, sql: fn + "(" + x.sql + " AS " + typeSQL(n.To) + ")", castOf: castOf}
	if x.kind() != n.To {
		out.ev = &castEval{x: x.ev, to: n.To, try: n.Try, sql: out.sql}
	}
	if x.lit != nil && x.kind() == n.To {
		out.lit = x.lit
	}
	return out, nil
}

func (c *compiler) call(n *Call) (cexpr, error) {
	if n.NoParens {
		if c.in.Index(n.Name) >= 0 {
			return c.column(n.Name, n.At)
		}
	}
	name := strings.ToLower(n.Name)
	if n.Distinct || aggregateNames[name] || unsupportedAggregates[name] {
		return cexpr{}, aggregateOutside(c, n)
	}
	spec, ok := functions[name]
	if !ok {
		return cexpr{}, unknownFunction(n)
	}
	if len(n.Args) < spec.min || (spec.max >= 0 && len(n.Args) > spec.max) {
		return cexpr{}, errAt(n.At, "%s() takes %s, got %d", name, arity(spec), len(n.Args))
	}
	args := make([]cexpr, len(n.Args))
	for i, a := range n.Args {
		if al, ok := a.(*Alias); ok && name == "struct" {
			a = al.X // struct(x AS name): the builder reads the name
		}
		var err error
		args[i], err = c.compile(a)
		if err != nil {
			return cexpr{}, err
		}
	}
	ce, err := spec.build(name, args, n)
	if err != nil {
		return cexpr{}, err
	}
	if ce.sql == "" {
		ce.sql = callSQL(name, args)
	}
	return ce, nil
}

func arity(s funcSpec) string {
	switch {
	case s.max < 0:
		return fmt.Sprintf("at least %d argument(s)", s.min)
	case s.min == s.max:
		return fmt.Sprintf("%d argument(s)", s.min)
	}
	return fmt.Sprintf("%d to %d arguments", s.min, s.max)
}

func callSQL(name string, args []cexpr) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = a.sql
	}
	return name + "(" + strings.Join(parts, ", ") + ")"
}

func unknownFunction(n *Call) error {
	name := strings.ToLower(n.Name)
	msg := fmt.Sprintf("undefined function %s()", name)
	if close := options.SuggestAll(name, FunctionNames()); len(close) > 0 {
		for i := range close {
			close[i] += "()"
		}
		msg += "; did you mean " + orList(close) + "?"
	}
	return errAt(n.At, "%s", msg)
}

// literalSQL is a literal as it appears in Spark's generated names: strings
// unquoted, numbers as Java prints them, NULL, true, false.
func literalSQL(l *Literal) string {
	switch v := l.Value.(type) {
	case nil:
		return "NULL"
	case bool:
		if v {
			return "true"
		}
		return "false"
	case int64:
		return fmt.Sprint(v)
	case float64:
		return sparktext.FormatDouble(v)
	case string:
		return v
	}
	return "?"
}

// orList renders "a", "a or b", "a, b or c".
func orList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}
