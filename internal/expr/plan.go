package expr

import (
	"fmt"
	"strings"

	"github.com/sluice-stream/sluice/batch"
)

// Step is one compiled DataFrame operation (selectExpr, withColumn, filter,
// ...). It is immutable and safe for concurrent use by the tasks of a
// batch.
type Step interface {
	// Input is the schema the step was compiled against.
	Input() batch.Schema
	// Schema is the schema of the batches Apply returns.
	Schema() batch.Schema
	// Apply transforms one batch. The result may share columns with b.
	Apply(b *batch.Batch, ctx *EvalContext) (*batch.Batch, error)
}

// Projection computes a list of expressions per batch: select, selectExpr
// and withColumn compile to one.
type Projection struct {
	in    batch.Schema
	out   batch.Schema
	exprs []Compiled
}

// CompileSelect compiles selectExpr: one expression per string, each with
// an optional alias; "*" expands to all input columns.
func CompileSelect(exprs []string, in batch.Schema) (*Projection, error) {
	p := &Projection{in: in}
	for i, src := range exprs {
		n, err := Parse(src)
		if err != nil {
			return nil, fmt.Errorf("selectExpr[%d]: %w", i, err)
		}
		if _, ok := n.(*Star); ok {
			p.addAll()
			continue
		}
		c, err := Compile(n, in)
		if err != nil {
			return nil, fmt.Errorf("selectExpr[%d]: %w", i, withSource(err, src))
		}
		p.add(c)
	}
	return p, nil
}

// CompileSelectNodes compiles an already parsed select list, such as the
// result of ParseList.
func CompileSelectNodes(nodes []Node, in batch.Schema) (*Projection, error) {
	p := &Projection{in: in}
	for _, n := range nodes {
		if _, ok := n.(*Star); ok {
			p.addAll()
			continue
		}
		c, err := Compile(n, in)
		if err != nil {
			return nil, err
		}
		p.add(c)
	}
	return p, nil
}

// CompileSelectColumns compiles select(names...): plain column names, not
// expressions, so a name may contain spaces or dots; "*" selects all
// columns and a fully back-quoted name is unquoted.
func CompileSelectColumns(names []string, in batch.Schema) (*Projection, error) {
	p := &Projection{in: in}
	for _, name := range names {
		if name == "*" {
			p.addAll()
			continue
		}
		if len(name) > 2 && strings.HasPrefix(name, "`") && strings.HasSuffix(name, "`") {
			name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
		}
		c, err := Compile(&Ident{Name: name}, in)
		if err != nil {
			return nil, fmt.Errorf("select: %w", &Error{Kind: "analysis error", Msg: err.Error(), Offset: -1})
		}
		p.add(c)
	}
	return p, nil
}

// CompileWithColumn compiles withColumn(name, expr): the result replaces
// every input column called name (case-insensitively), keeping its
// position, or is appended when there is none. An alias inside expr is
// ignored; the column is called name.
func CompileWithColumn(name, src string, in batch.Schema) (*Projection, error) {
	n, err := Parse(src)
	if err != nil {
		return nil, fmt.Errorf("withColumn %s: %w", name, err)
	}
	if a, ok := n.(*Alias); ok {
		n = a.X
	}
	c, err := Compile(&Alias{X: n, Name: name}, in)
	if err != nil {
		return nil, fmt.Errorf("withColumn %s: %w", name, withSource(err, src))
	}
	p := &Projection{in: in}
	replaced := false
	for i, f := range in.Fields {
		if strings.EqualFold(f.Name, name) {
			p.add(c)
			replaced = true
			continue
		}
		p.add(columnOf(in, i))
	}
	if !replaced {
		p.add(c)
	}
	return p, nil
}

// CompileDrop compiles drop(names...); names that do not exist are ignored,
// as in Spark.
func CompileDrop(names []string, in batch.Schema) *Projection {
	p := &Projection{in: in}
	for i, f := range in.Fields {
		drop := false
		for _, n := range names {
			if strings.EqualFold(f.Name, n) {
				drop = true
			}
		}
		if !drop {
			p.add(columnOf(in, i))
		}
	}
	return p
}

// CompileRename compiles withColumnRenamed(old, new); it is a no-op when
// old does not exist, as in Spark.
func CompileRename(old, new string, in batch.Schema) *Projection {
	p := &Projection{in: in}
	for i, f := range in.Fields {
		c := columnOf(in, i)
		if strings.EqualFold(f.Name, old) {
			c = &compiled{ev: c.(*compiled).ev, name: new, in: in}
		}
		p.add(c)
	}
	return p
}

func columnOf(in batch.Schema, i int) Compiled {
	f := in.Fields[i]
	return &compiled{ev: &colRef{idx: i, k: f.Type, null: f.Nullable}, name: f.Name, in: in}
}

func (p *Projection) add(c Compiled) {
	p.exprs = append(p.exprs, c)
	p.out.Fields = append(p.out.Fields, batch.Field{Name: c.Name(), Type: c.Type(), Nullable: c.Nullable()})
}

func (p *Projection) addAll() {
	for i := range p.in.Fields {
		p.add(columnOf(p.in, i))
	}
}

// Input is the schema the projection was compiled against.
func (p *Projection) Input() batch.Schema { return p.in }

// Schema is the output schema.
func (p *Projection) Schema() batch.Schema { return p.out }

// Exprs returns the compiled output expressions in order.
func (p *Projection) Exprs() []Compiled { return p.exprs }

// Apply evaluates the projection over b. Columns passed through unchanged
// and zero-copy casts share storage with b.
func (p *Projection) Apply(b *batch.Batch, ctx *EvalContext) (*batch.Batch, error) {
	if err := checkInput(p.in, b); err != nil {
		return nil, err
	}
	cols := make([]*batch.Column, len(p.exprs))
	for i, e := range p.exprs {
		c, err := e.(*compiled).ev.eval(b, ctx)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", e.Name(), err)
		}
		if c.Len != b.N {
			return nil, fmt.Errorf("evaluate %s: internal error: %d cells for %d rows", e.Name(), c.Len, b.N)
		}
		cols[i] = c
	}
	return &batch.Batch{Schema: p.out, Columns: cols, N: b.N}, nil
}

// Filter keeps the rows for which a boolean condition is TRUE (not FALSE,
// not NULL): filter and where.
type Filter struct {
	in   batch.Schema
	cond Compiled
}

// CompileFilter compiles a filter/where condition, which must be BOOLEAN.
func CompileFilter(src string, in batch.Schema) (*Filter, error) {
	if n, err := Parse(src); err == nil && HasAggregate(n) {
		var call *Call
		var find func(Node)
		find = func(x Node) {
			if c, ok := x.(*Call); ok && call == nil && (aggregateNames[strings.ToLower(c.Name)] || unsupportedAggregates[strings.ToLower(c.Name)]) {
				call = c
			}
			eachChild(x, find)
		}
		find(n)
		return nil, fmt.Errorf("filter: %w", withSource(aggregateOutside(&compiler{in: in, filter: true}, call), src))
	}
	c, err := compileSource(src, in)
	if err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if k := c.Type(); k != batch.Boolean && k != batch.Null {
		n, _ := Parse(src)
		return nil, fmt.Errorf("filter: %w", &Error{Kind: "analysis error", Src: src, Offset: n.Pos(),
			Msg: fmt.Sprintf("filter condition %s must be boolean but is %s", c.Name(), k)})
	}
	return &Filter{in: in, cond: c}, nil
}

// Input is the schema the filter was compiled against.
func (f *Filter) Input() batch.Schema { return f.in }

// Schema is the output schema, the same as the input.
func (f *Filter) Schema() batch.Schema { return f.in }

// Mask evaluates the condition: keep[i] is true for the rows of b that
// satisfy it (NULL does not), and kept counts them.
func (f *Filter) Mask(b *batch.Batch, ctx *EvalContext) (keep []bool, kept int, err error) {
	c, err := f.cond.Eval(b, ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("filter: %w", err)
	}
	keep = make([]bool, b.N)
	if c.Type == batch.Boolean {
		for i, v := range c.Bools {
			if v && (c.Valid == nil || c.Valid[i]) {
				keep[i] = true
				kept++
			}
		}
	}
	return keep, kept, nil
}

// Apply returns the rows of b that satisfy the condition. When every row
// passes, b itself is returned.
func (f *Filter) Apply(b *batch.Batch, ctx *EvalContext) (*batch.Batch, error) {
	keep, kept, err := f.Mask(b, ctx)
	if err != nil {
		return nil, err
	}
	return FilterRows(b, keep, kept), nil
}

// FilterRows returns the rows of b whose keep flag is set (kept of them);
// b itself when all are kept. Values are shared, not copied.
func FilterRows(b *batch.Batch, keep []bool, kept int) *batch.Batch {
	if kept == b.N {
		return b
	}
	cols := make([]*batch.Column, len(b.Columns))
	for i, col := range b.Columns {
		cols[i] = filterColumn(col, keep, kept)
	}
	return &batch.Batch{Schema: b.Schema, Columns: cols, N: kept}
}

// filterColumn returns the kept cells of c; values are not copied (byte
// slices are shared).
func filterColumn(c *batch.Column, keep []bool, kept int) *batch.Column {
	if c.Type.IsNested() {
		return c.Filter(keep, kept)
	}
	out := newCol(c.Type, kept)
	if c.Type == batch.Null {
		return out
	}
	if c.Valid != nil {
		out.Valid = make([]bool, kept)
	}
	j := 0
	for i, k := range keep {
		if !k {
			continue
		}
		if c.Valid != nil {
			out.Valid[j] = c.Valid[i]
		}
		switch c.Type {
		case batch.Boolean:
			out.Bools[j] = c.Bools[i]
		case batch.Int, batch.Long, batch.Date, batch.Timestamp:
			out.Ints[j] = c.Ints[i]
		case batch.Double:
			out.Floats[j] = c.Floats[i]
		case batch.String, batch.Binary:
			out.Bytes[j] = c.Bytes[i]
		}
		j++
	}
	return out
}

// Plan is a chain of steps applied in order; it is itself a Step. Build
// one from a source schema with NewPlan and the DataFrame-like methods, or
// from compiled steps with Chain.
type Plan struct {
	in    batch.Schema
	steps []Step
}

// NewPlan starts an empty plan over the given input schema.
func NewPlan(in batch.Schema) *Plan { return &Plan{in: in} }

// Chain joins compiled steps, checking that each step's input schema is the
// previous step's output.
func Chain(steps ...Step) (*Plan, error) {
	if len(steps) == 0 {
		return nil, fmt.Errorf("chain: no steps")
	}
	p := &Plan{in: steps[0].Input()}
	for _, s := range steps {
		if err := p.Add(s); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Add appends a step compiled against the plan's current output schema.
func (p *Plan) Add(s Step) error {
	if want, got := p.Schema(), s.Input(); !sameSchema(want, got) {
		return fmt.Errorf("chain: step %d was compiled for %s but its input is %s", len(p.steps)+1, got, want)
	}
	p.steps = append(p.steps, s)
	return nil
}

func sameSchema(a, b batch.Schema) bool {
	if len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i].Name != b.Fields[i].Name || a.Fields[i].Type != b.Fields[i].Type {
			return false
		}
	}
	return true
}

// SelectExpr appends selectExpr(exprs...).
func (p *Plan) SelectExpr(exprs ...string) error {
	s, err := CompileSelect(exprs, p.Schema())
	if err != nil {
		return err
	}
	return p.Add(s)
}

// Select appends select(columns...) with plain column names.
func (p *Plan) Select(columns ...string) error {
	s, err := CompileSelectColumns(columns, p.Schema())
	if err != nil {
		return err
	}
	return p.Add(s)
}

// WithColumn appends withColumn(name, expr).
func (p *Plan) WithColumn(name, expr string) error {
	s, err := CompileWithColumn(name, expr, p.Schema())
	if err != nil {
		return err
	}
	return p.Add(s)
}

// Filter appends filter(cond) (also known as where).
func (p *Plan) Filter(cond string) error {
	s, err := CompileFilter(cond, p.Schema())
	if err != nil {
		return err
	}
	return p.Add(s)
}

// Drop appends drop(columns...).
func (p *Plan) Drop(columns ...string) error { return p.Add(CompileDrop(columns, p.Schema())) }

// WithColumnRenamed appends withColumnRenamed(old, new).
func (p *Plan) WithColumnRenamed(old, new string) error {
	return p.Add(CompileRename(old, new, p.Schema()))
}

// Input is the schema the plan starts from.
func (p *Plan) Input() batch.Schema { return p.in }

// Schema is the schema the plan produces.
func (p *Plan) Schema() batch.Schema {
	if len(p.steps) == 0 {
		return p.in
	}
	return p.steps[len(p.steps)-1].Schema()
}

// Steps returns the plan's steps in order.
func (p *Plan) Steps() []Step { return p.steps }

// Apply runs every step in order. An empty plan returns b unchanged.
func (p *Plan) Apply(b *batch.Batch, ctx *EvalContext) (*batch.Batch, error) {
	var err error
	for _, s := range p.steps {
		b, err = s.Apply(b, ctx)
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}
